"""Engagement on hand-made interactions whose counts, active days, recency and slope are known.

Expected values are written by hand from the rows below, or (the slopes) computed independently
with ``numpy.polyfit`` on the dense weekly series; none comes from the code under test."""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta

import duckdb
import numpy as np
import pandas as pd
import pytest

import patron
from patron.relationship.engagement import (
    ENGAGED_NOT_BUYING,
    ENGAGEMENT_PROFILE_COLUMNS,
    EngagementRules,
    engagement,
)
from patron.relationship.profiles import build_profiles
from patron.relationship.segments import equity_by, evaluate, members
from patron.service.event_tables import EVENTS_DDL

AS_OF = date(2024, 3, 31)
"""A Sunday: the 12 blocks of the score are the 12 ISO weeks 2024-01-08 .. 2024-03-31."""


def _at(d: date, hour: int = 12) -> str:
    return datetime(d.year, d.month, d.day, hour).isoformat()


def hand_rows() -> list[dict]:
    rows = []
    # a: 3 web page views on 03-31, 1 app screen on 03-30, 1 e-mail open on 03-25 (one week, 3 active days)
    rows += [dict(customer_id="a", occurred_at=_at(date(2024, 3, 31), h), channel="web", kind="page_view", object="/home") for h in (9, 10, 11)]
    rows.append(dict(customer_id="a", occurred_at=_at(date(2024, 3, 30)), channel="app", kind="screen_view", object="Home"))
    rows.append(dict(customer_id="a", occurred_at=_at(date(2024, 3, 25)), channel="email", kind="email_open", object="spring"))
    # b: one day in every one of the 12 blocks (age 7k + 3 days), plus 5 device heartbeats that same day
    for k in range(12):
        d = AS_OF - timedelta(days=7 * k + 3)
        rows += [dict(customer_id="b", occurred_at=_at(d, h), channel="device", kind="heartbeat", object="dev-1") for h in range(5)]
    # c: every day of the 4 oldest blocks (ages 56 .. 83), nothing after
    for age in range(56, 84):
        rows.append(dict(customer_id="c", occurred_at=_at(AS_OF - timedelta(days=age)), channel="store", kind="store_visit", object="s1"))
    # d: one interaction long before the window
    rows.append(dict(customer_id="d", occurred_at=_at(date(2023, 6, 1)), channel="other", kind="call", object=None))
    # e: only after as_of
    rows.append(dict(customer_id="e", occurred_at=_at(date(2024, 4, 2)), channel="web", kind="page_view", object="/"))
    for r in rows:
        r.setdefault("value", None)
    return rows


