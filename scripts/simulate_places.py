"""Simulate the demo's customer attributes and locations and its stores (fixed seed).

Writes ``src/patron/data/datasets/data/demo_customers.csv`` (one row per customer of the CDNOW
sample, ids 0001-2357) and ``demo_stores.csv`` (eight stores). CDNOW has no customer data beyond
purchases, so these are **simulated**, documented in that folder's README:

* ``city``, ``country``: one of the 40 most populous US cities of the bundled ``cities.csv``
  (GeoNames), drawn with probability proportional to population;
* ``lat``, ``lon``: for 30% of customers only (the others are geocoded from their city by
  patron), the city centre plus a random offset of up to 20 km;
* ``region``: the US Census region of the city's state (Northeast, Midwest, South, West);
* ``acquisition_channel`` (web 50%, store 25%, referral 15%, catalog 10%), ``newsletter``
  (true/false, 40% true), ``signup_date`` (a day of 1996);
* stores: in eight of the cities, with their IANA time zones.

Run from the project root: ``python scripts/simulate_places.py``.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

SEED = 20
CUSTOMERS = 2357
DATA = Path(__file__).resolve().parents[1] / "src" / "patron" / "data" / "datasets" / "data"
CENSUS_REGIONS = {
    "Northeast": "CT ME MA NH RI VT NJ NY PA",
    "Midwest": "IL IN MI OH WI IA KS MN MO NE ND SD",
    "South": "DE DC FL GA MD NC SC VA WV AL KY MS TN AR LA OK TX",
    "West": "AZ CO ID MT NV NM UT WY AK CA HI OR WA",
}
STORES = [  # store_id, name, city
    ("store-nyc", "Manhattan", "New York City"), ("store-la", "Los Angeles", "Los Angeles"),
    ("store-chi", "Chicago Loop", "Chicago"), ("store-hou", "Houston", "Houston"),
    ("store-phx", "Phoenix", "Phoenix"), ("store-phl", "Philadelphia", "Philadelphia"),
    ("store-sea", "Seattle", "Seattle"), ("store-den", "Denver", "Denver"),
]


def main() -> None:
    rng = np.random.default_rng(SEED)
    cities = pd.read_csv(DATA / "cities.csv", dtype={"admin1_code": str}, keep_default_na=False)
    us = cities[cities["country_code"] == "US"].nlargest(40, "population").reset_index(drop=True)
    region_of = {state: region for region, states in CENSUS_REGIONS.items() for state in states.split()}
    pick = rng.choice(len(us), size=CUSTOMERS, p=us["population"] / us["population"].sum())
    chosen = us.iloc[pick].reset_index(drop=True)
    own = rng.random(CUSTOMERS) < 0.3
    dist, bearing = 20.0 * np.sqrt(rng.random(CUSTOMERS)), rng.uniform(0, 2 * math.pi, CUSTOMERS)
    lat = chosen["lat"] + np.degrees(dist * np.cos(bearing) / 6371.0088)
    lon = chosen["lon"] + np.degrees(dist * np.sin(bearing) / 6371.0088) / np.cos(np.radians(chosen["lat"]))
    out = pd.DataFrame({
        "customer_id": [f"{i:04d}" for i in range(1, CUSTOMERS + 1)],  # the sample ids of CDNOW_sample.txt
        "city": chosen["city"], "country": "US",
        "region": chosen["admin1_code"].map(region_of),
        "lat": np.where(own, lat.round(5), np.nan), "lon": np.where(own, lon.round(5), np.nan),
        "acquisition_channel": rng.choice(["web", "store", "referral", "catalog"], CUSTOMERS, p=[0.5, 0.25, 0.15, 0.1]),
        "newsletter": np.where(rng.random(CUSTOMERS) < 0.4, "true", "false"),
        "signup_date": (pd.Timestamp("1996-01-01") + pd.to_timedelta(rng.integers(0, 366, CUSTOMERS), unit="D")).strftime("%Y-%m-%d"),
    })
    out.to_csv(DATA / "demo_customers.csv", index=False)
    by_name = us.set_index("city")
    stores = pd.DataFrame([(sid, name, by_name.loc[c, "lat"], by_name.loc[c, "lon"], by_name.loc[c, "time_zone"],
                            region_of[by_name.loc[c, "admin1_code"]]) for sid, name, c in STORES],
                          columns=["store_id", "name", "lat", "lon", "time_zone", "region"])
    stores.to_csv(DATA / "demo_stores.csv", index=False)


if __name__ == "__main__":
    main()
