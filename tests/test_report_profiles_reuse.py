"""The report reuses the profiles ``patron profiles`` stored when they are current, and rebuilds
them when the transactions, another input table (identity, customers), the rules, the value
settings or the as-of date differ from those they were built from.

Each change below is planted on a copy of one simulated base (300 customers, seed 1); the expected
outcome (current or not) is the definition of "current", not an output of the code under test, and
every "not current" case is checked against the unchanged base first (so a fingerprint that
ignored the changed input would fail it). The report's figures after a rebuild are compared with
those of profiles built from scratch on the changed base.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd
import pytest

import patron
from patron.people.identity.tables import IDENTITY_DDL
from patron.relationship import profiles as profiles_module
from patron.relationship.profile_fingerprint import FINGERPRINT_TABLE, profiles_current
from patron.relationship.profiles import build_profiles, settings_json
from patron.report import build_report
from patron.value.settings import ValueSettings, value_settings
from patron.value.simulate import simulate_transactions

REUSED = "are current"
"""Words of the about section's note when the stored profiles are reused."""

REBUILT = "were built for this report"
"""Words of the about section's note when the report built the profiles."""

RULES = {"status": {"lapsed_days": 200}}
"""A rules file other than the defaults (a status threshold)."""


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A simulated base with profiles built by ``patron profiles`` (default rules and settings)."""
    folder = tmp_path_factory.mktemp("reuse")
    db = folder / "base.duckdb"
    patron.ingest(simulate_transactions(300, seed=1).to_pandas(), kind="transactions", db=str(db))
    build_profiles(str(db), output=None)
    return db


@pytest.fixture
def db(base: Path, tmp_path: Path) -> str:
    copy = tmp_path / "copy.duckdb"
    shutil.copyfile(base, copy)
    return str(copy)


def _last_day(db: str) -> date:
    with duckdb.connect(db, read_only=True) as con:
        return con.execute("SELECT max(CAST(occurred_at AS DATE)) FROM transactions").fetchall()[0][0]


def _current(db: str, *, as_of: date | None = None, config: dict | None = None, settings: ValueSettings | None = None) -> bool:
    value = settings if settings is not None else value_settings(config or {})
    with duckdb.connect(db, read_only=True) as con:
        return profiles_current(con, as_of=as_of or _last_day(db), config=config or {}, settings_json=settings_json(value))


def _sql(statement: str) -> Callable[[str], None]:
    def change(db: str) -> None:
        with duckdb.connect(db) as con:
            con.execute(statement)
    return change


def _identity_link(db: str) -> None:
    with duckdb.connect(db) as con:
        for ddl in IDENTITY_DDL:
            con.execute(ddl)
        con.execute("INSERT INTO identity_links VALUES ('k', 'email', 'a@example.com', 'm1', TIMESTAMP '2025-01-01', '1')")


DATA_CHANGES = {
    "one amount changed": _sql("UPDATE transactions SET amount = amount + 1 WHERE rowid = (SELECT min(rowid) FROM transactions)"),
    "one row added": _sql("INSERT INTO transactions SELECT * REPLACE ('new-order' AS order_id) FROM transactions LIMIT 1"),
    "one row removed": _sql("DELETE FROM transactions WHERE rowid = (SELECT max(rowid) FROM transactions)"),
    "one date moved a day": _sql("UPDATE transactions SET occurred_at = occurred_at - INTERVAL 1 DAY "
                                 "WHERE rowid = (SELECT min(rowid) FROM transactions)"),
    "a customer's id changed": _sql("UPDATE transactions SET customer_id = customer_id || '-merged' "
                                    "WHERE rowid = (SELECT min(rowid) FROM transactions)"),
    "an identity link added": _identity_link,
    "a known customer added": _sql("INSERT INTO customers (customer_id, first_seen) VALUES ('prospect-1', TIMESTAMP '2025-01-01')"),
}


def test_profiles_built_by_patron_profiles_are_current_as_built(db: str) -> None:
    assert _current(db)


@pytest.mark.parametrize("change", sorted(DATA_CHANGES))
def test_a_changed_input_table_makes_the_profiles_stale(db: str, change: str) -> None:
    assert _current(db), "the unchanged copy must be current, else this case proves nothing"
    DATA_CHANGES[change](db)
    assert not _current(db)


def test_other_rules_other_settings_or_another_date_are_not_current(db: str) -> None:
    day = _last_day(db)
    assert _current(db, as_of=day)
    assert not _current(db, as_of=date.fromordinal(day.toordinal() - 1))
    assert not _current(db, config=RULES)
    assert not _current(db, settings=ValueSettings(margin=0.3))


def test_ingest_bookkeeping_alone_does_not_make_them_stale(db: str) -> None:
    with duckdb.connect(db) as con:
        con.execute("INSERT INTO ingests SELECT * REPLACE ('again' AS ingest_id) FROM ingests LIMIT 1")
    assert _current(db)


def _rebuilds(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    calls: list[object] = []
    original = profiles_module.build_profiles

    def counted(*args: object, **kwargs: object) -> object:
        calls.append(kwargs.get("as_of"))
        return original(*args, **kwargs)

    monkeypatch.setattr(profiles_module, "build_profiles", counted)
    return calls


def _customers(page: str) -> int:
    shown = re.search(r'<div class="label">customers</div><div class="value">([\d,]+)</div>', page)
    assert shown, "headline customers not found"
    return int(shown.group(1).replace(",", ""))


def test_the_report_reuses_current_profiles_and_says_so(db: str, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = _rebuilds(monkeypatch)
    page = build_report(db, sections=["headline", "clv", "segments", "about"])
    assert calls == []
    assert REUSED in page and REBUILT not in page


def test_the_report_rebuilds_stale_profiles_and_shows_the_new_data(db: str, monkeypatch: pytest.MonkeyPatch) -> None:
    before = _customers(build_report(db, sections=["headline"]))
    with duckdb.connect(db) as con:  # a new customer buys on the last day: the headline must count them
        con.execute("INSERT INTO transactions SELECT * REPLACE ('newcomer' AS customer_id, 'n1' AS order_id) "
                    "FROM transactions ORDER BY occurred_at DESC LIMIT 1")
    calls = _rebuilds(monkeypatch)
    page = build_report(db, sections=["headline", "about"])
    assert len(calls) == 1
    assert REBUILT in page and REUSED not in page and "other data, rules" in page
    assert _customers(page) == before + 1
    # the rebuild stored its fingerprint: the next report reuses them
    calls.clear()
    assert REUSED in build_report(db, sections=["headline", "about"]) and calls == []


def test_the_report_rebuilds_for_other_rules(db: str, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = _rebuilds(monkeypatch)
    page = build_report(db, config=RULES, sections=["headline", "about"])
    assert len(calls) == 1 and REBUILT in page


def test_profiles_without_a_fingerprint_are_rebuilt(db: str, monkeypatch: pytest.MonkeyPatch) -> None:
    with duckdb.connect(db) as con:  # as an older patron left them
        con.execute(f"DROP TABLE {FINGERPRINT_TABLE}")
    calls = _rebuilds(monkeypatch)
    page = build_report(db, sections=["headline", "about"])
    assert len(calls) == 1 and "no profiles stored with their fingerprint" in page


def test_the_order_lists_are_freed_after_the_last_section_that_reads_them(db: str) -> None:
    from patron.report import register_section, unregister_section

    seen: dict[str, bool] = {}

    def probe(name: str) -> Callable[[str, object], None]:
        def section(_db: str, ctx: object) -> None:
            seen[name] = "order_lists" in ctx.cache  # type: ignore[attr-defined]
        return section

    register_section("probe_between", probe("between"), order=30.5)  # after status, before the backtest and model check
    register_section("probe_after", probe("after"), order=41)  # after the cohorts (40), the last reader
    try:
        build_report(db, sections=["status", "probe_between", "status_backtest", "model_check", "cohorts", "probe_after"])
    finally:
        unregister_section("probe_between")
        unregister_section("probe_after")
    assert seen == {"between": True, "after": False}


@pytest.fixture(scope="module")
def loyal_db(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A simulated base with what loyalty counts besides purchases: discounts (known for some
    orders, NULL for others), categories (some NULL), refunds, zero-amount orders, several orders
    on one day, an order after the report date; profiles stored as of 2025-03-31."""
    import numpy as np

    frame = simulate_transactions(400, seed=3).to_pandas()
    rng = np.random.default_rng(7)
    n = len(frame)
    frame["discount"] = np.where(rng.random(n) < 0.3, np.nan, np.where(rng.random(n) < 0.4, rng.uniform(1, 5, n), 0.0))
    frame["category"] = np.where(rng.random(n) < 0.1, None, rng.choice(["books", "music", "games"], n))
    frame.loc[frame.index[::17], "amount"] = -frame["amount"].iloc[::17]  # refunds
    frame.loc[frame.index[::23], "amount"] = 0.0  # free items
    same_day = frame.iloc[::11].copy()
    same_day["order_id"] = same_day["order_id"].astype(str) + "-b"
    refund_only = frame.iloc[[0]].copy().assign(customer_id="refund-only", order_id="r1", amount=-9.0)
    frame = pd.concat([frame, same_day, refund_only], ignore_index=True)
    db = str(tmp_path_factory.mktemp("loyal") / "loyal.duckdb")
    patron.ingest(frame, kind="transactions", db=db)
    patron.ingest(pd.DataFrame({"customer_id": ["prospect-1", "prospect-2"], "first_seen": pd.to_datetime(["2025-01-01"] * 2)}),
                  kind="customers", db=db)  # known customers without a purchase: rows of the profiles, not of loyalty
    build_profiles(db, as_of="2025-03-31", output=None)
    return db


