"""Validated ingest: read a file or table, check every row against the data contract, store the
good rows, and record every unusable row with its source row number, column and reason.

Guarantees:

* Valid rows are never lost because of invalid ones: each row is judged on its own.
  Exception: an ``all_or_nothing`` table (the consents and preferences ledgers) stores no row of
  an input that has any rejected row, and ingest fails naming the first bad row and column.
* Re-ingesting the same rows adds nothing: rows are keyed (``order_id``; derived from the row's
  content and occurrence number when the input has no key column) and rows already stored with the
  same content are skipped and counted as ``already_present``.
* One ingest is one database transaction: it is stored whole or not at all.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa

from patron.data.dialect import DUCKDB
from patron.data.ingest import readers
from patron.data.ingest.checks import (
    SourceColumn,
    content_columns,
    derived_key_sql,
    duplicate_key_problems_sql,
    occurrence_sql,
    parsed_select_sql,
    parses_exactly,
    problem_checks,
    problems_one_pass_sql,
)
from patron.data.ingest.columns import parse_mapping, resolve_sources
from patron.data.ingest.delimited import resolve_delimiter, stage_delimited
from patron.data.ingest.jsonl import stage_jsonl
from patron.data.ingest.parquet import stage_parquet
from patron.data.ingest.sources import open_source
from patron.data.outputs import atomic_output, check_output, guard_formulas_sql
from patron.data.schema import CONTRACTS, TableContract
from patron.data.store import connect
from patron.errors import IncompleteInputError, InputError, OutputError
from patron.scope import csv_safe, note_file
from patron.settings import get_settings


@dataclass(frozen=True)
class IngestResult:
    """What one ingest did.

    ``accepted``: new rows stored. ``rejected``: input rows that could not be used (each is listed
    in the ``rejects`` table and in ``rejects_file``). ``already_present``: valid rows that were
    already stored with the same content (a re-ingest). ``updated``: rows whose stored values were
    updated (customers only). ``merged``: persons the customers joined in the identity graph.
    """

    accepted: int
    rejected: int
    rejects_file: str | None
    already_present: int
    updated: int
    rows_read: int
    kind: str
    source: str
    db: str
    ingest_id: str
    merged: int = 0
    """``customers`` only: persons of the identity graph that the file's customers joined (an event
    person whose e-mail or phone is a file customer's; see :mod:`patron.people.identity.files`)."""
    erased_before: int = 0
    """``customers`` only: rows of the file whose id, e-mail or phone belongs to a person erased
    before (on the suppression list, :mod:`patron.people.rights.suppress`): stored again, since a file is
    the business's own record; remove them from the source system too."""

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict; ``accepted``, ``rejected`` and ``rejects_file`` come first."""
        return asdict(self)


def _stage(con: duckdb.DuckDBPyConnection, source: Any, *, columns: Sequence[str] | None, delimiter: str | None, encoding: str | None, progress: Callable[[int], None] | None) -> tuple[readers.Staged, str]:
    if not isinstance(source, str | os.PathLike):
        return readers.stage_table(con, source), "<table>"
    path = Path(source)
    if not path.exists():
        raise InputError(f"{path}: no such file")
    note_file(path)
    if path.is_dir():
        raise InputError(f"{path}: is a directory, not a file")
    fmt = readers.file_format(path)
    if fmt == "parquet":
        return stage_parquet(con, path, progress=progress), str(path)
    text = open_source(path, encoding)
    if fmt == "jsonl":
        return stage_jsonl(con, text, progress=progress), str(path)
    delim = resolve_delimiter(text, delimiter)
    cols = list(columns) if columns else None
    if delim == readers.WHITESPACE:
        return readers.stage_whitespace(con, text, columns=cols, progress=progress), str(path)
    return stage_delimited(con, text, delimiter=delim, columns=cols, progress=progress), str(path)


def _default_rejects_file(db: str, source_label: str, kind: str) -> str:
    base = Path(db).parent if db != ":memory:" else Path.cwd()
    stem = Path(source_label).name.split(".")[0] if source_label != "<table>" else "table"
    return str(base / f"{stem}.{kind}.rejects.csv")


def ingest(
    source: Any,
    *,
    kind: str = "transactions",
    db: str | os.PathLike[str] | None = None,
    mapping: Mapping[str, str] | Sequence[str] | None = None,
    date_format: str | None = None,
    columns: Sequence[str] | None = None,
    delimiter: str | None = None,
    encoding: str | None = None,
    rejects_file: str | os.PathLike[str] | None = None,
    now: datetime | None = None,
    future_tolerance_hours: float | None = None,
    date_floor: date | None = None,
    progress: Callable[[int], None] | None = None,
    config: str | os.PathLike[str] | dict[str, Any] | None = None,
) -> IngestResult:
    """Ingest ``source`` into the ``kind`` table of the database ``db``.

    Parameters
    ----------
    source
        A CSV/TSV/whitespace-separated text file, a Parquet file, a JSON Lines file, or a pandas or
        polars DataFrame or pyarrow Table.
    kind
        a table of the contract: ``transactions``, ``customers``, ``contacts``, ``feedback``, ``consents``, ``preferences``, ``referrals``, ``offers`` or ``interactions`` (see ``docs/data-contract.md``).
    db
        DuckDB database file (default ``patron.duckdb``, or ``$PATRON_DB``).
    mapping
        Contract column -> input column, e.g. ``{"occurred_at": "date"}`` (or ``["occurred_at=date"]``).
    date_format
        strftime format of text timestamps, e.g. ``%Y%m%d`` or ``%d/%m/%Y``. Without it ISO 8601
        (with or without time and offset) and ``YYYYMMDD`` are recognised.
    columns
        Column names for a file without a header line.
    delimiter
        A character, or ``tab``/``comma``/``semicolon``/``pipe``/``whitespace``; sniffed when absent.
    encoding
        Encoding of a text file (a Python codec name such as ``latin-1``, ``cp1252``, ``utf-16``).
        A byte-order mark decides when present (unless ``encoding`` names a non-Unicode
        encoding); the default is UTF-8 (:data:`patron.data.ingest.sources.DEFAULT_ENCODING`). A row holding bytes that are not
        valid in the encoding is rejected with the bytes and where they are; nothing is replaced
        silently. Compressed files (gzip, zstd, bzip2, xz) are recognised by content, whatever
        their name.
    rejects_file
        Where to write the rejected rows as CSV (default: beside the database,
        ``<input stem>.<kind>.rejects.csv``); written only when rows are rejected.
    now, future_tolerance_hours
        Timestamps later than ``now`` (default: the current UTC time) plus the tolerance (default
        24 hours, ``$PATRON_FUTURE_TOLERANCE_HOURS``) are rejected.
    date_floor
        Timestamps before this date are rejected (default 1900-01-01, ``$PATRON_DATE_FLOOR``); see
        ``docs/data-contract.md``, *Plausibility rules*.
    progress
        Called with the number of rows read so far, for progress bars.
    config
        Rules file (path or parsed dict; default ``$PATRON_CONFIG`` or ``./patron.toml``): a
        ``customers`` file's ids, e-mails and phones enter the identity graph under its
        ``[service]`` identity rules, in the same transaction (:mod:`patron.people.identity.files`).

    Raises
    ------
    InputError
        The source is missing or unreadable, lacks a required column, a column it needs matches
        several input columns, or it has no valid row.
    IncompleteInputError
        Part of the file is damaged or truncated (compressed data that ends early, a Parquet row
        group that cannot be read): the rows read before it were stored; ``.result`` is the
        :class:`IngestResult`.
    """
    if kind not in CONTRACTS:
        raise InputError(f"kind must be one of {', '.join(CONTRACTS)}; got {kind!r}", parameters=("kind",))
    contract = CONTRACTS[kind]
    settings = get_settings()
    db_path = str(db if db is not None else settings.db)
    mapping_d = parse_mapping(mapping, contract)
    tolerance = settings.future_tolerance_hours if future_tolerance_hours is None else future_tolerance_hours
    limit = (now or datetime.now(UTC)).astimezone(UTC).replace(tzinfo=None) + timedelta(hours=tolerance)
    floor = settings.date_floor if date_floor is None else date_floor
    ingest_id = uuid.uuid4().hex[:16]
    # The rejects file may be neither the database nor the source: refused before anything is stored.
    avoid = {db_path: "the database"} | ({source: "the input"} if isinstance(source, str | os.PathLike) else {})
    if rejects_file is not None:
        check_output(rejects_file, avoid=avoid, parents=True)

    with connect(db_path) as con:
        staged, label = _stage(con, source, columns=columns, delimiter=delimiter, encoding=encoding, progress=progress)
        store = dict(contract=contract, mapping=mapping_d, label=label, ingest_id=ingest_id, date_format=date_format, future_limit=limit,
                     date_floor=floor, rejects_file=rejects_file, db_path=db_path, avoid=avoid, config=config)
        try:
            counts, rejects_path = _check_and_store(con, staged, **store)
        except duckdb.Error as exc:
            if staged.restage is None or isinstance(exc, duckdb.OutOfMemoryException):
                raise
            # The engine failed while reading a lazily staged file (a damaged Parquet page, text
            # that is not UTF-8): stage it again piece by piece, each bad piece a reject.
            staged = staged.restage(con)
            counts, rejects_path = _check_and_store(con, staged, **store)
        if rejects_path:
            try:
                _write_rejects(con, ingest_id, rejects_path, avoid)
            except OutputError as exc:
                raise OutputError(f"{exc}; {label} was stored all the same ({counts['accepted']:,} accepted; the "
                                  f"{counts['rejected']:,} rejected are in the rejects table, ingest_id {ingest_id})") from None
    result = IngestResult(
        accepted=counts["accepted"], rejected=counts["rejected"], rejects_file=rejects_path,
        already_present=counts["already_present"], updated=counts["updated"], rows_read=staged.rows_read,
        kind=kind, source=label, db=db_path, ingest_id=ingest_id, merged=counts.get("merged", 0),
        erased_before=counts.get("erased_before", 0),
    )
    if contract.all_or_nothing and counts["rejected"]:
        first = _first_reason(db_path, ingest_id)
        raise InputError(f"{label}: {first}; nothing stored ({kind} files are stored whole or not at all; {counts['rejected']} bad row{'s' if counts['rejected'] != 1 else ''}, all reasons in {rejects_path})")
    if staged.incomplete:
        raise IncompleteInputError(
            f"{label}: {staged.incomplete}; the {counts['accepted']:,} valid rows read before it were stored "
            f"(ingest {ingest_id}{', rejects in ' + rejects_path if rejects_path else ''})",
            result,
        )
    if counts["accepted"] + counts["already_present"] + counts["updated"] == 0:
        first = _first_reason(db_path, ingest_id)
        raise InputError(f"{label}: no valid rows ({counts['rejected']} rejected; first: {first}); all reasons in {rejects_path}")
    return result


def _check_and_store(con: duckdb.DuckDBPyConnection, staged: readers.Staged, *, contract: TableContract, mapping: dict[str, str], label: str,
                     ingest_id: str, date_format: str | None, future_limit: datetime, date_floor: date,
                     rejects_file: str | os.PathLike[str] | None, db_path: str, avoid: dict[Any, str],
                     config: Any = None) -> tuple[dict[str, int], str | None]:
    """Match the staged columns, then check and store the rows, book the ingest and (a customers
    file) enter its customers into the identity graph in one transaction; the counts and the
    rejects file (None when nothing was rejected)."""
    described = {r[0]: r[1] for r in con.execute("DESCRIBE _stage").fetchall()}
    types = [described[i] for i in staged.idents]
    sources, extras = resolve_sources(contract, staged, types, mapping, label)
    if staged.rows_read == 0:
        raise InputError(f"{label}: no data rows")
    con.execute("BEGIN TRANSACTION")
    try:
        counts = _validate_and_store(con, contract, sources, extras, staged, label=label, ingest_id=ingest_id, date_format=date_format, future_limit=future_limit, date_floor=date_floor)
        rejects_path = None
        if counts["rejected"]:
            rejects_path = str(Path(rejects_file or _default_rejects_file(db_path, label, contract.name)).resolve())
            check_output(rejects_path, avoid=avoid, parents=True)
        con.execute(
            "INSERT INTO ingests VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [ingest_id, label, contract.name, datetime.now(UTC).replace(tzinfo=None), staged.rows_read, counts["accepted"], counts["rejected"], counts["already_present"], rejects_path],
        )
        counts["merged"], counts["erased_before"] = _resolve_identities(con, contract, ingest_id, config)
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    return counts, rejects_path


def _resolve_identities(con: duckdb.DuckDBPyConnection, contract: TableContract, ingest_id: str, config: Any) -> tuple[int, int]:
    """A ``customers`` file: its customers enter the identity graph (and the rows of event persons
    they join follow them). Returns the number of persons merged into others, and of rows naming a
    person erased before."""
    if contract.name != "customers":
        return 0, 0
    from patron.people.identity.files import resolve_file_customers
    from patron.people.rights.suppress import erased_among

    done = resolve_file_customers(con, config, ingest_id=ingest_id)
    rows: dict[str, list[tuple[str, str]]] = {}
    for mid, _, kind, value in done.observations:
        rows.setdefault(mid, []).append((kind, value))
    return done.merged, erased_among(con, list(rows.values()))


def _validate_and_store(con: duckdb.DuckDBPyConnection, contract: TableContract, sources: dict[str, SourceColumn], extras: list[SourceColumn], staged: readers.Staged, *, label: str, ingest_id: str, date_format: str | None, future_limit: datetime, date_floor: date) -> dict[str, int]:
    """Parse, list problems, de-duplicate and store, in a few set-based passes.

    Window functions run only over the (rare) groups of identical rows; duplicates and conflicts
    are found with hash aggregates and joins, which DuckDB can spill to disk.
    """
    q, lit = DUCKDB.ident, DUCKDB.literal
    key = contract.key
    k, table = q(key), q(contract.name)
    derive = key not in sources
    # Typed input (Parquet, Arrow) parses with casts: _parsed is a view, re-read by each pass
    # below instead of held in memory. Text input (regular expressions, strptime) and derived
    # keys (an md5 per row) are parsed once into a temporary table.
    lazy = staged.typed and not derive
    select = parsed_select_sql(contract, sources, extras, date_format=date_format, content_hash=derive)
    con.execute(f"CREATE OR REPLACE TEMP {'VIEW' if lazy else 'TABLE'} _parsed AS {select}")
    future_sql = f"TIMESTAMP '{future_limit.isoformat(sep=' ')}'"
    checks = [
        (col, cond, reason)
        for col in contract.columns
        if col.name in sources or (col.required and not (col.name == key and derive))
        for cond, reason in problem_checks(col, date_format=date_format, future_limit_sql=future_sql, date_floor=date_floor,
                                           exact=col.name in sources and parses_exactly(col, sources[col.name]))
    ]
    con.execute('CREATE OR REPLACE TEMP TABLE _problems (_row BIGINT, "column" VARCHAR, value VARCHAR, reason VARCHAR)')
    hashes = None
    if not derive:
        # One pass gives each row's key hash (for the duplicate check below) and whether it has
        # any problem; the problems are listed by a second pass only when some row has one.
        anywhere = " OR ".join(f"({cond})" for _, cond, _ in checks) or "false"
        scan = con.execute(f"SELECT hash({k}) AS h, coalesce({anywhere}, false) AS bad FROM _parsed").fetchnumpy()
        bad = np.asarray(scan["bad"], dtype=bool)
        hashes = np.asarray(scan["h"], dtype=np.uint64)[~bad]
        del scan
        if bad.any():
            con.execute("INSERT INTO _problems " + problems_one_pass_sql(checks))
        del bad
    elif checks:
        con.execute("INSERT INTO _problems " + problems_one_pass_sql(checks))
    if staged.malformed.rows:
        m = staged.malformed
        con.register("_malformed", pa.table({"_row": pa.array(m.rows, pa.int64()), "column": pa.array([None] * len(m.rows), pa.string()), "value": m.texts, "reason": m.reasons}))
        con.execute("INSERT INTO _problems SELECT * FROM _malformed")
        con.unregister("_malformed")
    ok = "NOT EXISTS (SELECT 1 FROM _problems q WHERE q._row = p._row)"

    good = f"(SELECT * FROM _parsed p WHERE {ok})"
    if derive:
        # Identical rows in one input are distinct orders: number them by occurrence.
        con.execute(f"CREATE OR REPLACE TEMP TABLE _occurrence AS {occurrence_sql(good)}")
        con.execute(
            f"""CREATE OR REPLACE TEMP VIEW _rows AS
            SELECT p.* REPLACE ({derived_key_sql()} AS {k})
            FROM _parsed p LEFT JOIN _occurrence o ON o._row = p._row"""
        )
    else:
        con.execute("CREATE OR REPLACE TEMP VIEW _rows AS SELECT * FROM _parsed")
        # Duplicate keys within this input: the first occurrence wins, later ones are rejected.
        # Only keys whose 64-bit hash occurs twice can be duplicates: found by sorting the hashes
        # (8 bytes a row) instead of grouping the keys themselves, then checked exactly.
        twice = _repeated(hashes)
        if twice is not None:
            con.register("_twice", twice)
            candidates = f"(SELECT * FROM _parsed p WHERE {ok} AND hash(p.{k}) IN (SELECT h FROM _twice))"
            con.execute(f"INSERT INTO _problems {duplicate_key_problems_sql(key, candidates)}")
            con.unregister("_twice")

    cols = content_columns(contract)
    same = " AND ".join(f"t.{q(c)} IS NOT DISTINCT FROM p.{q(c)}" for c in cols)
    empty = not con.execute(f"SELECT count(*) FROM (SELECT 1 FROM {table} LIMIT 1)").fetchall()[0][0]
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE _stored AS
        SELECT p._row, p.{k}, ({same}) AS same
        FROM _rows p JOIN {table} t ON t.{k} = p.{k}
        WHERE {ok}{' AND false' if empty else ''}"""
    )
    updated = 0
    if contract.keep_extra_as_attributes:
        updated = con.execute("SELECT count(*) FROM _stored WHERE NOT same").fetchall()[0][0]
        if updated:
            con.execute(
                f"""UPDATE {table} AS t SET
                first_seen = coalesce(p.first_seen, t.first_seen),
                attributes = CAST(json_merge_patch(coalesce(t.attributes, '{{}}'), coalesce(p.attributes, '{{}}')) AS VARCHAR),
                ingest_id = {lit(ingest_id)}
                FROM _rows p JOIN _stored s ON s._row = p._row
                WHERE NOT s.same AND t.{k} = p.{k}"""
            )
    else:
        con.execute(
            f"""INSERT INTO _problems SELECT _row, {lit(key)}, {k},
            {lit(key + ' "')} || {k} || '" is already stored with different values' FROM _stored WHERE NOT same"""
        )
    names = ", ".join(q(c.name) for c in contract.columns)
    extra = ", attributes" if contract.keep_extra_as_attributes else ""
    # An all-or-nothing table (a ledger) stores no row of a file that has any bad row.
    problems = con.execute("SELECT count(*) FROM _problems").fetchall()[0][0]
    stored = con.execute("SELECT count(*) FROM _stored").fetchall()[0][0]
    blocked = contract.all_or_nothing and problems > 0
    # The anti-joins only when there is something to leave out (the usual first ingest has nothing).
    keep = [ok] if problems else []
    keep += ["NOT EXISTS (SELECT 1 FROM _stored s WHERE s._row = p._row)"] if stored else []
    accepted = 0 if blocked else con.execute(
        f"INSERT INTO {table} ({names}{extra}, ingest_id) "
        f"SELECT {names}{extra}, {lit(ingest_id)} FROM _rows p "
        f"WHERE {' AND '.join(keep) or 'true'}"
    ).fetchall()[0][0]
    already = con.execute("SELECT count(*) FROM _stored WHERE same").fetchall()[0][0]
    con.execute(
        f"""INSERT INTO rejects SELECT {lit(ingest_id)}, {lit(label)}, {lit(contract.name)},
        _row, "column", value, reason, now()::TIMESTAMP FROM _problems"""
    )
    rejected = con.execute("SELECT count(DISTINCT _row) FROM _problems").fetchall()[0][0]
    con.execute("DROP VIEW IF EXISTS _rows")
    con.execute(f"DROP {'VIEW' if lazy else 'TABLE'} IF EXISTS _parsed")
    for t in ("_stored", "_problems", "_occurrence"):
        con.execute(f"DROP TABLE IF EXISTS {t}")
    return {"accepted": int(accepted), "rejected": int(rejected), "already_present": int(already), "updated": int(updated)}


