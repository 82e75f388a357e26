"""The demo's bundled motivation data: reproducible from the CDNOW sample and the fixed seed, the
CDNOW orders unchanged, and the demo database shows every motivation."""

from __future__ import annotations

import pandas as pd
import pytest

from patron.cli.demo import (
    CDNOW_SAMPLE_COLUMNS,
    DEMO_TRANSACTIONS,
    MOTIVATION_FILES,
    ingest_motivation_data,
)
from patron.data.datasets import data_path
from patron.data.ingest import ingest
from patron.relationship.motivation_simulate import DEMO_FILES, demo_files


def test_bundled_files_are_what_the_script_writes():
    files, truth = demo_files()
    assert set(files) == set(DEMO_FILES) == {DEMO_TRANSACTIONS, *MOTIVATION_FILES.values()}
    for name, text in files.items():
        assert data_path(name).read_text(encoding="utf-8") == text, f"{name}: run scripts/make_demo_motivation.py"
    assert truth["planted"].value_counts().to_dict().keys() == {"discount", "values", "mixed", "other"}
    assert sum(len(t) for t in files.values()) < 2_000_000  # kept small


def test_demo_transactions_are_the_cdnow_sample_plus_a_discount():
    raw = pd.read_csv(data_path("CDNOW_sample.txt"), sep=r"\s+", header=None, names=CDNOW_SAMPLE_COLUMNS,
                      dtype={"customer_id": str, "date": str})
    demo = pd.read_csv(data_path(DEMO_TRANSACTIONS), dtype={"customer_id": str})
    assert demo["customer_id"].tolist() == raw["customer_id"].tolist()
    assert demo["occurred_at"].tolist() == pd.to_datetime(raw["date"], format="%Y%m%d").dt.strftime("%Y-%m-%d").tolist()
    assert demo["amount"].tolist() == pytest.approx(raw["amount"].tolist())
    assert (demo["discount"] >= 0).all() and 0.3 < (demo["discount"] > 0).mean() < 0.6
    depth = demo["discount"] / (demo["amount"] + demo["discount"])
    assert depth[demo["discount"] > 0].between(0.0999, 0.4001).all()  # 10-40% of the list price


def test_the_demo_database_shows_every_motivation(tmp_path):
    from patron.relationship.motivation_mix import motivation_table

    db = str(tmp_path / "demo.duckdb")
    assert ingest(data_path(DEMO_TRANSACTIONS), kind="transactions", db=db).accepted == 6919
    accepted = ingest_motivation_data(db)
    assert all(n > 0 for n in accepted.values()) and accepted["campaigns"] == 8
    table = motivation_table(db)
    assert set(table["motivation"]) == {"discount", "values", "mixed", "other", "unknown"}
    assert table["customers"].sum() == 2357
