"""The right to erasure: remove a person's data everywhere, keep aggregates honest, audit it.

The erasure never deletes in place. DuckDB, like most databases, keeps deleted rows in free blocks
and in its write-ahead log until they happen to be overwritten, so a ``DELETE`` does not take the
bytes out of the file. Instead the database is rewritten: a fresh file beside it receives the
schema (``COPY FROM DATABASE ... (SCHEMA)``: tables, views, macros, sequences) and every row
*except* the person's (or the person's rows under a pseudonym), in one transaction; the copy is
verified (same tables, each row count equal to the original's minus the erased rows, no identifier
left in any text column); then it atomically replaces the original (``os.replace``). The person's
bytes are never written to the new file. If any step fails, the new file is removed and the
original is untouched (it is only ever opened read-only, after a checkpoint that folds a leftover
write-ahead log into it).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import stat
import uuid
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import duckdb

from patron.config import section
from patron.errors import InputError, NoDataError, PatronError
from patron.rights.catalog import (
    Table,
    copy_sql,
    count_sql,
    identifiers,
    in_list,
    match_sql,
    residue_sql,
    tables,
)
from patron.rights.rules import AUDIT_TABLE, PSEUDONYM_PREFIX, Mode, RightsRules, erasures_ddl
from patron.schema import CONTRACTS
from patron.settings import get_settings
from patron.sql.dialect import DUCKDB
from patron.store import connect

TARGET_ALIAS = "patron_erasure_target"
"""Name under which the fresh database file is attached during the rewrite."""


@dataclass
class ErasureResult:
    """What an erasure did. ``tables`` maps each table that held something about the person to
    ``{"deleted": rows, "pseudonymized": rows}``. Holds no personal data (the same facts as the
    audit row); ``erasure_id`` is the receipt number."""

    erasure_id: str
    erased_at: dt.datetime
    mode: str
    db: str
    identifiers: int
    tables: dict[str, dict[str, int]] = field(default_factory=dict)
    rejects_files: list[str] = field(default_factory=list)
    """Rejects CSV files written by ingest (outside the database) that hold erased rejects rows:
    patron does not edit files outside the database, so these must be cleaned or deleted."""

    @property
    def rows_deleted(self) -> int:
        """Rows removed, over all tables."""
        return sum(t["deleted"] for t in self.tables.values())

    @property
    def rows_pseudonymized(self) -> int:
        """Rows kept under the pseudonym, over all tables."""
        return sum(t["pseudonymized"] for t in self.tables.values())

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (``erased_at`` as ISO 8601 UTC)."""
        d = asdict(self)
        d["erased_at"] = self.erased_at.isoformat() + "Z"
        d["rows_deleted"] = self.rows_deleted
        d["rows_pseudonymized"] = self.rows_pseudonymized
        return d


def new_pseudonym() -> str:
    """A fresh random pseudonym, ``erased-`` and 32 hex digits of a uuid4: unrelated to any id, so
    it cannot be reversed by guessing ids and hashing them."""
    return PSEUDONYM_PREFIX + uuid.uuid4().hex


def pseudonymize_sql(table: Table, ids: Sequence[str], *, target: str, pseudonym: str, key: str | None) -> tuple[str, list[str]]:
    """``INSERT`` into ``table`` of the attached database ``target`` of the person's rows with every
    person column that names them replaced by ``pseudonym`` and (when ``key`` is given) the key
    column replaced by ``<pseudonym>-<n>`` (n = 1, 2, ... in key order); other columns kept.
    Returns the SQL and its parameters."""
    where, where_params = match_sql(table, ids)
    exprs: list[str] = []
    params: list[str] = []
    for col, dtype in zip(table.columns, table.types, strict=True):
        q = DUCKDB.ident(col)
        if col in table.person_columns:
            if dtype not in ("VARCHAR", "TEXT", "STRING"):
                raise InputError(f"[rights] cannot pseudonymize {table.label}.{col}: it is {dtype}, not text; remove {table.label} from pseudonymize_tables")
            exprs.append(f"CASE WHEN coalesce({q} IN {in_list(len(ids))}, FALSE) THEN ? ELSE {q} END")
            params += [*ids, pseudonym]
        elif col == key:
            exprs.append(f"? || '-' || CAST(row_number() OVER (ORDER BY {q}) AS VARCHAR)")
            params.append(pseudonym)
        else:
            exprs.append(q)
    return copy_sql(table, target, where=where, select=", ".join(exprs)), params + where_params


def _pseudonymized(table: Table, rules: RightsRules, mode: Mode) -> bool:
    if mode != "pseudonymize" or not table.person_columns:
        return False
    names = {n.lower() for n in rules.pseudonymize_tables}
    return table.label.lower() in names


