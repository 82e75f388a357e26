"""Place: distances, geocoding, H3 cells, ``within_km`` in segment rules, region, nearest store.

Known answers: published great-circle distances of city pairs and h3's own great-circle distance
(an independent implementation); customers planted at a known distance due north of a store
(along a meridian the distance is R * dlat exactly), just inside and just outside the radius.
"""

from __future__ import annotations

import json
import math

import duckdb
import h3
import numpy as np
import pandas as pd
import pytest

from patron.data.store import connect
from patron.errors import InputError
from patron.relationship.place import (
    EARTH_RADIUS_KM,
    Store,
    disk_cells,
    h3_cells,
    haversine_km,
    haversine_sql,
    nearest_stores,
)
from patron.relationship.profiles import PROFILE_COLUMNS
from patron.relationship.segments import equity_by, members

PARIS, LYON = (48.85341, 2.34880), (45.74906, 4.84789)
LONDON, NEW_YORK = (51.5074, -0.1278), (40.7128, -74.0060)
STORE = Store("store-12", "Lyon Part-Dieu", 45.7606, 4.8593, "Europe/Paris")


def _north(km: float) -> tuple[float, float]:
    """The point ``km`` due north of the store (on the sphere, exactly)."""
    return STORE.lat + math.degrees(km / EARTH_RADIUS_KM), STORE.lon


def test_distances_of_known_city_pairs():
    # published great-circle distances: Paris-Lyon 392 km, London-New York 5,570 km
    assert haversine_km(*PARIS, *LYON) == pytest.approx(392, abs=1.5)
    assert haversine_km(*LONDON, *NEW_YORK) == pytest.approx(5570, abs=5)
    # h3's great_circle_distance: the same formula on a sphere 1.6 m smaller in radius
    for a, b in ((PARIS, LYON), (LONDON, NEW_YORK)):
        assert haversine_km(*a, *b) == pytest.approx(h3.great_circle_distance(a, b, unit="km"), rel=1e-6)
    assert haversine_km(*PARIS, *PARIS) == 0.0


def test_sql_distance_equals_numpy_on_duckdb():
    rng = np.random.default_rng(3)
    lat1, lat2 = rng.uniform(-80, 80, 200), rng.uniform(-80, 80, 200)
    lon1, lon2 = rng.uniform(-180, 180, 200), rng.uniform(-180, 180, 200)
    frame = pd.DataFrame({"a": lat1, "b": lon1, "c": lat2, "d": lon2})
    con = duckdb.connect()
    con.register("f", frame)
    got = con.execute(f"SELECT {haversine_sql('a', 'b', 'c', 'd')} FROM f").fetchnumpy()
    np.testing.assert_allclose(next(iter(got.values())), haversine_km(lat1, lon1, lat2, lon2), rtol=1e-12)


def test_h3_cells_of_distinct_points_and_missing_ones():
    cells = h3_cells([PARIS[0], LYON[0], PARIS[0], np.nan, 95.0], [PARIS[1], LYON[1], PARIS[1], 1.0, 1.0])
    assert cells[0] == cells[2] == h3.latlng_to_cell(*PARIS, 7)
    assert cells[1] == h3.latlng_to_cell(*LYON, 7)
    assert cells[3] is None and cells[4] is None


def test_the_h3_disk_holds_every_point_within_the_radius():
    rng = np.random.default_rng(5)
    for km in (0.5, 5.0, 12.0, 25.0):
        cells = set(disk_cells(STORE.lat, STORE.lon, km))
        bearing, dist = rng.uniform(0, 2 * math.pi, 3000), km * np.sqrt(rng.uniform(0, 1, 3000))
        d = dist / EARTH_RADIUS_KM  # destination point on the sphere (standard formula)
        p1, l1 = math.radians(STORE.lat), math.radians(STORE.lon)
        p2 = np.arcsin(np.sin(p1) * np.cos(d) + np.cos(p1) * np.sin(d) * np.cos(bearing))
        l2 = l1 + np.arctan2(np.sin(bearing) * np.sin(d) * np.cos(p1), np.cos(d) - np.sin(p1) * np.sin(p2))
        pts = h3_cells(np.degrees(p2), np.degrees(l2))
        assert set(pts) <= cells, km
    assert disk_cells(STORE.lat, STORE.lon, 100.0) is None  # too large to list: latitude band only


