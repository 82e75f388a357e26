"""What the suppression list costs the service's writer per event (not a test).

Screens groups of events (``patron.service.screen.screen``, what the writer runs on every group
before identity resolution) against a suppression list of ``--digests`` erased identifiers, none of
which the events carry (the common case once someone was erased): events of ``--users`` users
(a userId and an anonymousId each, so identifiers repeat as in real traffic), ``--events`` per group,
``--groups`` groups through one writer state. Prints the median cost per event, for an empty list
(nobody erased yet: the list is not consulted) and for the filled one.

    .venv/bin/python benchmarks/bench_suppression.py --digests 1000 --events 5000 --users 500
"""

from __future__ import annotations

import argparse
import statistics
import time
from datetime import UTC, datetime, timedelta

import duckdb

from patron.people.identity.keyed import database_key, keyed_digest
from patron.people.rights.suppress import Suppression, suppression_ddl
from patron.service.events_api import prepare
from patron.service.screen import screen
from patron.service.settings import ServiceRules
from patron.service.state import ServiceState


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--digests", type=int, default=1000)
    ap.add_argument("--events", type=int, default=5000)
    ap.add_argument("--users", type=int, default=500)
    ap.add_argument("--groups", type=int, default=7)
    args = ap.parse_args()
    rules = ServiceRules()
    state = ServiceState(db=":memory:", rules=rules)
    now = datetime.now(UTC).replace(tzinfo=None)
    for filled in (False, True):
        con = duckdb.connect()
        key = database_key(con)
        con.execute(suppression_ddl())
        if filled:
            gone = [keyed_digest(key, "user_id", f"gone-{i}") for i in range(args.digests)]
            con.execute("INSERT INTO suppressed_identifiers SELECT d, now() FROM (SELECT unnest(?) AS d)", [gone])
        supp = Suppression().load(con)
        per_event = []
        for g in range(args.groups):
            items = [prepare({"type": "track", "messageId": f"m{g}-{i}", "userId": f"u{i % args.users}",
                              "anonymousId": f"a{i % args.users}", "event": "Product Viewed",
                              "timestamp": "2024-01-01T00:00:00Z"},
                             call=None, state=state, received_at=now, limit=now + timedelta(days=1))
                     for i in range(args.events)]
            t = time.perf_counter()
            screen(con, items, rules, supp)
            per_event.append((time.perf_counter() - t) / len(items) * 1e6)
        label = f"{args.digests:,} digests" if filled else "empty list"
        print(f"{label}: first group {per_event[0]:.2f} us/event, median of the next {args.groups - 1}: "
              f"{statistics.median(per_event[1:]):.2f} us/event")


if __name__ == "__main__":
    main()
