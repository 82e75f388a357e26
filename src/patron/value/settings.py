"""One set of value settings: the ``[value]`` section of the rules file.

Every figure patron states about customer value -- CLV, customer equity, net CLV -- is computed
with these settings, read once per command: ``patron score``, ``profiles``, ``segments``,
``equity``, ``profitability``, ``report``, the service's refresh and dashboard, and the Python API
(:func:`patron.value.scoring.score`, :func:`patron.relationship.profiles.build_profiles`, ...). The defaults are the
same everywhere; a command's flags (``--horizon``, ``--discount-rate``, ``--margin``, ...) and the
Python API's arguments override them for that call only. Example::

    [value]
    horizon = 52              # in `period` units
    period = "W"              # D, W or M: the unit of the summary and of the horizon
    discount_rate = 0.10      # annual
    margin = 0.30             # share of spend that is margin (0-1]
    cost_per_customer = 2.0   # cost to serve one customer over the horizon (currency)
    cost_per_order = 0.50     # cost to serve one order (currency), discounted like the orders
    currency = "USD"          # the reporting label (amounts are never converted)

Every output that states a value prints :meth:`ValueSettings.line` beside it, e.g.
``CLV: 52 weeks, 10%/year, margin 30%, USD``.

Spend basis. The Gamma-Gamma spend model is fitted on customers with repeat purchases of
positive value (its support); every customer's expected spend per purchase then has a basis,
the column ``spend_basis`` (:data:`SPEND_BASES`): ``own`` (the Gamma-Gamma conditional
expectation given the customer's own repeat spend), or the fitted population mean spend
E[M] = p v / (q - 1) for customers the spend model has no usable information on -- those without
a repeat purchase (the model's own answer for x = 0) and those whose repeat purchases total 0
or less (zero-value orders: a value of 0 has no density under the Gamma distribution, so it is
no observation of spend). :func:`spend_note` is the one line each command prints about the
latter.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from patron.constants import (
    DAYS_PER_WEEK,
    DAYS_PER_YEAR,
    DEFAULT_DISCOUNT_RATE,
    DEFAULT_HORIZON_WEEKS,
    PERIOD_UNITS,
)
from patron.errors import InputError

PERIOD_NAMES: dict[str, str] = {"D": "days", "W": "weeks", "M": "months"}
"""How a horizon in each period unit is printed."""

SPEND_OWN = "own"
SPEND_NO_REPEAT = "population_mean: no repeat purchase"
SPEND_NONPOSITIVE = "population_mean: repeat purchases total 0 or less"
SPEND_BASES: tuple[str, ...] = (SPEND_OWN, SPEND_NO_REPEAT, SPEND_NONPOSITIVE)
"""Values of the ``spend_basis`` column (see the module docstring)."""

CURRENCY_NOT_SET = "currency not set"
"""What the settings line says when neither ``[value] currency`` nor the data name a currency."""


class ValueSettings(BaseModel):
    """The ``[value]`` section: how customer lifetime value is computed and labelled."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    model: Literal["bgnbd", "pareto", "mbgnbd"] = "bgnbd"
    """Transaction model fitted with Gamma-Gamma: bgnbd, pareto or mbgnbd."""
    horizon: float = Field(DEFAULT_HORIZON_WEEKS, gt=0, allow_inf_nan=False)
    """Horizon of CLV, in ``period`` units."""
    period: Literal["D", "W", "M"] = "W"
    """Unit of the summary the models are fitted on and of the horizon: days, weeks, months."""
    discount_rate: float = Field(DEFAULT_DISCOUNT_RATE, ge=0, allow_inf_nan=False)
    """Annual discount rate (0.10 = 10% a year), converted to the period unit."""
    margin: float = Field(1.0, gt=0, le=1)
    """Share of spend that is margin, in (0, 1]; 1 states CLV as revenue."""
    cost_per_customer: float = Field(0.0, ge=0, allow_inf_nan=False)
    """Cost to serve one customer over the horizon (currency, present value), subtracted from
    every customer's CLV (the Python API's ``cost_to_serve``)."""
    cost_per_order: float = Field(0.0, ge=0, allow_inf_nan=False)
    """Cost to serve one order (currency): subtracted per expected purchase, discounted like the
    purchases."""
    currency: str | None = Field(None, pattern=r"^[A-Z]{3}$")
    """ISO 4217 code the values are reported in (a label: amounts are never converted); unset:
    the currency of the transactions when they all carry one."""

    covariates: tuple[str, ...] = ()
    """Customer covariates of the transaction model (bgnbd or pareto): summary columns or customer
    attributes, categorical ones one-hot encoded (docs/models.md, "Covariates"); empty: none."""
    purchase_covariates: tuple[str, ...] | None = None
    """The covariates acting on the purchase process (default: all of ``covariates``)."""
    dropout_covariates: tuple[str, ...] | None = None
    """The covariates acting on the dropout process (default: all of ``covariates``)."""
    dynamic_covariates: str | None = None
    """CSV/Parquet file of time-varying covariates (``customer_id, period_start, covariates...``,
    equally spaced periods; a path relative to the current directory): the transaction model is
    then the time-varying Pareto/NBD (``model = "pareto"``), fitted on the database's customers,
    and CLV follows each customer's covariate path over the horizon (periods past the file's
    last take the customer's last values). ``covariates`` then name the file's columns acting on
    both processes (default: all of them), ``purchase_covariates``/``dropout_covariates`` as
    above (docs/models.md, "Time-varying covariates")."""

    @field_validator("covariates", "purchase_covariates", "dropout_covariates", mode="before")
    @classmethod
    def _names(cls, value: Any) -> Any:
        if isinstance(value, str):
            return tuple(v.strip() for v in value.split(",") if v.strip())
        return value

    @property
    def all_covariates(self) -> tuple[str, ...]:
        """Every covariate named by ``covariates``, ``purchase_covariates`` and ``dropout_covariates``."""
        return tuple(dict.fromkeys((*self.covariates, *(self.purchase_covariates or ()), *(self.dropout_covariates or ()))))

    @field_validator("period", "currency", mode="before")
    @classmethod
    def _upper(cls, value: Any) -> Any:
        return value.strip().upper() if isinstance(value, str) else value

    @property
    def days_per_period(self) -> float:
        """Length of one ``period`` in days."""
        return PERIOD_UNITS[self.period]

    @property
    def horizon_weeks(self) -> float:
        """The horizon in weeks (7 days)."""
        return self.horizon * self.days_per_period / DAYS_PER_WEEK

    @property
    def discount_rate_per_period(self) -> float:
        """The per-period rate equivalent to the annual ``discount_rate``:
        ``(1 + annual)^(days per period / DAYS_PER_YEAR) - 1`` (:data:`patron.constants.DAYS_PER_YEAR`)."""
        return math.expm1(math.log1p(self.discount_rate) * self.days_per_period / DAYS_PER_YEAR)

    @property
    def margin_is_set(self) -> bool:
        """Whether the margin was given (rules file or flag) rather than left at its default."""
        return "margin" in self.model_fields_set

    def override(self, **values: Any) -> ValueSettings:
        """These settings with ``values`` replacing them (``None`` values are ignored); an
        invalid value is an :class:`InputError` naming its parameter (``horizon: ...``; the CLI
        writes the flag)."""
        given = {k: v for k, v in values.items() if v is not None}
        if not given:
            return self
        data = {k: getattr(self, k) for k in self.model_fields_set} | given
        return _validate(data)

    def label(self, currencies: tuple[str, ...] = ()) -> str:
        """The currency the values are stated in: ``currency``, else the only currency of the
        data (``currencies``), else :data:`CURRENCY_NOT_SET`."""
        if self.currency:
            return self.currency
        return currencies[0] if len(currencies) == 1 else CURRENCY_NOT_SET

    def line(self, currencies: tuple[str, ...] = ()) -> str:
        """The settings in one line, printed beside every stated value, e.g.
        ``CLV: 52 weeks, 10%/year, margin 30%, USD`` (plus the costs to serve when set)."""
        parts = [f"CLV: {self.horizon:g} {PERIOD_NAMES[self.period]}", f"{_percent(self.discount_rate)}/year",
                 f"margin {_percent(self.margin)}"]
        costs = [f"{v:,.2f} per {what}" for v, what in ((self.cost_per_customer, "customer"), (self.cost_per_order, "order")) if v]
        if costs:
            parts.append("cost to serve " + " + ".join(costs))
        parts.append(self.label(currencies))
        if self.dynamic_covariates:
            parts.append(f"time-varying covariates {os.path.basename(self.dynamic_covariates)}"
                         + (f" ({', '.join(self.all_covariates)})" if self.all_covariates else ""))
        elif self.all_covariates:
            parts.append(f"covariates {', '.join(self.all_covariates)}")
        line = ", ".join(parts)
        if len(currencies) > 1:
            line += f" (transactions in {', '.join(currencies)}, summed unconverted)"
        return line

    def to_dict(self, currencies: tuple[str, ...] = ()) -> dict[str, Any]:
        """JSON-ready settings, with the currency label resolved and the settings line."""
        label = self.label(currencies)
        return self.model_dump() | {"currency": None if label == CURRENCY_NOT_SET else label, "line": self.line(currencies)}