def _profiles(db: str, rows: list[dict]) -> None:
    """A customer_profiles table of hand-made rows (other profile columns NULL) with place columns."""
    frame = pd.DataFrame(rows)
    frame["h3_cell"] = h3_cells(frame["lat"], frame["lon"])
    select = ", ".join(f'CAST({"f." + chr(34) + c + chr(34) if c in frame.columns else "NULL"} AS {t}) AS "{c}"'
                       for c, t in PROFILE_COLUMNS.items())
    with connect(db) as con:
        con.register("f", frame)
        con.execute(f"CREATE TABLE customer_profiles AS SELECT {select}, f.city, f.lat, f.lon, f.h3_cell, f.region FROM f")
        con.execute("INSERT INTO stores (store_id, name, lat, lon, time_zone) VALUES (?, ?, ?, ?, ?)", [STORE.store_id, STORE.name, STORE.lat, STORE.lon, STORE.time_zone])


@pytest.fixture
def place_db(tmp_path) -> str:
    db = str(tmp_path / "place.duckdb")
    inside, outside = _north(4.999), _north(5.001)
    rows = [
        {"customer_id": "in", "lat": inside[0], "lon": inside[1], "city": "Lyon", "clv": 150.0, "region": "Auvergne-Rhône-Alpes"},
        {"customer_id": "out", "lat": outside[0], "lon": outside[1], "city": "Lyon", "clv": 200.0, "region": "Auvergne-Rhône-Alpes"},
        {"customer_id": "at", "lat": STORE.lat, "lon": STORE.lon, "city": "Lyon", "clv": 50.0, "region": "Auvergne-Rhône-Alpes"},
        {"customer_id": "paris", "lat": PARIS[0], "lon": PARIS[1], "city": "Paris", "clv": 500.0, "region": "Île-de-France"},
        {"customer_id": "nowhere", "lat": None, "lon": None, "city": None, "clv": 10.0, "region": None},
    ]
    _profiles(db, rows)
    return db


def test_within_km_takes_the_customer_just_inside_and_not_the_one_just_outside(place_db):
    assert members(place_db, "within_km('store-12', 5)").tolist() == ["at", "in"]
    assert members(place_db, 'within_km("store-12", 5.002)').tolist() == ["at", "in", "out"]
    assert members(place_db, "within_km('store-12', 0)").tolist() == ["at"]
    # Paris is 392 km from the Lyon store
    assert members(place_db, "within_km('store-12', 391)").tolist() == ["at", "in", "out"]
    assert members(place_db, "within_km('store-12', 394)").tolist() == ["at", "in", "out", "paris"]
    assert members(place_db, "not within_km('store-12', 5)").tolist() == ["nowhere", "out", "paris"]


def test_a_rule_on_city_clv_and_distance(place_db):
    assert members(place_db, "city = 'Lyon' and clv > 100 and within_km('store-12', 5)").tolist() == ["in"]
    assert members(place_db, "region = 'Île-de-France' or within_km('store-12', 0.001)").tolist() == ["at", "paris"]


def test_within_km_errors_name_the_problem(place_db):
    with pytest.raises(InputError, match=r'unknown store "store-13" at character 11 \(did you mean store-12\?\)'):
        members(place_db, "within_km('store-13', 5)")
    with pytest.raises(InputError, match=r"found \"-12\" at character 16 \(quote a store id that is not a plain word: 'store-12'\)"):
        members(place_db, "within_km(store-12, 5)")
    with pytest.raises(InputError, match=r"within_km: expected a distance in km"):
        members(place_db, "within_km('store-12', 'far')")
    with pytest.raises(InputError, match=r"within_km: expected a distance in km \(a number >= 0\), found \"-1\""):
        members(place_db, "within_km('store-12', -1)")


