"""The raw CDNOW master file, as its publisher ships it, end to end through the command line.

No cleaning step: the file (23,570 customers, 69,659 rows, whitespace-separated, a header, dates
as YYYYMMDD, 80 orders of $0.00) is ingested with ``--map`` as ``../shared/checks/cli-contract``
does, then scored, profiled, segmented, split by tier, costed, reported and backtested, each a separate
``python -m patron`` process that must exit 0. The expected spend bases (who made repeat
purchases of positive value, who none, who only zero-value ones) are counted here from the raw
file with pandas, not by patron; the same ``[value]`` settings must give the same customer equity
in ``score``, ``profiles``, ``equity``, ``profitability`` and the report, and every output must
state them.
"""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from patron.data.datasets import data_path
from patron.value.settings import SPEND_NO_REPEAT, SPEND_NONPOSITIVE, SPEND_OWN

pytestmark = [pytest.mark.slow]

MASTER = data_path("CDNOW_master.txt")
"""The packaged copy of the publisher's file."""

MASTER_SHA256 = "eff6889ed364c5199d6eacbbeb7a6d559971df4406ac876f322c373f00a072ef"
"""Checksum in the data's SHA256SUMS (the file of the lifetimes 0.11.3 wheel, byte for byte)."""

RULES = '[value]\nmargin = 0.3\ncurrency = "USD"\n'
LINE = "CLV: 52 weeks, 10%/year, margin 30%, USD"
"""The issue's own example of the settings line, for the settings of :data:`RULES`."""

EQUITY_REL_TOLERANCE = 1e-9
"""Same data, same fit, same settings: equal to floating-point summation order."""


