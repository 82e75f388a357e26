"""Concurrent use (issue 18, item 8): a database held by another process is one line naming that
process (pid and command line) or the ``patron serve`` holding it, never DuckDB's raw lock text
(which suggests a ``-readonly`` flag patron does not have)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.service_support import running_service
from tests.test_cli import one_line_error, run

MARK = "patron-lock-holder-18"
"""A word in the holder's command line, to find it quoted in the error."""


def _holder(db: Path, *, read_only: bool) -> subprocess.Popen[str]:
    """A second process holding ``db`` (read-only or read-write) until its stdin gets a line."""
    code = textwrap.dedent(f"""
        import duckdb, sys  # {MARK}
        con = duckdb.connect({str(db)!r}, read_only={read_only})
        print("held", flush=True)
        sys.stdin.readline()
    """)
    proc = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
    return proc


@pytest.fixture
def db(tmp_path: Path) -> Path:
    (tmp_path / "o.csv").write_text("customer_id,occurred_at,amount\na,2024-01-01,1\na,2024-02-01,2\nb,2024-01-05,3\n")
    assert run("ingest", "o.csv", "--db", "o.duckdb", cwd=tmp_path).returncode == 0
    return tmp_path / "o.duckdb"


@pytest.mark.parametrize(("read_only", "command"), [
    (False, ["ingest", "o.csv"]),     # a writer meets a writer
    (False, ["summary"]),             # a reader meets a writer
    (True, ["ingest", "o.csv"]),      # a writer meets a reader (DuckDB's text then hints at -readonly)
])
def test_a_held_database_names_the_holding_process(db, read_only, command):
    holder = _holder(db, read_only=read_only)
    try:
        proc = run(*command, "--db", "o.duckdb", cwd=db.parent)
    finally:
        holder.communicate("\n", timeout=60)
    one_line_error(proc, "o.duckdb", f"process {holder.pid}", MARK)
    assert proc.returncode == 2
    assert "readonly" not in proc.stderr and "Conflicting lock" not in proc.stderr


def test_a_database_held_by_patron_serve_names_the_service(db):
    with running_service(db) as svc:
        marker = json.loads(db.with_name(db.name + ".serve.json").read_text())
        proc = run("ingest", "o.csv", "--db", "o.duckdb", cwd=db.parent)
    one_line_error(proc, "o.duckdb", "patron serve", f"process {marker['pid']}", svc.url, "serve --db")
    assert proc.returncode == 2