def _percent(share: float) -> str:
    return f"{share * 100:.4g}%"


def _validate(data: Mapping[str, Any]) -> ValueSettings:
    try:
        return ValueSettings.model_validate(dict(data))
    except ValidationError as exc:
        first = exc.errors()[0]
        key = ".".join(str(p) for p in first["loc"]) or "(section)"
        raise InputError(f"{key}: {first['msg']} (got {first.get('input')!r})",
                         parameters=tuple(str(p) for p in first["loc"][:1])) from None


def value_settings(config: str | os.PathLike[str] | dict[str, Any] | ValueSettings | None = None, **overrides: Any) -> ValueSettings:
    """The ``[value]`` settings of the rules file ``config`` (path, parsed dict, or
    ``$PATRON_CONFIG`` / ``./patron.toml`` when ``None``; defaults when absent), with
    ``overrides`` (flag values; ``None`` means not given) replacing them."""
    from patron.config import section

    base = config if isinstance(config, ValueSettings) else section("value", ValueSettings, config)
    return base.override(**overrides)


def data_currencies(con: Any, table: str = "transactions") -> tuple[str, ...]:
    """The distinct currencies of the stored transactions, sorted (empty when the table or its
    ``currency`` column is absent, or no row carries one)."""
    from patron.data.store import table_exists

    if not table_exists(con, table):
        return ()
    cols = {r[0] for r in con.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_name = ? AND table_schema = 'main' "
        "AND table_catalog = current_database()", [table]).fetchall()}
    if "currency" not in cols:
        return ()
    rows = con.execute(f"SELECT DISTINCT currency FROM {table} WHERE currency IS NOT NULL ORDER BY 1 LIMIT 10").fetchall()
    return tuple(str(r[0]) for r in rows)


