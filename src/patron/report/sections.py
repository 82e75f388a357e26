"""The built-in sections of the customer equity report.

Each builder reads through patron's Python API (profiles, segments, status, cohorts, loyalty),
shares work through the :class:`~patron.report.registry.ReportContext` cache, and draws with the
pure functions of :mod:`patron.report.figures`. A builder whose producing module is not installed
returns ``None`` and leaves a note for the closing section.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Any, TypeVar

import numpy as np
import pandas as pd

from patron.display import money, money_title
from patron.errors import NoDataError
from patron.relationship.categories import category_order
from patron.report import figures as F
from patron.report.html import Metric, Section
from patron.report.registry import ReportContext, optional_module, register_section
from patron.value.models import ConvergenceError
from patron.value.settings import PERIOD_NAMES, db_currencies, spend_note

T = TypeVar("T")

MIGRATION_MONTHS = 3
"""Months between the two as-of dates of the status migration matrix (a quarter)."""

EQUITY_HISTORY_MONTHS = 12
"""Months of month-end customer equity drawn before the report date."""

TOP_SEGMENTS = 15
"""Rows of the top segments table and bars of the equity by segment figure."""

MAX_COHORTS = 36
"""Most recent acquisition cohorts drawn (months); older ones are left out of the figures."""

ACTIVE_STATUSES: tuple[str, ...] = ("new", "active")
"""Statuses counted in the headline "active share"."""

MODEL_NAMES: dict[str, str] = {"bgnbd": "BG/NBD", "pareto": "Pareto/NBD", "mbgnbd": "MBG/NBD"}
"""How each transaction model is named in the report."""


def months_before(day: date, months: int) -> date:
    """``months`` calendar months before ``day``; from a month end, the month end (so 30 June
    goes to 31 March, not 30 March)."""
    ts = pd.Timestamp(day)
    if ts.is_month_end:
        return (ts - pd.offsets.MonthEnd(months)).date()
    return (ts - pd.DateOffset(months=months)).date()


def _api(ctx: ReportContext, section: str, *candidates: str) -> Callable[..., Any] | None:
    """The first of ``candidates`` ("module:function") that is installed, else ``None`` with a
    note saying which section is left out (once per section)."""
    for candidate in candidates:
        module, _, name = candidate.partition(":")
        mod = optional_module(module)
        if mod is not None and hasattr(mod, name):
            return getattr(mod, name)
    note = f"The {section} part is left out: {' / '.join(candidates)} is not installed."
    if note not in ctx.notes:
        ctx.notes.append(note)
    return None


def _attempt(ctx: ReportContext, part: str, compute: Callable[[], T]) -> T | None:
    """``compute()``, or ``None`` with a note when the data do not allow it (a
    :class:`~patron.errors.NoDataError`, or a model that does not converge), so one part of a
    section does not take the rest of it down."""
    try:
        return compute()
    except (NoDataError, ConvergenceError) as exc:
        ctx.notes.append(f"The {part} is left out: {exc}")
        return None


def nonzero_matrix(matrix: pd.DataFrame | None) -> pd.DataFrame:
    """``matrix`` without rows and columns that are all zero (an empty frame for ``None``)."""
    if matrix is None or matrix.empty:
        return pd.DataFrame()
    values = matrix.to_numpy(dtype=float)
    return matrix.loc[values.sum(axis=1) > 0, values.sum(axis=0) > 0]


def purchasers(profiles: pd.DataFrame) -> pd.DataFrame:
    """Profiles of customers with at least one purchase (prospects removed)."""
    return profiles[profiles["status"] != "prospect"] if "status" in profiles.columns else profiles


def equity_now(ctx: ReportContext) -> tuple[float, float, float, str]:
    """Customer equity at the report date with its interval and where the interval comes from.

    Uses the last point of :func:`patron.relationship.segments.equity_over_time` when it falls on the report
    date (the equity interval of the fitted model); otherwise the sum of per-customer CLVs with
    the sums of their bounds, which is wider than the equity interval.
    """
    history = ctx.cache.get("equity_over_time")
    if isinstance(history, pd.DataFrame) and not history.empty:
        last = history.sort_values("as_of").iloc[-1]
        bounds = [float(last.get(c, np.nan)) for c in ("equity", "equity_lower", "equity_upper")]
        if pd.Timestamp(last["as_of"]).date() == ctx.as_of and np.all(np.isfinite(bounds)):
            return bounds[0], bounds[1], bounds[2], "95% interval"
    return (*profile_equity(ctx), "sum of per-customer bounds")


def profile_equity(ctx: ReportContext) -> tuple[float, float, float]:
    """The sums of ``clv, clv_lower, clv_upper`` over the report's profiles (currency), in SQL."""
    def compute() -> tuple[float, float, float]:
        with ctx.profile_rows() as con:
            row = con.execute("SELECT coalesce(sum(clv), 0), coalesce(sum(clv_lower), 0), coalesce(sum(clv_upper), 0) "
                              "FROM customer_profiles").fetchall()[0]
        return float(row[0]), float(row[1]), float(row[2])

    return ctx.memo("profile_equity", compute)


