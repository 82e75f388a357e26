"""Encodings, byte-order marks and compression (issue 18): every text file is read whatever its
encoding and compression; bytes that are not valid text cost only their own row, with the bytes
and a hint at ``--encoding``; damaged or truncated compressed data keeps the rows before it and
fails with one line naming the file and where it broke. Never a traceback."""

from __future__ import annotations

import bz2
import gzip
import json
import lzma

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import patron
from patron.cli import main
from patron.errors import IncompleteInputError

HEADER = "customer_id,order_id,occurred_at,amount,note"
ROWS = [(f"c{i % 7}", f"o{i}", f"2024-01-{1 + i % 28:02d}", f"{i}.25", f"caf\u00e9 {i}") for i in range(1, 301)]
"""Orders whose note holds a non-ASCII character (U+00E9, one byte in Latin-1, two in UTF-8)."""


def text(rows=ROWS, header=HEADER) -> str:
    return header + "\n" + "".join(",".join(r) + "\n" for r in rows)


def stored(db: str) -> dict[str, float]:
    with duckdb.connect(db, read_only=True) as con:
        return dict(con.execute("SELECT order_id, amount FROM transactions").fetchall())


def expected(rows=ROWS) -> dict[str, float]:
    return {r[1]: float(r[3]) for r in rows}


def rejects(db: str) -> list[tuple[int, str]]:
    with duckdb.connect(db, read_only=True) as con:
        return con.execute('SELECT "row", reason FROM rejects ORDER BY "row"').fetchall()


def run(capsys, *args: str) -> tuple[int, str]:
    code = main(["ingest", *args])
    out = capsys.readouterr()
    assert "Traceback" not in out.out + out.err
    if code:
        assert len(out.err.strip().splitlines()) == 1, out.err
    return code, out.err.strip()


@pytest.mark.parametrize(
    ("name", "data"),
    [
        ("utf16le_bom.csv", b"\xff\xfe" + text().encode("utf-16-le")),
        ("utf16be_bom.csv", b"\xfe\xff" + text().encode("utf-16-be")),
        ("utf32_bom.csv", text().encode("utf-32")),
        ("utf8_bom.csv", b"\xef\xbb\xbf" + text().encode()),
        ("utf16le_no_bom.csv", text().encode("utf-16-le")),
        ("gzip_named.csv", gzip.compress(text().encode())),
        ("plain_named.csv.gz", text().encode()),
        ("bzip2.csv", bz2.compress(text().encode())),
        ("xz.csv", lzma.compress(text().encode())),
        ("two_members.csv.gz", gzip.compress(text(ROWS[:100]).encode()) + gzip.compress("".join(",".join(r) + "\n" for r in ROWS[100:]).encode())),
        ("gzip_utf16.csv.gz", gzip.compress(text().encode("utf-16"))),
        ("old_mac.csv", text().replace("\n", "\r").encode()),
        ("windows.csv", text().replace("\n", "\r\n").encode()),
    ],
)
def test_every_encoding_and_compression_is_read(tmp_path, db, name, data):
    path = tmp_path / name
    path.write_bytes(data)
    res = patron.ingest(path, db=db)
    assert (res.accepted, res.rejected) == (len(ROWS), 0)
    assert stored(db) == expected()


def test_zstd_by_content(tmp_path, db):
    path = tmp_path / "orders.csv"
    with pa.CompressedOutputStream(str(path), "zstd") as out:
        out.write(text().encode())
    assert patron.ingest(path, db=db).accepted == len(ROWS)


@pytest.mark.parametrize("compress", [gzip.compress, bz2.compress, lzma.compress])
def test_compressed_json_lines(tmp_path, db, compress):
    path = tmp_path / "orders.jsonl"
    path.write_bytes(compress("".join(json.dumps(dict(zip(HEADER.split(","), r, strict=True))) + "\n" for r in ROWS).encode()))
    assert patron.ingest(path, db=db).accepted == len(ROWS)


def test_latin1_read_as_utf8_rejects_the_rows_with_bad_bytes_and_keeps_the_others(tmp_path, db):
    """Before: a traceback, exit 1, nothing stored, nothing in rejects."""
    rows = [(*r[:4], r[4] if i % 3 == 0 else "plain") for i, r in enumerate(ROWS)]
    path = tmp_path / "latin1.csv"
    path.write_bytes(text(rows).encode("latin-1"))
    res = patron.ingest(path, db=db)
    bad = [r for i, r in enumerate(rows) if i % 3 == 0]
    assert (res.accepted, res.rejected) == (len(rows) - len(bad), len(bad))
    assert stored(db) == expected([r for i, r in enumerate(rows) if i % 3])
    first_row, reason = rejects(db)[0]
    assert first_row == 1
    assert reason == "column 5 'note': bytes \\xe9 at byte 4 are not valid utf-8; is the file in another encoding? give --encoding (e.g. --encoding latin-1 or cp1252)"
    # As docs/data-contract.md says: again with the right encoding, the rest is added.
    again = patron.ingest(path, db=db, encoding="latin-1")
    assert (again.accepted, again.already_present, again.rejected) == (len(bad), len(rows) - len(bad), 0)
    assert stored(db) == expected(rows)


