"""Benchmark: what the plausibility rules (patron.data.ingest.plausible) cost, against the engines' bare casts.

Files. One DuckDB table of N text rows (default 2M) shaped like an export: a timestamp (half
``2024-03-31 14:05:00``, half ``2024-03-31T14:05:00Z``), an amount (``123.45``) and two ids.
Timed, each the median of ``--repeat`` runs of ``SELECT count(expr)``:

* ``timestamp_sql`` against ``TRY_CAST(x AS TIMESTAMP)`` (DuckDB's cast: no grammar, offsets dropped);
* ``number_sql`` against ``TRY_CAST(x AS DOUBLE)`` (which reads ``1_000`` as 1000);
* ``id_problem_sql`` on two id columns against ``upper(x)`` (one pass over the same characters).

Events. :func:`patron.data.ingest.plausible.parse_timestamp` against ``datetime.fromisoformat`` (no
grammar, no range) on an SDK's timestamp, and ``id_text`` against ``str.strip``, in microseconds.

    .venv/bin/python benchmarks/bench_plausible.py [--rows 2000000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import statistics
import time
import timeit
from datetime import datetime

import duckdb

from patron.data.ingest.plausible import (
    id_problem_sql,
    id_text,
    number_sql,
    parse_timestamp,
    timestamp_sql,
)


def _median_seconds(con: duckdb.DuckDBPyConnection, expr: str, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        con.execute(f"SELECT count({expr}) FROM t").fetchall()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def files(rows: int, repeat: int) -> None:
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    con.execute(f"""CREATE TABLE t AS SELECT
        CASE WHEN i % 2 = 0 THEN strftime(TIMESTAMP '2020-01-01' + to_seconds(i * 61), '%Y-%m-%d %H:%M:%S')
             ELSE strftime(TIMESTAMP '2020-01-01' + to_seconds(i * 61), '%Y-%m-%dT%H:%M:%SZ') END AS ts,
        CAST(round((i % 50000) / 100.0 + 1, 2) AS VARCHAR) AS amount,
        'c' || CAST(i % 200000 AS VARCHAR) AS customer_id, 'o' || CAST(i AS VARCHAR) AS order_id
        FROM range({rows}) r(i)""")
    pairs = [
        ("timestamp", timestamp_sql("ts"), "TRY_CAST(ts AS TIMESTAMP)"),
        ("number", number_sql("amount"), "TRY_CAST(amount AS DOUBLE)"),
        ("2 ids", f"({id_problem_sql('customer_id')}) || ({id_problem_sql('order_id')})",
         "upper(customer_id) || upper(order_id)"),
    ]
    print(f"files: {rows:,} rows, median of {repeat} (seconds; ns per row)")
    for name, rule, bare in pairs:
        r, b = _median_seconds(con, rule, repeat), _median_seconds(con, bare, repeat)
        print(f"  {name:10s} rule {r:6.3f} ({r / rows * 1e9:5.0f} ns)   bare {b:6.3f} ({b / rows * 1e9:5.0f} ns)   "
              f"ratio {r / b:5.2f}")


def events(repeat: int) -> None:
    stamp, uid = "2024-03-01T10:00:00.123Z", "user-12345"
    n = 100_000
    cases = [
        ("timestamp", lambda: parse_timestamp(stamp), lambda: datetime.fromisoformat(stamp)),
        ("id", lambda: id_text(uid), lambda: uid.strip()),
    ]
    print(f"events: median of {repeat} x {n:,} calls (microseconds per call)")
    for name, rule, bare in cases:
        r = statistics.median(timeit.repeat(rule, number=n, repeat=repeat)) / n * 1e6
        b = statistics.median(timeit.repeat(bare, number=n, repeat=repeat)) / n * 1e6
        print(f"  {name:10s} rule {r:6.2f}   bare {b:6.2f}   ratio {r / b:5.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    files(args.rows, args.repeat)
    events(args.repeat)


if __name__ == "__main__":
    main()
