"""Property tests of the contact planner over random ledgers, preferences, policies and campaigns.

Every expected value comes from an independent pure-Python reference written here: the ledger
semantics (latest record of the channel or ``any`` wins; ties most restrictive; expiry exclusive),
the preference semantics (latest record wins as a whole), rolling-window caps checked by brute
force over every window, quiet hours checked in local time with :mod:`zoneinfo`, and the holdout
draw recomputed with :mod:`hashlib`. The planner's own code is never used to compute expectations.
"""

from __future__ import annotations

import hashlib
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from patron.contact.consent import plan
from patron.contact.consent.planner import PLANS_DDL
from patron.data.store import connect
from patron.errors import InputError

T0 = datetime(2024, 3, 10)
"""Reference instant of the generated data (naive UTC)."""
NOW = T0 - timedelta(days=1)
"""The planner's ``now``: planned contacts of other campaigns after it count toward caps."""
IDS = [f"c{i}" for i in range(4)]
ZONES = ["UTC", "Asia/Tokyo", "America/New_York", "Europe/London", "Australia/Lord_Howe", "Not/AZone"]
SEVERITY = {"revoked": 3, "denied": 2, "granted": 1}
WEEK, MONTH = timedelta(days=7), timedelta(days=30)
PROPERTY_SETTINGS = settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@dataclass(frozen=True)
class Rec:
    consent_id: str
    customer_id: str
    purpose: str
    channel: str
    status: str
    occurred_at: datetime
    expires_at: datetime | None


@dataclass(frozen=True)
class Pref:
    preference_id: str
    customer_id: str
    channel: str
    occurred_at: datetime
    max_per_week: float | None
    max_per_month: float | None
    quiet_hours_start: float | None
    quiet_hours_end: float | None
    time_zone: str | None
    paused_until: datetime | None
    topics: str | None


# --- independent references ---------------------------------------------------------------------

def ref_granted(records: list[Rec], cid: str, purpose: str, channel: str, t: datetime) -> bool:
    """Latest record of the channel or ``any`` at or before t; ties: revoked > denied > granted,
    earliest expiry (none last), largest id; granted while t < expires_at."""
    cands = [r for r in records if r.customer_id == cid and r.purpose == purpose and r.channel in (channel, "any") and r.occurred_at <= t]
    if not cands:
        return False
    best = max(cands, key=lambda r: (r.occurred_at, SEVERITY[r.status], r.expires_at is not None,
                                     -(r.expires_at - T0).total_seconds() if r.expires_at else 0.0, r.consent_id))
    return best.status == "granted" and (best.expires_at is None or t < best.expires_at)


def ref_pref(prefs: list[Pref], cid: str, channel: str, t: datetime) -> Pref | None:
    cands = [p for p in prefs if p.customer_id == cid and p.channel in (channel, "any") and p.occurred_at <= t]
    if not cands:
        return None
    return max(cands, key=lambda p: (p.occurred_at, p.channel != "any", p.preference_id))


def in_arc(hour: float, start: float | None, end: float | None) -> bool:
    if start is None or end is None:
        return False
    s, e = start % 24, end % 24
    if s == e:
        return False
    return s <= hour < e if s < e else (hour >= s or hour < e)


def local_hour(t_utc: datetime, zone: str) -> float:
    loc = t_utc.replace(tzinfo=UTC).astimezone(ZoneInfo(zone))
    return loc.hour + loc.minute / 60 + loc.second / 3600 + loc.microsecond / 3.6e9


def holdout_u(seed: int, campaign: str, cid: str) -> float:
    return int(hashlib.md5(f"{seed}:{campaign}:{cid}".encode()).hexdigest()[:13], 16) / 16**13


def windows_ok(events: list[datetime], s: datetime, length: timedelta, cap: float | None) -> bool:
    """Brute force: every window (e - length, e] that contains s holds at most cap events."""
    if cap is None:
        return True
    return all(sum(1 for x in events if e - length < x <= e) <= cap for e in events if s <= e < s + length)


# --- strategies ---------------------------------------------------------------------------------

hours = st.integers(min_value=-240, max_value=96)
opt_hour = st.one_of(st.none(), st.integers(min_value=0, max_value=24))


