"""The customer profile table on the CDNOW sample (2,357 customers, Fader & Hardie).

Expected values come from the raw file read with pandas (orders, spend, first and last purchase),
from an independent call of :func:`patron.value.scoring.score` (customer equity), and from independent
NumPy computations of the RFM and tier rules; none from the profile code itself."""

from __future__ import annotations

import shutil
import time

import numpy as np
import pandas as pd
import pytest

import patron
from patron.cli.demo import CDNOW_SAMPLE_COLUMNS
from patron.data.datasets import data_path
from patron.relationship.profiles import PROFILE_COLUMNS, build_profiles, read_profiles
from patron.relationship.segments import equity_over_time
from patron.value.scoring import score

CDNOW_CUSTOMERS = 2357
"""Customers in the CDNOW sample (Fader, Hardie & Lee 2005)."""

CDNOW_LAST_DAY = pd.Timestamp("1998-06-30")
"""Day of the sample's last transaction: the default as-of date."""

EQUITY_REL_TOLERANCE = 1e-9
"""Same data, same fit: equity agrees to floating-point summation order."""

STATUSES = {"prospect", "new", "active", "cooling", "at_risk", "lapsed", "lost"}


@pytest.fixture(scope="module")
def raw() -> pd.DataFrame:
    frame = pd.read_csv(data_path("CDNOW_sample.txt"), sep=r"\s+", header=None, names=CDNOW_SAMPLE_COLUMNS, dtype={"customer_id": str, "date": str})
    frame["date"] = pd.to_datetime(frame["date"], format="%Y%m%d")
    return frame


@pytest.fixture(scope="module")
def cdnow_db(tmp_path_factory) -> str:
    db = str(tmp_path_factory.mktemp("cdnow") / "cdnow.duckdb")
    patron.ingest(data_path("CDNOW_sample.txt"), kind="transactions", db=db, columns=CDNOW_SAMPLE_COLUMNS, mapping={"occurred_at": "date"}, date_format="%Y%m%d")
    return db


@pytest.fixture(scope="module")
def profiles(cdnow_db) -> pd.DataFrame:
    return build_profiles(cdnow_db)


def test_one_row_per_cdnow_customer_with_the_shared_columns(profiles):
    assert len(profiles) == CDNOW_CUSTOMERS
    assert profiles["customer_id"].is_unique
    assert list(profiles.columns) == list(PROFILE_COLUMNS)
    assert (profiles["as_of"] == CDNOW_LAST_DAY).all()
    assert set(profiles["status"]) <= STATUSES
    assert profiles["clv"].notna().all() and profiles["probability_alive"].between(0, 1).all()


def test_customer_equity_equals_an_independent_score(profiles, cdnow_db):
    summary = patron.summary(cdnow_db, period="W", end="1998-06-30")
    expected = score(summary, model="bgnbd", horizon=52, discount_rate=0.10, margin=1.0).equity
    assert abs(profiles["clv"].sum() - expected) <= EQUITY_REL_TOLERANCE * expected


def test_purchase_columns_line_up_with_the_raw_file(profiles, raw):
    by = raw.groupby("customer_id").agg(first=("date", "min"), last=("date", "max"), orders=("date", "size"), spend=("amount", "sum"))
    got = profiles.set_index("customer_id").loc[by.index]
    assert (got["first_purchase"] == by["first"]).all()
    assert (got["last_purchase"] == by["last"]).all()
    assert (got["n_orders"] == by["orders"]).all()
    assert np.allclose(got["total_spend"], by["spend"])


