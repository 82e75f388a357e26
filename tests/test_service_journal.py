"""The journal (patron.service.journal): acknowledged = durable in an append-only log; applied to
DuckDB in log order with the position saved in the same transaction; re-applying is harmless."""

from __future__ import annotations

import asyncio
import os
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb

from patron.service.journal import Journal, encode, journal_dir, read_segment


def _journal(tmp_path: Path, **kw: Any) -> Journal:
    j = Journal(tmp_path / "j", "abc", **kw)
    assert j.recover(0) == []
    return j


def _collect(j: Journal) -> tuple[list[tuple[int, Any]], list[tuple[Any, BaseException | None]]]:
    delivered: list[tuple[int, Any]] = []
    acked: list[tuple[Any, BaseException | None]] = []
    j.deliver = lambda records: delivered.extend((s, items) for s, items, _ in records)
    j.acknowledge = lambda records, exc: acked.extend((tag, exc) for _, _, tag in records)
    return delivered, acked


def test_records_are_delivered_in_order_and_read_back_after_a_restart(tmp_path: Path) -> None:
    j = _journal(tmp_path)
    delivered, acked = _collect(j)
    j.start()
    for n in range(50):
        j.append([f"item-{n}"], tag=n)
    j.stop()
    assert delivered == [(n + 1, [f"item-{n}"]) for n in range(50)]
    assert sorted(t for t, _ in acked) == list(range(50)) and all(e is None for _, e in acked)
    assert j.syncs <= 50
    again = Journal(tmp_path / "j", "abc")
    assert again.recover(20) == [(n + 1, [f"item-{n}"]) for n in range(20, 50)]
    assert again.durable == 50  # numbering goes on after the last record read


def test_a_torn_tail_is_cut_and_later_records_follow_a_whole_one(tmp_path: Path) -> None:
    j = _journal(tmp_path)
    _collect(j)
    j.start()
    j.append(["a"])
    j.append(["b"])
    j.stop()
    [seg] = list((tmp_path / "j").glob("*.log"))
    whole = seg.stat().st_size
    with seg.open("ab") as f:  # a crash in the middle of a write that was never acknowledged
        f.write(encode(3, ["torn"])[:-3])
    again = Journal(tmp_path / "j", "abc")
    assert [items for _, items in again.recover(0)] == [["a"], ["b"]]
    assert seg.stat().st_size == whole
    records, valid = read_segment(seg)
    assert [s for s, _ in records] == [1, 2] and valid == whole


def test_a_corrupt_record_ends_the_segment(tmp_path: Path) -> None:
    j = _journal(tmp_path)
    _collect(j)
    j.start()
    for x in ("a", "b", "c"):
        j.append([x])
    j.stop()
    [seg] = list((tmp_path / "j").glob("*.log"))
    data = bytearray(seg.read_bytes())
    second = len(encode(1, ["a"]))
    data[second + 20] ^= 0xFF  # a flipped byte in the second record's payload
    seg.write_bytes(bytes(data))
    assert [items for _, items in Journal(tmp_path / "j", "abc").recover(0)] == [["a"]]


def test_segments_roll_over_and_applied_ones_are_deleted(tmp_path: Path) -> None:
    j = _journal(tmp_path, segment_bytes=200)
    _collect(j)
    j.start()
    for n in range(30):
        j.append(["x" * 100, n])  # each record passes the segment size: one segment per group
        while j.durable < n + 1:
            pass
    segments = sorted((tmp_path / "j").glob("*.log"))
    assert len(segments) >= 10
    j.applied(30)
    j.append(["last"])  # the journal thread deletes applied segments after its next write
    j.stop()
    left = sorted((tmp_path / "j").glob("*.log"))
    assert len(left) <= 2
    assert [s for s, _ in Journal(tmp_path / "j", "abc").recover(30)] == [31]


def test_segments_of_another_database_are_left_alone(tmp_path: Path) -> None:
    j = _journal(tmp_path)
    _collect(j)
    j.start()
    j.append(["mine"])
    j.stop()
    other = Journal(tmp_path / "j", "zzz")
    assert other.recover(0) == []
    assert len(list((tmp_path / "j").glob("abc-*.log"))) == 1