def dense_series(days_active_ages: list[int], weeks: int = 12) -> np.ndarray:
    """Block scores (oldest first) from the ages (days before AS_OF) of the active days."""
    y = np.zeros(weeks)
    for age in set(days_active_ages):
        if age < 7 * weeks:
            y[weeks - 1 - age // 7] += 100.0 / 7.0
    return y


def slope(y: np.ndarray) -> float:
    return float(np.polyfit(np.arange(len(y)), y, 1)[0])


NOW = datetime(2024, 4, 10)


@pytest.fixture()
def hand_db(tmp_path) -> str:
    db = str(tmp_path / "e.duckdb")
    path = tmp_path / "interactions.csv"
    pd.DataFrame(hand_rows()).to_csv(path, index=False)
    result = patron.ingest(path, kind="interactions", db=db, now=NOW)
    assert result.accepted == len(hand_rows()) and result.rejected == 0
    return db


def test_customer_summary_counts_active_days_recency_and_slope(hand_db):
    got = engagement(hand_db, as_of=AS_OF).customers.set_index("customer_id")
    assert sorted(got.index) == ["a", "b", "c", "d"]  # e interacted only after as_of
    a, b, c, d = (got.loc[k] for k in "abcd")
    assert a.engagement_score == pytest.approx(100 * 3 / 84)
    assert b.engagement_score == pytest.approx(100 * 12 / 84)
    assert c.engagement_score == pytest.approx(100 * 28 / 84)
    assert d.engagement_score == 0
    assert a.engagement_trend == pytest.approx(slope(dense_series([0, 1, 6])))
    assert b.engagement_trend == pytest.approx(0.0, abs=1e-12)
    assert c.engagement_trend == pytest.approx(slope(dense_series(list(range(56, 84)))))
    assert d.engagement_trend == 0
    assert (a.engagement_trend_label, b.engagement_trend_label, c.engagement_trend_label, d.engagement_trend_label) == (
        "rising", "flat", "falling", "flat")
    assert (a.engagement_band, b.engagement_band, c.engagement_band, d.engagement_band) == ("low", "medium", "high", "none")
    assert [int(got.loc[k].engagement_recency_days) for k in "abcd"] == [0, 3, 56, (AS_OF - date(2023, 6, 1)).days]
    assert [int(a[f"engagement_active_days_{n}"]) for n in (7, 28, 90)] == [3, 3, 3]
    assert [int(b[f"engagement_active_days_{n}"]) for n in (7, 28, 90)] == [1, 4, 12]  # ages 3, 10, ..., 80
    assert [int(c[f"engagement_active_days_{n}"]) for n in (7, 28, 90)] == [0, 0, 28]
    assert int(a.engagement_interactions_90) == 5 and int(b.engagement_interactions_90) == 60
    assert int(a.engagement_channels_90) == 3 and int(b.engagement_channels_90) == 1


def test_weekly_table_by_channel_and_kind(hand_db):
    result = engagement(hand_db, as_of=AS_OF, kinds=True)
    weekly = result.weekly
    a = weekly[weekly.customer_id == "a"]
    assert len(a) == 1
    row = a.iloc[0]
    assert pd.Timestamp(row.week_start) == pd.Timestamp("2024-03-25")
    assert (row.interactions, row.interactions_web, row.interactions_app, row.interactions_email, row.interactions_device) == (5, 3, 1, 1, 0)
    assert (row.active_days, row.channels, row.recency_days) == (3, 3, 0)
    assert row.score == pytest.approx(300 / 7)
    b = weekly[weekly.customer_id == "b"]
    assert len(b) == 12 and set(b.active_days) == {1} and set(b.interactions) == {5}
    # b's day in each week is a Thursday (as_of - 3 - 7k): 3 days before the Sunday
    assert set(b.recency_days) == {3}
    c = weekly[weekly.customer_id == "c"]
    assert int(c.active_days.sum()) == 28 and int(c.interactions_store.sum()) == 28
    assert "e" not in set(weekly.customer_id)
    kinds = result.kinds
    ka = kinds[kinds.customer_id == "a"].set_index("kind")
    assert ka.loc["page_view", "interactions"] == 3 and ka.loc["page_view", "active_days"] == 1
    assert ka.loc["email_open", "channel"] == "email"


def test_rules_change_window_threshold_and_bands(hand_db):
    cfg = {"engagement": {"weeks": 4, "trend_threshold": 100.0, "high_score": 50, "medium_score": 5}}
    got = engagement(hand_db, as_of=AS_OF, config=cfg).customers.set_index("customer_id")
    assert got.loc["a", "engagement_score"] == pytest.approx(100 * 3 / 28)
    assert got.loc["a", "engagement_trend"] == pytest.approx(slope(dense_series([0, 1, 6], weeks=4)))
    assert set(got.engagement_trend_label) == {"flat"}
    assert got.loc["a", "engagement_band"] == "medium" and got.loc["c", "engagement_band"] == "none"
    with pytest.raises(patron.InputError, match="medium_score"):
        engagement(hand_db, as_of=AS_OF, config={"engagement": {"high_score": 5, "medium_score": 10}})
    assert EngagementRules().weeks == 12


def test_a_bad_channel_is_rejected_by_ingest(tmp_path):
    db = str(tmp_path / "bad.duckdb")
    path = tmp_path / "i.csv"
    path.write_text("customer_id,occurred_at,channel,kind\nx,2024-01-01,WEB,page_view\ny,2024-01-01,fax,page_view\n")
    result = patron.ingest(path, kind="interactions", db=db, now=NOW)
    assert (result.accepted, result.rejected) == (1, 1)
    with duckdb.connect(db, read_only=True) as con:
        assert con.execute("SELECT channel FROM interactions").fetchall() == [("web",)]


def _event(mid: str, typ: str, who: str, day: date, event: str | None = None, **payload) -> tuple:
    body = {"type": typ, "messageId": mid, "userId": who, **payload}
    if event:
        body["event" if typ == "track" else "name"] = event
    ts = datetime(day.year, day.month, day.day, 8)
    return (mid, typ, event, who, who, None, None, None, ts, ts, ts, json.dumps(body))


def test_service_events_become_interactions(tmp_path):
    db = str(tmp_path / "ev.duckdb")
    rows = [
        _event("m1", "page", "p", AS_OF, "Home", properties={"path": "/home"}),
        _event("m2", "screen", "p", AS_OF - timedelta(days=1), "Cart"),
        _event("m3", "track", "p", AS_OF - timedelta(days=8), "Product Viewed", properties={"product_id": "sku-1"}),
        _event("m4", "track", "p", AS_OF - timedelta(days=8), "Product Viewed", properties={"product_id": "sku-2"}, context={"app": {"name": "x"}}),
        _event("m5", "track", "p", AS_OF - timedelta(days=9), "Email Opened", properties={"campaign_id": "cmp"}),
        _event("m6", "track", "p", AS_OF - timedelta(days=9), "Email Link Clicked", properties={"campaign_name": "cmp2"}),
        _event("m7", "track", "p", AS_OF - timedelta(days=20), "Device Heartbeat", context={"device": {"id": "dev9"}}),
        _event("m8", "track", "p", AS_OF, "Order Completed", properties={"order_id": "o1"}),  # a purchase, not an interaction
        _event("m9", "identify", "p", AS_OF),
    ]
    with duckdb.connect(db) as con:
        con.execute(EVENTS_DDL)
        con.executemany("INSERT INTO events VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
        from patron.relationship.engagement import interactions_sql

        got = con.sql(f"SELECT interaction_id, channel, kind, object FROM ({interactions_sql(con)}) ORDER BY 1").fetchall()
    assert got == [
        ("m1", "web", "page_view", "/home"), ("m2", "app", "screen_view", "Cart"),
        ("m3", "web", "product_view", "sku-1"), ("m4", "app", "product_view", "sku-2"),
        ("m5", "email", "email_open", "cmp"), ("m6", "email", "email_click", "cmp2"),
        ("m7", "device", "heartbeat", "dev9"),
    ]
    cust = engagement(db, as_of=AS_OF).customers.set_index("customer_id")
    assert cust.loc["p", "engagement_active_days_28"] == 5  # ages 0, 1, 8, 9, 20


@pytest.fixture()
def profiled_db(hand_db) -> str:
    tx = pd.DataFrame({
        "customer_id": ["a", "a", "b", "c", "x", "x"],
        "occurred_at": ["2023-10-01", "2024-03-20", "2024-03-01", "2023-12-01", "2023-11-01", "2024-01-15"],
        "amount": [10.0, 20.0, 30.0, 40.0, 50.0, 60.0],
    })
    patron.ingest(tx, kind="transactions", db=hand_db, now=NOW)
    return hand_db


def test_profiles_carry_engagement_columns_and_the_builtin_segment(profiled_db):
    prof = build_profiles(profiled_db, as_of=AS_OF).set_index("customer_id")
    assert list(ENGAGEMENT_PROFILE_COLUMNS) == [c for c in prof.columns if c.startswith("engagement_")]
    # d interacted but never bought: profiled as a prospect; x bought and never interacted: NULL engagement
    assert prof.loc["d", "status"] == "prospect" and prof.loc["d", "engagement_band"] == "none"
    assert pd.isna(prof.loc["x", "engagement_score"]) and pd.isna(prof.loc["x", "engagement_trend_label"])
    assert prof.loc["c", "engagement_trend_label"] == "falling"
    assert int(prof.loc["c", "engagement_days_since_purchase"]) == (AS_OF - date(2023, 12, 1)).days
    assert int(prof.loc["a", "engagement_days_since_purchase"]) == 11
    assert pd.isna(prof.loc["d", "engagement_days_since_purchase"])
    # engaged but not buying: band high (only c) and no purchase in 90 days (c: 121 days)
    assert list(members(profiled_db, "engaged_not_buying")) == ["c"]
    assert list(evaluate(profiled_db, ENGAGED_NOT_BUYING, as_of=AS_OF)["customer_id"]) == ["c"]
    rule = "engagement_trend < 0 and engagement_recency_days > 30"
    assert list(evaluate(profiled_db, rule, as_of=AS_OF)["customer_id"]) == ["c"]
    eq = equity_by(profiled_db, "engagement_trend_label", as_of=AS_OF).set_index("engagement_trend_label")
    assert eq.loc["falling", "customers"] == 1 and eq.loc["rising", "customers"] == 1 and eq.loc["flat", "customers"] == 2
    assert int(eq["customers"].sum()) == 5  # a, b, c, d and x (NULL group)


def test_misspelt_engagement_column_gets_did_you_mean(profiled_db):
    build_profiles(profiled_db, as_of=AS_OF)
    with pytest.raises(patron.InputError, match="did you mean engagement_trend"):
        evaluate(profiled_db, "engagement_trnd < 0", as_of=AS_OF)


def test_no_interactions_is_one_line_error(tmp_path):
    db = str(tmp_path / "empty.duckdb")
    patron.ingest(pd.DataFrame({"customer_id": ["a"], "occurred_at": ["2024-01-01"], "amount": [1.0]}), kind="transactions", db=db, now=NOW)
    with pytest.raises(patron.PatronError, match="no interactions"):
        engagement(db)


def test_cli_writes_weekly_customers_and_kinds(hand_db, tmp_path, capsys):
    from patron.cli import main

    weekly, customers, kinds = tmp_path / "w.parquet", tmp_path / "c.csv", tmp_path / "k.arrow"
    code = main(["engagement", "--db", hand_db, "--as-of", str(AS_OF), "--out", str(weekly), "--customers-out", str(customers),
                 "--kinds-out", str(kinds), "--json"])
    assert code == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["customers"] == 4 and payload["trend"] == {"rising": 1, "flat": 2, "falling": 1}
    assert payload["bands"] == {"high": 1, "medium": 1, "low": 1, "none": 1}
    w = pd.read_parquet(weekly)
    assert len(w) == payload["weekly_rows"] == 1 + 12 + 4 + 1  # a: 1 week, b: 12, c: 4 (28 days from a Monday), d: 1
    c = pd.read_csv(customers, dtype={"customer_id": str})
    assert list(c["customer_id"]) == ["a", "b", "c", "d"]
    import pyarrow.feather as feather

    k = feather.read_table(kinds).to_pandas()
    assert int(k["interactions"].sum()) == len(hand_rows()) - 1  # all but e's, after as_of


def test_cli_csv_output_guards_formulas(tmp_path, capsys):
    from patron.cli import main

    db = str(tmp_path / "f.duckdb")
    path = tmp_path / "i.csv"
    path.write_text("customer_id,occurred_at,channel,kind\n=HYPERLINK(1),2024-01-01,web,page_view\n")
    patron.ingest(path, kind="interactions", db=db, now=NOW)
    out = tmp_path / "c.csv"
    assert main(["engagement", "--db", db, "--customers-out", str(out)]) == 0
    assert out.read_text().splitlines()[1].startswith("'=HYPERLINK(1)")


def test_cli_lift_without_enough_purchases_is_one_line(hand_db, capsys):
    from patron.cli import main

    code = main(["engagement", "--db", hand_db, "--lift", "--calibration-end", "2024-06-01"])
    err = capsys.readouterr().err
    assert code != 0 and err.startswith("patron: error:") and len(err.strip().splitlines()) == 1


def test_jsonl_and_parquet_files_ingest_as_interactions(tmp_path):
    rows = hand_rows()[:5]  # customer a's five interactions
    jsonl = tmp_path / "a.jsonl"
    jsonl.write_text("\n".join(json.dumps({k: v for k, v in r.items() if v is not None}) for r in rows) + "\n")
    parquet = tmp_path / "a.parquet"
    frame = pd.DataFrame(rows)
    frame["occurred_at"] = pd.to_datetime(frame["occurred_at"])
    frame.to_parquet(parquet)
    for path in (jsonl, parquet):
        db = str(tmp_path / f"{path.suffix[1:]}.duckdb")
        assert patron.ingest(path, kind="interactions", db=db, now=NOW).accepted == 5
        assert patron.ingest(path, kind="interactions", db=db, now=NOW).already_present == 5  # derived keys: nothing twice
        got = engagement(db, as_of=AS_OF).customers
        assert got["engagement_active_days_7"].tolist() == [3] and got["engagement_interactions_90"].tolist() == [5]


def test_an_event_with_a_broken_payload_is_left_out(tmp_path):
    db = str(tmp_path / "broken.duckdb")
    good = _event("g1", "page", "p", AS_OF, "Home")
    broken = ("b1", "page", "Home", "p", "p", None, None, None, good[8], good[9], good[10], "{not json")
    with duckdb.connect(db) as con:
        con.execute(EVENTS_DDL)
        con.executemany("INSERT INTO events VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", [good, broken])
    got = engagement(db, as_of=AS_OF).customers
    assert got["engagement_interactions_90"].tolist() == [1]


def test_anonymous_visitors_are_not_profiled_for_page_views_alone(tmp_path):
    db = str(tmp_path / "anon.duckdb")
    tx = pd.DataFrame({"customer_id": ["buyer", "buyer", "buyer2", "buyer2", "buyer3"],
                       "occurred_at": ["2023-10-01", "2024-03-01", "2023-11-01", "2024-01-15", "2024-02-01"],
                       "amount": [10.0, 20.0, 30.0, 40.0, 50.0]})
    patron.ingest(tx, kind="transactions", db=db, now=NOW)
    known = _event("k1", "page", "member", AS_OF, "Home")
    anonymous = ("a1", "page", "Home", "anon-1", None, "a-1", None, None, known[8], known[9], known[10], json.dumps({"type": "page"}))
    with duckdb.connect(db) as con:
        con.execute(EVENTS_DDL)
        con.executemany("INSERT INTO events VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", [known, anonymous])
    prof = build_profiles(db, as_of=AS_OF).set_index("customer_id")
    assert sorted(prof.index) == ["buyer", "buyer2", "buyer3", "member"]
    assert prof.loc["member", "status"] == "prospect" and prof.loc["member", "engagement_active_days_7"] == 1
    assert sorted(engagement(db, as_of=AS_OF).customers["customer_id"]) == ["anon-1", "member"]  # both engaged


def test_report_section_without_enough_purchases_for_the_lift_keeps_the_series(hand_db):
    from patron.report import build_report

    # every purchase after the lift's calibration end (26 weeks before as_of): nothing to fit on
    tx = pd.DataFrame({"customer_id": ["a", "a", "b", "b"], "occurred_at": ["2024-01-02", "2024-03-20", "2024-01-05", "2024-03-01"],
                       "amount": [10.0, 20.0, 30.0, 40.0]})
    patron.ingest(tx, kind="transactions", db=hand_db, now=NOW)
    page = build_report(hand_db, as_of=AS_OF, sections=["engagement"])
    section = page[page.index('<section id="engagement">'):]
    assert "Customers active per week, by channel" in section
    assert "Holdout lift by engagement band not computed" in section