def test_equity_by_region(place_db):
    table = equity_by(place_db, "region").set_index("region")
    assert table.loc["Île-de-France", "equity"] == 500.0 and table.loc["Île-de-France", "customers"] == 1
    assert table.loc["Auvergne-Rhône-Alpes", "equity"] == 400.0 and table.loc["Auvergne-Rhône-Alpes", "customers"] == 3


def test_nearest_store_of_each_point():
    stores = {"store-12": STORE, "paris": Store("paris", None, 48.8719, 2.3316)}
    ids, km = nearest_stores(np.array([LYON[0], PARIS[0], np.nan]), np.array([LYON[1], PARIS[1], 1.0]), stores)
    assert ids.tolist() == ["store-12", "paris", None]
    assert km[0] == pytest.approx(haversine_km(*LYON, STORE.lat, STORE.lon))
    assert math.isnan(km[2])


# --- from files: geocoding, region, events -------------------------------------------------------

def _ingest_base(db: str, tmp_path, customers: str, stores: str | None = None) -> None:
    from patron.data.ingest import ingest

    tx = tmp_path / "tx.csv"
    tx.write_text("customer_id,occurred_at,amount\na,2024-01-01,10\na,2024-02-01,20\nb,2024-01-05,50\nc,2024-01-07,5\n"
                  "c,2024-03-07,15\nd,2024-02-07,15\ne,2024-02-08,15\n")
    ingest(tx, kind="transactions", db=db)
    path = tmp_path / "customers.csv"
    path.write_text(customers)
    ingest(path, kind="customers", db=db)
    if stores:
        (tmp_path / "stores.csv").write_text(stores)
        ingest(tmp_path / "stores.csv", kind="stores", db=db)


def test_geocoding_region_and_sources_from_a_customers_file(db, tmp_path):
    from patron.relationship.profiles import build_profiles

    _ingest_base(db, tmp_path, "customer_id,city,country,region,lat,lon\n"
                 "a,LYON,France,,,\n"          # by city, English country name; case ignored
                 "b,Paris,US,,,\n"             # no Paris of 100,000 in the US: not located
                 "c,Springfield,US,Ozarks,,\n"  # the most populous Springfield; own region
                 "d,Lyon,,,48.0,2.0\n"          # own lat/lon first
                 "e,Saint-Étienne,fr,,,\n",     # accents as written, country code in lower case
                 "store_id,name,lat,lon,time_zone\nstore-12,Part-Dieu,45.7606,4.8593,Europe/Paris\n")
    p = build_profiles(db).set_index("customer_id")
    assert (p.loc["a", "lat"], p.loc["a", "lon"], p.loc["a", "time_zone"]) == (45.74906, 4.84789, "Europe/Paris")
    assert (p.loc["a", "region"], p.loc["a", "location_source"]) == ("France", "city")
    assert p.loc["a", "h3_cell"] == h3.latlng_to_cell(45.74906, 4.84789, 7)
    assert p.loc["a", "nearest_store"] == "store-12"
    assert p.loc["a", "nearest_store_km"] == pytest.approx(haversine_km(45.74906, 4.84789, 45.7606, 4.8593))
    assert pd.isna(p.loc["b", "lat"]) and pd.isna(p.loc["b", "region"])
    assert (p.loc["c", "lat"], p.loc["c", "region"], p.loc["c", "time_zone"]) == (37.21533, "Ozarks", "America/Chicago")
    assert (p.loc["d", "lat"], p.loc["d", "lon"], p.loc["d", "location_source"]) == (48.0, 2.0, "attributes")
    assert p.loc["e", "region"] == "France" and p.loc["e", "lat"] == pytest.approx(45.43389, abs=1e-4)
    assert p.loc["a", "city"] == "LYON"  # the attribute itself stays a column


