"""Time the motivation query (patron.relationship.motivation) on a large base, beside the customer
summary of the same database as a reference.

Transactions are simulated by patron.value.simulate (BG/NBD + Gamma-Gamma, CDNOW parameters with
r = 1.0 as bench_summary.py: 6.4 orders a customer) and given a discount on a random 30% of orders
(DuckDB ``random()`` with a fixed seed); they are stored once in --cache (a DuckDB file reused by
later runs). Without campaigns, interactions, referrals or feedback the query reads the
transactions alone, as the profiles of a shop without those tables do. Printed: median wall time
of --repeat runs of ``motivations(db)`` (the query and the transfer of one row per customer to
pandas) and of ``patron.summary(db)``, their ratio, and the motivation mix.

Usage: .venv/bin/python benchmarks/bench_motivation.py [--customers 1000000] [--repeat 3]
           [--cache /work/cache/h20-motivation]
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import patron
from patron.data.store import connect, create_tables
from patron.relationship.motivation import motivations
from patron.value.simulate import write_simulated


def database(customers: int, cache: Path) -> Path:
    cache.mkdir(parents=True, exist_ok=True)
    db = cache / f"motivation-{customers}.duckdb"
    if db.exists():
        return db
    parquet = cache / f"transactions-{customers}.parquet"
    if not parquet.exists():
        write_simulated(parquet, customers, seed=0, r=1.0)
    with connect(db) as con:
        create_tables(con)
        con.execute("SELECT setseed(0.42)")
        con.execute(f"""INSERT INTO transactions (customer_id, order_id, occurred_at, amount, discount)
            SELECT CAST(customer_id AS VARCHAR), CAST(row_number() OVER () AS VARCHAR), occurred_at, amount,
                   CASE WHEN random() < 0.3 THEN round(amount * 0.2, 2) ELSE 0.0 END
            FROM read_parquet('{parquet}')""")
    return db


def mix(db: Path) -> list[tuple]:
    """The motivation query counted by motivation in the engine (what the mix over time runs per date)."""
    from patron.data.store import reader
    from patron.dates import default_as_of
    from patron.relationship.motivation import motivation_sql, sources

    with reader(db) as con:
        sql = motivation_sql(default_as_of(con), present=sources(con))
        return con.execute(f"SELECT motivation, count(*) FROM ({sql}) AS m GROUP BY motivation").fetchall()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--customers", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--cache", type=Path, default=Path("/work/cache/h20-motivation"))
    a = ap.parse_args()
    db = database(a.customers, a.cache)
    times: dict[str, list[float]] = {"motivations": [], "in engine": [], "summary": []}
    for _ in range(a.repeat):
        for name, call in (("motivations", lambda: motivations(db)), ("in engine", lambda: mix(db)),
                           ("summary", lambda: patron.summary(db, period="W"))):
            began = time.perf_counter()
            result = call()
            times[name].append(time.perf_counter() - began)
    m, e, s = (statistics.median(times[k]) for k in ("motivations", "in engine", "summary"))
    print(f"{len(result):,} customers; median of {a.repeat}: motivations (to pandas) {m:.2f} s, the same query counted "
          f"by motivation in the engine {e:.2f} s, summary {s:.2f} s; ratios to the summary {m / s:.2f}, {e / s:.2f}")
    print(motivations(db)["motivation"].value_counts().to_string())


if __name__ == "__main__":
    main()
