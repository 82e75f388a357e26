"""A segment's member list on a large base (not a test): ``patron segments --members`` (the
engine's ``COPY`` to CSV and Parquet) and ``GET /v1/segments/{name}/members`` (the whole segment
streamed as CSV, and JSON pages deep in the list), on a ``customer_profiles`` table of ``--customers``
synthetic rows (random statuses, tiers and CLV; the other profile columns NULL).

Prints medians over ``--runs``: seconds, members per second, file size, and this process's peak
resident memory after each part (the route streams 10,000 members at a time, so its peak should not
grow with the segment; a CSV of the whole base held in memory would be ~``size`` MB more).

    .venv/bin/python benchmarks/bench_segment_members.py --customers 1000000 --runs 3
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _measure import peak_rss_mb

SEGMENT = "everyone"
RULES = {"segments": {SEGMENT: "clv >= 0", "valuable": "value_tier in [platinum, gold]"}}


def build(db: Path, n: int) -> None:
    """``customer_profiles`` with ``n`` synthetic rows (every profile column, most NULL)."""
    from patron.data.store import connect
    from patron.relationship.profiles import PROFILE_COLUMNS

    made = {
        "customer_id": "printf('c%09d', i)",
        "as_of": "DATE '2024-12-31'",
        "status": "(['new', 'active', 'cooling', 'at_risk', 'lapsed', 'lost'])[1 + (hash(i) % 6)::INT]",
        "value_tier": "(['platinum', 'gold', 'silver', 'bronze'])[1 + (hash(i * 7) % 4)::INT]",
        "clv": "(hash(i * 13) % 100000) / 100.0",
        "clv_lower": "(hash(i * 13) % 100000) / 150.0",
        "clv_upper": "(hash(i * 13) % 100000) / 70.0",
        "probability_alive": "(hash(i * 17) % 1000) / 1000.0",
        "n_orders": "1 + hash(i * 19) % 20",
        "total_spend": "(hash(i * 23) % 500000) / 100.0",
    }
    select = ", ".join(f"CAST({made.get(c, 'NULL')} AS {t}) AS \"{c}\"" for c, t in PROFILE_COLUMNS.items())
    with connect(db) as con:
        con.execute(f"CREATE TABLE customer_profiles AS SELECT {select} FROM range({int(n)}) AS r(i)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--pages", type=int, default=20, help="JSON pages timed (limit 1000, cursors spread over the list)")
    args = parser.parse_args()

    from fastapi.testclient import TestClient

    from patron.relationship.segments import write_members
    from patron.service import create_app

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        db = root / "members.duckdb"
        started = time.perf_counter()
        build(db, args.customers)
        print(f"customer_profiles: {args.customers:,} rows built in {time.perf_counter() - started:.1f} s")

        for suffix in ("csv", "parquet"):
            seconds, size = [], 0
            for run in range(args.runs):
                out = root / f"m{run}.{suffix}"
                t = time.perf_counter()
                count = write_members(db, SEGMENT, out, config=RULES)
                seconds.append(time.perf_counter() - t)
                size = out.stat().st_size
                out.unlink()
            med = statistics.median(seconds)
            print(f"patron segments --members ({suffix}): {count:,} members, median {med:.2f} s "
                  f"({count / med:,.0f} members/s), file {size / 1e6:.1f} MB, peak RSS {peak_rss_mb():.0f} MiB")

        from patron.service.auth import create_key

        auth = (create_key(db, "read", name="bench"), "")
        with TestClient(create_app(db, config=RULES)) as client:
            before = peak_rss_mb()
            seconds, size = [], 0
            for _ in range(args.runs):
                t = time.perf_counter()
                with client.stream("GET", f"/v1/segments/{SEGMENT}/members", params={"format": "csv"}, auth=auth) as r:
                    size = sum(len(chunk) for chunk in r.iter_bytes())
                seconds.append(time.perf_counter() - t)
            med = statistics.median(seconds)
            print(f"GET /v1/segments/{SEGMENT}/members?format=csv (whole segment, streamed): median {med:.2f} s "
                  f"({args.customers / med:,.0f} members/s), {size / 1e6:.1f} MB; peak RSS {before:.0f} -> "
                  f"{peak_rss_mb():.0f} MiB")
            from patron.service.segments_api import encode_cursor

            step = max(1, args.customers // args.pages)
            cursors = [encode_cursor(f"c{i:09d}") for i in range(0, args.customers, step)][: args.pages]
            page_seconds = []
            for cursor in cursors:
                t = time.perf_counter()
                r = client.get(f"/v1/segments/{SEGMENT}/members", params={"limit": 1000, "cursor": cursor}, auth=auth)
                page_seconds.append(time.perf_counter() - t)
                assert r.status_code == 200 and len(r.json()["members"]) == 1000, r.text[:200]
            print(f"GET /v1/segments/{SEGMENT}/members?limit=1000&cursor=... (JSON page): median "
                  f"{1000 * statistics.median(page_seconds):.0f} ms over {len(page_seconds)} pages spread over the list")


if __name__ == "__main__":
    main()