def test_rfm_and_tiers_follow_their_definitions(profiles):
    p = profiles.sort_values(["total_spend", "customer_id"])  # NTILE order for the monetary score
    expected = np.concatenate([np.full(len(part), k) for k, part in enumerate(np.array_split(np.arange(len(p)), 5), start=1)])
    assert np.array_equal(p["monetary_score"].to_numpy(), expected)
    digits = profiles["recency_score"].astype(str) + profiles["frequency_score"].astype(str) + profiles["monetary_score"].astype(str)
    assert (profiles["rfm_score"] == digits).all()
    above = (profiles["clv"].rank(method="min", ascending=False) - 1) / len(profiles)  # share with a higher CLV
    tier = np.select([above < 0.01, above < 0.10, above < 0.50], ["platinum", "gold", "silver"], "bronze")
    assert (profiles["value_tier"].to_numpy() == tier).all()
    assert (profiles["value_tier"] == "platinum").sum() == 24  # ceil(1% of 2,357): CLVs at the top are distinct


def test_stored_table_reads_back(profiles, cdnow_db):
    stored = read_profiles(cdnow_db)
    assert len(stored) == CDNOW_CUSTOMERS
    assert np.allclose(stored["clv"], profiles["clv"])


def test_prospects_get_status_prospect_and_zero_clv(cdnow_db, tmp_path):
    db = str(tmp_path / "with_prospects.duckdb")
    shutil.copy(cdnow_db, db)
    people = tmp_path / "customers.csv"
    people.write_text("customer_id,first_seen\nP1,1998-01-01\nP2,\n0001,1997-01-01\nLATE,1998-12-01\n")
    patron.ingest(people, kind="customers", db=db)
    before = read_profiles(db)
    frame = build_profiles(db, write=False)
    assert len(read_profiles(db)) == len(before)  # write=False leaves the stored table alone
    assert len(frame) == CDNOW_CUSTOMERS + 2  # P1 and P2; LATE is known only after as_of
    pros = frame.set_index("customer_id").loc[["P1", "P2"]]
    assert (pros["status"] == "prospect").all()
    assert (pros["clv"] == 0).all() and (pros["clv_lower"] == 0).all()
    assert pros[["n_orders", "first_purchase", "recency_score", "rfm_score", "value_tier", "probability_alive"]].isna().all().all()
    assert frame.set_index("customer_id").loc["0001", "status"] != "prospect"


def test_equity_over_time_on_cdnow(cdnow_db, raw, profiles):
    # Six month ends keep the file fast; docs/segments.md times all 18 (the first two, with
    # under 9 weeks of history, fit slowly).
    start = time.perf_counter()
    table = equity_over_time(cdnow_db, start="1998-01-01")
    elapsed = time.perf_counter() - start
    print(f"equity_over_time on CDNOW: {len(table)} month ends in {elapsed:.1f} s")
    assert len(table) == 6  # January to June 1998
    assert list(table.columns) == ["as_of", "customers", "equity", "equity_lower", "equity_upper"]
    firsts = raw.groupby("customer_id")["date"].min()
    expected = [int((firsts <= d).sum()) for d in table["as_of"]]
    assert table["customers"].tolist() == expected
    last = table.iloc[-1]
    assert last["as_of"] == CDNOW_LAST_DAY
    assert abs(last["equity"] - profiles["clv"].sum()) <= EQUITY_REL_TOLERANCE * last["equity"]
    fitted = table.dropna(subset=["equity"])
    assert len(fitted) == 6
    assert (fitted["equity_lower"] <= fitted["equity"]).all() and (fitted["equity"] <= fitted["equity_upper"]).all()