@st.composite
def scenario(draw: st.DrawFn) -> dict:
    recs = [
        Rec(f"k{i:02d}", draw(st.sampled_from(IDS)), draw(st.sampled_from(["marketing", "analytics"])),
            draw(st.sampled_from(["email", "sms", "any"])), draw(st.sampled_from(["granted", "granted", "granted", "denied", "revoked"])),
            T0 + timedelta(hours=draw(hours), minutes=draw(st.sampled_from([0, 30]))),
            draw(st.one_of(st.none(), hours.map(lambda h: T0 + timedelta(hours=h)))))
        for i in range(draw(st.integers(0, 10)))
    ]
    if draw(st.sampled_from([True, True, False])):  # most examples: everyone granted a month ago
        recs += [Rec(f"b{c}", c, "marketing", "any", "granted", T0 - MONTH, None) for c in IDS]
    prefs = [
        Pref(f"p{i:02d}", draw(st.sampled_from(IDS)), draw(st.sampled_from(["email", "sms", "any"])),
             T0 - timedelta(hours=draw(st.integers(0, 200))),
             draw(st.one_of(st.none(), st.integers(0, 3))), draw(st.one_of(st.none(), st.integers(0, 6))),
             draw(opt_hour), draw(opt_hour), draw(st.one_of(st.none(), st.sampled_from(ZONES))),
             draw(st.one_of(st.none(), hours.map(lambda h: T0 + timedelta(hours=h)))),
             draw(st.one_of(st.none(), st.sampled_from(["offers", "news", "offers;news"]))))
        for i in range(draw(st.integers(0, 6)))
    ]
    past = [(draw(st.sampled_from(IDS)), T0 + timedelta(hours=draw(st.integers(-20 * 24, 8 * 24))),
             draw(st.sampled_from(["email", "email", "sms"])), draw(st.sampled_from(["sent", "sent", "opened"])))
            for _ in range(draw(st.integers(0, 12)))]
    planned = [(draw(st.sampled_from(IDS)), T0 + timedelta(hours=draw(st.integers(-48, 8 * 24))))
               for _ in range(draw(st.integers(0, 8)))]
    cls = draw(st.sampled_from(["marketing", "marketing", "transactional"]))
    start = T0 + timedelta(hours=draw(st.integers(0, 47)), minutes=draw(st.sampled_from([0, 15, 45])))
    campaign = {
        "name": "camp", "channel": "email", "class": cls,
        "purpose": draw(st.sampled_from(["marketing", "service"] if cls == "transactional" else ["marketing"])),
        "target_ids": draw(st.one_of(st.just([*IDS, "nobody"]), st.lists(st.sampled_from([*IDS, "nobody"]), min_size=1, max_size=5, unique=True))),
        "send_at": start.isoformat() + "Z",
        "send_window_end": (start + timedelta(hours=draw(st.integers(0, 30)))).isoformat() + "Z",
        "holdout_fraction": draw(st.sampled_from([0.0, 0.2, 0.5, 0.9])), "seed": draw(st.integers(0, 5)),
        "topic": draw(st.one_of(st.none(), st.sampled_from(["offers", "news"]))),
    }
    qs, qe = draw(opt_hour), draw(opt_hour)
    policy = {"contact_policy": {
        "time_zone": draw(st.sampled_from(ZONES[:5])),
        "quiet_hours_start": qs, "quiet_hours_end": qe,
        "channels": {"email": {"max_per_week": draw(st.one_of(st.integers(1, 2), st.none(), st.integers(0, 3))),
                               "max_per_month": draw(st.one_of(st.none(), st.integers(0, 8), st.integers(1, 4)))}},
    }}
    for k in ("quiet_hours_start", "quiet_hours_end"):
        if policy["contact_policy"][k] is None:
            del policy["contact_policy"][k]
    for k in ("max_per_week", "max_per_month"):
        if policy["contact_policy"]["channels"]["email"][k] is None:
            del policy["contact_policy"]["channels"]["email"][k]
    return {"recs": recs, "prefs": prefs, "past": past, "planned": planned, "campaign": campaign, "policy": policy}


_DB_DIR = tempfile.TemporaryDirectory(prefix="patron-planner-props-")
DB = str(Path(_DB_DIR.name) / "p.duckdb")
"""One database file for all examples, emptied before each (creating a file per example is slow)."""


def build_db(path: str, sc: dict) -> None:
    """Empty the tables and write the scenario straight into them (ingest has its own tests)."""
    with connect(path) as con:
        con.execute(PLANS_DDL)
        for table in ("customers", "consents", "preferences", "contacts", "contact_plans", "transactions"):
            con.execute(f"DELETE FROM {table}")
        con.executemany("INSERT INTO customers (customer_id) VALUES (?)", [[c] for c in IDS])
        if sc["recs"]:
            con.executemany(
                "INSERT INTO consents (consent_id, customer_id, purpose, channel, status, occurred_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                [[r.consent_id, r.customer_id, r.purpose, r.channel, r.status, r.occurred_at, r.expires_at] for r in sc["recs"]],
            )
        if sc["prefs"]:
            con.executemany(
                "INSERT INTO preferences (preference_id, customer_id, channel, occurred_at, max_per_week, max_per_month, quiet_hours_start, quiet_hours_end, time_zone, paused_until, topics) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [[p.preference_id, p.customer_id, p.channel, p.occurred_at, p.max_per_week, p.max_per_month, p.quiet_hours_start, p.quiet_hours_end, p.time_zone, p.paused_until, p.topics] for p in sc["prefs"]],
            )
        if sc["past"]:
            con.executemany(
                "INSERT INTO contacts (contact_id, customer_id, occurred_at, channel, kind) VALUES (?, ?, ?, ?, ?)",
                [[f"x{i}", c, t, ch, k] for i, (c, t, ch, k) in enumerate(sc["past"])],
            )
        if sc["planned"]:
            con.executemany(
                "INSERT INTO contact_plans (plan_id, campaign, channel, message_class, purpose, customer_id, send_at, included, reason) VALUES ('old', 'prev', 'email', 'marketing', 'marketing', ?, ?, TRUE, 'included')",
                [[c, t] for c, t in sc["planned"]],
            )