def _db_path(db: str | os.PathLike[str] | None) -> Path:
    path = Path(db if db is not None else get_settings().db)
    if str(path) == ":memory:":
        raise InputError("erasure needs a database file, not :memory:")
    if not path.is_file():
        raise InputError(f"database {path} does not exist")
    return path


def _fold_wal(path: Path) -> None:
    """Checkpoint a leftover write-ahead log into the file, so that the rewrite sees, and the
    replacement removes, everything."""
    if Path(str(path) + ".wal").exists():
        with connect(path) as con:
            con.execute("CHECKPOINT").fetchall()


def _remove(*paths: Path) -> None:
    for p in paths:
        try:
            p.unlink()
        except FileNotFoundError:
            pass


def erase_customer(
    db: str | os.PathLike[str] | None,
    customer_id: str,
    *,
    transactions: Mode | None = None,
    config: str | os.PathLike[str] | dict[str, Any] | None = None,
    now: dt.datetime | None = None,
) -> ErasureResult:
    """Erase everything held about the person ``customer_id`` from the database file ``db``.

    Rows whose person column (:data:`~patron.rights.rules.PERSON_COLUMNS`) equals one of the
    person's identifiers (the id, and the ``[rights] identity_attributes`` values such as the email
    in ``customers.attributes``) are removed from every table, in every schema; so are rejects rows
    whose value is an identifier or whose reason mentions one. With ``transactions="pseudonymize"``
    (default from ``[rights] transactions``), the person's rows of ``[rights]
    pseudonymize_tables`` (default: ``transactions``) are kept with the person columns replaced by
    one random pseudonym (and, with ``pseudonymize_keys``, the row keys by random tokens), so
    revenue and order counts are unchanged; with ``"delete"`` they are removed too.

    The database file is rewritten and atomically replaced (see the module docstring) so that no
    byte of the erased data remains in it; an ``erasures`` row records the erasure without
    personal data. All or nothing: on any error the original file is left as it was.

    Raises :class:`~patron.errors.NoDataError` when nothing is held about ``customer_id``, and
    :class:`~patron.errors.InputError` when the rewrite cannot be verified.
    """
    rules = section("rights", RightsRules, config)
    mode: Mode = transactions or rules.transactions
    if mode not in ("pseudonymize", "delete"):
        raise InputError(f"erasure mode must be pseudonymize or delete; got {mode!r}")
    customer_id = str(customer_id)
    path = _db_path(db)
    _fold_wal(path)
    fresh = path.with_name(f".{path.name}.erasing-{uuid.uuid4().hex}")
    erased_at = (now or dt.datetime.now(dt.UTC)).astimezone(dt.UTC).replace(tzinfo=None)
    try:
        with connect(path, read_only=True) as con:
            result = _rewrite(con, fresh, customer_id, mode=mode, rules=rules, erased_at=erased_at, db=str(path))
        os.chmod(fresh, stat.S_IMODE(os.stat(path).st_mode))
        os.replace(fresh, path)
    except BaseException:
        _remove(fresh, Path(str(fresh) + ".wal"))
        raise
    _remove(Path(str(path) + ".wal"), Path(str(fresh) + ".wal"))
    return result


