"""Plausibility rules (issue 18, item 4): every finding has a regression test here, for files
(validated ingest on DuckDB) and for events (the service, in process).

Expected values are written out by hand from the inputs: the UTC instant of a local time in a named
zone is the one the IANA database gives (Paris is UTC+2 from 31 March 2024 01:00 UTC, UTC+1 before);
an offset is subtracted. Spark's agreement with these rules is in ``test_spark_ingest.py``; the
property test that Python (events) and SQL (files) read the same texts the same way is in
``test_plausibility_properties.py``.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pytest
from fastapi.testclient import TestClient

import patron
from patron.errors import InputError
from patron.service.app import create_app
from tests.service_support import create_keys

NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
"""The 'now' of every file ingest."""


# --- files --------------------------------------------------------------------------------------

def _ingest(tmp_path: Path, source: Any, kind: str = "transactions", **kw: Any) -> tuple[dict, dict]:
    """Ingest ``source``; return ``{row: reason}`` of the rejects and ``{order_id or customer_id:
    stored row}``."""
    db = tmp_path / "f.duckdb"
    try:
        patron.ingest(source, kind=kind, db=db, now=NOW, rejects_file=tmp_path / "rejects.csv", **kw)
    except InputError as exc:
        if "no valid rows" not in str(exc) and "nothing stored" not in str(exc):
            raise
        # every row rejected: the rejects are still recorded
    with duckdb.connect(str(db), read_only=True) as con:
        rejects = {r: reason for r, reason in con.execute('SELECT "row", reason FROM rejects')
                   .fetchall()}
        key = "order_id" if kind == "transactions" else "customer_id"
        stored = {row[0]: row for row in con.execute(f"SELECT {key}, * FROM {kind}").fetchall()}
    return rejects, stored


def _transactions(tmp_path: Path, rows: list[tuple[str, str, str]]) -> tuple[dict, dict]:
    """Ingest ``(customer_id, occurred_at, amount)`` rows (order ids o1, o2, ...) from a table."""
    table = pa.table({
        "customer_id": [r[0] for r in rows], "order_id": [f"o{i}" for i in range(1, len(rows) + 1)],
        "occurred_at": [r[1] for r in rows], "amount": [r[2] for r in rows],
    })
    return _ingest(tmp_path, table)


def test_file_timestamps_before_the_floor_or_signed_years_are_rejected(tmp_path):
    rejects, stored = _transactions(tmp_path, [
        ("c1", "-2024-01-01", "1"),  # was stored as 2025 BC (then a traceback in patron report)
        ("c2", "0001-01-01", "1"),
        ("c3", "1899-12-31T23:59:59Z", "1"),
        ("c4", "1900-01-01", "1"),  # the floor itself is plausible
        ("c5", "0001-01-01T00:00:00+01:00", "1"),
    ])
    assert set(stored) == {"o4"}
    assert rejects[1].startswith('unparseable timestamp "-2024-01-01"')
    for row in (2, 3, 5):
        assert "is before 1900-01-01 (the date floor, PATRON_DATE_FLOOR)" in rejects[row], rejects[row]


def test_file_date_floor_is_configurable(tmp_path, monkeypatch):
    monkeypatch.setenv("PATRON_DATE_FLOOR", "2000-01-01")
    rejects, stored = _transactions(tmp_path, [("c1", "1999-12-31", "1"), ("c2", "2000-01-01", "1")])
    assert set(stored) == {"o2"} and "before 2000-01-01" in rejects[1]
    (tmp_path / "x").mkdir()
    rejects, stored = _ingest(tmp_path / "x", pa.table({"customer_id": ["c"], "occurred_at": ["1999-12-31"],
                                                        "amount": ["1"]}), date_floor=date(1990, 1, 1))
    assert len(stored) == 1 and not rejects


def test_bad_date_floor_setting_is_one_line(tmp_path, monkeypatch):
    monkeypatch.setenv("PATRON_DATE_FLOOR", "yesterday")
    with pytest.raises(InputError, match=r"^PATRON_DATE_FLOOR='yesterday': Input should be a valid date"):
        _transactions(tmp_path, [("c1", "2024-01-01", "1")])
    with pytest.raises(InputError, match="PATRON_DATE_FLOOR"):
        create_app(tmp_path / "s.duckdb")  # the service refuses to start, rather than fail on the first event


def test_file_zone_names_are_honoured_and_bad_offsets_rejected(tmp_path):
    rejects, stored = _transactions(tmp_path, [
        ("c1", "2024-03-31T14:05:00 Europe/Paris", "1"),  # was stored as 14:05 UTC
        ("c2", "2024-03-30T14:05:00 Europe/Paris", "1"),  # the day before the change: UTC+1
        ("c3", "2024-03-31 14:05:00+25:00", "1"),  # was accepted
        ("c4", "2024-03-31 14:05:00+14:00", "1"),  # Kiribati: the largest offset in use
        ("c5", "2024-03-31 14:05:00 Mars/Olympus", "1"),
        ("c6", "2024-03-31 14:05:00 CET", "1"),  # an abbreviation, not a zone name
    ])
    assert stored["o1"][3] == datetime(2024, 3, 31, 12, 5)
    assert stored["o2"][3] == datetime(2024, 3, 30, 13, 5)
    assert stored["o4"][3] == datetime(2024, 3, 31, 0, 5)
    assert set(stored) == {"o1", "o2", "o4"}
    assert all(rejects[r].startswith("unparseable timestamp") for r in (3, 5, 6))


def test_file_numbers_follow_one_grammar(tmp_path):
    rejects, stored = _transactions(tmp_path, [
        ("c1", "2024-01-01", "1_000"),  # was read as 1000
        ("c2", "2024-01-01", "1,000"),
        ("c3", "2024-01-01", "0x10"),
        ("c4", "2024-01-01", "1e16"),  # over the largest plausible amount
        ("c5", "2024-01-01", "-1e15"),  # a refund of exactly the limit is plausible
        ("c6", "2024-01-01", "1e400"),
        ("c7", "2024-01-01", "+.5e1"),
    ])
    assert set(stored) == {"o5", "o7"}
    assert stored["o7"][4] == 5.0 and stored["o5"][4] == -1e15
    for row, text in ((1, "1_000"), (2, "1,000"), (3, "0x10")):
        assert rejects[row] == f'non-numeric amount "{text}"'
    assert rejects[4] == 'amount "1e16" is over the largest plausible amount (1e+15)'
    assert rejects[6] == 'amount "1e400" is not a finite number'


def test_file_ids_without_control_zero_width_or_bidi_characters(tmp_path):
    ids = ["a\x00b", "a\u200bb", "\u202eevil", "a\u2066b", "ok\ufeff", "fine", "{3F2504E0-4F89}", "Zoë"]
    rows = [(c, "2024-01-01", "1") for c in ids]
    rejects, stored = _transactions(tmp_path, rows)
    assert {stored[k][1] for k in stored} == {"fine", "{3F2504E0-4F89}", "Zoë"}  # a GUID in braces is an id
    for row, code in ((1, "U+0000"), (2, "U+200B"), (3, "U+202E"), (4, "U+2066"), (5, "U+FEFF")):
        assert rejects[row].startswith("customer_id ") and f"contains {code}" in rejects[row], rejects[row]


def test_file_json_lines_object_as_customer_id_is_rejected(tmp_path):
    path = tmp_path / "tx.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in [
        {"customer_id": {"id": 7}, "order_id": "o1", "occurred_at": "2024-01-01", "amount": 1},  # was stored
        {"customer_id": ["c"], "order_id": "o2", "occurred_at": "2024-01-01", "amount": 1},
        {"customer_id": "c3", "order_id": {"n": 3}, "occurred_at": "2024-01-01", "amount": 1},
        {"customer_id": "c4", "order_id": "o4", "occurred_at": "2024-01-01", "amount": 1},
    ]) + "\n")
    rejects, stored = _ingest(tmp_path, path)
    assert set(stored) == {"o4"}
    assert {r: reason.endswith("is a JSON object or array, not an id") for r, reason in rejects.items()} == \
        {1: True, 2: True, 3: True}


def test_file_nested_column_as_customer_id_is_rejected(tmp_path):
    table = pa.table({"customer_id": pa.array([{"id": 7}, {"id": 8}]), "occurred_at": ["2024-01-01"] * 2,
                      "amount": [1.0, 2.0]})
    rejects, stored = _ingest(tmp_path, table)
    assert not stored  # was stored as the customer id "{'id': 7}"
    assert rejects == {1: 'customer_id "{"id":7}" is a JSON object or array, not an id',
                       2: 'customer_id "{"id":8}" is a JSON object or array, not an id'}


def test_file_expiry_may_lie_in_the_future_but_not_past_year_9999(tmp_path):
    table = pa.table({"customer_id": ["c1", "c2", "c3"], "purpose": ["m"] * 3, "channel": ["email"] * 3,
                      "status": ["granted"] * 3, "occurred_at": ["2024-01-01"] * 3,
                      "expires_at": ["2090-01-01", "9999-12-31T23:59:59-05:00", "1850-01-01"]})
    rejects, stored = _ingest(tmp_path, table, kind="consents")
    assert not stored  # a ledger: all or nothing
    assert set(rejects) == {2, 3}
    assert rejects[2].endswith("is after year 9999") and "before 1900-01-01" in rejects[3]


# --- events -------------------------------------------------------------------------------------

T0 = "2024-03-01T10:00:00Z"


def _post(client: TestClient, body: Any, path: str = "/v1/track") -> Any:
    """POST ``body`` (a JSON value, or JSON text as it would come from an SDK) to ``path``."""
    text = body if isinstance(body, str) else json.dumps(body)
    return client.post(path, content=text, headers={"Content-Type": "application/json"})


def _track(mid: str, **fields: Any) -> dict[str, Any]:
    return {"type": "track", "messageId": mid, "userId": "u1", "event": "Product Viewed", "timestamp": T0, **fields}


def _order(mid: str, oid: str, user: str = "u1", **props: Any) -> dict[str, Any]:
    return _track(mid, userId=user, event="Order Completed", properties={"order_id": oid, **props})


def _refund(mid: str, oid: str, user: str = "u1", **props: Any) -> dict[str, Any]:
    return _track(mid, userId=user, event="Order Refunded", properties={"order_id": oid, **props})


REJECTED_EVENTS: list[tuple[str, dict[str, Any], str]] = [
    # (messageId, event, start of the reason) -- each was a 500 or stored garbage
    ("t-year1", _track("t-year1", timestamp="0001-01-01T00:00:00+01:00"), "timestamp: out of the range of dates"),
    ("t-year9999", _track("t-year9999", timestamp="9999-12-31T23:59:59-05:00"), "timestamp: out of the range of dates"),
    ("t-skew", _track("t-skew", originalTimestamp="9999-12-31T23:00:00Z", sentAt="0001-01-01T00:00:00Z"),
     "timestamp: corrected by receivedAt - sentAt, the event time is out of the range"),
    ("t-floor", _track("t-floor", timestamp="1899-12-31T23:59:59Z"), "timestamp: 1899-12-31T23:59:59Z is before 1900-01-01"),
    ("t-offset", _track("t-offset", timestamp="2024-03-31T14:05:00+25:00"), "timestamp: offset +25:00 is not a UTC offset"),
    ("t-zone", _track("t-zone", timestamp="2024-03-31T14:05:00 Mars/Olympus"), 'timestamp: unknown time zone "Mars/Olympus"'),
    ("t-signed", _track("t-signed", timestamp="-2024-01-01"), "timestamp: not an ISO-8601 time"),
    ("o-400", _order("o-400", "X400", revenue=int("9" * 400)), "Order Completed: properties.revenue is not a finite number"),
    ("o-inf", _order("o-inf", "XINF", products=[{"price": 1e308, "quantity": 10}]),
     "Order Completed: products[0]: price × quantity is not a finite number"),
    ("o-sum", _order("o-sum", "XSUM", products=[{"price": 9e14}, {"price": 9e14}]),
     "Order Completed: the sum of products[0..1] is over the largest plausible amount"),
    ("o-big", _order("o-big", "XBIG", revenue=2e15), "Order Completed: properties.revenue is over the largest plausible amount"),
    ("o-under", _order("o-under", "XUND", revenue="1_000"), 'Order Completed: non-numeric properties.revenue "1_000"'),
    ("o-comma", _order("o-comma", "XCOM", revenue="1,000"), 'Order Completed: non-numeric properties.revenue "1,000"'),
    ("o-oid", _order("o-oid", {"id": 1}, revenue=1), "Order Completed: properties.order_id must be a string"),
    ("o-oid-zw", _order("o-oid-zw", "A\u200b1", revenue=1), "Order Completed: properties.order_id contains U+200B"),
    ("u-nul", _track("u-nul", userId="bob\x00"), "userId: contains U+0000"),
    ("u-zw", _track("u-zw", userId="bo\u200bb"), "userId: contains U+200B (ZERO WIDTH SPACE)"),
    ("u-bidi", _track("u-bidi", userId="\u202ebob"), "userId: contains U+202E (RIGHT-TO-LEFT OVERRIDE)"),
    ("u-anon-bidi", _track("u-anon-bidi", userId=None, anonymousId="dev\u2067"), "anonymousId: contains U+2067"),
    ("u-object", _track("u-object", userId={"id": 1}), "userId: must be a string"),
    ("u-list", _track("u-list", userId=["u1"]), "userId: must be a string"),
    ("u-json", _track("u-json", userId='{"id": 1}'), "userId: is a JSON object or array, not an id"),
    ("u-frac", _track("u-frac", userId=1.5), "userId: must be a string (a non-integer number is not an id)"),
    ("i-email", {"type": "identify", "messageId": "i-email", "userId": "u9", "timestamp": T0,
                 "traits": {"email": "a@b.c\u200d"}}, "identify: traits.email contains U+200D"),
    ("k-expiry", _track("k-expiry", event="Consent Updated", properties={
        "purpose": "marketing", "status": "granted", "expires_at": "1850-01-01"}),
     "Consent Updated: properties.expires_at 1850-01-01T00:00:00Z is before 1900-01-01"),
]


@pytest.fixture(scope="module")
def sent(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Send every scenario to an in-process service, stop it, and read what it stored."""
    db = tmp_path_factory.mktemp("plausible") / "s.duckdb"
    keys = create_keys(db)
    out: dict[str, Any] = {}
    with TestClient(create_app(db), raise_server_exceptions=False) as client:
        client.auth = (keys["write"], "")
        out["rejected"] = {mid: _post(client, {k: v for k, v in ev.items() if v is not None}, f"/v1/{ev['type']}")
                           for mid, ev, _ in REJECTED_EVENTS}
        # NaN and Infinity are not JSON, but Python's (and some SDKs') encoders write them
        out["nan"] = _post(client, '{"type": "track", "messageId": "u-nan", "userId": NaN, "event": "E"}', "/v1/track")
        out["inf"] = _post(client, '{"type": "track", "messageId": "u-inf", "userId": -Infinity, "event": "E"}',
                           "/v1/track")
        huge = "1" + "0" * 5000
        out["huge"] = _post(client, '{"batch": [' + json.dumps(_track("ok-1")) + ', {"type": "track", '
                            '"messageId": "h-1", "userId": "u1", "event": "Order Completed", "properties": '
                            '{"order_id": "H1", "revenue": ' + huge + "}}]}", "/v1/batch")
        out["paris"] = _post(client, _track("z-paris", timestamp="2024-03-31T14:05:00 Europe/Paris"))
        out["lord_howe"] = _post(client, _track("z-lh", timestamp="2024-04-07T01:45:00 Australia/Lord_Howe"))
        out["numeric_id"] = _post(client, _track("u-int", userId=12345))
        # refunds: u1 and u2 each buy; u2 refunds u1's order (was booked on u2), then with the override
        out["orders"] = _post(client, {"batch": [_order("r-o1", "R1", revenue=30), _order("r-o2", "R2", "u2", revenue=20)]},
                              "/v1/batch")
        out["refunds"] = {mid: _post(client, ev) for mid, ev in [
            ("r-other", _refund("r-other", "R1", "u2", total=30)),
            ("r-override", _refund("r-override", "R1", "u2", total=10, refund_override=True)),
            ("r-own", _refund("r-own", "R2", "u2", total=5)),
            ("r-unknown", _refund("r-unknown", "NOPE", "u2", total=5)),
            ("r-unknown-full", _refund("r-unknown-full", "NOPE2", "u2")),
            ("r-flag", _refund("r-flag", "R2", "u2", total=1, refund_override="yes")),
        ]}
        # in one batch: an order by u3 and a refund of it by u4 (refused) and by u3 (stored)
        out["group"] = _post(client, {"batch": [_order("g-o", "G1", "u3", revenue=8),
                                                _refund("g-other", "G1", "u4", total=8),
                                                _refund("g-own", "G1", "u3", total=2)]}, "/v1/batch")
        out["dead"] = {d["message_id"]: d["reason"] for d in client.get(
            "/v1/dead-letters", params={"limit": 1000}, auth=(keys["admin"], "")).json()}
    with duckdb.connect(str(db), read_only=True) as con:
        out["transactions"] = {r[0]: r[1:] for r in con.execute(
            "SELECT order_id, customer_id, amount FROM transactions").fetchall()}
        out["events"] = {r[0]: r[1:] for r in con.execute(
            "SELECT message_id, customer_id, occurred_at FROM events").fetchall()}
    return out


