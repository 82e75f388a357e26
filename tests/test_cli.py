"""The command line: JSON output, one-line errors with non-zero exits, never a traceback."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "patron", *args], capture_output=True, text=True, cwd=cwd, timeout=120)


def one_line_error(proc: subprocess.CompletedProcess[str], *fragments: str) -> None:
    assert proc.returncode != 0
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    for f in fragments:
        assert f in lines[0], lines[0]


def test_ingest_json_contract(tmp_path):
    (tmp_path / "o.csv").write_text("customer_id,occurred_at,amount\na,2025-01-01,1\n,2025-01-01,2\n")
    proc = run("ingest", "o.csv", "--kind", "transactions", "--db", "x.duckdb", "--json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert (out["accepted"], out["rejected"]) == (1, 1)
    assert Path(out["rejects_file"]).exists()


def test_missing_file(tmp_path):
    one_line_error(run("ingest", "nope.csv", cwd=tmp_path), "nope.csv", "no such file")


def test_missing_required_column(tmp_path):
    (tmp_path / "o.csv").write_text("customer_id,date,amount\na,2025-01-01,1\n")
    one_line_error(run("ingest", "o.csv", cwd=tmp_path), "o.csv", "missing required column occurred_at", "--map occurred_at=")


def test_zero_valid_rows(tmp_path):
    (tmp_path / "o.csv").write_text("customer_id,occurred_at,amount\na,never,1\nb,2025-01-01,x\n")
    proc = run("ingest", "o.csv", cwd=tmp_path)
    one_line_error(proc, "o.csv", "no valid rows", "row 1, column occurred_at")


def test_summary_without_database(tmp_path):
    one_line_error(run("summary", "--db", "none.duckdb", cwd=tmp_path), "none.duckdb", "does not exist")


@pytest.mark.parametrize("args", [["summary", "--period", "X"], ["summary", "--end", "30/09/1997"]])
def test_summary_bad_options(tmp_path, args):
    (tmp_path / "o.csv").write_text("customer_id,occurred_at,amount\na,2025-01-01,1\n")
    assert run("ingest", "o.csv", cwd=tmp_path).returncode == 0
    one_line_error(run(*args, cwd=tmp_path))


def test_summary_writes_csv_and_parquet(tmp_path):
    (tmp_path / "o.csv").write_text("customer_id,occurred_at,amount\na,2025-01-01,1\na,2025-01-08,3\n")
    assert run("ingest", "o.csv", cwd=tmp_path).returncode == 0
    for name in ("s.csv", "s.parquet"):
        proc = run("summary", "--period", "W", "--end", "2025-01-15", "--out", name, cwd=tmp_path)
        assert proc.returncode == 0, proc.stderr
        assert (tmp_path / name).stat().st_size > 0


def test_demo_runs_twice(tmp_path):
    for _ in range(2):
        proc = run("demo", cwd=tmp_path)
        assert proc.returncode == 0, proc.stderr
        assert "2,357" in proc.stdout
