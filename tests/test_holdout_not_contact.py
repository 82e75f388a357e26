"""A holdout row is not a contact: property tests over random contact histories.

A ``contacts`` row with ``kind = 'sent'`` and ``in_holdout = true`` records that a customer was held
out of a campaign (never sent anything). The frequency caps of the planner, the real-time contact
check and cost-to-serve must therefore give exactly the answers they give on the same history with
the holdout rows deleted. The expectation is that second run on an independent database, so no
output of the code under test is used to compute what it should say.
"""

from __future__ import annotations

import tempfile
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from patron.contact.consent import plan
from patron.contact.consent.check import check_contact
from patron.contact.consent.planner import PLANS_DDL
from patron.contact.consent.policy import contact_policy
from patron.data.store import connect
from patron.relationship.profitability import profitability

T0 = datetime(2024, 3, 10, 12)
"""Reference instant of the generated histories (naive UTC)."""
IDS = ("c0", "c1", "c2")
SCORES = pd.DataFrame({"customer_id": list(IDS), "clv": [100.0, 50.0, 10.0], "probability_alive": [0.9, 0.5, 0.1]})
"""Fixed scores, so profitability fits no model."""
PROPERTY_SETTINGS = settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

_DIR = tempfile.TemporaryDirectory(prefix="patron-holdout-props-")
FULL = str(Path(_DIR.name) / "full.duckdb")
"""The history as generated, holdout rows included."""
SENT_ONLY = str(Path(_DIR.name) / "sent.duckdb")
"""The same history with every holdout row deleted."""

Row = tuple[str, datetime, str, str, bool | None]


@st.composite
def history(draw: st.DrawFn) -> dict:
    """Contacts in the 40 days around T0 (sent, some opened; holdout flag true, false or empty),
    email caps, a check time and a campaign send time."""
    rows: list[Row] = [
        (draw(st.sampled_from(IDS)), T0 + timedelta(hours=draw(st.integers(-35 * 24, 5 * 24))),
         draw(st.sampled_from(["email", "email", "sms"])), draw(st.sampled_from(["sent", "sent", "sent", "opened"])),
         draw(st.sampled_from([True, True, False, None])))
        for _ in range(draw(st.integers(0, 14)))
    ]
    caps = {"max_per_week": draw(st.integers(1, 3)), "max_per_month": draw(st.integers(1, 6))}
    at = T0 + timedelta(hours=draw(st.integers(-24, 48)))
    return {"rows": rows, "caps": caps, "at": at}


def build(path: str, rows: list[Row]) -> None:
    """Customers with one order 60 days before T0, granted marketing consent, and ``rows``."""
    with connect(path) as con:
        con.execute(PLANS_DDL)
        for table in ("customers", "consents", "contacts", "contact_plans", "transactions"):
            con.execute(f"DELETE FROM {table}")
        con.executemany("INSERT INTO customers (customer_id) VALUES (?)", [[c] for c in IDS])
        con.executemany("INSERT INTO transactions (customer_id, order_id, occurred_at, amount) VALUES (?, ?, ?, 20.0)",
                        [[c, f"o{c}", T0 - timedelta(days=60)] for c in IDS])
        con.executemany("INSERT INTO consents (consent_id, customer_id, purpose, channel, status, occurred_at) "
                        "VALUES (?, ?, 'marketing', 'any', 'granted', ?)", [[f"g{c}", c, T0 - timedelta(days=90)] for c in IDS])
        if rows:
            con.executemany(
                "INSERT INTO contacts (contact_id, customer_id, occurred_at, channel, campaign_id, kind, in_holdout) "
                "VALUES (?, ?, ?, ?, 'camp', ?, ?)",
                [[f"k{i}", c, t, ch, kind, hold] for i, (c, t, ch, kind, hold) in enumerate(rows)],
            )


def answers(path: str, h: dict) -> dict[str, Any]:
    """What the planner, the contact check and profitability say on the database ``path``."""
    config = {"contact_policy": {"quiet_hours_start": 0, "quiet_hours_end": 0, "channels": {"email": h["caps"]}},
              "costs": {"email": 0.25, "sms": 1.0}}
    campaign = {"name": "next", "channel": "email", "purpose": "marketing", "target_ids": list(IDS),
                "send_at": h["at"].isoformat() + "Z"}
    planned = plan(path, campaign, now=T0 - timedelta(days=40), config=config, store=False).table
    policy = contact_policy(config)
    con = duckdb.connect(path, read_only=True)
    try:
        checks = {c: check_contact(con, c, channel="email", purpose="marketing", at=h["at"], policy=policy, config=config).model_dump()
                  for c in IDS}
    finally:
        con.close()
    profit = profitability(path, scores=SCORES, as_of=(T0 + timedelta(days=10)).date(), config=config)
    return {"plan": planned[["customer_id", "included", "reason", "send_at"]], "checks": checks, "profitability": profit}


HOLDOUT_AT_CAP = {
    "rows": [("c0", T0 - timedelta(days=2), "email", "sent", True), ("c0", T0 - timedelta(days=3), "email", "sent", True)],
    "caps": {"max_per_week": 2, "max_per_month": 6}, "at": T0,
}
"""Two holdout rows in the week before T0 with a weekly cap of 2: counted as contacts, they would
block c0 (cap_reached) and cost 2 x 0.25."""


@PROPERTY_SETTINGS
@example(HOLDOUT_AT_CAP)
@given(history())
def test_caps_contact_check_and_cost_to_serve_ignore_holdout_rows(h: dict) -> None:
    build(FULL, h["rows"])
    build(SENT_ONLY, [r for r in h["rows"] if not (r[3] == "sent" and r[4] is True)])
    full, sent = answers(FULL, h), answers(SENT_ONLY, h)
    assert full["checks"] == sent["checks"]
    pd.testing.assert_frame_equal(full["plan"], sent["plan"])
    pd.testing.assert_frame_equal(full["profitability"], sent["profitability"])
