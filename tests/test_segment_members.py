"""A segment's member list: ``patron segments --members NAME --out FILE`` and the SQL behind it
(:func:`patron.relationship.segments.write_members`), on the hand-made profiles of
:mod:`tests.test_segments`, whose members are worked out by hand there."""

from __future__ import annotations

import json

import pandas as pd
import pyarrow.parquet as pq
import pytest

from patron.cli import main
from patron.data.store import connect
from patron.errors import NoDataError
from patron.relationship.segments import MEMBER_COLUMNS, write_members
from tests.test_segments import HAND_PROFILES, profiles_db  # noqa: F401  (the fixture)

BY_ID = {p[0]: p for p in HAND_PROFILES}


def test_members_file_lists_the_segment_by_id_with_profile_columns(profiles_db, tmp_path):  # noqa: F811
    # built-in at_risk_valuable: cooling or at_risk and platinum or gold -> c03 (cooling, gold) only;
    # c04 and c05 are at_risk but silver.
    path = tmp_path / "members.csv"
    assert write_members(profiles_db, "at_risk_valuable", path) == 1
    frame = pd.read_csv(path, dtype={"customer_id": str})
    assert frame["customer_id"].tolist() == ["c03"]
    assert frame.loc[0, "status"] == "cooling" and frame.loc[0, "value_tier"] == "gold" and frame.loc[0, "clv"] == 150.0
    assert list(frame.columns) == [c for c in MEMBER_COLUMNS if c in frame.columns]
    assert list(frame.columns)[:4] == ["customer_id", "status", "value_tier", "clv"]


def test_members_of_a_rules_file_segment_in_csv_and_parquet(profiles_db, tmp_path, capsys):  # noqa: F811
    rules = tmp_path / "r.toml"
    rules.write_text('[segments]\nbig = "clv >= 100"\n')
    expected = sorted(k for k, p in BY_ID.items() if p[2] >= 100)  # c01 500, c02 200, c03 150, c04 100
    assert expected == ["c01", "c02", "c03", "c04"]
    csv_path, pq_path = tmp_path / "big.csv", tmp_path / "big.parquet"
    assert main(["segments", "--db", profiles_db, "--rules", str(rules), "--members", "big", "--out", str(csv_path), "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {"segment": "big", "members": 4, "out": str(csv_path)}
    frame = pd.read_csv(csv_path, dtype={"customer_id": str})
    assert frame["customer_id"].tolist() == expected
    assert frame["clv"].tolist() == [BY_ID[k][2] for k in expected]
    assert main(["segments", "--db", profiles_db, "--rules", str(rules), "--members", "big", "--out", str(pq_path)]) == 0
    assert "4 members of segment big written to" in capsys.readouterr().out
    assert pq.read_table(pq_path).column("customer_id").to_pylist() == expected


def test_members_csv_guards_formula_cells_but_not_numbers(profiles_db, tmp_path):  # noqa: F811
    with connect(profiles_db) as con:
        con.execute("UPDATE customer_profiles SET customer_id = '=HYPERLINK(1)' WHERE customer_id = 'c01'")
        con.execute("UPDATE customer_profiles SET customer_id = '+33612345678' WHERE customer_id = 'c02'")
    path = tmp_path / "m.csv"
    rules = tmp_path / "r.toml"
    rules.write_text('[segments]\nbig = "clv >= 200"\n')
    assert write_members(profiles_db, "big", path, rules=rules) == 2
    ids = pd.read_csv(path, dtype={"customer_id": str})["customer_id"].tolist()
    assert sorted(ids) == sorted(["'=HYPERLINK(1)", "+33612345678"])


def test_unknown_segment_is_one_line_naming_the_closest(profiles_db, tmp_path, capsys):  # noqa: F811
    with pytest.raises(NoDataError, match=r'^unknown segment "champs" \(did you mean champions\?\); defined: champions, '):
        write_members(profiles_db, "champs", tmp_path / "x.csv")
    assert main(["segments", "--db", profiles_db, "--members", "champs", "--out", str(tmp_path / "x.csv")]) != 0
    err = capsys.readouterr().err
    assert "unknown segment" in err and "Traceback" not in err
    assert not (tmp_path / "x.csv").exists()
    assert main(["segments", "--db", profiles_db, "--members", "champions"]) == 2
    assert "--members needs --out" in capsys.readouterr().err