@pytest.mark.parametrize(("mid", "event", "reason"), REJECTED_EVENTS, ids=[r[0] for r in REJECTED_EVENTS])
def test_implausible_event_is_a_400_and_a_dead_letter(sent, mid, event, reason):
    r = sent["rejected"][mid]
    assert r.status_code == 400, (r.status_code, r.text)
    assert r.json()["error"].startswith(reason), r.json()["error"]
    assert sent["dead"][mid].startswith(reason)
    assert mid not in sent["events"]


def test_nan_and_infinite_user_ids_are_rejected_not_merged(sent):
    for key, mid in (("nan", "u-nan"), ("inf", "u-inf")):
        assert sent[key].status_code == 400, sent[key].text
        assert sent["dead"][mid] == "userId: must be a string (NaN and infinities are not ids)"
    assert not {"nan", "inf", "-inf"} & {e[0] for e in sent["events"].values()}


def test_an_integer_too_long_for_python_costs_only_its_event(sent):
    r = sent["huge"]
    assert r.status_code == 200, r.text  # a batch with a good and a bad event
    assert [x["messageId"] for x in r.json()["rejected"]] == ["h-1"]
    assert sent["dead"]["h-1"].startswith("Order Completed: properties.revenue is not a finite number")
    assert "ok-1" in sent["events"] and "H1" not in sent["transactions"]