def profile_facts(ctx: ReportContext) -> dict[str, Any]:
    """What the headline and the status section state of the report's profiles, aggregated in
    SQL (:meth:`~patron.report.registry.ReportContext.profile_rows`): ``customers`` (all rows),
    ``purchasers`` (status not ``prospect``), ``active_share`` (status new or active among purchasers, NaN without any), ``statuses``
    (customers per status) and ``spend_bases`` (:func:`patron.value.settings.spend_counts`)."""
    from patron.data.dialect import DUCKDB
    from patron.value.settings import SPEND_BASES

    def compute() -> dict[str, Any]:
        buyer = f"status IS DISTINCT FROM {DUCKDB.literal('prospect')}"
        active = ", ".join(DUCKDB.literal(s) for s in ACTIVE_STATUSES)
        with ctx.profile_rows() as con:
            n, buyers, share = con.execute(f"""SELECT count(*), count(*) FILTER (WHERE {buyer}),
                avg(CASE WHEN status IN ({active}) THEN 1.0 ELSE 0.0 END) FILTER (WHERE {buyer})
                FROM customer_profiles""").fetchall()[0]
            statuses = con.execute("SELECT status, count(*) FROM customer_profiles GROUP BY 1").fetchall()
            columns = {d[0] for d in con.execute("SELECT * FROM customer_profiles LIMIT 0").description}
            bases = (con.execute("SELECT spend_basis, count(*) FROM customer_profiles WHERE spend_basis IS NOT NULL GROUP BY 1").fetchall()
                     if "spend_basis" in columns else [])
        spend = dict.fromkeys(SPEND_BASES, 0) | {str(b): int(k) for b, k in bases if b in SPEND_BASES}
        return {"customers": int(n), "purchasers": int(buyers), "active_share": float("nan") if share is None else float(share),
                "statuses": {s: int(k) for s, k in statuses}, "spend_bases": spend}

    return ctx.memo("profile_facts", compute)


def purchaser_clv(ctx: ReportContext) -> np.ndarray:
    """CLV of every customer with a purchase (status not ``prospect``), in currency, from SQL."""
    from patron.data.dialect import DUCKDB

    with ctx.profile_rows() as con:
        column = con.sql(f"SELECT clv FROM customer_profiles WHERE status IS DISTINCT FROM {DUCKDB.literal('prospect')}"
                         ).to_arrow_table().column(0)
    return column.to_numpy().astype(float, copy=False)