def test_latin1_with_encoding_round_trips_the_text(tmp_path, db, capsys):
    path = tmp_path / "customers.csv"
    path.write_bytes("customer_id,city\nc1,S\u00e3o Paulo\nc2,K\u00f6ln\n".encode("latin-1"))
    code, _ = run(capsys, str(path), "--db", db, "--kind", "customers", "--encoding", "latin-1")
    assert code == 0
    with duckdb.connect(db, read_only=True) as con:
        attrs = {c: json.loads(a)["city"] for c, a in con.execute("SELECT customer_id, attributes FROM customers").fetchall()}
    assert attrs == {"c1": "S\u00e3o Paulo", "c2": "K\u00f6ln"}


def test_a_byte_the_given_encoding_cannot_decode_rejects_its_row(tmp_path, db):
    path = tmp_path / "cp1252.csv"
    path.write_bytes(text(ROWS[:3]).encode("cp1252").replace(b"caf\xe9 2", b"caf\x81 2"))
    res = patron.ingest(path, db=db, encoding="cp1252")
    assert (res.accepted, res.rejected) == (2, 1)
    assert rejects(db) == [(2, "column 5 'note': bytes \\x81 at byte 4 are not valid cp1252; is the file in another encoding? check --encoding")]


@pytest.mark.parametrize("encoding", ["klingon", "base64", "rot13", "zlib"])
def test_an_unknown_or_non_text_encoding_is_one_line(tmp_path, db, capsys, encoding):
    path = tmp_path / "orders.csv"
    path.write_text(text())
    code, err = run(capsys, str(path), "--db", db, "--encoding", encoding)
    assert code == 2 and f"--encoding {encoding!r} is not a text encoding" in err


@pytest.mark.parametrize("encoding", ["utf-16", "utf-32"])
def test_utf16_or_32_given_without_a_mark_is_little_endian(tmp_path, db, encoding):
    path = tmp_path / "orders.csv"
    path.write_bytes(text().encode(encoding + "-le"))
    assert patron.ingest(path, db=db, encoding=encoding).accepted == len(ROWS)


@pytest.mark.parametrize("encoding", ["idna", "punycode", "utf-16"])
def test_text_a_codec_cannot_read_is_one_line(tmp_path, db, capsys, encoding):
    path = tmp_path / "orders.csv"
    path.write_bytes(text().encode("latin-1"))
    code, err = run(capsys, str(path), "--db", db, "--encoding", encoding)
    assert code == 2 and err.startswith(f"patron: error: {path}: ")


@pytest.mark.parametrize("fmt", ["jsonl", "txt"])
def test_bad_bytes_in_json_lines_and_whitespace_text_cost_one_row(tmp_path, db, fmt):
    if fmt == "jsonl":
        lines = [json.dumps(dict(zip(HEADER.split(","), r, strict=True)), ensure_ascii=False) for r in ROWS[:5]]
    else:
        lines = [HEADER.replace(",", " ")] + [" ".join(r).replace("caf\u00e9 ", "cafe_") for r in ROWS[:5]]
        lines[3] = lines[3].replace("cafe_", "caf\u00e9_")
    data = "\n".join(lines).encode()
    data = data.replace("caf\u00e9 2".encode() if fmt == "jsonl" else "caf\u00e9_3".encode(), b"caf\xe9 2" if fmt == "jsonl" else b"caf\xe9_3")
    path = tmp_path / f"orders.{fmt}"
    path.write_bytes(data)
    res = patron.ingest(path, db=db)
    assert (res.accepted, res.rejected) == (4, 1)
    (row, reason), = rejects(db)
    assert row == (2 if fmt == "jsonl" else 3)
    assert "the line: bytes \\xe9" in reason and "--encoding" in reason


def test_a_quote_left_open_costs_only_its_line(tmp_path, db):
    """Arrow's parser read every line after an unclosed quote as part of one field (a block of
    good rows lost as one malformed row)."""
    lines = text().splitlines(keepends=True)
    lines[10] = 'c3,"o10,2024-01-11,10.25,open quote\n'
    path = tmp_path / "orders.csv"
    path.write_text("".join(lines))
    res = patron.ingest(path, db=db)
    assert (res.accepted, res.rejected) == (len(ROWS) - 1, 1)
    assert stored(db) == {k: v for k, v in expected().items() if k != "o10"}
    assert rejects(db) == [(10, "a quoted field is not closed on its line (a record is one line)")]