def test_event_zone_names_are_honoured(sent):
    assert sent["paris"].status_code == 200, sent["paris"].text
    assert sent["events"]["z-paris"][1] == datetime(2024, 3, 31, 12, 5)  # UTC+2 since 01:00 UTC that day
    # Lord Howe: +11 in summer, +10:30 in winter; 01:45 on 7 April 2024 occurs twice, the first is +11
    assert sent["events"]["z-lh"][1] == datetime(2024, 4, 6, 14, 45)
    assert sent["events"]["u-int"][0] == "12345"  # an integer id is its digits


def test_refund_of_another_persons_order_is_refused_unless_overridden(sent):
    assert sent["orders"].status_code == 200
    tx = sent["transactions"]
    refused = "Order Refunded: order R1 belongs to another person"
    assert sent["refunds"]["r-other"].status_code == 400 and sent["dead"]["r-other"].startswith(refused)
    assert "u1" not in sent["dead"]["r-other"]  # the answer names nobody
    assert sent["refunds"]["r-override"].status_code == 200
    assert tx["R1/refund/r-override"] == ("u1", -10.0)  # booked on the order's person, not the sender
    assert tx["R2/refund/r-own"] == ("u2", -5.0)
    assert not any(k.startswith("R1/refund/r-other") for k in tx)
    assert sent["dead"]["r-flag"] == "Order Refunded: properties.refund_override must be true or false"


def test_refund_of_an_unknown_order_is_refused_with_or_without_amount(sent):
    for mid, oid in (("r-unknown", "NOPE"), ("r-unknown-full", "NOPE2")):
        assert sent["refunds"][mid].status_code == 400
        assert sent["dead"][mid].startswith(f"Order Refunded: order {oid} is not stored")
    assert not any(k.startswith("NOPE") for k in sent["transactions"])


def test_refund_in_the_same_batch_as_its_order(sent):
    r = sent["group"]
    assert r.status_code == 200 and [x["messageId"] for x in r.json()["rejected"]] == ["g-other"]
    assert sent["transactions"]["G1"] == ("u3", 8.0)
    assert sent["transactions"]["G1/refund/g-own"] == ("u3", -2.0)
    assert sent["dead"]["g-other"].startswith("Order Refunded: order G1 belongs to another person")
