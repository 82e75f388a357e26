"""``GET /v1/equity``: the customer equity the dashboard shows, as data.

The figures are those of the stored ``customer_profiles`` (the last refresh, the same table the
dashboard and ``GET /v1/customers/{id}`` read): customers with a purchase, customer equity (the
sum of their CLV) and the sums of the per-customer interval bounds, customers per spend basis,
and the value settings the profiles were built with (``[value]``, :mod:`patron.value.settings`)
with their one-line statement. The same settings give the same equity as ``patron score``,
``patron profiles``, ``patron equity`` and ``patron report``.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from patron.errors import NoDataError
from patron.relationship.profiles import PROFILE_TABLE, profile_settings, profile_spend_counts
from patron.service.auth import require
from patron.service.refresh import has_table
from patron.value.settings import data_currencies, spend_note

router = APIRouter()


class EquityView(BaseModel):
    """Customer equity of the last refresh and the settings behind it."""

    as_of: str = Field(description="Date the profiles are computed as of (inclusive).")
    customers: int = Field(description="Customers with at least one purchase (prospects are not counted).")
    customer_equity: float = Field(description="Sum of CLV over all customers, in `value_settings.currency`.")
    clv_lower_sum: float = Field(description="Sum of the per-customer lower bounds (95%, parameter uncertainty); wider than the equity interval.")
    clv_upper_sum: float = Field(description="Sum of the per-customer upper bounds.")
    spend_basis: dict[str, int] = Field(description="Customers per spend basis (own, population mean: why).")
    spend_note: str | None = Field(None, description="The one line about customers valued at the population mean spend because their repeat purchases total 0 or less.")
    value_settings: dict[str, Any] | None = Field(None, description="The [value] settings of the profiles (horizon, period, discount_rate, margin, costs, currency, line); null for profiles built before they were stored.")


@router.get("/v1/equity", tags=["scores"], response_model=EquityView, dependencies=[require("read")],
            summary="Customer equity of the last refresh and the value settings behind it (read)")
def equity(request: Request) -> dict[str, Any]:
    state = request.app.state.patron
    with state.reading() as con:
        if not has_table(con, PROFILE_TABLE):
            raise NoDataError("no scores yet: refresh them with POST /v1/refresh")
        as_of, customers, total, lower, upper = con.execute(
            f"SELECT max(as_of), count(*) FILTER (WHERE status IS DISTINCT FROM 'prospect'), coalesce(sum(clv), 0), "
            f"coalesce(sum(clv_lower), 0), coalesce(sum(clv_upper), 0) FROM {PROFILE_TABLE}").fetchone()
        if as_of is None:
            raise NoDataError("no scores yet: refresh them with POST /v1/refresh")
        counts = profile_spend_counts(con)
        settings = profile_settings(con)
        currencies = data_currencies(con)
    return {
        "as_of": str(as_of)[:10], "customers": int(customers), "customer_equity": float(total),
        "clv_lower_sum": float(lower), "clv_upper_sum": float(upper), "spend_basis": counts,
        "spend_note": spend_note(counts, currency=settings.label(currencies) if settings else ""),
        "value_settings": settings.to_dict(currencies) if settings else None,
    }