def _rewrite(
    con: duckdb.DuckDBPyConnection, fresh: Path, customer_id: str, *, mode: Mode, rules: RightsRules,
    erased_at: dt.datetime, db: str,
) -> ErasureResult:
    """Copy the open database into ``fresh`` without the person's rows; verify; return the result."""
    source = con.execute("SELECT current_database()").fetchall()[0][0]
    found = [t for t in tables(con, rules, source) if not t.is_view]
    ids = identifiers(con, found, customer_id, rules)
    totals: dict[str, int] = {}
    matched: dict[str, int] = {}
    for t in found:
        totals[t.label] = con.execute(count_sql(t)).fetchall()[0][0]
        if t.about_people:
            where, params = match_sql(t, ids)
            matched[t.label] = con.execute(count_sql(t, where=where), params).fetchall()[0][0]
    if not sum(matched.values()):
        raise NoDataError(f"no data about customer {customer_id!r} in database {db}: nothing to erase")

    pseudonym = new_pseudonym()
    report: dict[str, dict[str, int]] = {}
    target = DUCKDB.ident(TARGET_ALIAS)
    con.execute(f"ATTACH {DUCKDB.literal(str(fresh))} AS {target} (READ_WRITE)").fetchall()
    try:
        con.execute(f"COPY FROM DATABASE {DUCKDB.ident(source)} TO {target} (SCHEMA)").fetchall()
        con.execute(erasures_ddl(f"{target}.main.{AUDIT_TABLE}")).fetchall()
        con.execute("BEGIN TRANSACTION").fetchall()
        try:
            for t in found:
                n = matched.get(t.label, 0)
                if not n:
                    con.execute(copy_sql(t, TARGET_ALIAS)).fetchall()
                    continue
                where, params = match_sql(t, ids)
                con.execute(copy_sql(t, TARGET_ALIAS, where=f"NOT {where}"), params).fetchall()
                if _pseudonymized(t, rules, mode):
                    contract = CONTRACTS.get(t.label)
                    key = contract.key if contract is not None and rules.pseudonymize_keys else None
                    sql, p = pseudonymize_sql(t, ids, target=TARGET_ALIAS, pseudonym=pseudonym, key=key)
                    con.execute(sql, p).fetchall()
                    report[t.label] = {"deleted": 0, "pseudonymized": n}
                else:
                    report[t.label] = {"deleted": n, "pseudonymized": 0}
            result = ErasureResult(
                erasure_id=uuid.uuid4().hex, erased_at=erased_at, mode=mode, db=db,
                identifiers=len(ids), tables=report, rejects_files=_rejects_files(con, found, ids),
            )
            con.execute(
                f"INSERT INTO {target}.main.{AUDIT_TABLE} VALUES (?, ?, ?, ?, ?, ?, ?)",
                [result.erasure_id, erased_at, mode, len(ids), result.rows_deleted,
                 result.rows_pseudonymized, json.dumps(report, sort_keys=True)],
            ).fetchall()
            con.execute("COMMIT").fetchall()
        except BaseException:
            try:
                con.execute("ROLLBACK").fetchall()
            except duckdb.Error:  # the failed statement may have ended the transaction already
                pass
            raise
        _verify(con, found, totals, report, ids, rules)
        con.execute(f"CHECKPOINT {target}").fetchall()
    finally:
        try:
            con.execute(f"DETACH {target}").fetchall()
        except duckdb.Error:  # pragma: no cover - already detached or never attached
            pass
    return result


def _rejects_files(con: duckdb.DuckDBPyConnection, found: Sequence[Table], ids: Sequence[str]) -> list[str]:
    """Rejects CSV files (``ingests.rejects_file``) of the ingests whose rejects rows name the person."""
    rejects = next((t for t in found if t.is_rejects), None)
    ingests = next((t for t in found if t.label == "ingests"), None)
    if rejects is None or ingests is None or not {"ingest_id", "rejects_file"} <= set(ingests.columns) or "ingest_id" not in rejects.columns:
        return []
    where, params = match_sql(rejects, ids)
    sql = (f"SELECT DISTINCT i.rejects_file FROM {ingests.ref()} AS i WHERE i.rejects_file IS NOT NULL AND i.ingest_id IN "
           f"(SELECT ingest_id FROM {rejects.ref()} WHERE {where}) ORDER BY 1")
    return [r[0] for r in con.execute(sql, params).fetchall()]


def _verify(
    con: duckdb.DuckDBPyConnection, found: Sequence[Table], totals: dict[str, int],
    report: dict[str, dict[str, int]], ids: Sequence[str], rules: RightsRules,
) -> None:
    """The copy holds the same tables as the original plus the audit log, each with the original
    row count minus the deleted rows, and (``residue_check = "equals"``) no text value equal to an
    identifier. Raises :class:`PatronError` otherwise (the caller discards the copy)."""
    copied = {t.label: t for t in tables(con, rules, TARGET_ALIAS) if not t.is_view}
    missing = sorted(set(totals) - set(copied))
    if missing:
        raise PatronError(f"erasure stopped, nothing changed: the rewritten database lacks table {missing[0]}")
    audit_before = totals.get(AUDIT_TABLE, 0)
    for label, t in copied.items():
        expected = totals.get(label, 0) - report.get(label, {}).get("deleted", 0)
        if label == AUDIT_TABLE:
            expected = audit_before + 1
        got = con.execute(count_sql(t, TARGET_ALIAS)).fetchall()[0][0]
        if got != expected:
            raise PatronError(f"erasure stopped, nothing changed: table {label} would have {got} rows, expected {expected}")
        if rules.residue_check == "equals":
            built = residue_sql(t, ids, TARGET_ALIAS)
            if built is None:
                continue
            sql, params, cols = built
            counts = con.execute(sql, params).fetchall()[0]
            for col, c in zip(cols, counts, strict=True):
                if c:
                    raise InputError(
                        f"erasure stopped, nothing changed: {c} value(s) of {label}.{col} still name the customer; "
                        f"add {col} to [rights] extra_person_columns (or clean it) and erase again"
                    )