def test_event_locations_when_the_customer_has_none(db, tmp_path):
    from patron.relationship.profiles import build_profiles
    from patron.service.event_tables import EVENTS_DDL

    _ingest_base(db, tmp_path, "customer_id,plan\na,gold\nb,silver\n")
    with connect(db) as con:
        con.execute(EVENTS_DDL)
        for mid, at, lat in (("m1", "2024-03-01 10:00", 45.0), ("m2", "2024-03-02 10:00", 46.0), ("m3", "2024-03-01 12:00", 47.0)):
            payload = json.dumps({"context": {"location": {"latitude": lat, "longitude": 4.5}}})
            con.execute("INSERT INTO events (message_id, type, customer_id, occurred_at, received_at, payload) VALUES (?, 'track', 'b', ?, ?, ?)",
                        [mid, at, at, payload])
        # a store visit names the store only: its place is the store's
        con.execute("INSERT INTO stores (store_id, lat, lon) VALUES ('store-12', ?, ?)", [STORE.lat, STORE.lon])
        payload = json.dumps({"event": "Store Visited", "properties": {"store_id": "store-12"}})
        con.execute("INSERT INTO events (message_id, type, customer_id, occurred_at, received_at, payload) VALUES ('m4', 'track', 'c', "
                    "'2024-03-03', '2024-03-03', ?)", [payload])
    p = build_profiles(db).set_index("customer_id")
    assert (p.loc["b", "lat"], p.loc["b", "lon"], p.loc["b", "location_source"]) == (46.0, 4.5, "events")  # the latest
    assert (p.loc["c", "lat"], p.loc["c", "lon"], p.loc["c", "nearest_store_km"]) == (STORE.lat, STORE.lon, 0.0)
    assert pd.isna(p.loc["a", "lat"])


# --- catchments and local campaigns --------------------------------------------------------------

def _with_nearest(place_db: str) -> None:
    with connect(place_db) as con:
        con.execute("INSERT INTO stores (store_id, name, lat, lon, time_zone) VALUES ('paris-1', 'Opera', 48.8719, 2.3316, 'Europe/Paris')")
        con.execute("ALTER TABLE customer_profiles ADD COLUMN nearest_store VARCHAR")
        con.execute("ALTER TABLE customer_profiles ADD COLUMN nearest_store_km DOUBLE")
        con.execute("UPDATE customer_profiles SET nearest_store = CASE WHEN customer_id = 'paris' THEN 'paris-1' "
                    "WHEN lat IS NOT NULL THEN 'store-12' END, nearest_store_km = 1.0")


def test_catchments_count_customers_within_and_nearest(place_db):
    from patron.relationship.catchment import catchments

    _with_nearest(place_db)
    t = catchments(place_db, km=5).set_index("store_id")
    # within 5 km of the Lyon store: at (50) and in (150), not out (200, at 5.001 km)
    assert (t.loc["store-12", "customers_within"], t.loc["store-12", "equity_within"]) == (2, 200.0)
    assert (t.loc["paris-1", "customers_within"], t.loc["paris-1", "equity_within"]) == (1, 500.0)
    assert (t.loc["store-12", "customers_nearest"], t.loc["store-12", "equity_nearest"]) == (3, 400.0)
    assert list(t.index) == ["paris-1", "store-12"]  # most equity within first