def _equity_movement(db: str, ctx: ReportContext) -> Any:
    """Customer equity at each month end of the window with what moved it
    (:func:`patron.relationship.segments.movement.equity_movement`, models refitted each month),
    computed once per report; ``None`` when that module is not installed."""
    fn = _api(ctx, "equity over time", "patron.relationship.segments.movement:equity_movement")
    if fn is None:
        return None
    start = months_before(ctx.as_of, EQUITY_HISTORY_MONTHS)
    return ctx.memo("equity_movement", lambda: fn(db, start=start, end=ctx.as_of, freq="M", settings=ctx.value(),
                                                  lists=ctx.order_lists()))


def _equity_history(db: str, ctx: ReportContext) -> pd.DataFrame | None:
    if "equity_over_time" not in ctx.cache:
        movement = _equity_movement(db, ctx)
        if movement is None:
            return None
        ctx.cache["equity_over_time"] = movement.history
    return ctx.cache["equity_over_time"]


def _segment_table(db: str, ctx: ReportContext) -> pd.DataFrame | None:
    fn = _api(ctx, "segments", "patron.relationship.segments:segment_table")
    if fn is None:
        return None
    ctx.store_profiles()  # segment_table reads the stored customer_profiles table
    return ctx.memo("segment_table", lambda: fn(db, config=ctx.config, as_of=ctx.as_of, settings=ctx.value()))


@register_section("headline", order=10, title="Headline numbers")
def headline_section(db: str, ctx: ReportContext) -> Section | None:
    """Customers, prospects, customer equity with its interval, active share, mean CLV."""
    if _api(ctx, "headline", "patron.relationship.profiles:build_profiles") is None:
        return None
    facts = profile_facts(ctx)  # the profiles first, built while nothing else is held (memory on a large base)
    try:
        _equity_history(db, ctx)  # for the interval of equity; the equity section reports a failure
    except (NoDataError, ConvergenceError):
        pass
    n, everyone = facts["purchasers"], facts["customers"]
    equity, lower, upper, how = equity_now(ctx)
    value = ctx.value()
    cur = ctx.currency()
    horizon = f"{value.horizon:g} {PERIOD_NAMES[value.period]}"
    metrics = [
        Metric("customers", f"{n:,}", f"{everyone - n:,} prospects" if everyone > n else "with at least one purchase",
               "People with at least one purchase up to the report date (prospects, who have none, counted apart)."),
        Metric("customer equity", money(equity, cur), f"{how} {money(lower, cur)} to {money(upper, cur)}",
               f"Sum of every customer's lifetime value over the next {horizon}, discounted to the report date."),
        Metric("active share", f"{facts['active_share']:.1%}" if n else "n/a",
               "status new or active",
               "Share of customers (with a purchase) whose relationship status is new or active."),
        Metric("mean CLV", money(equity / n, cur) if n else "n/a", f"per customer, next {horizon}",
               "Customer equity divided by the number of customers with a purchase."),
    ]
    notes = [n for n in (spend_note(facts["spend_bases"], currency=value.label(db_currencies(db))),) if n]
    return Section("headline", "Headline numbers", intro=(
        f"As of {ctx.as_of.isoformat()}. Customer equity is the sum of customer lifetime values "
        f"({MODEL_NAMES.get(value.model, value.model)} and Gamma-Gamma, discounted) over all customers. "
        f"{ctx.value_line()}."), metrics=metrics, notes=notes)


