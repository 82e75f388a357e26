"""Stores' catchments and local campaign targets: customers and customer equity near each store.

:func:`catchments` gives, per store of the ``stores`` table (:data:`patron.data.schema.STORES`):
the customers within ``km`` (great circle, :func:`patron.relationship.place.haversine_sql`) and
their equity (sum of CLV, the profiles' currency), and the customers whose **nearest** store it
is (``nearest_store`` of the profiles) with their equity and mean distance. A customer may be
within ``km`` of several stores; the nearest-store counts partition the located customers.

:func:`local_targets` lists the customers within ``km`` of one store (and, optionally, of a
segment rule), with the store's time zone: what a local campaign (``store`` and ``within_km`` in a
campaign file, :mod:`patron.contact.consent.campaign`) targets and the local time its quiet hours
are read in.
"""

from __future__ import annotations

import math
import os
from typing import Any

import pandas as pd

from patron.data.dialect import DUCKDB
from patron.data.store import reader, table_exists
from patron.errors import InputError, NoDataError
from patron.relationship.place import EARTH_RADIUS_KM, haversine_sql, read_stores
from patron.relationship.profiles import PROFILE_TABLE
from patron.value.settings import ValueSettings

DEFAULT_KM = 5.0
"""Default catchment radius, km."""


def catchments_sql(km: float) -> str:
    """The SELECT of :func:`catchments` over ``stores`` and ``customer_profiles`` (with place columns)."""
    if not (math.isfinite(km) and km >= 0):
        raise InputError(f"km must be a number >= 0, got {km!r}", parameters=("km",))
    band = math.degrees(km / EARTH_RADIUS_KM) + 1e-9
    dist = haversine_sql("p.lat", "p.lon", "s.lat", "s.lon")
    return f"""WITH s AS (SELECT store_id, any_value(name) AS name, any_value(region) AS region, any_value(time_zone) AS time_zone,
        any_value(lat) AS lat, any_value(lon) AS lon FROM stores
      WHERE lat BETWEEN -90 AND 90 AND lon BETWEEN -180 AND 180 GROUP BY store_id),
near AS (SELECT s.store_id, count(p.customer_id) AS customers_within, COALESCE(sum(p.clv), 0.0) AS equity_within
    FROM s LEFT JOIN {PROFILE_TABLE} AS p ON p.lat BETWEEN s.lat - {band!r} AND s.lat + {band!r} AND {dist} <= {float(km)!r}
    GROUP BY s.store_id),
own AS (SELECT nearest_store AS store_id, count(*) AS customers_nearest, COALESCE(sum(clv), 0.0) AS equity_nearest,
        avg(nearest_store_km) AS mean_km_nearest FROM {PROFILE_TABLE} WHERE nearest_store IS NOT NULL GROUP BY nearest_store)
SELECT s.store_id, s.name, s.region, s.time_zone, s.lat, s.lon, near.customers_within, near.equity_within,
    COALESCE(own.customers_nearest, 0) AS customers_nearest, COALESCE(own.equity_nearest, 0.0) AS equity_nearest, own.mean_km_nearest
FROM s JOIN near ON near.store_id = s.store_id LEFT JOIN own ON own.store_id = s.store_id
ORDER BY near.equity_within DESC, s.store_id"""


def located(con: Any) -> None:
    if not table_exists(con, "stores") or not read_stores(con):
        raise NoDataError("no stores: ingest them with patron ingest --kind stores FILE (store_id, name, lat, lon, time_zone)")
    cols = {d[0] for d in con.execute(f"SELECT * FROM {PROFILE_TABLE} LIMIT 0").description}
    if not {"lat", "lon", "nearest_store"} <= cols:
        raise NoDataError("the customers have no locations: give the customers file lat/lon or city columns "
                          "(docs/place.md), then rebuild the profiles")


def catchments_on(con: Any, km: float = DEFAULT_KM) -> pd.DataFrame:
    """:func:`catchments` over the stored ``customer_profiles`` of the database open on ``con``
    (as they are: nothing is rebuilt), e.g. a running service's last refresh."""
    sql = catchments_sql(km)
    located(con)
    return con.execute(sql).df()


def catchments(db: str | os.PathLike[str] | None, *, km: float = DEFAULT_KM, config: Any = None, as_of: Any = None,
               settings: ValueSettings | None = None) -> pd.DataFrame:
    """Per store: ``store_id, name, region, time_zone, lat, lon, customers_within, equity_within``
    (customers within ``km`` km and their CLV sum), ``customers_nearest, equity_nearest,
    mean_km_nearest`` (customers whose nearest store it is); most equity within first. The
    profiles are built first when needed (:func:`patron.relationship.segments.ensure_profiles`)."""
    from patron.relationship.segments import ensure_profiles

    catchments_sql(km)  # a bad km fails before the profiles are built
    ensure_profiles(db, as_of=as_of, config=config, settings=settings)
    with reader(db) as con:
        return catchments_on(con, km)


def local_targets(db: str | os.PathLike[str] | None, store: str, *, km: float = DEFAULT_KM, rule: str | None = None,
                  config: Any = None, where: str = "store") -> pd.DataFrame:
    """The customers within ``km`` of ``store`` for whom ``rule`` (a segment name or rule; all
    when None) holds: ``customer_id, distance_km, store_id, store_time_zone``, nearest first. An
    unknown store is an :class:`InputError` starting with ``where``."""
    from patron.relationship.place import store_or_error
    from patron.relationship.segments import members

    if not (math.isfinite(km) and km >= 0):
        raise InputError(f"km must be a number >= 0, got {km!r}", parameters=("km",))
    with reader(db) as con:
        s = store_or_error(read_stores(con), store, where)
    # a rule-language string is quoted as a DuckDB literal ('' doubles a quote)
    target = f"within_km({DUCKDB.literal(store)}, {float(km)!r})"
    ids = members(db, target if rule is None else f"({_rule_of(db, rule, config)}) and {target}", config=config)
    lat_lon = _profile_points(db, ids)
    from patron.relationship.place import haversine_km

    out = pd.DataFrame({"customer_id": ids.astype(str).to_numpy()}).merge(lat_lon, on="customer_id", how="left")
    out["distance_km"] = haversine_km(out["lat"], out["lon"], s.lat, s.lon)
    out["store_id"], out["store_time_zone"] = s.store_id, s.time_zone
    return out.drop(columns=["lat", "lon"]).sort_values(["distance_km", "customer_id"], kind="stable").reset_index(drop=True)


def _rule_of(db: Any, name_or_rule: str, config: Any) -> str:
    from patron.relationship.segments import definitions

    defs = definitions(config=config)
    return defs[name_or_rule][0] if name_or_rule in defs else name_or_rule


def _profile_points(db: Any, ids: pd.Series) -> pd.DataFrame:
    with reader(db) as con:
        con.register("_ids", pd.DataFrame({"customer_id": ids.astype(str).to_numpy()}))
        try:
            return con.execute(f"SELECT p.customer_id, p.lat, p.lon FROM {PROFILE_TABLE} AS p JOIN _ids USING (customer_id)").df()
        finally:
            con.unregister("_ids")
