"""``GET /v1/motivation``: why customers buy, as the last refresh's profiles say (read).

One row per motivation (discount, values, mixed, other, unknown; docs/motivation.md) over the
buyers of the stored ``customer_profiles`` (the last score refresh, as ``GET /v1/equity`` and the
dashboard): customers, their share, equity share, mean CLV, repeat rate, share new or active, mean
P(alive), mean discount share and the two scores; :func:`patron.relationship.motivation_mix.motivation_rows`.
Only aggregates: no customer id.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from patron.errors import NoDataError
from patron.relationship.motivation_mix import motivation_rows
from patron.relationship.profiles import PROFILE_TABLE
from patron.service.auth import require
from patron.service.refresh import has_table

router = APIRouter()


class MotivationRow(BaseModel):
    """One motivation of the base."""

    motivation: str = Field(description="discount, values, mixed, other or unknown (too little evidence).")
    customers: int = Field(description="Buyers with this motivation.")
    share: float = Field(description="Their share of the buyers (0-1).")
    equity_share: float | None = Field(None, description="Their share of customer equity (0-1); null when equity is 0.")
    mean_clv: float | None = Field(None, description="Mean CLV, in the currency of the value settings.")
    repeat_rate: float = Field(description="Share who bought on a second day (0-1).")
    active_share: float = Field(description="Share whose status is new or active (0-1).")
    mean_probability_alive: float | None = Field(None, description="Mean P(alive).")
    mean_discount_share: float | None = Field(None, description="Mean share of orders at a discount in the lookback (0-1).")
    mean_discount_score: float | None = Field(None, description="Mean discount score D (0-1).")
    mean_values_score: float | None = Field(None, description="Mean values score V (0-1).")


class MotivationView(BaseModel):
    """The motivation mix of the last refresh."""

    as_of: str = Field(description="Date the profiles are computed as of (inclusive).")
    motivations: list[MotivationRow] = Field(description="One row per motivation present, discount, values, mixed, other, unknown.")


def _clean(value: Any) -> Any:
    return None if isinstance(value, float) and value != value else value


@router.get("/v1/motivation", tags=["scores"], response_model=MotivationView, dependencies=[require("read")],
            summary="Why customers buy: each motivation's share, CLV and loyalty in the last refresh (read)")
def motivation(request: Request) -> dict[str, Any]:
    state = request.app.state.patron
    with state.reading() as con:
        if not has_table(con, PROFILE_TABLE):
            raise NoDataError("no scores yet: refresh them with POST /v1/refresh")
        as_of = con.execute(f"SELECT max(as_of) FROM {PROFILE_TABLE}").fetchall()[0][0]
        rows = motivation_rows(con)
    if as_of is None:
        raise NoDataError("no scores yet: refresh them with POST /v1/refresh")
    return {"as_of": str(as_of)[:10],
            "motivations": [{k: _clean(v) for k, v in r.items()} for r in rows.astype(object).to_dict(orient="records")]}
