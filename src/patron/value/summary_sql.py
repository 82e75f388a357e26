"""The per-customer summary (RFM sufficient statistics) as one SQL query.

Definitions (identical to lifetimes' ``summary_data_from_transaction_data`` with ``freq=grain``
and durations divided by the length of ``unit``, and to ``calibration_and_holdout_data``):

* Orders with ``amount >= 0`` are purchases; all of a customer's purchases in one *grain* period
  (day ``D``, ISO week ``W``, month ``M``, or hour ``H``) count as one purchase whose value is
  their sum.
* ``frequency`` (x): number of purchase periods after the first (repeat purchases).
* ``recency`` (t_x): time from the first to the last purchase period, in ``unit``.
* ``T``: time from the first purchase period to the period holding ``end``, in ``unit``.
* ``monetary_value``: mean value of the repeat purchase periods (0 when ``frequency`` is 0).
* Refunds (``amount < 0``) are not purchases: they never add a purchase period; they are summed
  in ``refunded`` (as a positive amount) and netted in ``total_spend``.
* Durations: time between period starts divided by the unit's length (7 days for ``W``; 30.4375
  for ``M``; 1/24 for ``H``), except that with ``grain='M'`` and ``unit='M'`` they are whole
  calendar months.
* ``end`` (and ``holdout_end``) is a date, the whole of that day included, or a timestamp, orders
  up to and including that instant (what an hourly grain needs).
* Only customers with a purchase on or before ``end`` appear. With ``holdout_end``, purchases
  after ``end`` up to and including ``holdout_end`` give ``frequency_holdout`` (number of purchase
  periods), ``monetary_value_holdout`` (their mean value, 0 when none) and ``duration_holdout``
  (``holdout_end - end`` in ``unit``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time

from patron.constants import SUMMARY_PERIODS
from patron.data.dialect import DUCKDB, Dialect

SUMMARY_COLUMNS: tuple[str, ...] = (
    "customer_id", "frequency", "recency", "T", "monetary_value",
    "n_orders", "total_spend", "refunded", "first_purchase", "last_purchase",
)
HOLDOUT_COLUMNS: tuple[str, ...] = ("frequency_holdout", "monetary_value_holdout", "duration_holdout")


MICROS_PER_DAY = 86_400_000_000
"""Microseconds in one day."""

UNIT_MICROS: dict[str, int] = {u: round(days * MICROS_PER_DAY) for u, days in SUMMARY_PERIODS.items()}
"""Length of each summary unit in microseconds (exact integers)."""


def last_instant(value: date) -> datetime:
    """The last instant an end includes: a datetime itself, a date its 23:59:59.999999."""
    if isinstance(value, datetime):
        return value.replace(tzinfo=None)
    return datetime.combine(value, time.max)


@dataclass(frozen=True)
class SummarySpec:
    """What to summarise: ``end`` and ``holdout_end`` are inclusive dates (or timestamps, see the
    module docstring); ``grain`` and ``unit`` are ``D``, ``W``, ``M`` or ``H``."""

    end: date
    unit: str = "W"
    grain: str = "D"
    holdout_end: date | None = None
    table: str = "transactions"
    bucket: tuple[int, int] | None = None
    """``(k, n)``: summarise only the customers in hash bucket ``k`` of ``n`` (large bases are
    summarised bucket by bucket so each aggregation fits in memory)."""

    def __post_init__(self) -> None:
        for name in ("unit", "grain"):
            if getattr(self, name) not in SUMMARY_PERIODS:
                raise ValueError(f"{name} must be one of {', '.join(SUMMARY_PERIODS)}; got {getattr(self, name)!r}")
        if self.holdout_end is not None and last_instant(self.holdout_end) <= last_instant(self.end):
            raise ValueError(f"holdout end {self.holdout_end} must be after the calibration end {self.end}")

    @property
    def timestamps(self) -> bool:
        """True when an end is a timestamp: periods and limits are then compared as instants."""
        return isinstance(self.end, datetime) or isinstance(self.holdout_end, datetime)


def _per_unit(unit: str) -> str:
    """SQL that turns a count of days into ``unit``s (exact for hours: times 24)."""
    if unit == "H":
        return " * 24.0"
    return f" / {SUMMARY_PERIODS[unit]!r}"


def _span(d: Dialect, spec: SummarySpec, start: str, end: str) -> str:
    if spec.grain == "M" and spec.unit == "M":
        return f"CAST({d.months_between(start, end)} AS DOUBLE)"
    if spec.grain == "H":
        return f"CAST({d.micros_between(start, end)} AS DOUBLE) / {float(UNIT_MICROS[spec.unit])!r}"
    return f"CAST({d.days_between(start, end)} AS DOUBLE){_per_unit(spec.unit)}"


def _period(d: Dialect, spec: SummarySpec, ts: str) -> str:
    """The start of the grain period holding the TIMESTAMP expression ``ts``."""
    return period_expr(d, spec.grain, ts)


def period_expr(d: Dialect, grain: str, ts: str) -> str:
    """The start of the ``grain`` period holding the TIMESTAMP expression ``ts`` (a DATE for
    ``D``, ``W``, ``M``; a TIMESTAMP for ``H``)."""
    if grain == "H":
        return d.hour_start(ts)
    return d.period_start(f"CAST({ts} AS DATE)", grain)


def periods_between(d: Dialect, grain: str, start: str, end: str) -> str:
    """Whole ``grain`` periods from the period starting at ``start`` to the one starting at
    ``end`` (both from :func:`period_expr`), as a BIGINT."""
    if grain == "M":
        return f"CAST({d.months_between(start, end)} AS BIGINT)"
    if grain == "H":
        return f"CAST({d.micros_between(start, end)} / {UNIT_MICROS['H']} AS BIGINT)"
    per = {"D": 1, "W": 7}[grain]
    return f"CAST({d.days_between(start, end)} / {per} AS BIGINT)"


def _up_to(d: Dialect, spec: SummarySpec, end: date, *, after: date | None = None) -> str:
    """The condition on an order's time: on or before ``end`` (and after ``after``)."""
    if spec.timestamps:
        cond = f"occurred_at <= {d.timestamp_literal(last_instant(end))}"
        if after is not None:
            cond = f"occurred_at > {d.timestamp_literal(last_instant(after))} AND {cond}"
        return cond
    day = "CAST(occurred_at AS DATE)"
    cond = f"{day} <= {d.date_literal(end)}"
    if after is not None:
        cond = f"{day} > {d.date_literal(after)} AND {cond}"
    return cond


