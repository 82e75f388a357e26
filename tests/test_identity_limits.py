"""Identity work stays proportional to what changed (issue 18): one person's cluster growing large
does not make every later batch slower.

Work is counted, not timed: the Python lines executed inside :mod:`patron.identity` per batch
(``sys.settrace``), a deterministic measure of the in-memory work (a loop over a cluster's
identifiers is one line event per identifier).
"""

from __future__ import annotations

import sys
from datetime import datetime, timedelta
from pathlib import Path

import patron.identity
from patron.identity import Resolver
from patron.store import connect

IDENTITY_DIR = str(Path(patron.identity.__file__).parent)
T0 = datetime(2024, 5, 1, 9, 0)


def _lines_executed(fn) -> int:
    """Line events inside patron.identity while ``fn()`` runs."""
    count = 0

    def local(frame, event, arg):
        nonlocal count
        if event == "line":
            count += 1
        return local

    def global_(frame, event, arg):
        return local if frame.f_code.co_filename.startswith(IDENTITY_DIR) else None

    sys.settrace(global_)
    try:
        fn()
    finally:
        sys.settrace(None)
    return count


def _hub_batch(b: int, n: int) -> list[tuple[str, datetime, str, str]]:
    """``n`` identify events each linking a new anonymousId to userId ``hub``."""
    rows = []
    for i in range(n):
        mid, ts = f"b{b}-m{i}", T0 + timedelta(seconds=b * n + i)
        rows += [(mid, ts, "user_id", "hub"), (mid, ts, "anonymous_id", f"b{b}-a{i}")]
    return rows


def test_linking_new_identifiers_to_a_large_person_costs_the_same_per_batch():
    """Six batches of 200 links to one userId: the person grows from 200 to 1,200 identifiers, and
    the work of a batch must not grow with it (on the code before issue 18 the last batch executed
    about 3.5 times the lines of the second: every link walked the whole person)."""
    with connect(":memory:") as con:
        resolver = Resolver(["user_id"], max_linked_identifiers=None)
        work = []
        for b in range(6):
            rows = _hub_batch(b, 200)
            con.execute("BEGIN")
            work.append(_lines_executed(lambda rows=rows: resolver.resolve(con, rows)))
            con.execute("COMMIT")
        n = con.execute("SELECT count(*) FROM identities WHERE customer_id = 'hub'").fetchone()[0]
    assert n == 1 + 6 * 200
    assert max(work[1:]) <= 1.2 * work[1], work
