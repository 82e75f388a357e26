"""Dose-response and over-contact (patron.contact_effect.dose).

Expected values come from hand-made customer-months (worked out in the comments) and from
simulations where the chance of buying stops rising after a known number of contacts per month
and unsubscribes grow beyond it (patron.contact_effect.simulate.simulate_dose_response)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from patron.cli import main
from patron.contact_effect import dose_response, over_contacted, simulate_dose_response
from patron.store import connect

EXACT = 1e-12
"""Tolerance of exact arithmetic."""

ORDER = {"0": 0, "1": 1, "2": 2, "3-4": 3, "5-8": 4, "9+": 5}
"""Position of each contact bin."""


def load(db: str, contacts: pd.DataFrame, transactions: pd.DataFrame) -> None:
    """Write contacts and transactions straight into the store."""
    with connect(db) as con:
        con.register("c_in", contacts)
        con.register("t_in", transactions)
        con.execute("INSERT INTO contacts BY NAME SELECT * FROM c_in")
        con.execute("INSERT INTO transactions BY NAME SELECT * FROM t_in")


@pytest.fixture
def hand_db(db: str) -> str:
    """x: buys Jan; 2 contacts and a purchase in Feb; 5 contacts and an unsubscribe in Mar; a contact
    in Apr (after unsubscribing: not counted). y: a holdout record and 1 contact in Mar (buys), buys
    again in Apr with no contact."""
    sends = [("x", "2024-02-03"), ("x", "2024-02-10")] + [("x", f"2024-03-0{d}") for d in range(1, 6)] + [("x", "2024-04-02"), ("y", "2024-03-03")]
    contacts = pd.DataFrame(
        [(c, t, "sent", False) for c, t in sends] + [("y", "2024-03-02", "sent", True), ("x", "2024-03-06", "unsubscribed", None)],
        columns=["customer_id", "occurred_at", "kind", "in_holdout"],
    )
    contacts["occurred_at"] = pd.to_datetime(contacts["occurred_at"])
    contacts["contact_id"] = [f"k{i}" for i in range(len(contacts))]
    contacts["channel"], contacts["campaign_id"] = "email", "news"
    orders = pd.DataFrame({
        "customer_id": ["x", "x", "y", "y"], "order_id": ["o1", "o2", "o3", "o4"], "amount": [10.0, 20.0, 30.0, 40.0],
        "occurred_at": pd.to_datetime(["2024-01-10", "2024-02-20", "2024-03-04", "2024-04-05"]),
    })
    load(db, contacts, orders)
    return db


def test_hand_made_customer_months(hand_db: str) -> None:
    d = dose_response(hand_db, config={"contact_effect": {"dose_min_customer_months": 1}})
    a = d[d["segment"] == "all"].set_index("dose_bin")
    # customer-months: x Jan (0 contacts, bought), x Feb (2, bought), x Mar (5, unsubscribed),
    # y Mar (1, bought; the holdout record is no contact), y Apr (0, bought); x Apr is after the unsubscribe
    assert a["customer_months"].to_dict() == {"0": 2, "1": 1, "2": 1, "5-8": 1}
    assert a["buying_months"].to_dict() == {"0": 2, "1": 1, "2": 1, "5-8": 0}
    assert a["unsubscribes"].to_dict() == {"0": 0, "1": 0, "2": 0, "5-8": 1}
    assert a.loc["5-8", "contacts_mean"] == pytest.approx(5.0, abs=EXACT)
    assert a.loc["5-8", "gain"] == pytest.approx(-1.0, abs=EXACT)  # 0/1 - 1/1
    # segments by purchases before the month: x Jan, y Mar: 0; x Feb, y Apr: 1; x Mar: 2
    seg = d[d["segment"] != "all"].groupby("segment")["customer_months"].sum().to_dict()
    assert seg == {"0 prior purchases": 2, "1 prior purchase": 2, "2-4 prior purchases": 1}


def test_segments_from_customer_profiles(hand_db: str) -> None:
    with connect(hand_db) as con:
        con.execute("CREATE TABLE customer_profiles AS SELECT * FROM (VALUES ('x', 'gold'), ('y', 'silver')) v(customer_id, value_tier)")
    d = dose_response(hand_db)
    seg = d.groupby("segment")["customer_months"].sum().to_dict()
    assert seg == {"all": 5, "gold": 3, "silver": 2}


Sim = tuple[str, pd.DataFrame, pd.DataFrame]


@pytest.fixture(scope="module")
def saturating(tmp_path_factory: pytest.TempPathFactory) -> dict[int, Sim]:
    """Databases (and contacts, orders) of simulated customers whose response saturates after 1,
    3 or 6 contacts a month, over the 12 months of 2024. Unsubscribes rise with every contact
    beyond the saturation point, except in the 6-contact simulation, where they do not depend on
    contacts at all."""
    out = {}
    for k in (1, 3, 6):
        path = str(tmp_path_factory.mktemp(f"dose{k}") / "d.duckdb")
        contacts, orders, _ = simulate_dose_response(4000, saturation=k, seed=k, unsubscribe_per_extra=0.0 if k == 6 else 0.004)
        load(path, contacts, orders)
        out[k] = (path, contacts, orders)
    return out


def test_saturation_point_is_recovered(saturating: dict[int, Sim]) -> None:
    found = {}
    for k, (path, _, _) in saturating.items():
        a = dose_response(path).query("segment == 'all'").set_index("dose_bin")
        found[k] = a["saturation_bin"].iloc[0]
        if k == 3:
            # truth: purchases flat from 3 contacts on; unsubscribes rise from the 4th contact, so
            # in bin 3-4 (half its months) or, if that rise is too small to see, from bin 5-8
            unsub = a["unsubscribe_bin"].iloc[0]
            assert unsub in ("3-4", "5-8")
            assert a["justified_bin"].iloc[0] == ("2" if unsub == "3-4" else "3-4")
            assert a["unsubscribe_rise"].to_dict() == {"0": False, "1": False, "2": False, "3-4": unsub == "3-4", "5-8": True, "9+": True}
            assert a.loc["5-8", "beyond_justified"] and a.loc["9+", "beyond_justified"] and not a.loc["1", "beyond_justified"]
            assert a.loc["2", "gain_lower"] > 0 and a.loc["3-4", "gain_lower"] > 0
        if k == 6:
            # unsubscribes do not depend on contacts here: nothing but purchases limits contact
            assert a["unsubscribe_bin"].iloc[0] is None and not a["unsubscribe_rise"].any()
            assert a["justified_bin"].iloc[0] == "5-8" and a["justified_contacts"].iloc[0] == 8
    # the detected saturation follows the true one: the bins holding 1, 3 and 6 contacts
    assert found == {1: "1", 3: "3-4", 6: "5-8"}


def _band(prior: pd.Series) -> pd.Series:
    return pd.cut(prior, [-1, 0, 1, 4, np.inf], labels=["0 prior purchases", "1 prior purchase", "2-4 prior purchases", "5+ prior purchases"]).astype(str)


def expected_flagged(contacts: pd.DataFrame, orders: pd.DataFrame, segments: pd.DataFrame, months: int) -> set[str]:
    """Independent count (pandas on the simulated 2024 data): mean contacts per month over the last
    ``months`` months, counting months up to the unsubscribe month (the simulation sends nothing
    after it); the segment is the band of purchases before the last such month; flagged when above
    that segment's justified contacts (those of ``all`` when the segment has none)."""
    first = 13 - months
    unsub = contacts[contacts["kind"] == "unsubscribed"].set_index("customer_id")["occurred_at"].dt.month
    sent = contacts[(contacts["kind"] == "sent") & (contacts["occurred_at"].dt.month >= first)]
    per = sent.groupby("customer_id").size()
    u = unsub.reindex(per.index)
    rate = per / (u.fillna(12) - first + 1)
    active = u.isna() | (u >= first)
    last_month = pd.Series(pd.to_datetime(u.fillna(12).astype(int).map(lambda m: f"2024-{m:02d}-01")).to_numpy(), index=per.index)
    o = orders.merge(last_month.rename("m").rename_axis("customer_id").reset_index(), on="customer_id")
    prior = o[o["occurred_at"] < o["m"]].groupby("customer_id").size().reindex(per.index, fill_value=0)
    justified = segments["justified_contacts"].where(segments["justified_contacts"].notna(), segments.loc["all", "justified_contacts"])
    limit = _band(prior).map(justified)
    return set(rate[active & (rate > limit)].index)


