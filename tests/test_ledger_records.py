"""Ledger records given as JSON (the REST endpoints, the ledger events, the preference center) are
checked by the rules of file ingest (issue 16, item 3).

The independent reference is file ingest itself: the same record written as a one-row table of
text cells and stored with :func:`patron.data.ingest.ingest` (kind ``consents`` or ``preferences``).
A property test draws records from valid and invalid cell values and holds
:func:`patron.contact.consent.records.check_records` to it: accepted by one exactly when accepted by the
other, with the same stored values.
"""

from __future__ import annotations

import dataclasses
import itertools
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from patron.contact.consent.records import Limits, check_records
from patron.data.ingest import ingest
from patron.data.ingest.checks import content_hash_sql
from patron.data.schema import CONSENTS, PREFERENCES
from patron.errors import InputError

NOW = datetime(2025, 3, 12, 12, 0, 0)
"""The clock of both sides (naive UTC): ingest's ``now``, the checker's limits."""

CELLS: dict[str, list[str]] = {
    "channel": ["email", " SMS ", "any", "fax", "In_App"],  # never empty: absent, the API's default any applies
    "status": ["granted", "Denied", "revoked", "maybe"],
    "purpose": ["marketing", "analytics", " data_sharing "],
    "occurred_at": ["2024-05-01", "2024-05-01T10:00:00+02:00", "2024-05-01 10:00 Europe/Paris", "1850-01-01",
                    "2099-01-01", "yesterday", "20240501", "2024-02-30"],
    "expires_at": ["", "2030-01-01", "2024-06-01T00:00:00Z", "soon", "1899-12-31"],
    "paused_until": ["", "2031-05-01T08:00:00Z", "not a date"],
    "max_per_week": ["", "2", "0", "1.5", "-1", "two", "inf", "1e3"],
    "max_per_month": ["", "8", " 4 ", "NaN"],
    "quiet_hours_start": ["", "21", "22.5", "-3"],
    "quiet_hours_end": ["", "8", "7"],
    "topics": ["", "news;offers", " offers "],
    "time_zone": ["", "Europe/Paris", "UTC"],
    "source": ["", "web form", " api "],
    "lawful_basis": ["", "consent"],
    "preference_id": ["p-1", "p\u200b2"],  # an empty key in JSON is an absent one (a new key is made)
    "consent_id": ["k-1", "k\u202e2"],
}
"""Cell values per field: valid ones and ones file ingest rejects (a bad choice, a negative or
non-numeric number, a time before the floor or in the future, an id with an invisible character)."""

FIELDS = {"consents": [c.name for c in CONSENTS.columns if c.name != "customer_id"],
          "preferences": [c.name for c in PREFERENCES.columns if c.name != "customer_id"]}


def _by_file(db: str, kind: str, record: dict[str, str], customer: str) -> dict[str, object] | None:
    """The record as file ingest stores it (``None``: refused)."""
    frame = pd.DataFrame([{"customer_id": customer, **record}]).astype(str)
    try:
        result = ingest(frame, kind=kind, db=db, now=NOW.replace(tzinfo=UTC))
    except InputError:
        return None
    assert result.accepted == 1
    with duckdb.connect(db, read_only=True) as con:
        cur = con.execute(f"SELECT * FROM {kind} WHERE ingest_id = ?", [result.ingest_id])
        row = dict(zip([d[0] for d in cur.description], cur.fetchone(), strict=True))
    return {k: v for k, v in row.items() if k in FIELDS[kind] and k != CONSENTS.key and k != PREFERENCES.key}


def _by_checker(kind: str, record: dict[str, str]) -> dict[str, object] | None:
    try:
        [row] = check_records(kind, [record], source="api", limits=Limits.at(NOW))
    except InputError:
        return None
    return {k: v for k, v in row.items() if k not in (CONSENTS.key, PREFERENCES.key)}


def _record(draw: Any, kind: str) -> dict[str, str]:
    fields = FIELDS[kind]
    chosen = draw(st.lists(st.sampled_from([f for f in fields if f in CELLS]), unique=True, max_size=6))
    required = {"consents": ["purpose", "channel", "status", "occurred_at"], "preferences": ["channel", "occurred_at"]}[kind]
    record = {f: draw(st.sampled_from(CELLS[f])) for f in dict.fromkeys([*required, *chosen])}
    return record


_counter = itertools.count()