BIG = [(f"c{i % 7}", f"o{i}", "2024-01-02", f"{i}.5", "x" * 40) for i in range(1, 20001)]


@pytest.mark.parametrize("compress", [gzip.compress, lambda d: bz2.compress(d, 1), lzma.compress], ids=["gzip", "bzip2", "xz"])
def test_truncated_compressed_data_keeps_the_rows_before_the_break_and_fails_in_one_line(tmp_path, db, capsys, compress):
    """Before: a traceback, exit 1, nothing stored, nothing in rejects."""
    data = compress(text(BIG).encode())
    path = tmp_path / "orders.csv.gz"
    path.write_bytes(data[: len(data) // 2])
    code, err = run(capsys, str(path), "--db", db)
    assert code == 2
    assert err.startswith(f"patron: error: {path}: the ") and " data ends early (truncated) at byte " in err
    assert "valid rows read before it were stored" in err
    kept = stored(db)
    full = expected(BIG)
    assert 0 < len(kept) < len(BIG)
    # Exactly the first rows, whole: the row cut at the break was not stored.
    assert kept == {f"o{i}": full[f"o{i}"] for i in range(1, len(kept) + 1)}
    (row, reason), = rejects(db)
    assert row == len(kept) + 1 and "ends early (truncated)" in reason
    with pytest.raises(IncompleteInputError) as info:
        patron.ingest(path, db=str(tmp_path / "api.duckdb"))
    assert info.value.result.accepted == len(kept)


def test_damaged_gzip_is_refused_whole(tmp_path, db, capsys):
    """A checksum covers a whole gzip member: rows decoded before the damage was found may
    already be wrong, so none is stored."""
    data = gzip.compress(text(BIG).encode())
    middle = len(data) // 2
    path = tmp_path / "orders.csv"
    path.write_bytes(data[:middle] + bytes(b ^ 0x5A for b in data[middle: middle + 64]) + data[middle + 64:])
    code, err = run(capsys, str(path), "--db", db)
    assert code == 2 and "the gzip data is damaged" in err and "nothing stored" in err
    assert stored(db) == {}


def test_a_damaged_parquet_row_group_costs_only_its_rows(tmp_path, db, capsys):
    path = tmp_path / "orders.parquet"
    names = HEADER.split(",")
    table = pa.table({n: [r[i] for r in ROWS] for i, n in enumerate(names)})
    pq.write_table(table, path, row_group_size=100, compression="NONE")
    meta = pq.ParquetFile(path).metadata
    col = meta.row_group(1).column(3)
    start = col.data_page_offset
    data = bytearray(path.read_bytes())
    data[start: start + 40] = b"\xff" * 40  # the second row group's amount page header
    path.write_bytes(bytes(data))
    code, err = run(capsys, str(path), "--db", db)
    assert code == 2 and "Parquet row group 2 of 3 is damaged" in err
    assert stored(db) == {k: v for k, v in expected().items() if not 101 <= int(k[1:]) <= 200}
    assert [r for r, _ in rejects(db)] == [101]


def test_parquet_text_that_is_not_utf8_costs_only_its_row(tmp_path, db):
    """Arrow writes and reads Parquet text without checking it; DuckDB refuses it and failed the
    whole ingest (exit 1, "database engine: Invalid string encoding found in Parquet file")."""
    good = [r[0].encode() for r in ROWS[:5]]
    values = [*good[:2], b"c\xe9", *good[3:]]
    offsets = np.cumsum([0] + [len(v) for v in values]).astype(np.int32)
    ids = pa.Array.from_buffers(pa.string(), len(values), [None, pa.py_buffer(offsets.tobytes()), pa.py_buffer(b"".join(values))])
    table = pa.table({"customer_id": ids, "order_id": [r[1] for r in ROWS[:5]], "occurred_at": [r[2] for r in ROWS[:5]], "amount": [float(r[3]) for r in ROWS[:5]]})
    path = tmp_path / "orders.parquet"
    pq.write_table(table, path)
    res = patron.ingest(path, db=db)
    assert (res.accepted, res.rejected) == (4, 1)
    assert stored(db) == {k: v for k, v in expected(ROWS[:5]).items() if k != "o3"}
    assert rejects(db) == [(3, "column 1 'customer_id': bytes \\xe9 at byte 2 are not valid utf-8; is the file in another encoding? "
                               "give --encoding (e.g. --encoding latin-1 or cp1252) (the Parquet file's text is damaged)")]
