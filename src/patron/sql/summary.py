"""The per-customer summary (RFM sufficient statistics) as one SQL query.

Definitions (identical to lifetimes' ``summary_data_from_transaction_data`` with ``freq=grain``
and durations divided by the length of ``unit``, and to ``calibration_and_holdout_data``):

* Orders with ``amount >= 0`` are purchases; all of a customer's purchases in one *grain* period
  (day ``D``, ISO week ``W``, month ``M``) count as one purchase whose value is their sum.
* ``frequency`` (x): number of purchase periods after the first (repeat purchases).
* ``recency`` (t_x): time from the first to the last purchase period, in ``unit``.
* ``T``: time from the first purchase period to the period holding ``end``, in ``unit``.
* ``monetary_value``: mean value of the repeat purchase periods (0 when ``frequency`` is 0).
* Refunds (``amount < 0``) are not purchases: they never add a purchase period; they are summed
  in ``refunded`` (as a positive amount) and netted in ``total_spend``.
* Durations: whole days between period starts divided by the unit's days (7 for ``W``; 30.4375 for
  ``M``), except that with ``grain='M'`` and ``unit='M'`` they are whole calendar months.
* Only customers with a purchase on or before ``end`` appear. With ``holdout_end``, purchases
  after ``end`` up to and including ``holdout_end`` give ``frequency_holdout`` (number of purchase
  periods), ``monetary_value_holdout`` (their mean value, 0 when none) and ``duration_holdout``
  (``holdout_end - end`` in ``unit``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from patron.constants import PERIOD_UNITS
from patron.sql.dialect import DUCKDB, Dialect

SUMMARY_COLUMNS: tuple[str, ...] = (
    "customer_id", "frequency", "recency", "T", "monetary_value",
    "n_orders", "total_spend", "refunded", "first_purchase", "last_purchase",
)
HOLDOUT_COLUMNS: tuple[str, ...] = ("frequency_holdout", "monetary_value_holdout", "duration_holdout")


@dataclass(frozen=True)
class SummarySpec:
    """What to summarise: ``end`` and ``holdout_end`` are inclusive dates; ``grain`` and ``unit``
    are ``D``, ``W`` or ``M``."""

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
            if getattr(self, name) not in PERIOD_UNITS:
                raise ValueError(f"{name} must be one of D, W, M; got {getattr(self, name)!r}")
        if self.holdout_end is not None and self.holdout_end <= self.end:
            raise ValueError(f"holdout end {self.holdout_end} must be after the calibration end {self.end}")


def _span(d: Dialect, spec: SummarySpec, start: str, end: str) -> str:
    if spec.grain == "M" and spec.unit == "M":
        return f"CAST({d.months_between(start, end)} AS DOUBLE)"
    return f"CAST({d.days_between(start, end)} AS DOUBLE) / {PERIOD_UNITS[spec.unit]!r}"


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

    This is the engine's half of the DuckDB plan for the summary (:mod:`patron.summary_arrays`
    finishes it with NumPy). One hash aggregation by customer takes about half the time of the
    two of :func:`summary_sql` (by customer and period, then by customer), whose first one has
    nearly as many groups as there are orders.
    """
    last = spec.holdout_end or spec.end
    stop = date.fromordinal(last.toordinal() + 1).isoformat()
    return (
        "SELECT customer_id, list(occurred_at) AS ts, list(amount) AS amounts\n"
        f"FROM {_source(spec, DUCKDB)}\n"
        f"WHERE occurred_at < TIMESTAMP '{stop}' AND amount IS NOT NULL\n"
        "GROUP BY customer_id"
    )


def summary_sql(spec: SummarySpec, dialect: Dialect) -> str:
    """The summary query for ``spec`` in ``dialect``: one row per customer, in no particular order
    (sorting tens of millions of customers costs more than it is worth; sort the result if needed).

    This is the portable definition: Spark runs it, and the DuckDB plan
    (:func:`order_lists_sql` + :mod:`patron.summary_arrays`) is tested against it."""
    d = dialect
    table = _source(spec, d)
    day = "CAST(occurred_at AS DATE)"
    period = d.period_start(day, spec.grain)
    end = d.date_literal(spec.end)
    end_period = d.period_start(end, spec.grain)
    ctes = [
        f"""cal AS (
  SELECT customer_id, {period} AS p, SUM(amount) AS value, COUNT(*) AS orders,
         MIN(occurred_at) AS first_ts, MAX(occurred_at) AS last_ts
  FROM {table}
  WHERE amount >= 0 AND {day} <= {end}
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
  FROM {table} WHERE amount < 0 AND {day} <= {end} GROUP BY customer_id
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
        hend = d.date_literal(spec.holdout_end)
        ctes.append(
            f"""hold AS (
  SELECT customer_id, COUNT(*) AS frequency_holdout, AVG(value) AS monetary_value_holdout
  FROM (SELECT customer_id, {period} AS p, SUM(amount) AS value FROM {table}
        WHERE amount >= 0 AND {day} > {end} AND {day} <= {hend}
        GROUP BY customer_id, {period}) h
  GROUP BY customer_id
)"""
        )
        hold_span = _span(d, spec, end, hend) if spec.grain != "M" else _span(d, spec, end_period, d.period_start(hend, spec.grain))
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