def zone_or_none(name: str | None) -> str | None:
    if name is None or not name.strip():
        return None
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return "INVALID"
    return name


def check_plan(sc: dict) -> None:
    camp = sc["campaign"]
    pol = sc["policy"]["contact_policy"]
    build_db(DB, sc)
    if camp["class"] == "transactional" and camp["purpose"] == "marketing":
        with pytest.raises(InputError, match="field purpose"):
            plan(DB, camp, now=NOW, config=sc["policy"])
        return
    result = plan(DB, camp, now=NOW, config=sc["policy"]).table
    start = datetime.fromisoformat(camp["send_at"][:-1])
    end = datetime.fromisoformat(camp["send_window_end"][:-1])
    assert sorted(result["customer_id"]) == sorted(camp["target_ids"])
    for row in result.itertuples(index=False):
        u = holdout_u(camp["seed"], camp["name"], row.customer_id)
        assert (row.reason == "holdout") == bool(row.in_holdout)
        if row.reason == "holdout":
            assert u < camp["holdout_fraction"]
        if row.customer_id == "nobody":
            assert row.reason == "unknown_customer"
        if not row.included:
            continue
        assert u >= camp["holdout_fraction"], "a holdout member is contacted"
        s = row.send_at.to_pydatetime()
        assert start <= s <= end
        if camp["class"] == "transactional":
            continue
        cid = row.customer_id
        assert ref_granted(sc["recs"], cid, camp["purpose"], "email", s), f"{cid} contacted without granted consent at {s}"
        pref = ref_pref(sc["prefs"], cid, "email", start)
        zone = zone_or_none(pref.time_zone if pref else None) or pol["time_zone"]
        assert zone != "INVALID"
        h = local_hour(s, zone)
        assert not in_arc(h, pol.get("quiet_hours_start", 21), pol.get("quiet_hours_end", 8)), f"policy quiet hours: {cid} at {h:.2f} in {zone}"
        if pref is not None:
            assert not in_arc(h, pref.quiet_hours_start, pref.quiet_hours_end), f"own quiet hours: {cid} at {h:.2f} in {zone}"
            assert pref.paused_until is None or pref.paused_until <= s
            if camp["topic"] and pref.topics:
                assert camp["topic"] in pref.topics.split(";")
        events = [t for c, t, ch, k in sc["past"] if c == cid and ch == "email" and k == "sent"]
        events += [t for c, t in sc["planned"] if c == cid and t > NOW] + [s]
        caps = pol["channels"]["email"]
        for length, key in ((WEEK, "max_per_week"), (MONTH, "max_per_month")):
            limits = [v for v in (caps.get(key), getattr(pref, key, None) if pref else None) if v is not None]
            assert windows_ok(events, s, length, min(limits) if limits else None), f"{key} exceeded for {cid}"


@PROPERTY_SETTINGS
@given(scenario())
def test_no_plan_breaks_consent_caps_quiet_hours_or_holdout(sc: dict) -> None:
    check_plan(sc)


@st.composite
def open_scenario(draw: st.DrawFn) -> dict:
    """No caps, no quiet hours, no preferences: only consent and holdout decide."""
    sc = draw(scenario())
    sc["prefs"] = []
    sc["campaign"].update({"class": "marketing", "purpose": "marketing", "topic": None})
    sc["policy"] = {"contact_policy": {"quiet_hours_start": 0, "quiet_hours_end": 0, "channels": {}}}
    return sc


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(open_scenario())
def test_everyone_with_consent_outside_the_holdout_is_included(sc: dict) -> None:
    """The planner is not over-restrictive: with no other limit, included == granted and not held out."""
    camp = sc["campaign"]
    build_db(DB, sc)
    table = plan(DB, camp, now=NOW, config=sc["policy"]).table
    start = datetime.fromisoformat(camp["send_at"][:-1])
    for row in table.itertuples(index=False):
        known = row.customer_id in IDS
        granted = known and ref_granted(sc["recs"], row.customer_id, "marketing", "email", start)
        held = holdout_u(camp["seed"], camp["name"], row.customer_id) < camp["holdout_fraction"]
        assert row.included == (granted and not held), row
        assert pd.Timestamp(row.send_at).to_pydatetime() == start