def patron(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([sys.executable, "-m", "patron", *args], capture_output=True, text=True, timeout=900, cwd=cwd)
    assert proc.returncode == 0, f"patron {' '.join(args)} exited {proc.returncode}: {proc.stderr[-1500:]}"
    assert "Traceback" not in proc.stderr
    return proc


@pytest.fixture(scope="module")
def expected_bases() -> dict[str, int]:
    """Customers per spend basis, from the raw file: purchases of one day are one purchase (the
    summary's grain); repeat days are those after the first."""
    raw = pd.read_csv(MASTER, sep=r"\s+", dtype={"customer_id": str, "date": str})
    days = raw.groupby(["customer_id", "date"], as_index=False)["dollar_value"].sum().sort_values(["customer_id", "date"])
    repeat = days[days.groupby("customer_id").cumcount() > 0].groupby("customer_id")["dollar_value"].sum()
    customers = raw["customer_id"].nunique()
    return {SPEND_OWN: int((repeat > 0).sum()), SPEND_NONPOSITIVE: int((repeat <= 0).sum()),
            SPEND_NO_REPEAT: customers - len(repeat)}


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> dict[str, object]:
    """Every step once, in order, on one database; their outputs by step."""
    folder = tmp_path_factory.mktemp("master")
    assert hashlib.sha256(MASTER.read_bytes()).hexdigest() == MASTER_SHA256
    (folder / "patron.toml").write_text(RULES)
    db = ["--db", str(folder / "m.duckdb"), "--config", str(folder / "patron.toml")]
    steps: dict[str, object] = {}
    steps["ingest"] = json.loads(patron("ingest", str(MASTER), "--kind", "transactions", "--db", str(folder / "m.duckdb"),
                                        "--map", "occurred_at=date", "--map", "amount=dollar_value", "--json", cwd=folder).stdout)
    steps["score"] = json.loads(patron("score", *db, "--out", "scores.parquet", "--json", cwd=folder).stdout)
    steps["scores"] = pd.read_parquet(folder / "scores.parquet")
    steps["profiles"] = json.loads(patron("profiles", *db, "--out", "profiles.parquet", "--json", cwd=folder).stdout)
    steps["segments"] = patron("segments", *db, cwd=folder).stdout
    steps["equity"] = json.loads(patron("equity", *db, "--by", "value_tier", "--json", cwd=folder).stdout)
    steps["profitability"] = json.loads(patron("profitability", *db, "--out", "profit.csv", "--json", cwd=folder).stdout)
    steps["report_text"] = patron("report", *db, "--out", "report.html", cwd=folder).stdout
    steps["report"] = (folder / "report.html").read_text(encoding="utf-8")
    steps["profit"] = pd.read_csv(folder / "profit.csv", dtype={"customer_id": str})
    backtest = ("--as-of", "1997-12-31", "--horizon", "26W", "--json")
    steps["backtest_status"] = json.loads(patron("backtest", "status", *db, *backtest, cwd=folder).stdout)
    steps["backtest_segments"] = json.loads(patron("backtest", "segments", *db, *backtest[:2], "--json", cwd=folder).stdout)
    return steps


def test_the_raw_file_ingests_whole(run):
    ingest = run["ingest"]
    assert (ingest["rows_read"], ingest["accepted"], ingest["rejected"]) == (69_659, 69_659, 0)


def test_zero_value_customers_are_counted_and_valued_as_documented(run, expected_bases):
    assert expected_bases[SPEND_NONPOSITIVE] == 1  # customer 10244: one repeat purchase of $0.00
    assert run["score"]["spend_basis"] == expected_bases
    assert run["profiles"]["spend_basis"] == expected_bases
    scores = run["scores"].set_index("customer_id")
    assert len(scores) == 23_570
    odd = scores[scores["spend_basis"] == SPEND_NONPOSITIVE]
    assert list(odd.index) == ["10244"]
    one_time = scores[scores["spend_basis"] == SPEND_NO_REPEAT]
    assert odd["expected_spend"].iloc[0] == pytest.approx(one_time["expected_spend"].iloc[0], rel=1e-12)  # the population mean
    note = "1 customer valued at the population mean spend"
    assert any(n.startswith(note) for n in run["score"]["notes"])
    for text in (run["segments"], run["report_text"]):
        assert note in text
    assert (run["profit"]["spend_basis"] == SPEND_NONPOSITIVE).sum() == 1


def test_same_settings_same_equity_and_every_output_states_them(run):
    equity = run["score"]["customer_equity"]
    assert run["profiles"]["customer_equity"] == pytest.approx(equity, rel=EQUITY_REL_TOLERANCE)
    assert sum(r["equity"] for r in run["equity"]["rows"]) == pytest.approx(equity, rel=EQUITY_REL_TOLERANCE)
    assert run["profitability"]["clv"] == pytest.approx(equity, rel=EQUITY_REL_TOLERANCE)
    shown = re.search(r'<div class="label">customer equity</div><div class="value">\$([\d,.]+)</div>', run["report"])
    assert shown and float(shown.group(1).replace(",", "")) == pytest.approx(equity, abs=0.5)
    for step in ("score", "profiles", "equity", "profitability"):
        assert run[step]["value_settings"]["line"] == LINE, step
    for text in (run["segments"], run["report_text"], run["report"]):
        assert LINE in text


def test_backtested_statuses_fall_from_active_to_lost(run):
    """Issue 15: as of 1997-12-31 over 26 weeks, the share who bought again falls from active to
    lost, and lost customers buy again at most half as often as all buyers (the table is checked
    against a pandas recount of the raw file in tests/test_backtest.py)."""
    info = run["backtest_status"]
    rows = {r["status"]: r for r in info["rows"]}
    shares = [rows[s]["bought_share"] for s in ("active", "cooling", "at_risk", "lapsed", "lost")]
    assert shares == sorted(shares, reverse=True) and len(set(shares)) == 5
    base = info["rows"][-1]["bought_share"]
    assert rows["lost"]["bought_share"] <= 0.5 * base
    assert info["checks"]["falls"] is True and info["checks"]["lost_at_most_half"] is True
    champions = next(r for r in run["backtest_segments"]["rows"] if (r["kind"], r["segment"]) == ("segment", "champions"))
    assert champions["bought_share"] > base
