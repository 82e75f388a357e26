"""Customer attributes and place on a large base (not a test): the parts a profile build adds and
a ``within_km`` rule, on ``--customers`` synthetic customers (a ``customers`` table whose JSON
attributes hold a city of the bundled table, for 30% a lat/lon, a channel, a flag and a day) and
eight stores.

Prints medians over ``--runs`` (seconds) of:

* ``attribute_schema``: the keys and the type inference, SQL over every customer's JSON;
* ``attributes_sql``: every customer's typed attribute columns (counted, not fetched);
* ``place_sql``: locations (own lat/lon, else the city geocoded by a join with the city table)
  into a temporary table, then H3 cells (h3 once per distinct point) and the nearest store
  (NumPy, one pass per store) of the distinct points;
* ``within_km('s1', 5)`` over a profiles-like table of the located customers, with the H3
  pre-filter and without it (latitude band and haversine only), and the ratio;

and this process's peak resident memory.

    .venv/bin/python benchmarks/bench_place.py --customers 1000000 --runs 3 --out /work/cache/h20-place/bench
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _measure import peak_rss_mb

STORES = [("s1", 40.71427, -74.00597), ("s2", 34.05223, -118.24368), ("s3", 41.85003, -87.65005), ("s4", 29.76328, -95.36327),
          ("s5", 33.44838, -112.07404), ("s6", 39.95238, -75.16362), ("s7", 47.60621, -122.33207), ("s8", 39.73915, -104.98470)]


def build(db: Path, n: int) -> None:
    """``customers`` with ``n`` rows of JSON attributes, and eight stores."""
    from patron.data.datasets import data_path
    from patron.data.dialect import DUCKDB
    from patron.data.store import connect

    cities = DUCKDB.literal(str(data_path("cities.csv")))
    with connect(str(db)) as con:
        con.execute(f"""CREATE OR REPLACE TEMP TABLE c AS SELECT row_number() OVER () AS k, city, lat, lon
            FROM (SELECT * FROM read_csv({cities}, header = true) WHERE country_code = 'US' ORDER BY population DESC LIMIT 200)""")
        con.execute(f"""INSERT INTO customers (customer_id, attributes)
            SELECT printf('c%09d', i), json_object(
                'city', c.city, 'country', 'US',
                'lat', CASE WHEN hash(i * 3) % 10 < 3 THEN round(c.lat + (CAST(hash(i * 5) % 2000 AS INTEGER) - 1000) / 10000.0, 5) END,
                'lon', CASE WHEN hash(i * 3) % 10 < 3 THEN round(c.lon + (CAST(hash(i * 7) % 2000 AS INTEGER) - 1000) / 10000.0, 5) END,
                'channel', (['web', 'store', 'referral', 'catalog'])[1 + (hash(i * 11) % 4)::INT],
                'newsletter', CASE WHEN hash(i * 13) % 2 = 0 THEN 'true' ELSE 'false' END,
                'signup_date', strftime(DATE '2020-01-01' + CAST(hash(i * 17) % 1500 AS INTEGER), '%Y-%m-%d'))
            FROM range({int(n)}) AS t(i) JOIN c ON c.k = 1 + hash(i) % 200""")
        con.executemany("INSERT INTO stores (store_id, name, lat, lon, time_zone) VALUES (?, ?, ?, ?, 'America/New_York')",
                        [(s, s, a, b) for s, a, b in STORES])


def median_time(fn, runs: int) -> tuple[float, object]:
    times, out = [], None
    for _ in range(runs):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--customers", type=int, default=1_000_000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "out" / "place")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    db = args.out / f"place-{args.customers}.duckdb"
    if not db.exists():
        t0 = time.perf_counter()
        build(db, args.customers)
        print(f"built {args.customers:,} customers in {time.perf_counter() - t0:.1f} s -> {db}")

    from patron.data.store import connect, reader
    from patron.relationship.attributes import attribute_schema, attributes_sql
    from patron.relationship.place import (
        PLACE_COLUMNS,
        place_frame,
        place_sql,
        read_stores,
        within_km_sql,
    )

    with reader(str(db)) as con:
        reserved = frozenset(PLACE_COLUMNS) | {"latitude", "longitude"}
        t, schema = median_time(lambda: attribute_schema(con, reserved=reserved), args.runs)
        print(f"attribute_schema: {t:.2f} s ({', '.join(f'{a.name} {a.type}' for a in schema.columns)})")
        t, n = median_time(lambda: con.execute(f"SELECT count(*) FROM ({attributes_sql(schema)})").fetchone()[0], args.runs)
        print(f"attributes_sql: {t:.2f} s ({n:,} customers)")
        t, built = median_time(lambda: place_sql(con), args.runs)
        print(f"place_sql: {t:.2f} s ({len(built[1]['_p_points']):,} distinct points)")
        frame = place_frame(con)
        print(f"{int(frame['lat'].notna().sum()):,} located, {frame['h3_cell'].nunique():,} distinct H3 cells")
        stores = read_stores(con)
    with connect(str(db)) as con:
        con.register("f", frame)
        con.execute("CREATE OR REPLACE TABLE bench_profiles AS SELECT customer_id, lat, lon, h3_cell, 1.0 AS clv FROM f WHERE lat IS NOT NULL")
        con.unregister("f")
        for label, cell in (("with H3 pre-filter", "h3_cell"), ("latitude band only", None)):
            where = within_km_sql(stores["s1"], 5.0, lat="lat", lon="lon", cell=cell)
            t, n = median_time(lambda w=where: con.execute(f"SELECT count(*) FROM bench_profiles WHERE {w}").fetchone()[0], args.runs)
            print(f"within_km('s1', 5) {label}: {t * 1000:.0f} ms ({n:,} customers)")
    print(f"peak resident memory: {peak_rss_mb():,.0f} MB")


if __name__ == "__main__":
    main()