@pytest.fixture(scope="module")
def ingest_db(tmp_path_factory: pytest.TempPathFactory) -> str:
    return str(tmp_path_factory.mktemp("records") / "r.duckdb")


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data(), kind=st.sampled_from(["consents", "preferences"]))
def test_json_records_follow_the_rules_of_file_ingest(ingest_db: str, data: st.DataObject, kind: str) -> None:
    record = _record(data.draw, kind)
    # A purpose is lower-cased by the events and the API (as the consent event always stored it):
    # compare it as file ingest would store a lower-case purpose.
    if "purpose" in record:
        record["purpose"] = record["purpose"].lower()
    if record.get("consent_id") or record.get("preference_id"):  # keys are unique per database
        key = "consent_id" if kind == "consents" else "preference_id"
        record[key] = f"{record[key]}-{next(_counter)}"
    by_file = _by_file(ingest_db, kind, record, customer=f"c-{next(_counter)}")
    by_checker = _by_checker(kind, record)
    assert (by_file is None) == (by_checker is None), (record, by_file, by_checker)
    if by_file is not None:
        by_checker = {k: v for k, v in by_checker.items() if k != "source" or record.get("source", "").strip()}
        by_file = {k: v for k, v in by_file.items() if k != "source" or record.get("source", "").strip()}
        assert by_checker == by_file


def test_one_bad_record_stores_nothing_and_names_it() -> None:
    records = [{"channel": "email", "max_per_week": 2}, {"channel": "email", "max_per_week": -1},
               {"channel": "fax"}]
    with pytest.raises(InputError) as err:
        check_records("preferences", records, source="api", limits=Limits.at(NOW))
    text = str(err.value)
    assert "record 1: max_per_week \"-1\" is negative" in text
    assert "2 of 3 records are bad" in text


def test_unknown_fields_and_a_customer_id_are_refused() -> None:
    for record, reason in (({"channel": "email", "max_per_wek": 2}, "unknown field max_per_wek"),
                           ({"channel": "email", "customer_id": "someone-else"}, "unknown field customer_id")):
        with pytest.raises(InputError, match=reason):
            check_records("preferences", [record], source="api", limits=Limits.at(NOW))


def test_defaults_and_topics_as_a_list() -> None:
    [row] = check_records("preferences", [{"topics": ["news", " offers "], "max_per_week": "1"}], source="api",
                          limits=Limits.at(NOW))
    assert (row["channel"], row["occurred_at"], row["source"], row["topics"], row["max_per_week"]) == (
        "any", NOW, "api", "news;offers", 1.0)
    assert row["preference_id"].startswith("api-")


def test_the_source_column_keeps_the_keys_derived_before_it() -> None:
    """A preferences row without a source hashes as it did before the column was added, so a file
    ingested before issue 16 adds nothing when ingested again."""
    old = dataclasses.replace(PREFERENCES, columns=tuple(c for c in PREFERENCES.columns if c.name != "source"))
    con = duckdb.connect()
    con.execute("CREATE TABLE t AS SELECT 'c1' AS customer_id, TIMESTAMP '2024-01-01' AS occurred_at, 'email' AS channel, "
                "2.0 AS max_per_week, NULL::DOUBLE AS max_per_month, 'news' AS topics, NULL::DOUBLE AS quiet_hours_start, "
                "NULL::DOUBLE AS quiet_hours_end, NULL AS time_zone, NULL AS preferred_channel, "
                "NULL::TIMESTAMP AS paused_until, NULL::VARCHAR AS source")
    new_hash, old_hash = (con.execute(f"SELECT {content_hash_sql(c)} FROM t").fetchone()[0] for c in (PREFERENCES, old))
    assert new_hash == old_hash
    con.execute("UPDATE t SET source = 'web'")
    assert con.execute(f"SELECT {content_hash_sql(PREFERENCES)} FROM t").fetchone()[0] != old_hash


def test_an_older_database_gets_the_new_column(tmp_path: Path) -> None:
    """A database created before ``preferences.source`` existed is upgraded on its next write."""
    db = str(tmp_path / "old.duckdb")
    with duckdb.connect(db) as con:
        con.execute("CREATE TABLE preferences (preference_id VARCHAR, customer_id VARCHAR, occurred_at TIMESTAMP, "
                    "channel VARCHAR, max_per_week DOUBLE, max_per_month DOUBLE, topics VARCHAR, quiet_hours_start DOUBLE, "
                    "quiet_hours_end DOUBLE, time_zone VARCHAR, preferred_channel VARCHAR, paused_until TIMESTAMP, "
                    "ingest_id VARCHAR)")
    from patron.contact.consent import record_preferences

    record_preferences(db, [{"customer_id": "c1", "occurred_at": "2024-01-01", "channel": "email", "max_per_week": 1,
                             "source": "web form"}])
    with duckdb.connect(db, read_only=True) as con:
        assert con.execute("SELECT source FROM preferences").fetchall() == [("web form",)]
