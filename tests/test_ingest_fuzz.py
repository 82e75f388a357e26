"""Fuzz every file reader through the command line (issue 18): random bytes, truncations and byte
mutations of valid CSV, TSV, semicolon, whitespace-separated, JSON Lines, Parquet, gzip, zstd and
UTF-16 files. Every run exits 0 or 2, never prints a traceback, and a failure is one line on
stderr; the good rows of a partly bad file are stored.

Cases are drawn from a seeded generator (the same every run); ``FUZZ_CASES`` per seed file keeps
the whole module under a minute on two cores. A few cases also run as a real subprocess
(``python -m patron ingest``).
"""

from __future__ import annotations

import gzip
import io
import json
import os
import random
import subprocess
import sys
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from patron.cli import main

FUZZ_CASES = 8
"""Mutated inputs per seed file (plus one of random bytes)."""

ROWS = [(f"c{i % 5}", f"o{i}", f"2024-02-{1 + i % 27:02d}", f"{i}.5", f"note-{i}") for i in range(1, 41)]
COLUMNS = ["customer_id", "order_id", "occurred_at", "amount", "note"]
SPECIALS = [b'"', b"\x00", b"\r", b"\n", b"\xff", b"\xef\xbb\xbf", b"\xfe\xff", b",", b";", b"\t", b"{", b"}", b"\\", b"\xe9", b"\x1f\x8b", b"PAR1"]
"""Bytes that tend to matter to a reader: quotes, line ends, NUL, BOMs, magic numbers, delimiters."""


def _delimited(sep: str) -> bytes:
    return (sep.join(COLUMNS) + "\n" + "".join(sep.join(r) + "\n" for r in ROWS)).encode()


def _jsonl() -> bytes:
    return "".join(json.dumps(dict(zip(COLUMNS, r, strict=True))) + "\n" for r in ROWS).encode()


def _parquet() -> bytes:
    buf = io.BytesIO()
    pq.write_table(pa.table({c: [r[i] for r in ROWS] for i, c in enumerate(COLUMNS)}), buf, row_group_size=10)
    return buf.getvalue()


def _zstd(data: bytes) -> bytes:
    out = pa.BufferOutputStream()
    with pa.CompressedOutputStream(out, "zstd") as z:
        z.write(data)
    return out.getvalue().to_pybytes()


SEEDS: dict[str, bytes] = {
    "orders.csv": _delimited(","),
    "orders_semicolon.csv": _delimited(";"),
    "orders.tsv": _delimited("\t"),
    "orders.txt": _delimited("  "),
    "orders.jsonl": _jsonl(),
    "orders.parquet": _parquet(),
    "orders.csv.gz": gzip.compress(_delimited(",")),
    "orders.jsonl.zst": _zstd(_jsonl()),
    "orders_utf16.csv": _delimited(",").decode().encode("utf-16"),
}
"""Valid files, one per reader and container, each holding :data:`ROWS`."""


def mutations(name: str, data: bytes) -> list[tuple[str, bytes]]:
    """``FUZZ_CASES`` damaged versions of ``data`` and one of random bytes, from a seeded generator."""
    rng = random.Random(f"fuzz:{name}")
    cases = [("random", rng.randbytes(rng.randrange(0, 3000)))]
    for k in range(FUZZ_CASES):
        kind = ("truncate", "flip", "special", "splice")[k % 4]
        b = bytearray(data)
        if kind == "truncate":
            b = b[: rng.randrange(0, len(b))]
        elif kind == "flip":
            for _ in range(rng.randrange(1, 9)):
                b[rng.randrange(len(b))] = rng.randrange(256)
        elif kind == "special":
            for _ in range(rng.randrange(1, 5)):
                at = rng.randrange(len(b) + 1)
                b[at:at] = rng.choice(SPECIALS)
        else:  # delete a run and repeat another
            at, n = rng.randrange(len(b)), rng.randrange(1, 64)
            del b[at: at + n]
            at2 = rng.randrange(len(b) + 1)
            b[at2:at2] = b[max(0, at2 - n): at2]
        cases.append((kind, bytes(b)))
    return cases


