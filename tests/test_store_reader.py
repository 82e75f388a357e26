"""The process's reading engine (:func:`patron.data.store.reader`): a database file is attached to it
only for the length of a block, so that writers (here or in another process) are never locked out
and readers never see a stale copy; a forked child gets its own engine; limits follow each call."""

from __future__ import annotations

import multiprocessing
import subprocess
import sys
import textwrap
from concurrent.futures import ThreadPoolExecutor

import pandas as pd
import pytest

import patron
from patron.data.store import connect, reader
from patron.errors import InputError


def _ingest(db: str, rows: list[tuple[str, str, str, float]], tmp_path, name: str) -> None:
    frame = pd.DataFrame(rows, columns=["customer_id", "order_id", "occurred_at", "amount"])
    path = tmp_path / f"{name}.csv"
    frame.to_csv(path, index=False)
    patron.ingest(str(path), kind="transactions", db=db)


def _write_in_child(db: str) -> subprocess.CompletedProcess[str]:
    """Open ``db`` read-write in another process (DuckDB refuses while any process holds it)."""
    code = f"import duckdb; c = duckdb.connect({db!r}); c.execute('CHECKPOINT'); c.close()"
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)


def test_a_writer_sees_no_lock_after_a_block_and_readers_no_stale_rows(db, tmp_path):
    _ingest(db, [("a", "o1", "2024-01-01", 10.0), ("a", "o2", "2024-01-09", 5.0)], tmp_path, "first")
    first = patron.summary(db, period="W", end="2024-03-31")
    assert first.set_index("customer_id").loc["a", "frequency"] == 1
    with reader(db) as con:
        assert con.execute("SELECT count(*) FROM transactions").fetchall()[0][0] == 2
        held = _write_in_child(db)
        assert held.returncode != 0 and "lock" in held.stderr.lower()
    free = _write_in_child(db)
    assert free.returncode == 0, free.stderr
    # A write in this process after a block (another instance) shows in the next block.
    _ingest(db, [("b", "o3", "2024-02-01", 7.0)], tmp_path, "second")
    second = patron.summary(db, period="W", end="2024-03-31").set_index("customer_id")
    assert sorted(second.index) == ["a", "b"]
    with connect(db) as con:
        con.execute("DELETE FROM transactions WHERE customer_id = 'a'")
    assert list(patron.summary(db, period="W", end="2024-03-31")["customer_id"]) == ["b"]


def test_nested_blocks_share_one_attachment_released_by_the_last(db, tmp_path):
    _ingest(db, [("a", "o1", "2024-01-01", 10.0)], tmp_path, "rows")
    with reader(db) as outer:
        with reader(db) as inner:
            assert inner.execute("SELECT current_database()").fetchall() == outer.execute("SELECT current_database()").fetchall()
        assert outer.execute("SELECT count(*) FROM transactions").fetchall()[0][0] == 1
        assert _write_in_child(db).returncode != 0
    assert _write_in_child(db).returncode == 0


def test_two_files_at_once_each_see_their_own_tables(tmp_path):
    one, two = str(tmp_path / "one.duckdb"), str(tmp_path / "two.duckdb")
    _ingest(one, [("a", "o1", "2024-01-01", 1.0)], tmp_path, "one")
    _ingest(two, [("b", "o1", "2024-01-01", 1.0), ("c", "o2", "2024-01-02", 1.0)], tmp_path, "two")
    with reader(one) as a, reader(two) as b:
        assert a.execute("SELECT list(customer_id) FROM transactions").fetchall()[0][0] == ["a"]
        assert sorted(b.execute("SELECT list(customer_id) FROM transactions").fetchall()[0][0]) == ["b", "c"]


def test_threads_summarising_one_file_at_once_share_it_and_release_it(db, tmp_path):
    rows = [(f"c{i % 40}", f"o{i}", f"2024-{1 + i % 6:02d}-{1 + i % 27:02d}", float(i % 13)) for i in range(400)]
    _ingest(db, rows, tmp_path, "rows")
    alone = patron.summary(db, period="W", end="2024-06-30").sort_values("customer_id", ignore_index=True)
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(lambda _: patron.summary(db, period="W", end="2024-06-30"), range(12)))
    for result in results:
        pd.testing.assert_frame_equal(result.sort_values("customer_id", ignore_index=True), alone)
    assert _write_in_child(db).returncode == 0


def test_limits_follow_each_call(db, tmp_path):
    _ingest(db, [("a", "o1", "2024-01-01", 1.0)], tmp_path, "rows")
    with reader(db) as con:
        default_limit = con.execute("SELECT current_setting('memory_limit')").fetchall()[0][0]
        default_threads = con.execute("SELECT current_setting('threads')").fetchall()[0][0]
    with reader(db, memory_limit="300MB", threads=1) as con:
        assert con.execute("SELECT current_setting('threads')").fetchall()[0][0] == 1
        assert con.execute("SELECT current_setting('memory_limit')").fetchall()[0][0] != default_limit
    with reader(db) as con:
        assert con.execute("SELECT current_setting('memory_limit')").fetchall()[0][0] == default_limit
        assert con.execute("SELECT current_setting('threads')").fetchall()[0][0] == default_threads


def _summary_rows(db: str, queue) -> None:
    queue.put(len(patron.summary(db, period="W", end="2024-03-31")))


def test_a_forked_child_reads_with_its_own_engine(db, tmp_path):
    _ingest(db, [("a", "o1", "2024-01-01", 1.0), ("b", "o2", "2024-01-02", 1.0)], tmp_path, "rows")
    assert len(patron.summary(db, period="W", end="2024-03-31")) == 2  # the parent's engine exists
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    child = ctx.Process(target=_summary_rows, args=(db, queue))
    child.start()
    child.join(timeout=120)
    assert child.exitcode == 0, "the forked child failed or hung on its parent's engine"
    assert queue.get(timeout=5) == 2


def test_missing_and_foreign_files_are_one_line_errors(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        with reader(str(tmp_path / "none.duckdb")):
            pass
    foreign = tmp_path / "notes.duckdb"
    foreign.write_text("not a database\n")
    with pytest.raises(InputError, match="cannot open database") as caught:
        with reader(str(foreign)):
            pass
    assert "\n" not in str(caught.value)


def test_a_file_held_by_a_writing_process_is_a_clear_error(db, tmp_path):
    _ingest(db, [("a", "o1", "2024-01-01", 1.0)], tmp_path, "rows")
    holder = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(f"""
            import duckdb, sys
            con = duckdb.connect({db!r})
            print("held", flush=True)
            sys.stdin.readline()
        """)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(InputError, match=f"cannot open database {db}"):
            with reader(db):
                pass
    finally:
        holder.communicate("\n", timeout=60)
    with reader(db) as con:  # a failed attach leaves nothing behind
        assert con.execute("SELECT count(*) FROM transactions").fetchall()[0][0] == 1