def test_cli_profiles_and_equity_over_time_json(cdnow_db, profiles, tmp_path, capsys):
    import json

    from patron.cli import main

    out_file = tmp_path / "profiles.parquet"
    assert main(["profiles", "--db", cdnow_db, "--json", "--out", str(out_file)]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["customers"] == CDNOW_CUSTOMERS and info["as_of"] == "1998-06-30"
    assert abs(info["customer_equity"] - profiles["clv"].sum()) <= EQUITY_REL_TOLERANCE * info["customer_equity"]
    assert len(pd.read_parquet(out_file)) == CDNOW_CUSTOMERS
    assert main(["equity", "--db", cdnow_db, "--over-time", "--start", "1998-05-01", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)["rows"]
    assert [r["as_of"] for r in rows] == ["1998-05-31", "1998-06-30"]
    assert abs(rows[-1]["equity"] - info["customer_equity"]) <= EQUITY_REL_TOLERANCE * info["customer_equity"]
    assert main(["profiles", "--db", cdnow_db, "--as-of", "1998-13-01"]) == 2
    assert "--as-of" in capsys.readouterr().err


def test_profiles_compute_the_weekly_summary_once_and_open_the_file_once(cdnow_db, profiles, monkeypatch):
    """build_profiles used to compute the weekly summary as of ``as_of`` twice (itself, then
    inside relationship_status) and to attach the file to the reading engine 7 times. Now: the
    summary as of ``as_of`` and the one ``lookback_days`` before it (status's trend), both
    finished from one read of the orders (the engine's order lists, read once) on one connection
    to the file that also writes (no attachment to the reading engine). The profiles are the same."""
    import importlib

    import patron.data.store as store
    import patron.relationship.profiles as profiles_module

    arrays_module = importlib.import_module("patron.value.summary_arrays")
    sql_module = importlib.import_module("patron.value.summary_sql")
    ends, attaches, opened, reads = [], [], [], []
    finish, lists_sql, attach, connect = (arrays_module.finish_summary, sql_module.order_lists_sql, store._READER.attach,
                                          profiles_module.connect)

    def counted_summary(lists, spec, **kw):
        ends.append(spec.end)
        return finish(lists, spec, **kw)

    def counted_lists(spec):
        reads.append(spec.end)
        return lists_sql(spec)

    def counted_attach(path, *args, **kw):
        if store._key(path) not in store._READER.attached:
            attaches.append(path)
        return attach(path, *args, **kw)

    def counted_connect(path, *args, **kw):
        opened.append(path)
        return connect(path, *args, **kw)

    monkeypatch.setattr(arrays_module, "finish_summary", counted_summary)
    monkeypatch.setattr(sql_module, "order_lists_sql", counted_lists)
    monkeypatch.setattr(store._READER, "attach", counted_attach)
    monkeypatch.setattr(profiles_module, "connect", counted_connect)
    again = build_profiles(cdnow_db, write=False)
    from patron.relationship.status import status_rules

    lookback = status_rules(None).lookback_days
    assert sorted(ends) == [(CDNOW_LAST_DAY - pd.Timedelta(days=lookback)).date(), CDNOW_LAST_DAY.date()]
    assert reads == [CDNOW_LAST_DAY.date()]
    assert opened == [cdnow_db] and attaches == []
    pd.testing.assert_frame_equal(again, profiles)


def test_status_from_a_given_weekly_summary_is_status_from_its_own(cdnow_db):
    from patron.relationship.status import relationship_status

    weekly = patron.summary(cdnow_db, period="W", end=CDNOW_LAST_DAY.date())
    own = relationship_status(cdnow_db)
    pd.testing.assert_frame_equal(relationship_status(cdnow_db, weekly_summary=weekly), own)


def test_profiles_as_arrow_or_only_stored_are_the_same_rows(cdnow_db, profiles):
    """output="arrow" gives the rows of the DataFrame, in order; output=None stores the same table
    and returns nothing (what patron profiles does without --out)."""
    from patron.relationship.profiles import read_profiles

    table = build_profiles(cdnow_db, write=False, output="arrow")
    assert table.column_names == list(PROFILE_COLUMNS) and table.num_rows == CDNOW_CUSTOMERS
    assert table.column("customer_id").to_pylist() == profiles["customer_id"].tolist()
    assert np.array_equal(table.column("clv").to_numpy(), profiles["clv"].to_numpy())
    assert table.column("status_reason").to_pylist() == profiles["status_reason"].tolist()
    assert build_profiles(cdnow_db, output=None) is None
    pd.testing.assert_frame_equal(read_profiles(cdnow_db), profiles)