@register_section("equity", order=20, title="Customer equity")
def equity_section(db: str, ctx: ReportContext) -> Section | None:
    """Customer equity at month ends (with interval), by segment, by value tier (in tier order) and
    by category."""
    figs: list = []
    notes: list[str] = []
    tables: list[tuple[str, pd.DataFrame]] = []
    cur = ctx.currency()
    history = _attempt(ctx, "customer equity over time", lambda: _equity_history(db, ctx))
    if history is not None and history["equity"].notna().any():
        figs.append(F.equity_over_time_figure(history, currency=cur))
        notes.extend(F.equity_gaps(history))
        movement = ctx.cache.get("equity_movement")
        if movement is not None and movement.steps["change"].notna().any():
            figs.append(F.equity_waterfall(movement.steps, currency=cur))
            tables.append(("What moved customer equity each month (models refitted at every month end)",
                           F.equity_movement_table(movement.steps, currency=cur)))
            notes.append(F.MOVEMENT_NOTE)
        if movement is not None:
            notes.extend(movement.notes)
    table = _attempt(ctx, "equity by segment", lambda: _segment_table(db, ctx))
    if table is not None and (table["customers"] > 0).any():
        figs.append(F.equity_by_segment_figure(table[table["customers"] > 0], top=TOP_SEGMENTS, currency=cur))
    by = _api(ctx, "equity by tier and category", "patron.relationship.segments:equity_by")
    if by is not None:
        ctx.store_profiles()
        for column, title in (("value_tier", "Customer equity by value tier"), ("top_category", "Customer equity by top category")):
            groups = _attempt(ctx, title.lower(), lambda column=column: by(db, column, config=ctx.config, as_of=ctx.as_of,
                                                                            settings=ctx.value()))
            groups = None if groups is None else groups.dropna(subset=[column])
            if groups is not None and not groups.empty:
                order = category_order(column, groups[column], config=ctx.config) if column == "value_tier" else None
                figs.append(F.bar_figure(groups, label=column, value="equity", title=title, top=TOP_SEGMENTS,
                                         value_title="total CLV", order=order, currency=cur))
    if not figs:
        return None
    return Section("equity", "Customer equity", intro=(
        "Customer equity recomputed as of each month end (models refitted on the purchases up to that day) with "
        "its interval, then split by segment (segments may overlap), by value tier (most valuable tier first) and "
        f"by the category where each customer spends most. {ctx.value_line()}."), figures=figs, tables=tables, notes=notes)


@register_section("status", order=30, title="Relationship status")
def status_section(db: str, ctx: ReportContext) -> Section | None:
    """Status distribution today and migration over the last quarter."""
    if _api(ctx, "status", "patron.relationship.profiles:build_profiles") is None:
        return None
    statuses = profile_facts(ctx)["statuses"]
    counts = pd.DataFrame({"status": list(statuses), "customers": np.array(list(statuses.values()), dtype=np.int64)})
    figs = [F.status_distribution_figure(counts)]
    migration = _api(ctx, "status migration", "patron.relationship.status_history:migration_from_lists")
    if migration is not None:
        start = months_before(ctx.as_of, MIGRATION_MONTHS)

        def compute() -> pd.DataFrame:  # both dates' statuses from the report's one read of the orders
            return migration(db, from_date=start, to_date=ctx.as_of, config=ctx.config, lists=ctx.order_lists())

        matrix = nonzero_matrix(_attempt(ctx, "status migration", lambda: ctx.memo("migration", compute)))
        if not matrix.empty:
            figs.append(F.migration_heatmap(matrix, from_label=start.isoformat(), to_label=ctx.as_of.isoformat()))
    return Section("status", "Relationship status", intro=(
        f"Where each customer stands as of {ctx.as_of.isoformat()}, and how statuses moved over the last "
        f"{MIGRATION_MONTHS} months (rows: status then; columns: status now)."), figures=figs)


def status_assessment(db: str, ctx: ReportContext, day: date) -> tuple[pd.DataFrame, Any]:
    """Every customer's status as of ``day`` (without reasons) and the BG/NBD model fitted on the
    purchases up to then (:func:`patron.relationship.status.assess` with the report's rules),
    computed once per report and day: the status migration and the status backtest share them."""
    from patron.relationship.status import assess

    def compute() -> tuple[pd.DataFrame, Any]:
        statuses, fitted = assess(db, as_of=day, config=ctx.config, reasons=False, summary_at=ctx.summary_at)
        return statuses[["customer_id", "status", "frequency", "recency", "T", "as_of"]], fitted  # what they read

    return ctx.memo(f"status_assessment:{day.isoformat()}", compute)