def test_a_failed_write_acknowledges_nothing_and_appends_after_a_stop_fail(tmp_path: Path) -> None:
    j = _journal(tmp_path)
    delivered, acked = _collect(j)
    j.start()
    real = os.fdatasync

    def broken(fd: int) -> None:
        raise OSError(28, "No space left on device")

    os.fdatasync = broken  # type: ignore[assignment]
    try:
        j.append(["lost"], tag="t")
        deadline = 200
        while not acked and deadline:
            deadline -= 1
            asyncio.run(asyncio.sleep(0.01))
    finally:
        os.fdatasync = real
    j.stop()
    assert delivered == [] and len(acked) == 1 and isinstance(acked[0][1], OSError)
    assert Journal(tmp_path / "j", "abc").recover(0) == []  # the failed write left nothing behind
    try:
        j.append(["late"])
    except RuntimeError:
        pass
    else:  # pragma: no cover
        raise AssertionError("append after stop must fail")


# --- through the service ----------------------------------------------------------------------

T0 = "2024-03-01T10:00:00Z"


def _order(n: int) -> dict[str, Any]:
    return {"type": "track", "messageId": f"ord-{n}", "userId": f"u{n % 7}", "timestamp": T0,
            "event": "Order Completed", "properties": {"order_id": f"o{n}", "revenue": 10 + n, "currency": "USD"}}


def _items(state: Any, events: list[dict[str, Any]]) -> list[Any]:
    from patron.service.items import Accepted
    from patron.service.mapping import map_event
    from patron.service.segment_spec import check_event

    now = datetime(2024, 3, 2)
    out = []
    for ev in events:
        checked = check_event(ev, call=None, received_at=now, future_limit=now + timedelta(days=1), max_bytes=32768)
        out.append(Accepted(checked, map_event(checked, state.rules)))
    return out


def _run(db: Path, fn: Any) -> Any:
    from patron.service.app import create_app

    app = create_app(db)

    async def go() -> Any:
        async with app.router.lifespan_context(app):
            return await fn(app.state.patron)

    return asyncio.run(go())


def test_records_a_crash_left_unapplied_are_applied_once_on_start(tmp_path: Path) -> None:
    """A crash after the journal's fsync and before the DuckDB commit: simulated by writing the
    records into the journal of a stopped service (its position saved as 0 but the first record
    also applied, as after a crash between an apply and a later record). On start every record
    is applied in order, the one already applied is a duplicate, each order is one row, and the
    saved position is the last record."""
    db = tmp_path / "s.duckdb"

    async def first(state: Any) -> Any:
        return await state.writer.submit(_items(state, [_order(0)]))

    assert [o.status for o in _run(db, first)] == ["stored"]
    with duckdb.connect(str(db)) as con:
        jid, pos = con.execute("SELECT journal_id, position FROM service_journal").fetchone()
        assert pos == 1
        con.execute("UPDATE service_journal SET position = 0")  # as if record 1 had to be applied again

    from patron.service.app import create_app

    state = create_app(db).state.patron
    records = [_items(state, [_order(0)]), _items(state, [_order(1), _order(2)]), _items(state, [_order(3)])]
    directory = journal_dir(db)
    for seg in directory.glob("*.log"):
        seg.unlink()
    with (directory / f"{jid}-{1:020d}.log").open("wb") as f:
        for seq, items in enumerate(records, start=1):
            f.write(encode(seq, items))

    async def second(state: Any) -> Any:
        with state.reading() as con:  # waits for the replayed records
            return con.execute("SELECT order_id FROM transactions ORDER BY order_id").fetchall()

    assert _run(db, second) == [("o0",), ("o1",), ("o2",), ("o3",)]
    with duckdb.connect(str(db), read_only=True) as con:
        assert con.execute("SELECT count(*), count(DISTINCT message_id) FROM events").fetchone() == (4, 4)
        assert con.execute("SELECT position FROM service_journal").fetchone()[0] == 3
    assert list(directory.glob("*.log")) == []  # a clean stop deletes the applied segments