def db_currencies(db: str | os.PathLike[str] | None) -> tuple[str, ...]:
    """:func:`data_currencies` of the database file ``db``."""
    from patron.data.store import reader

    with reader(db) as con:
        return data_currencies(con)


def spend_counts(bases: Any) -> dict[str, int]:
    """Customers per spend basis (every value of :data:`SPEND_BASES`, 0 when absent) from a
    sequence of ``spend_basis`` values (missing values, e.g. prospects, are not counted)."""
    import numpy as np

    values = np.asarray(bases, dtype=object)
    return {b: int(np.count_nonzero(values == b)) for b in SPEND_BASES}


def spend_note(counts: Mapping[str, int], population_mean: float | None = None, currency: str = "") -> str | None:
    """The one line every command prints about customers valued at the population mean spend
    because their repeat purchases total 0 or less; ``None`` when there are none."""
    n = int(counts.get(SPEND_NONPOSITIVE, 0))
    if not n:
        return None
    mean = "" if population_mean is None or not math.isfinite(population_mean) else f" ({population_mean:,.2f}{' ' + currency if currency and currency != CURRENCY_NOT_SET else ''})"
    who = "customer" if n == 1 else "customers"
    return (f"{n:,} {who} valued at the population mean spend{mean}: repeat purchases total 0 or less "
            f"(zero-value orders; column spend_basis)")
