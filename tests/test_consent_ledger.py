"""The consent ledger and preferences: state as of a time, ties, ``any``, expiry, history, and
all-or-nothing ingest of consent and preference files.

Expected states are worked out by hand from the documented rules (docs/consent.md), or by the
independent pure-Python reference in tests/test_planner_properties.py.
"""

from __future__ import annotations

import json
import tempfile
from datetime import datetime, timedelta
from pathlib import Path

import duckdb
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from patron.cli import main
from patron.contact.consent import (
    consent_counts,
    consent_history,
    consent_state,
    effective_preferences,
    record_consent,
)
from patron.data.ingest import ingest
from patron.data.store import connect
from patron.errors import InputError

from .test_planner_properties import SEVERITY, T0, Rec, ref_granted


def _rec(cid: str, channel: str, status: str, at: str, **kw: str) -> dict[str, str]:
    return {"customer_id": cid, "purpose": kw.pop("purpose", "marketing"), "channel": channel, "status": status, "occurred_at": at, **kw}


def _state(db: str, as_of: str) -> dict[tuple[str, str, str], tuple[bool, str]]:
    df = consent_state(db, as_of=as_of)
    return {(r.customer_id, r.purpose, r.channel): (bool(r.granted), r.reason) for r in df.itertuples()}


def _count(db: str, table: str) -> int:
    with connect(db) as con:
        return con.execute(f"SELECT count(*) FROM {table}").fetchall()[0][0]


def test_latest_record_of_channel_or_any_wins(db: str) -> None:
    record_consent(db, [
        _rec("a", "any", "granted", "2024-01-01"),
        _rec("a", "email", "revoked", "2024-02-01"),
        _rec("b", "email", "granted", "2024-01-01"),
        _rec("b", "any", "revoked", "2024-02-01"),
        _rec("b", "email", "granted", "2024-03-01"),
    ])
    jan, feb, apr = _state(db, "2024-01-15"), _state(db, "2024-02-15"), _state(db, "2024-04-01")
    # a: the 'any' grant covers every channel until the later email revocation (email only).
    assert jan[("a", "marketing", "email")] == (True, "granted")
    assert feb[("a", "marketing", "email")] == (False, "revoked")
    assert feb[("a", "marketing", "sms")] == (True, "granted")
    # b: the later 'any' revocation overrides the earlier email grant; a later email grant wins again.
    assert feb[("b", "marketing", "email")] == (False, "revoked")
    assert apr[("b", "marketing", "email")] == (True, "granted")
    assert apr[("b", "marketing", "sms")] == (False, "revoked")
    assert ("b", "marketing", "sms") not in jan  # no record speaks to b's sms in January


def test_ties_are_most_restrictive_and_expiry_is_exclusive(db: str) -> None:
    record_consent(db, [
        _rec("t", "email", "granted", "2024-01-01T10:00:00Z", consent_id="z9"),
        _rec("t", "email", "denied", "2024-01-01T10:00:00Z", consent_id="a1"),
        _rec("u", "sms", "granted", "2024-01-01T10:00:00Z", consent_id="u1"),
        _rec("u", "sms", "revoked", "2024-01-01T10:00:00Z", consent_id="u2"),
        _rec("u", "sms", "denied", "2024-01-01T10:00:00Z", consent_id="u3"),
        _rec("x", "push", "granted", "2024-01-01", expires_at="2024-06-01T00:00:00Z", consent_id="x1"),
    ])
    s = _state(db, "2024-05-31T23:59:59")
    assert s[("t", "marketing", "email")] == (False, "denied")
    assert s[("u", "marketing", "sms")] == (False, "revoked")
    assert s[("x", "marketing", "push")] == (True, "granted")
    assert _state(db, "2024-06-01")[("x", "marketing", "push")] == (False, "expired")
    # Before any record: no row at all (no consent).
    assert consent_state(db, as_of="2023-12-31").empty


def test_history_is_complete_and_counts_add_up(db: str) -> None:
    record_consent(db, [_rec("a", "any", "granted", "2024-01-01"), _rec("a", "email", "revoked", "2024-02-01"),
                        _rec("b", "email", "denied", "2024-01-05")])
    hist = consent_history(db, "a")
    assert list(hist["status"]) == ["granted", "revoked"]
    counts = consent_counts(db, as_of="2024-03-01").set_index(["purpose", "channel"])
    # email: a revoked, b denied; sms: a granted (via any).
    assert counts.loc[("marketing", "email")].to_dict() == {"granted": 0, "denied": 1, "revoked": 1, "expired": 0}
    assert counts.loc[("marketing", "sms"), "granted"] == 1


def test_a_bad_consent_file_stores_nothing_and_names_file_row_field(db: str, tmp_path: Path) -> None:
    record_consent(db, [_rec("a", "any", "granted", "2024-01-01")])
    before = _count(db, "consents")
    f = tmp_path / "consents.csv"
    f.write_text(
        "customer_id,purpose,channel,status,occurred_at,expires_at\n"
        "c1,marketing,email,granted,2024-01-01,2030-01-01\n"
        "c2,marketing,email,granted,2024-01-02,\n"
        "c3,marketing,fax,granted,2024-01-03,\n"
    )
    with pytest.raises(InputError) as exc:
        ingest(f, kind="consents", db=db)
    msg = str(exc.value)
    assert "\n" not in msg and str(f) in msg and "row 3" in msg and "channel" in msg and "nothing stored" in msg
    assert _count(db, "consents") == before
    # The CLI says the same in one line and exits 2.
    assert main(["ingest", str(f), "--kind", "consents", "--db", db]) == 2
    assert _count(db, "consents") == before
    # Fixed, the same file goes in whole; a future expiry is accepted.
    f.write_text(f.read_text().replace("fax", "sms"))
    result = ingest(f, kind="consents", db=db)
    assert (result.accepted, result.rejected) == (3, 0)
    assert _count(db, "consents") == before + 3