@register_section("cohorts", order=40, title="Acquisition cohorts")
def cohorts_section(db: str, ctx: ReportContext) -> Section | None:
    """Retention heatmap and cumulative revenue per customer by first-purchase month."""
    fn = _api(ctx, "cohorts", "patron.relationship.cohorts:cohorts")
    if fn is None:
        return None
    if "order_lists" in ctx.cache:  # read already for the sections before: counted from them, no query
        from patron.relationship.cohorts import cohorts_from_lists

        table = ctx.memo("cohorts", lambda: cohorts_from_lists(ctx.order_lists(), as_of=ctx.as_of, freq="M"))
    else:
        table = ctx.memo("cohorts", lambda: fn(db, freq="M", as_of=ctx.as_of))
    if table is None or table.empty:
        return None
    notes = []
    keep = sorted(table["cohort"].unique())[-MAX_COHORTS:]
    if len(keep) < table["cohort"].nunique():
        notes.append(f"Only the latest {MAX_COHORTS} cohorts are drawn.")
        table = table[table["cohort"].isin(keep)]
    figs = [F.cohort_retention_heatmap(table)]
    if "cumulative_revenue_per_customer" in table.columns:
        figs.append(F.cohort_revenue_figure(table, currency=ctx.currency()))
    return Section("cohorts", "Acquisition cohorts", intro=(
        "Customers grouped by the month of their first purchase: the share who bought again in each "
        "later month, and revenue per acquired customer accumulated over time."), figures=figs, notes=notes)