def _source(spec: SummarySpec, d: Dialect) -> str:
    """The transactions to summarise: the table, or the customers of one hash bucket of it."""
    if spec.bucket is None:
        return spec.table
    k, n = spec.bucket
    return f"(SELECT * FROM {spec.table} WHERE {d.bucket('customer_id', n)} = {int(k)}) t"


def order_lists_sql(spec: SummarySpec) -> str:
    """DuckDB: per customer, the timestamps and amounts of their orders up to the last day
    summarised (``holdout_end``, else ``end``), as two lists in matching order (``ts``,
    ``amounts``); orders without an amount are left out, as in :func:`summary_sql`.

    This is the engine's half of the DuckDB plan for the summary (:mod:`patron.value.summary_arrays`
    finishes it with NumPy). One hash aggregation by customer takes about half the time of the
    two of :func:`summary_sql` (by customer and period, then by customer), whose first one has
    nearly as many groups as there are orders.
    """
    last = spec.holdout_end or spec.end
    if spec.timestamps:
        until = f"occurred_at <= {DUCKDB.timestamp_literal(last_instant(last))}"
    else:
        until = f"occurred_at < TIMESTAMP '{date.fromordinal(last.toordinal() + 1).isoformat()}'"
    return (
        "SELECT customer_id, list(occurred_at) AS ts, list(amount) AS amounts\n"
        f"FROM {_source(spec, DUCKDB)}\n"
        f"WHERE {until} AND amount IS NOT NULL\n"
        "GROUP BY customer_id"
    )