def test_loyalty_from_the_profiles_equals_the_loyalty_query(loyal_db: str) -> None:
    from patron.relationship.loyalty import loyalty_report
    from patron.report.registry import ReportContext
    from patron.report.sections import profile_loyalty

    ctx = ReportContext(db=loyal_db, as_of=date(2025, 3, 31))
    assert ctx.reuse_current_profiles()
    mix, summary, categories = profile_loyalty(loyal_db, ctx)
    want_mix, want_summary, want_categories = loyalty_report(loyal_db, as_of="2025-03-31")  # the per-customer query, run now
    assert "discount use" in set(want_mix["measure"]) and len(want_categories) == 3  # the planted discounts and categories count
    pd.testing.assert_frame_equal(mix, want_mix)
    assert summary == pytest.approx(want_summary)
    pd.testing.assert_frame_equal(categories, want_categories, check_exact=False, rtol=1e-12)


@pytest.mark.parametrize("unit", ["W", "D", "M"])
def test_tracking_counts_from_the_order_lists_equal_the_tracking_queries(loyal_db: str, unit: str) -> None:
    """The two queries of cumulative_tracking (independent implementation: SQL) against the lists
    the report already holds, on a base with refunds, free items, several orders a day and a
    customer with a refund only; the lists end on the last purchase day."""
    from patron.data.dialect import DUCKDB
    from patron.report.registry import ReportContext
    from patron.value.evaluation import tracking_counts_from_lists
    from patron.value.tracking_sql import first_purchase_sql, repeat_purchases_by_period_sql

    end = _last_day(loyal_db)
    start = date(2024, 1, 3)
    firsts, repeats = tracking_counts_from_lists(ReportContext(db=loyal_db, as_of=end).order_lists(), start=start, end=end, unit=unit)
    with duckdb.connect(loyal_db, read_only=True) as con:
        want_firsts = con.execute(first_purchase_sql(DUCKDB, start=start, unit=unit)).fetchdf()
        want_repeats = con.execute(repeat_purchases_by_period_sql(DUCKDB, start=start, end=end, unit=unit)).fetchdf()
    assert len(repeats) > 3 and repeats["repeat_purchases"].sum() > 100  # the planted base has repeat purchases
    pd.testing.assert_frame_equal(firsts, want_firsts, check_dtype=False)
    pd.testing.assert_frame_equal(repeats, want_repeats, check_dtype=False)