def test_record_consent_api_is_all_or_nothing(db: str) -> None:
    with pytest.raises(InputError, match=r"row 2, column status"):
        record_consent(db, [_rec("a", "any", "granted", "2024-01-01"), _rec("b", "any", "maybe", "2024-01-01")])
    assert _count(db, "consents") == 0


def test_a_bad_preferences_file_stores_nothing(db: str, tmp_path: Path) -> None:
    f = tmp_path / "prefs.csv"
    f.write_text("customer_id,occurred_at,channel,max_per_week,paused_until\n"
                 "c1,2024-01-01,email,1,2099-01-01\nc2,2024-01-01,email,-1,\n")
    with pytest.raises(InputError, match=r"prefs.csv: row 2, column max_per_week"):
        ingest(f, kind="preferences", db=db)
    assert _count(db, "preferences") == 0


def test_effective_preferences_latest_record_wins_whole(db: str) -> None:
    rows = [
        {"customer_id": "a", "occurred_at": "2024-01-01", "channel": "email", "max_per_week": 1, "time_zone": "Asia/Tokyo"},
        {"customer_id": "a", "occurred_at": "2024-02-01", "channel": "any", "max_per_month": 3},
        {"customer_id": "b", "occurred_at": "2024-01-01", "channel": "any", "max_per_week": 2},
        {"customer_id": "b", "occurred_at": "2024-01-01", "channel": "email", "max_per_week": 5},
    ]
    import pandas as pd

    ingest(pd.DataFrame(rows), kind="preferences", db=db)
    jan = effective_preferences(db, as_of="2024-01-15").set_index(["customer_id", "channel"])
    mar = effective_preferences(db, as_of="2024-03-01").set_index(["customer_id", "channel"])
    assert jan.loc[("a", "email"), "max_per_week"] == 1 and jan.loc[("a", "email"), "time_zone"] == "Asia/Tokyo"
    assert ("a", "sms") not in jan.index
    # The later 'any' record replaces a's email settings as a whole.
    assert pd.isna(mar.loc[("a", "email"), "max_per_week"]) and mar.loc[("a", "email"), "max_per_month"] == 3
    # Same time: the channel's own record beats 'any'.
    assert jan.loc[("b", "email"), "max_per_week"] == 5 and jan.loc[("b", "sms"), "max_per_week"] == 2


def test_cli_consent_json(db: str, capsys: pytest.CaptureFixture[str]) -> None:
    record_consent(db, [_rec("a", "any", "granted", "2024-01-01"), _rec("a", "email", "revoked", "2024-02-01")])
    assert main(["consent", "a", "--db", db, "--as-of", "2024-03-01", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    email = next(s for s in data["state"] if s["channel"] == "email")
    assert (email["granted"], email["reason"], len(data["history"])) == (False, "revoked", 2)
    assert main(["consent", "--db", db, "--as-of", "2024-03-01", "--json"]) == 0
    counts = json.loads(capsys.readouterr().out)["counts"]
    assert {(c["channel"], c["granted"]) for c in counts} >= {("email", 0), ("sms", 1)}
    assert main(["consent", "--db", db, "--as-of", "yesterday"]) == 2


_LEDGER_DIR = tempfile.TemporaryDirectory(prefix="patron-ledger-props-")
_LEDGER_DB = str(Path(_LEDGER_DIR.name) / "l.duckdb")


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.tuples(st.sampled_from(["a", "b"]), st.sampled_from(["marketing", "analytics"]), st.sampled_from(["email", "sms", "any"]),
                  st.sampled_from(list(SEVERITY)), st.integers(-5, 5), st.one_of(st.none(), st.integers(-5, 5))),
        max_size=12,
    ),
    st.integers(-6, 6),
)
def test_state_matches_the_reference_on_random_ledgers(rows: list[tuple], at: int) -> None:
    """Small ledgers with many ties (times on a 1-day grid) against the pure-Python reference."""
    recs = [Rec(f"k{i:02d}", c, p, ch, s, T0 + timedelta(days=d), None if e is None else T0 + timedelta(days=e))
            for i, (c, p, ch, s, d, e) in enumerate(rows)]
    with connect(_LEDGER_DB) as con:
        con.execute("DELETE FROM consents")
        if recs:
            con.executemany("INSERT INTO consents (consent_id, customer_id, purpose, channel, status, occurred_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                            [[r.consent_id, r.customer_id, r.purpose, r.channel, r.status, r.occurred_at, r.expires_at] for r in recs])
    when = T0 + timedelta(days=at)
    state = _state(_LEDGER_DB, when.isoformat())
    for cid in ("a", "b"):
        for purpose in ("marketing", "analytics"):
            for channel in ("email", "sms", "push"):
                expected = ref_granted(recs, cid, purpose, channel, when)
                assert state.get((cid, purpose, channel), (False, "none"))[0] == expected, (cid, purpose, channel)


def test_nothing_in_the_ledger_is_updated_in_place(db: str) -> None:
    """Recording again appends; the earlier record is still there, byte for byte."""
    record_consent(db, [_rec("a", "email", "granted", "2024-01-01")])
    first = duckdb.connect(db, read_only=True).execute("SELECT * EXCLUDE (ingest_id) FROM consents").fetchall()
    record_consent(db, [_rec("a", "email", "revoked", "2024-02-01")])
    con = duckdb.connect(db, read_only=True)
    rows = con.execute("SELECT * EXCLUDE (ingest_id) FROM consents ORDER BY occurred_at").fetchall()
    con.close()
    assert rows[0] == first[0] and len(rows) == 2
    assert datetime(2024, 2, 1) == rows[1][5]