def summary_sql(spec: SummarySpec, dialect: Dialect) -> str:
    """The summary query for ``spec`` in ``dialect``: one row per customer, in no particular order
    (sorting tens of millions of customers costs more than it is worth; sort the result if needed).

    This is the portable definition: Spark runs it, and the DuckDB plan
    (:func:`order_lists_sql` + :mod:`patron.value.summary_arrays`) is tested against it."""
    d = dialect
    table = _source(spec, d)
    period = _period(d, spec, "occurred_at")
    if spec.grain == "H":
        end_period = d.hour_start(d.timestamp_literal(last_instant(spec.end)))
    else:
        end_period = d.period_start(d.date_literal(last_instant(spec.end).date()), spec.grain)
    ctes = [
        f"""cal AS (
  SELECT customer_id, {period} AS p, SUM(amount) AS value, COUNT(*) AS orders,
         MIN(occurred_at) AS first_ts, MAX(occurred_at) AS last_ts
  FROM {table}
  WHERE amount >= 0 AND {_up_to(d, spec, spec.end)}
  GROUP BY customer_id, {period}
)""",
        """per_customer AS (
  SELECT customer_id, COUNT(*) AS n_periods, MIN(p) AS first_p, MAX(p) AS last_p,
         SUM(value) AS gross, min_by(value, p) AS first_value, SUM(orders) AS n_orders,
         MIN(first_ts) AS first_purchase, MAX(last_ts) AS last_purchase
  FROM cal GROUP BY customer_id
)""",
        f"""refunds AS (
  SELECT customer_id, -SUM(amount) AS refunded
  FROM {table} WHERE amount < 0 AND {_up_to(d, spec, spec.end)} GROUP BY customer_id
)""",
    ]
    select = [
        "c.customer_id",
        "CAST(c.n_periods - 1 AS BIGINT) AS frequency",
        f"{_span(d, spec, 'c.first_p', 'c.last_p')} AS recency",
        f"{_span(d, spec, 'c.first_p', end_period)} AS T",
        "CASE WHEN c.n_periods > 1 THEN (c.gross - c.first_value) / (c.n_periods - 1) ELSE 0.0 END AS monetary_value",
        "CAST(c.n_orders AS BIGINT) AS n_orders",
        "c.gross - coalesce(r.refunded, 0.0) AS total_spend",
        "coalesce(r.refunded, 0.0) AS refunded",
        "c.first_purchase",
        "c.last_purchase",
    ]
    joins = "LEFT JOIN refunds r ON r.customer_id = c.customer_id"
    if spec.holdout_end is not None:
        ctes.append(
            f"""hold AS (
  SELECT customer_id, COUNT(*) AS frequency_holdout, AVG(value) AS monetary_value_holdout
  FROM (SELECT customer_id, {period} AS p, SUM(amount) AS value FROM {table}
        WHERE amount >= 0 AND {_up_to(d, spec, spec.holdout_end, after=spec.end)}
        GROUP BY customer_id, {period}) h
  GROUP BY customer_id
)"""
        )
        hold_span = _holdout_span(d, spec)
        select += [
            "CAST(coalesce(h.frequency_holdout, 0) AS BIGINT) AS frequency_holdout",
            "coalesce(h.monetary_value_holdout, 0.0) AS monetary_value_holdout",
            f"{hold_span} AS duration_holdout",
        ]
        joins += "\nLEFT JOIN hold h ON h.customer_id = c.customer_id"
    return (
        "WITH " + ",\n".join(ctes)
        + "\nSELECT " + ",\n       ".join(select)
        + "\nFROM per_customer c\n" + joins
    )


def _holdout_span(d: Dialect, spec: SummarySpec) -> str:
    """``duration_holdout``: from the calibration end to the holdout end, in ``unit`` (whole
    months between their periods with ``grain='M'``)."""
    assert spec.holdout_end is not None
    if spec.grain == "M":
        return _span(d, spec, d.period_start(d.date_literal(last_instant(spec.end).date()), "M"),
                     d.period_start(d.date_literal(last_instant(spec.holdout_end).date()), "M"))
    if spec.timestamps or spec.grain == "H":
        start, stop = (d.timestamp_literal(last_instant(v)) for v in (spec.end, spec.holdout_end))
        return f"CAST({d.micros_between(start, stop)} AS DOUBLE) / {float(UNIT_MICROS[spec.unit])!r}"
    days = d.days_between(d.date_literal(spec.end), d.date_literal(spec.holdout_end))
    return f"CAST({days} AS DOUBLE){_per_unit(spec.unit)}"


def sufficient_statistics_sql(spec: SummarySpec, dialect: Dialect, columns: tuple[str, ...]) -> str:
    """Distinct values of ``columns`` of the summary with the number of customers sharing them
    (``weight``): what a model needs, compressed in the engine so only distinct rows leave it."""
    check_summary_columns(columns)
    return compress_sql(f"(\n{summary_sql(spec, dialect)}\n) s", columns)


def check_summary_columns(columns: tuple[str, ...]) -> None:
    """Raise ``ValueError`` naming the first of ``columns`` that is not a summary column."""
    for c in columns:
        if c not in SUMMARY_COLUMNS + HOLDOUT_COLUMNS:
            raise ValueError(f"unknown summary column {c!r}")


def compress_sql(source: str, columns: tuple[str, ...]) -> str:
    """Distinct rows of ``columns`` of ``source`` (a table name or a parenthesised, aliased query)
    with ``weight``, the number of rows sharing them: the compression every engine runs."""
    cols = ", ".join(columns)
    return f"SELECT {cols}, COUNT(*) AS weight FROM {source} GROUP BY {cols}"
