"""Status history and migration on a constructed base; the CLI; CDNOW smoke test; docs coverage."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import date, datetime
from pathlib import Path

import pandas as pd
import pytest

import patron
from patron.cli import main
from patron.cli.demo import CDNOW_SAMPLE_COLUMNS
from patron.data.datasets import data_path
from patron.relationship.status import STATUSES, StatusRules, relationship_status, status_counts
from patron.relationship.status_history import (
    NOT_YET,
    as_of_dates,
    migration_flows,
    migration_from_lists,
    migration_matrix,
    status_history,
)

ROOT = Path(__file__).resolve().parents[1]

PARAMS = {"r": 0.2426, "alpha": 4.4136, "a": 0.7929, "b": 2.4259}
"""BG/NBD estimates for CDNOW (FHL 2005, Table 1), rates per week."""

FROM, TO = date(2024, 3, 31), date(2024, 6, 30)

# purchases, and the status at FROM and at TO under the default rules, worked out by hand
# (q = P(a purchase in the next 26 weeks) = P(alive) [1 - ((alpha+T)/(alpha+T+26))^(r+x)], P(alive)
# by FHL 2005 eq. 11 with PARAMS, weeks = days / 7):
BASE: dict[str, tuple[list[str], str, str]] = {
    # one purchase 16 days before FROM: new; 107 days before TO: q 0.185 < 0.2 and 107 days > 90: lapsed
    "a": (["2024-03-15"], "new", "lapsed"),
    # 121 days at FROM: q 0.174, lapsed; 212 days at TO: q 0.127 < 0.15, one purchase only: lost
    "b": (["2023-12-01"], "lapsed", "lost"),
    # 304 days at FROM: q 0.100 < 0.15, one purchase only: lost, and still lost
    "c1": (["2023-06-01"], "lost", "lost"),
    "c2": (["2023-06-01"], "lost", "lost"),
    # lost at FROM, buys again 10 days before TO after 385 days: x=1, q 0.267 in [0.2, 0.3): at_risk (came back)
    "d": (["2023-06-01", "2024-06-20"], "lost", "at_risk"),
    # first purchase between the dates (60 days before TO): not yet a customer, then new
    "e": (["2024-05-01"], NOT_YET, "new"),
    # 820 days at FROM: lost, and still lost
    "h": (["2022-01-01"], "lost", "lost"),
    # monthly: at FROM x=3, 11 days since the last: q 0.759, active; at TO 102 days silent: q 0.372: cooling
    "j": (["2023-12-21", "2024-01-20", "2024-02-19", "2024-03-20"], "active", "cooling"),
    # every 3 weeks: at FROM x=4, 21 days since the last: q 0.750, active; at TO 112 days silent: q 0.253: at_risk
    "k": (["2023-12-17", "2024-01-07", "2024-01-28", "2024-02-18", "2024-03-10"], "active", "at_risk"),
}
PEOPLE = {"f": (None, "prospect", "prospect"), "g": ("2024-05-01", NOT_YET, "prospect")}
"""Known people without purchases: first_seen, status at FROM, status at TO."""


@pytest.fixture(scope="module")
def base_db(tmp_path_factory: pytest.TempPathFactory) -> str:
    db = str(tmp_path_factory.mktemp("migration") / "m.duckdb")
    rows = [(cid, f"{d}T10:00:00", 25.0) for cid, (days, _, _) in BASE.items() for d in days]
    patron.ingest(pd.DataFrame(rows, columns=["customer_id", "occurred_at", "amount"]), kind="transactions", db=db, now=datetime(2025, 1, 1))
    people = pd.DataFrame({"customer_id": list(PEOPLE), "first_seen": [v[0] for v in PEOPLE.values()]})
    patron.ingest(people, kind="customers", db=db, now=datetime(2025, 1, 1))
    return db


def test_statuses_at_both_dates(base_db):
    for when, k in ((FROM, 1), (TO, 2)):
        got = relationship_status(base_db, as_of=when, params=PARAMS).set_index("customer_id")["status"].to_dict()
        want = {cid: v[k] for cid, v in {**BASE, **PEOPLE}.items() if v[k] != NOT_YET}
        assert got == want, when


def test_migration_matrix_hand_counts(base_db):
    m = migration_matrix(base_db, from_date=FROM, to_date=TO, params=PARAMS)
    assert list(m.index) == [NOT_YET, *STATUSES] and list(m.columns) == list(STATUSES)
    expected = pd.DataFrame(0, index=m.index, columns=m.columns)
    for row, col, n in [
        ("new", "lapsed", 1), ("lapsed", "lost", 1), ("lost", "lost", 3), ("lost", "at_risk", 1), (NOT_YET, "new", 1),
        ("active", "cooling", 1), ("active", "at_risk", 1), ("prospect", "prospect", 1), (NOT_YET, "prospect", 1),
    ]:
        expected.loc[row, col] = n
    pd.testing.assert_frame_equal(m, expected, check_names=False)
    assert migration_flows(m) == {"active_to_at_risk": 1, "slipped": 2, "came_back": 1, "acquired": 1, "unchanged": 4}
    pd.testing.assert_frame_equal(migration_from_lists(base_db, from_date=FROM, to_date=TO, params=PARAMS), expected, check_names=False)


def test_status_history_month_ends(base_db):
    h = status_history(base_db, start="2024-03-01", end=TO, params=PARAMS)
    assert sorted(h["as_of"].unique()) == [date(2024, 3, 31), date(2024, 4, 30), date(2024, 5, 31), date(2024, 6, 30)]
    assert list(h.columns) == ["as_of", "customer_id", "status", "probability_alive"]
    at = h.set_index(["as_of", "customer_id"])["status"]
    assert at[(FROM, "j")] == "active" and at[(TO, "j")] == "cooling"
    assert (FROM, "e") not in at.index and at[(date(2024, 5, 31), "e")] == "new"
    assert h.groupby("as_of").size().to_dict()[TO] == len(BASE) + len(PEOPLE)


def test_as_of_dates_adds_the_end():
    assert as_of_dates(start="2024-01-15", end="2024-03-10") == [date(2024, 1, 31), date(2024, 2, 29), date(2024, 3, 10)]
    assert as_of_dates(start="2024-01-01", end="2024-06-30", freq="Q") == [date(2024, 3, 31), date(2024, 6, 30)]
    with pytest.raises(patron.InputError, match="freq must be"):
        as_of_dates(start="2024-01-01", end="2024-06-30", freq="X")


def model_file(path: Path) -> str:
    """PARAMS as a saved BG/NBD model (the JSON layout of patron fit --save)."""
    nan4 = [[None] * 4 for _ in range(4)]
    data = {"model": "bgnbd", "params": PARAMS, "std_errors": dict.fromkeys(PARAMS), "covariance": nan4,
            "log_likelihood": None, "n_customers": 0, "converged": True}
    path.write_text(json.dumps(data))
    return str(path)


def test_cli_status_and_migration(base_db, tmp_path, capsys, monkeypatch):
    """In process (patron.cli.main), to keep the test fast; the subprocess test is below."""
    monkeypatch.chdir(tmp_path)
    fixed = model_file(tmp_path / "bgnbd.json")
    assert main(["status", "--db", base_db, "--as-of", str(TO), "--model-file", fixed, "--out", "s.csv"]) == 0
    text = capsys.readouterr().out
    assert "Relationship status as of 2024-06-30" in text and "at_risk" in text
    written = pd.read_csv(tmp_path / "s.csv", dtype={"customer_id": str})
    assert len(written) == len(BASE) + len(PEOPLE) and written["status_reason"].notna().all()
    assert written.set_index("customer_id")["status"].to_dict() == {cid: v[2] for cid, v in {**BASE, **PEOPLE}.items()}
    assert main(["status", "--db", base_db, "--as-of", str(TO), "--model-file", fixed, "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["customers"] == 11 and [s["status"] for s in info["statuses"]] == list(STATUSES)
    counts = {s["status"]: s["count"] for s in info["statuses"]}
    assert counts == {"prospect": 2, "new": 1, "active": 0, "cooling": 1, "at_risk": 2, "lapsed": 1, "lost": 4}
    assert main(["migration", "--db", base_db, "--from", str(FROM), "--to", str(TO), "--model-file", fixed, "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["matrix"]["lost"]["lost"] == 3 and info["matrix"][NOT_YET]["new"] == 1
    assert info["matrix"]["active"]["at_risk"] == 1 and info["flows"]["came_back"] == 1
    assert main(["migration", "--db", base_db, "--from", str(FROM), "--to", str(TO), "--model-file", fixed]) == 0
    assert "came back (at_risk/lapsed/lost -> a better status): 1" in " ".join(capsys.readouterr().out.split())


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (("migration", "--from", "2024-06-30", "--to", "2024-03-31"), "must be before"),
        (("status", "--config", "nope.toml"), "nope.toml does not exist"),
        (("status", "--as-of", "2024-06-31"), "--as-of must be a date like"),
        (("status", "--model-file", "nope.json"), "nope.json: no such model file"),
    ],
)
def test_cli_errors_are_one_line(base_db, tmp_path, capsys, monkeypatch, args, fragment):
    monkeypatch.chdir(tmp_path)
    assert main([*args, "--db", base_db]) == 2
    lines = [ln for ln in capsys.readouterr().err.splitlines() if ln.strip()]
    assert len(lines) == 1 and fragment in lines[0], lines


def test_cli_bad_as_of_in_a_subprocess(base_db, tmp_path):
    proc = subprocess.run([sys.executable, "-m", "patron", "status", "--db", base_db, "--as-of", "June 30"],
                          capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert proc.returncode == 2
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert lines == ["patron: error: --as-of must be a date like 1997-09-30; got 'June 30'"], proc.stderr


def test_cdnow_every_customer_has_one_status(tmp_path):
    db = str(tmp_path / "cdnow.duckdb")
    patron.ingest(data_path("CDNOW_sample.txt"), kind="transactions", db=db, columns=CDNOW_SAMPLE_COLUMNS, mapping={"occurred_at": "date"}, date_format="%Y%m%d")
    st = relationship_status(db)
    # reusing scores from patron.value.scoring.score gives the same statuses as fitting here
    from patron.value.scoring import score

    scored = score(patron.summary(db, period="W", end="1998-06-30"), model="bgnbd")
    again = relationship_status(db, scores=scored)
    assert again.set_index("customer_id")["status"].sort_index().equals(st.set_index("customer_id")["status"].sort_index())
    assert len(st) == 2357 and st["customer_id"].is_unique
    assert st["status"].isin(STATUSES).all() and st["status_reason"].str.len().gt(0).all()
    assert str(st["as_of"].iloc[0]) == "1998-06-30"
    counts = status_counts(st)
    assert counts["count"].sum() == 2357
    # no first purchase after March 1997 in the CDNOW cohort: nobody is new or a prospect at the end
    assert counts.set_index("status").loc[["new", "prospect"], "count"].sum() == 0


def test_docs_describe_every_rule_and_status():
    text = (ROOT / "docs" / "status.md").read_text()
    for name, field in StatusRules.model_fields.items():
        assert f"`{name}`" in text, name
        assert f"{field.default:g}" in text, name
    for status in STATUSES:
        assert f"`{status}`" in text, status
    for command in ("patron status", "patron migration", "patron backtest status --as-of"):
        assert command in text