def test_a_local_campaign_targets_customers_near_the_store_in_its_local_time(db, tmp_path):
    from patron.contact.consent import plan, record_consent
    from patron.data.ingest import ingest

    shinjuku, far = (35.6938, 139.7034), (35.0116, 135.7681)  # a Tokyo store; Kyoto is 370 km away
    ingest(pd.DataFrame({"customer_id": ["near", "near_ny", "kyoto"] * 2, "occurred_at": ["2024-01-01"] * 3 + ["2024-01-20"] * 3,
                         "amount": [10.0, 20.0, 30.0] * 2}), kind="transactions", db=db)
    ingest(pd.DataFrame({"customer_id": ["near", "near_ny", "kyoto"], "lat": [35.69, 35.70, far[0]], "lon": [139.70, 139.71, far[1]]}),
           kind="customers", db=db)
    ingest(pd.DataFrame({"store_id": ["tokyo-1"], "name": ["Shinjuku"], "lat": [shinjuku[0]], "lon": [shinjuku[1]],
                         "time_zone": ["Asia/Tokyo"]}), kind="stores", db=db)
    ingest(pd.DataFrame({"customer_id": ["near_ny"], "occurred_at": ["2024-01-01"], "channel": ["any"], "time_zone": ["America/New_York"]}),
           kind="preferences", db=db)
    record_consent(db, [{"customer_id": c, "purpose": "marketing", "channel": "any", "status": "granted", "occurred_at": "2024-01-01"}
                        for c in ("near", "near_ny", "kyoto")])
    campaign = {"name": "local", "purpose": "marketing", "channel": "email", "class": "marketing", "store": "tokyo-1",
                "within_km": 5, "send_at": "2024-03-01T13:00:00Z", "send_window_end": "2024-03-01T23:30:00Z"}
    t = plan(db, campaign, now="2024-02-01").table.set_index("customer_id")
    assert sorted(t.index) == ["near", "near_ny"]  # Kyoto is not near the store
    # 13:00 UTC = 22:00 in Tokyo, quiet (21-8): moved to 08:00 Tokyo = 23:00 UTC, the store's local time
    assert t.loc["near", "included"] and t.loc["near", "send_at"] == pd.Timestamp("2024-03-01 23:00:00")
    # a customer's own time zone wins: 13:00 UTC = 08:00 New York, not quiet
    assert t.loc["near_ny", "send_at"] == pd.Timestamp("2024-03-01 13:00:00")
    with pytest.raises(InputError, match="within_km needs store"):
        plan(db, {**campaign, "store": None, "target": "clv > 0"}, now="2024-02-01")
    with pytest.raises(InputError, match=r"^<campaign>: field store: unknown store 'tokyo-2' \(did you mean tokyo-1\?\)$"):
        plan(db, {**campaign, "store": "tokyo-2"}, now="2024-02-01")


def test_service_stores_and_members_show_place(place_db):
    from fastapi.testclient import TestClient

    from patron.service import create_app
    from tests.service_support import create_keys

    _with_nearest(place_db)
    keys = create_keys(place_db)
    rules = {"segments": {"near_lyon": "within_km('store-12', 5)"}}
    with TestClient(create_app(place_db, config=rules), raise_server_exceptions=False) as client:
        r = client.get("/v1/stores", params={"km": 5}, auth=(keys["read"], ""))
        assert r.status_code == 200, r.text
        by_id = {s["store_id"]: s for s in r.json()["stores"]}
        assert (by_id["store-12"]["customers_within"], by_id["store-12"]["equity_within"]) == (2, 200.0)
        assert (by_id["paris-1"]["customers_within"], by_id["paris-1"]["customers_nearest"]) == (1, 1)
        members = client.get("/v1/segments/near_lyon/members", auth=(keys["read"], "")).json()["members"]
        assert [(m["customer_id"], m["city"], m["region"]) for m in members] == [
            ("at", "Lyon", "Auvergne-Rhône-Alpes"), ("in", "Lyon", "Auvergne-Rhône-Alpes")]
        for bad in ("-1", "nan", "1e400", "far"):
            r = client.get("/v1/stores", params={"km": bad}, auth=(keys["read"], ""))
            assert 400 <= r.status_code < 500, (bad, r.status_code)
        assert client.get("/v1/stores").status_code == 401