def test_over_contacted_customers_and_segments(saturating: dict[int, Sim]) -> None:
    path, contacts, orders = saturating[3]
    segments = over_contacted(path, level="segment").set_index("segment")
    assert segments.loc["all", "over_contacted"] and segments.loc["all", "share_beyond"] > 0.5
    flagged = over_contacted(path)
    assert (flagged["excess"] > 0).all() and flagged["excess"].is_monotonic_decreasing
    assert flagged["reason"].str.startswith("receives").all()
    want = expected_flagged(contacts, orders, segments, 3)
    assert set(flagged["customer_id"]) == want and len(want) > 100


def test_one_recent_month(saturating: dict[int, Sim]) -> None:
    path, contacts, orders = saturating[6]
    segments = over_contacted(path, level="segment").set_index("segment")
    assert segments.loc["all", "justified_contacts"] == 8  # no unsubscribe effect, saturation at 6
    flagged = over_contacted(path, config={"contact_effect": {"dose_recent_months": 1}})
    want = expected_flagged(contacts, orders, segments, 1)
    assert set(flagged["customer_id"]) == want and len(want) > 100
    assert (flagged["reason"].str.contains("purchases do not rise significantly")).all()


def test_cli_dose_json(saturating: dict[int, Sim], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["contact-effect", "--db", saturating[3][0], "--dose", "--json"]) == 0
    data = json.loads(capsys.readouterr().out, parse_constant=lambda c: pytest.fail(f"not JSON: {c}"))
    assert all(c["n_control"] == 0 for c in data["campaigns"])  # monthly sends, no holdout
    segs = {r["segment"]: r for r in data["over_contacted_segments"]}
    assert segs["all"]["saturation_bin"] == "3-4" and segs["all"]["over_contacted"] is True
    assert {r["dose_bin"] for r in data["dose_response"]} == set(ORDER)
    assert main(["contact-effect", "--db", saturating[3][0], "--dose"]) == 0
    text = capsys.readouterr().out
    assert "Dose-response" in text and "Over-contact by segment" in text