def _repeated(hashes: np.ndarray | None) -> pa.Table | None:
    """The values (column ``h``) that occur more than once in ``hashes`` (64-bit key hashes of
    the rows without problems), or None when every one is unique (then no key repeats). Sorted in
    place: 8 bytes a row, against a hash table of the keys themselves."""
    if hashes is None or hashes.size < 2:
        return None
    hashes.sort()
    same = hashes[1:] == hashes[:-1]
    if not same.any():
        return None
    return pa.table({"h": pa.array(np.unique(hashes[1:][same]), pa.uint64())})


def _write_rejects(con: duckdb.DuckDBPyConnection, ingest_id: str, path: str, avoid: dict[Any, str]) -> None:
    """Write the rejects of ``ingest_id`` as CSV to ``path`` (text cells guarded against formulas
    unless ``PATRON_CSV_SAFE`` is false; see :mod:`patron.data.outputs`)."""
    text = ['"column"', "value", "reason"]
    cells = [guard_formulas_sql(c) + f" AS {c}" for c in text] if csv_safe() else text
    with atomic_output(path, avoid=avoid, parents=True) as target:
        con.execute(
            f"""COPY (SELECT "row", {', '.join(cells)} FROM rejects WHERE ingest_id = {DUCKDB.literal(ingest_id)}
            ORDER BY "row", "column") TO {DUCKDB.literal(str(target))} (HEADER, DELIMITER ',')"""
        )


def _first_reason(db: str, ingest_id: str) -> str:
    with connect(db) as con:
        row = con.execute(
            'SELECT "row", "column", reason FROM rejects WHERE ingest_id = ? ORDER BY "row" LIMIT 1', [ingest_id]
        ).fetchall()
    if not row:
        return "none"
    row = row[0]
    col = f", column {row[1]}" if row[1] else ""
    return f"row {row[0]}{col}: {row[2]}"