def test_an_acknowledged_event_is_readable_at_once(tmp_path: Path) -> None:
    """Read-your-writes: the answer comes from the journal, and a read after it waits for the
    apply (state.reading)."""
    db = tmp_path / "s.duckdb"

    async def go(state: Any) -> Any:
        out = []
        for n in range(20):
            await state.writer.submit(_items(state, [_order(n)]))
            with state.reading() as con:
                out.append(con.execute("SELECT count(*) FROM transactions").fetchone()[0])
        return out

    assert _run(db, go) == list(range(1, 21))


def test_a_refund_waits_for_the_database_and_gets_its_real_outcome(tmp_path: Path) -> None:
    db = tmp_path / "s.duckdb"
    refund = {"type": "track", "messageId": "rf-1", "userId": "u1", "timestamp": T0, "event": "Order Refunded",
              "properties": {"order_id": "nope", "revenue": 5}}

    async def go(state: Any) -> Any:
        return await state.writer.submit(_items(state, [refund]))

    [outcome] = _run(db, go)
    assert outcome.status == "rejected" and "order nope is not stored" in (outcome.error or "")


def test_a_group_whose_commit_fails_is_kept_and_applied_later(tmp_path: Path, monkeypatch: Any) -> None:
    """The database fails (an I/O error) on the first commits after the answer: the events were
    acknowledged, so the writer keeps the group and tries again; each order ends up stored once."""
    import duckdb as ddb

    from patron.service import writer as writer_module

    real = writer_module.store
    failures = [2]

    def flaky(cur: Any, items: Any, *args: Any) -> Any:
        if failures[0] > 0 and any(getattr(getattr(it, "event", None), "message_id", "") == "ord-1" for it in items):
            failures[0] -= 1
            raise ddb.IOException("disk went away")
        return real(cur, items, *args)

    monkeypatch.setattr(writer_module, "store", flaky)
    monkeypatch.setattr(writer_module, "RETRY_S", 0.05)
    db = tmp_path / "s.duckdb"

    async def go(state: Any) -> Any:
        answers = [await state.writer.submit(_items(state, [_order(n)])) for n in range(3)]
        with state.reading() as con:  # waits until the retried group is applied
            rows = con.execute("SELECT order_id FROM transactions ORDER BY order_id").fetchall()
        return answers, rows

    answers, rows = _run(db, go)
    assert [[o.status for o in a] for a in answers] == [["stored"]] * 3
    assert rows == [("o0",), ("o1",), ("o2",)]
    assert failures == [0]


def test_a_journaled_event_is_read_back_whole_without_its_dict_in_the_record(tmp_path: Path) -> None:
    """An event is journaled without its decoded ``raw`` (rebuilt from ``payload`` when read), and
    reads back with every field equal to the event written, ``raw`` included."""
    from patron.service.events_api import prepare
    from patron.service.items import Accepted
    from patron.service.segment_spec import future_limit
    from patron.service.settings import ServiceRules

    class _State:
        rules = ServiceRules()

    received = datetime(2024, 3, 1, 12, 0, 0)
    raw = {"type": "track", "event": "Order Completed", "userId": "u-7", "messageId": "m-7",
           "timestamp": "2024-03-01T11:59:00.250Z", "sentAt": "2024-03-01T11:59:30Z",
           "context": {"traits": {"email": "A@B.example"}, "locale": "fr-FR"},
           "properties": {"order_id": "o-7", "revenue": 12.5, "currency": "eur", "note": "café ☕", "n": [1, 2.0, None]}}
    item = prepare(raw, call=None, state=_State(), received_at=received,  # type: ignore[arg-type]
                   limit=future_limit(received, 24))
    assert isinstance(item, Accepted)
    expected_raw = {**raw}
    record = encode(1, [item])
    assert record.count("café ☕".encode()) == 1  # in the payload only, not in a pickled dict beside it
    path = tmp_path / "seg.log"
    path.write_bytes(record)
    (back,), _ = read_segment(path)
    got = back[1][0]
    assert got.event.raw == expected_raw
    for name in ("message_id", "type", "event", "user_id", "anonymous_id", "previous_id", "group_id",
                 "occurred_at", "sent_at", "received_at", "payload"):
        assert getattr(got.event, name) == getattr(item.event, name), name
    assert got.event.occurred_at == datetime(2024, 3, 1, 11, 59, 30, 250000)  # skew-corrected by hand
    assert got.mapped == item.mapped