@register_section("clv", order=50, title="Customer lifetime value")
def clv_section(db: str, ctx: ReportContext) -> Section | None:
    """Histogram of CLV over customers with a purchase."""
    if _api(ctx, "CLV", "patron.relationship.profiles:build_profiles") is None:
        return None
    clv = purchaser_clv(ctx)
    if not clv.size:
        return None
    q = np.quantile(clv, [0.5, 0.9, 0.99])
    top_decile = np.sort(clv)[::-1][: max(1, len(clv) // 10)].sum() / clv.sum() if clv.sum() > 0 else float("nan")
    cur = ctx.currency()
    return Section("clv", "Customer lifetime value", figures=[F.clv_histogram(clv, currency=cur)], notes=[
        f"Median CLV {money(q[0], cur)}, 90th percentile {money(q[1], cur)}, 99th percentile {money(q[2], cur)}; "
        f"the top 10% of customers hold {top_decile:.0%} of customer equity.", f"{ctx.value_line()}."])


@register_section("loyalty", order=60, title="Loyalty behaviour")
def loyalty_section(db: str, ctx: ReportContext) -> Section | None:
    """Shares coming back, shortening/lengthening inter-purchase times, rising/falling spend,
    discount-dependent vs full price (:mod:`patron.relationship.loyalty`), and revenue by category."""
    if _api(ctx, "loyalty", "patron.relationship.loyalty:loyalty_report") is None:
        return None
    import patron.relationship.loyalty as mod

    if "profiles_stored" in ctx.cache:  # stored profiles of this report's rules (reused or built): they hold each customer's loyalty
        mix, summary, categories = ctx.memo("loyalty_report", lambda: profile_loyalty(db, ctx))
    else:
        mix, summary, categories = ctx.memo("loyalty_report", lambda: mod.loyalty_report(db, as_of=ctx.as_of, config=ctx.config))
    mix = mix[mix["customers"] > 0]
    if mix.empty:
        return None
    metrics = [Metric("return rate", f"{summary['return_rate']:.1%}", f"{summary['returned']:,} of {summary['customers']:,} came back",
                      "Share of customers with a purchase who made a second one.")]
    if summary.get("days_to_second_purchase_median") is not None:
        metrics.append(Metric("days to second purchase", f"{summary['days_to_second_purchase_median']:,.0f}", "median, over those who came back",
                              "Days from a customer's first purchase to their second, the median over those who came back."))
    figs = [F.loyalty_trends_figure(mix)]
    if not categories.empty:
        figs.append(F.bar_figure(categories, label="category", value="share", title="Share of revenue by category",
                                 top=TOP_SEGMENTS, value_title="share of revenue", percent=True))
    notes = []
    if "discount use" not in set(mix["measure"]):
        notes.append("No discounts are recorded in the transactions, so discount dependency is not shown.")
    return Section("loyalty", "Loyalty behaviour", intro=(
        "Loyalty judged by behaviour: whether customers came back, whether the time between their purchases "
        "is shortening or lengthening, whether they spend more per purchase, and whether they buy mainly on "
        "discount. Trends need enough purchases; customers with too few are left out of those bars."),
        metrics=metrics, figures=figs, notes=notes)


LOYALTY_MIX: tuple[tuple[str, str, str], ...] = (
    ("came back", "returned", "returned"),
    ("came back", "one purchase", "NOT returned"),
    ("inter-purchase times", "shortening", "interpurchase_trend = 'shortening'"),
    ("inter-purchase times", "steady", "interpurchase_trend = 'steady'"),
    ("inter-purchase times", "lengthening", "interpurchase_trend = 'lengthening'"),
    ("spend per purchase", "rising", "spend_trend = 'rising'"),
    ("spend per purchase", "steady", "spend_trend = 'steady'"),
    ("spend per purchase", "falling", "spend_trend = 'falling'"),
)
"""Rows of :func:`patron.relationship.loyalty.loyalty_mix` (measure, category) and the condition on
the profile's loyalty columns that counts them."""

DISCOUNT_MIX: tuple[tuple[str, str, str], ...] = (
    ("discount use", "discount dependent", "coalesce(discount_dependent, false)"),
    ("discount use", "occasional discount", "NOT coalesce(discount_dependent, false) AND discount_order_share > 0"),
    ("discount use", "full price", "discount_order_share = 0"),
)
"""The discount rows, among customers with a known discount (``discount_order_share`` not NULL):
``full_price_buyer`` of :func:`patron.relationship.loyalty.loyalty_sql` (known discounts, none above
zero) is ``discount_order_share = 0``."""


def profile_loyalty(db: str, ctx: ReportContext) -> tuple[pd.DataFrame, dict[str, Any], pd.DataFrame]:
    """What :func:`patron.relationship.loyalty.loyalty_report` returns, from the loyalty columns of
    the report's profiles (``returned, days_to_second_purchase, interpurchase_trend, spend_trend,
    discount_order_share, discount_dependent``: the same per-customer query, run when the profiles
    were built) instead of recomputing them from the transactions; the revenue by category is one
    aggregate over the orders (amount >= 0, on or before the report date, with a category). The
    same numbers; a customer with an order has a non-NULL ``returned``."""
    from patron.data.dialect import DUCKDB
    from patron.relationship.loyalty import (
        category_revenue,
        open_transactions,
        orders_cte,
        revenue_shares,
    )

    rows = [*LOYALTY_MIX, *DISCOUNT_MIX]
    counts = ", ".join(f"count(*) FILTER (WHERE {cond})" for _, _, cond in LOYALTY_MIX)
    known = "discount_order_share IS NOT NULL"
    counts += ", " + ", ".join(f"count(*) FILTER (WHERE {known} AND {cond})" for _, _, cond in DISCOUNT_MIX)
    with ctx.profile_rows() as con:
        n, with_known, median, *values = con.execute(
            f"SELECT count(*), count(*) FILTER (WHERE {known}), median(days_to_second_purchase), {counts} "
            "FROM customer_profiles WHERE returned IS NOT NULL").fetchall()[0]
    if not n:
        raise NoDataError(f"no orders on or before {ctx.as_of}")
    kept = [(m, c, int(v)) for (m, c, _), v in zip(rows, values, strict=True) if m != "discount use" or with_known]
    mix = pd.DataFrame(kept, columns=["measure", "category", "customers"])
    returned = int(values[0])
    summary = {"customers": int(n), "returned": returned, "return_rate": returned / n,
               "days_to_second_purchase_median": None if median is None else float(median)}
    with open_transactions(db) as con:
        categories = con.sql(f"""WITH {orders_cte(ctx.as_of, DUCKDB)}
            SELECT category, sum(amount) AS revenue, count(DISTINCT customer_id) AS customers
            FROM orders WHERE category IS NOT NULL GROUP BY category""").df()
    if categories.empty:
        return mix, summary, category_revenue(pd.DataFrame())
    return mix, summary, revenue_shares(categories)


@register_section("satisfaction", order=65, title="Satisfaction and behaviour")
def satisfaction_section(db: str, ctx: ReportContext) -> Section | None:
    """Return rate by satisfaction band (NPS, CSAT, ...) when feedback was ingested."""
    fn = _api(ctx, "satisfaction", "patron.relationship.satisfaction:satisfaction_vs_loyalty")
    if fn is None:
        return None
    table = fn(db, as_of=ctx.as_of)
    if table.empty:
        return None
    notes = [
        f"{kind}: Spearman correlation of score with purchases per year after the response "
        f"{rows['spearman_rho'].iloc[0]:+.2f} (p = {rows['spearman_p'].iloc[0]:.3g}, {int(rows['n_correlated'].iloc[0]):,} customers)."
        for kind, rows in table.groupby("kind", sort=True) if np.isfinite(rows["spearman_rho"].iloc[0])
    ]
    shown = table[["kind", "band", "customers", "return_rate", "mean_orders", "mean_spend", "mean_purchases_after_per_year"]].rename(
        columns={"mean_spend": money_title("mean spend", ctx.currency())})
    return Section("satisfaction", "Satisfaction and behaviour", intro=(
        "Do customers who say they are satisfied behave loyally? Each customer's first answer of each survey "
        "against whether they came back and how often they bought afterwards."),
        figures=[F.satisfaction_figure(table)], tables=[("Behaviour by satisfaction band", shown)], notes=notes)


@register_section("segments", order=70, title="Top segments")
def segments_section(db: str, ctx: ReportContext) -> Section | None:
    """The largest segments by customer equity, as a table."""
    table = _segment_table(db, ctx)
    if table is None or table.empty:
        return None
    cur = ctx.currency()
    top = segment_summary(table.sort_values("total_clv", ascending=False).head(TOP_SEGMENTS)).rename(columns={
        "total_clv": money_title("total CLV", cur), "mean_clv": money_title("mean CLV", cur)})
    return Section("segments", "Top segments", tables=[(f"Top {len(top)} segments by customer equity", top)],
                   notes=["Segments are the built-in ones and those of the rules file ([segments]); a customer can be "
                          "in several, so equity shares need not add up to 100%.", f"{ctx.value_line()}."])


def segment_summary(table: pd.DataFrame) -> pd.DataFrame:
    """A segment table (:func:`patron.relationship.segments.segment_table`) for reading: the count column of
    each status folded into one ``status mix`` text (``"active 335 · lapsed 74"``, statuses with
    no customer left out), other columns kept in order."""
    statuses = [c for c in F.STATUS_ORDER if c in table.columns]
    out = table.drop(columns=statuses).reset_index(drop=True)
    mix = pd.Series([""] * len(table), dtype=object)
    for status in statuses:
        n = table[status].fillna(0).to_numpy(dtype=np.int64)
        label = pd.Series([f"{status} {v:,}" if v > 0 else "" for v in n], dtype=object)
        mix = mix.where(label == "", mix.where(mix == "", mix + " · ") + label)
    out["status mix"] = mix.to_numpy()
    return out


@register_section("about", order=1000, title="About this report")
def about_section(db: str, ctx: ReportContext) -> Section | None:
    """Where the numbers come from, and any section left out."""
    notes = [f"Database {db}; report date {ctx.as_of.isoformat()}.", *ctx.notes]
    return Section("about", "About this report", notes=notes)