@pytest.mark.parametrize("name", list(SEEDS))
def test_every_seed_file_is_valid(tmp_path, name):
    """The files the fuzz starts from are stored whole (else a mutation proves nothing)."""
    path = tmp_path / name
    path.write_bytes(SEEDS[name])
    db = str(tmp_path / "t.duckdb")
    assert main(["ingest", str(path), "--db", db]) == 0
    assert _stored(db) == {r[1] for r in ROWS}


def check_cli(code: int, out: str, err: str) -> None:
    """Exit 0 or 2, no traceback, and a failure in one line."""
    assert "Traceback" not in out + err
    assert code in (0, 2), err
    if code == 2:
        lines = err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("patron: error: "), err


@pytest.mark.parametrize("name", list(SEEDS))
def test_fuzzed_files_exit_0_or_2_in_one_line(tmp_path, capsys, name):
    db = str(tmp_path / "fuzz.duckdb")  # one database for all cases: re-ingests are exercised too
    for i, (kind, data) in enumerate(mutations(name, SEEDS[name])):
        path = tmp_path / f"{i}-{name}"
        path.write_bytes(data)
        try:
            code = main(["ingest", str(path), "--db", db])
        except BaseException as exc:  # anything but a clean exit is the bug this test looks for
            pytest.fail(f"{kind} case {i} of {name} raised {type(exc).__name__}: {exc}")
        out = capsys.readouterr()
        check_cli(code, out.out, out.err)


def _stored(db: str) -> set[str]:
    with duckdb.connect(db, read_only=True) as con:
        return {r[0] for r in con.execute("SELECT order_id FROM transactions").fetchall()}


@pytest.mark.parametrize("name", ["orders.csv", "orders.tsv", "orders.txt", "orders.jsonl", "orders.csv.gz", "orders_utf16.csv"])
def test_the_good_rows_of_a_partly_bad_file_are_stored(tmp_path, capsys, name):
    """Some lines replaced by random bytes (no line break): every other row is stored."""
    rng = random.Random(f"partly:{name}")
    seed = SEEDS[name]
    text = gzip.decompress(seed) if name.endswith(".gz") else seed
    utf16 = "utf16" in name
    lines = (text.decode("utf-16") if utf16 else text.decode()).splitlines(keepends=True)
    first = 0 if name.endswith(".jsonl") else 1
    for trial in range(2):
        bad = sorted(rng.sample(range(first, len(lines)), 4))
        damaged = list(lines)
        for j in bad:
            junk = bytes(b for b in rng.randbytes(rng.randrange(1, 80)) if b not in (10, 13))
            damaged[j] = junk.decode("latin-1") + "\n"
        body = "".join(damaged)
        data = body.encode("utf-16") if utf16 else body.encode("utf-8", "surrogateescape")
        if name.endswith(".gz"):
            data = gzip.compress(data)
        path = tmp_path / f"{trial}-{name}"
        path.write_bytes(data)
        db = str(tmp_path / f"{trial}.duckdb")
        code = main(["ingest", str(path), "--db", db])
        out = capsys.readouterr()
        check_cli(code, out.out, out.err)
        good = {f"o{i}" for i in range(1, len(ROWS) + 1)} - {ROWS[j - first][1] for j in bad}
        assert code == 0
        assert good <= _stored(db)


def test_fuzzed_files_through_a_real_subprocess(tmp_path):
    """The same guarantees from ``python -m patron ingest`` (the console entry point)."""
    picks = [("orders.csv.gz", 1), ("orders.parquet", 2), ("orders_utf16.csv", 3)]
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1] / "src")}
    for name, i in picks:
        kind, data = mutations(name, SEEDS[name])[i]
        path = tmp_path / f"{kind}-{name}"
        path.write_bytes(data)
        run = subprocess.run([sys.executable, "-m", "patron", "ingest", str(path), "--db", str(tmp_path / f"{i}.duckdb")],
                             capture_output=True, text=True, env=env, timeout=300)
        check_cli(run.returncode, run.stdout, run.stderr)