def test_items_of_every_kind_read_back_equal_to_what_was_journaled(tmp_path: Path) -> None:
    """Accepted events whose mapping fills each field of ``Mapped`` (identify traits, an order, a
    refund, a contact, Segment's consent categories) and a dead letter come back from a journal
    segment equal, field by field, to the items written (``Accepted`` and ``Mapped`` pickle by
    ``__reduce__``: a field dropped or two swapped fails here)."""
    from dataclasses import fields

    from patron.service.events_api import prepare
    from patron.service.items import Accepted, Rejected
    from patron.service.mapping import Mapped
    from patron.service.segment_spec import future_limit
    from patron.service.settings import ServiceRules

    class _State:
        rules = ServiceRules()

    received = datetime(2024, 3, 1, 12, 0, 0)
    at = "2024-03-01T11:59:00Z"
    raws = [
        {"type": "identify", "userId": "u-1", "anonymousId": "a-1", "messageId": "m-1", "timestamp": at,
         "traits": {"email": "X@Y.example", "plan": "pro"}},
        {"type": "track", "event": "Order Completed", "userId": "u-1", "messageId": "m-2", "timestamp": at,
         "properties": {"order_id": "o-1", "revenue": 30.0, "currency": "EUR"}},
        {"type": "track", "event": "Order Refunded", "userId": "u-1", "messageId": "m-3", "timestamp": at,
         "properties": {"order_id": "o-1", "refund_id": "r-1", "amount": 10.0}},
        {"type": "track", "event": "Email Delivered", "userId": "u-1", "messageId": "m-4", "timestamp": at,
         "properties": {"email_id": "e-1", "campaign_id": "c-1"}},
        {"type": "track", "event": "Segment Consent Preference Updated", "userId": "u-1", "messageId": "m-5",
         "timestamp": at, "context": {"consent": {"categoryPreferences": {"Marketing": True, "Ads": False}}}},
        {"type": "track", "userId": "u-1", "messageId": "m-6", "timestamp": at},  # no event name: dead letter
    ]
    items = [prepare(raw, call=None, state=_State(), received_at=received,  # type: ignore[arg-type]
                     limit=future_limit(received, 24)) for raw in raws]
    accepted = [it for it in items if isinstance(it, Accepted)]
    assert len(accepted) == 5 and isinstance(items[-1], Rejected)
    filled = {f.name for f in fields(Mapped) if any(getattr(a.mapped, f.name) for a in accepted)}
    assert filled == {"transactions", "refunds", "contacts", "consents", "traits", "identifiers"}
    path = tmp_path / "seg.log"
    path.write_bytes(encode(7, items))
    (back,), _ = read_segment(path)
    assert back[0] == 7
    assert back[1] == items
    for got, want in zip(back[1][:5], accepted, strict=True):
        for f in fields(Mapped):
            assert getattr(got.mapped, f.name) == getattr(want.mapped, f.name), f.name


def test_full_collections_are_rarer_while_the_writer_runs_and_restored_after(tmp_path: Path) -> None:
    """The writer raises the third GC threshold to FULL_COLLECTION_EVERY while it runs (the
    backlog of journaled items is traversed by every full collection) and puts back the
    thresholds it found when it stops."""
    import gc

    from patron.service.writer import FULL_COLLECTION_EVERY

    before = gc.get_threshold()
    gc.set_threshold(before[0], before[1], 7)  # a planted value, to see it restored
    try:
        async def go(state: Any) -> Any:
            await state.writer.submit(_items(state, [_order(1)]))
            return gc.get_threshold()

        seen = _run(tmp_path / "s.duckdb", go)
        assert seen == (before[0], before[1], FULL_COLLECTION_EVERY)
        assert gc.get_threshold() == (before[0], before[1], 7)
    finally:
        gc.set_threshold(*before)