def test_the_model_check_tracking_is_the_same_from_the_lists(loyal_db: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The report's model check section draws the same tracking whether its counts come from the
    lists or from the queries: the same actual counts, and the same expected ones up to the fit's
    last digits (the model is refitted in each report, on rows that may come in another order)."""
    import patron.value.evaluation as evaluation

    drawn, original = [], evaluation.cumulative_tracking

    def recorded(*args: Any, **kwargs: Any) -> pd.DataFrame:
        table = original(*args, **kwargs)
        drawn.append((kwargs.get("counts") is not None, table))
        return table

    monkeypatch.setattr(evaluation, "cumulative_tracking", recorded)
    for use_lists in (True, False):
        if not use_lists:
            monkeypatch.setattr(evaluation, "tracking_counts_from_lists", lambda *a, **k: None)
        assert "model_check" in build_report(loyal_db, sections=["model_check"])
    assert [from_lists for from_lists, _ in drawn] == [True, False]
    (_, lists), (_, queried) = drawn
    assert len(lists) > 3 and lists["actual"].iloc[-1] > 100
    assert lists["period"].tolist() == queried["period"].tolist()
    assert lists["actual"].tolist() == queried["actual"].tolist()
    np.testing.assert_allclose(lists["expected"], queried["expected"], rtol=1e-6)


@pytest.mark.parametrize("freq", ["M", "W"])
def test_cohorts_from_the_order_lists_equal_the_cohort_query(loyal_db: str, freq: str) -> None:
    """Cohorts counted from the lists against the SQL of :func:`patron.relationship.cohorts.cohorts`
    (independent implementation), as of the last purchase day and as of an earlier day (the lists
    then end on that day, as the report's do)."""
    from patron.relationship.cohorts import cohorts, cohorts_from_lists
    from patron.report.registry import ReportContext

    for day in (_last_day(loyal_db), date(2025, 2, 14)):
        got = cohorts_from_lists(ReportContext(db=loyal_db, as_of=day).order_lists(), as_of=day, freq=freq)
        want = cohorts(loyal_db, freq=freq, as_of=day)
        assert len(want) > 10 and (want["active"] < want["customers"]).any()
        pd.testing.assert_frame_equal(got, want, check_exact=False, rtol=1e-12)


def test_the_cohorts_section_is_the_same_from_the_lists(loyal_db: str) -> None:
    """With the lists read for the sections before it, the cohorts section counts from them;
    without, it queries the transactions: the same table (revenue to the last bits) and figures."""
    from patron.report.registry import ReportContext
    from patron.report.sections import cohorts_section

    day = _last_day(loyal_db)
    with_lists, alone = ReportContext(db=loyal_db, as_of=day), ReportContext(db=loyal_db, as_of=day)
    with_lists.order_lists()
    sections = [cohorts_section(loyal_db, ctx) for ctx in (with_lists, alone)]
    assert "order_lists" not in alone.cache
    pd.testing.assert_frame_equal(with_lists.cache["cohorts"], alone.cache["cohorts"], check_exact=False, rtol=1e-12)
    assert [len(s.figures) for s in sections] == [2, 2]


def test_backtest_outcomes_from_the_order_lists_equal_the_outcome_query(loyal_db: str) -> None:
    """The status backtest's outcomes counted from the lists against :func:`outcomes` (SQL), for
    ids in another order, an id with no purchase in the window and an unknown id; and the whole
    backtest table either way."""
    from patron.relationship.backtest.outcomes import observed_window, outcomes, outcomes_from_lists
    from patron.relationship.backtest.status import status_backtest
    from patron.report.registry import ReportContext

    end = _last_day(loyal_db)
    lists = ReportContext(db=loyal_db, as_of=end).order_lists()
    window = observed_window(loyal_db, date(2025, 3, 31), "3M")
    ids = pd.Series([*reversed(lists.column("customer_id").to_pylist()), "nobody"])
    got, want = outcomes_from_lists(lists, window, ids), outcomes(loyal_db, window, ids)
    assert want["bought"].sum() > 20 and (~want["bought"]).sum() > 20
    pd.testing.assert_frame_equal(got, want, check_exact=False, rtol=1e-12, check_dtype=False)
    from patron.report.sections import status_assessment

    ctx = ReportContext(db=loyal_db, as_of=end)  # the report's statuses: buyers in the lists' order, then prospects
    statuses = status_assessment(loyal_db, ctx, window.as_of)[0]
    assert (statuses["status"] == "prospect").sum() == 2
    pd.testing.assert_frame_equal(outcomes_from_lists(ctx.order_lists(), window, statuses["customer_id"]),
                                  outcomes(loyal_db, window, statuses["customer_id"]), check_exact=False, rtol=1e-12, check_dtype=False)
    fast = status_backtest(loyal_db, as_of="2025-03-31", horizon="3M", lists=(lists, end))
    slow = status_backtest(loyal_db, as_of="2025-03-31", horizon="3M")
    pd.testing.assert_frame_equal(fast.table, slow.table, check_exact=False, rtol=1e-12)
