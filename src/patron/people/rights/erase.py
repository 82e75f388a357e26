"""The right to erasure: remove a person's data everywhere, keep aggregates honest, audit it.

The person is followed through every identifier they ever had (:mod:`patron.people.rights.person`): the
rows of every table that name them, their dead letters, merge records and links, and their
identifiers in rows of other people, which are scrubbed (:mod:`patron.people.rights.scrub`). Keyed digests
of their identifiers and messageIds join the suppression list (:mod:`patron.people.rights.suppress`).

The erasure never deletes in place. DuckDB, like most databases, keeps deleted rows in free blocks
and in its write-ahead log until they happen to be overwritten, so a ``DELETE`` does not take the
bytes out of the file. Instead the database is rewritten: a fresh file beside it receives the
schema (``COPY FROM DATABASE ... (SCHEMA)``: tables, views, macros, sequences) and every row
*except* the person's (or the person's rows under a pseudonym), others' rows scrubbed as they are
copied, in one transaction; the copy is verified (same tables, each row count equal to the
original's minus the erased rows, nothing naming the person in any text column); then it
atomically replaces the original (``os.replace``) while the original is still open read-only, so
no writer can slip in between. The person's bytes are never written to the new file. If any step
fails, the new file is removed and the original is untouched (it is only ever opened read-only,
after a checkpoint that folds a leftover write-ahead log into it).

**Interrupted.** An erasure holds a lock file (``.<db>.erasure.lock``, an exclusive ``flock`` the
kernel releases when the process dies) while it works: one erasure at a time, and the next process
that opens the database (any CLI command, ``patron serve``) removes a copy left by a killed one
(:func:`patron.data.store.remove_interrupted_erasures`). A kill before the rename leaves the database as
it was (the erasure was not done: run it again); after the rename it is done. The snapshot a
``patron serve`` keeps beside the database for the CLI (:mod:`patron.service.snapshot`) is deleted
before the rewrite when no live service keeps it (one killed: it may hold the person), and so are
snapshots half-written by killed services; a running service deletes its own before the rewrite
and writes a new one after it.
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
import pyarrow as pa

from patron.config import section
from patron.data.dialect import DUCKDB
from patron.data.schema import CONTRACTS
from patron.data.served import discard_stale_snapshot
from patron.data.store import connect, erasure_lock, remove_files, remove_interrupted_erasures
from patron.errors import InputError, NoDataError, PatronError
from patron.people.identity.follow import SOURCE_COLUMNS
from patron.people.identity.keyed import DIGEST_KEY, SECRET_TABLE, database_key, secret_ddl
from patron.people.rights.catalog import (
    Table,
    column_match,
    copy_sql,
    count_sql,
    match_sql,
    residue_sql,
    tables,
)
from patron.people.rights.person import Person, gather, identity_traits, resolve_dead_letters
from patron.people.rights.rules import (
    AUDIT_TABLE,
    PSEUDONYM_PREFIX,
    Mode,
    RightsRules,
    erasures_ddl,
)
from patron.people.rights.scrub import Plan, build_plan, plan_tables, planned_copy_sql
from patron.people.rights.suppress import SUPPRESSED_TABLE, digests, suppression_ddl
from patron.settings import get_settings

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
    scrubbed: dict[str, int] = field(default_factory=dict)
    """Values of other people's rows that named the person and were replaced, per
    ``table.column`` (and rows of others left out, per table: links with one identifier left)."""
    suppressed: int = 0
    """Keyed digests added to the suppression list (identifiers and messageIds)."""

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


def pseudonymize_sql(table: Table, person: Person, *, target: str, pseudonym: str, key: str | None) -> tuple[str, list[Any]]:
    """``INSERT`` into ``table`` of the attached database ``target`` of the person's rows with every
    person column that names them replaced by ``pseudonym`` and (when ``key`` is given) the key
    column replaced by ``<pseudonym>-<n>`` (n = 1, 2, ... in key order), a source column
    (``message_id``, ``ingest_id``) holding one of their messageIds set to NULL; other columns kept.
    Returns the SQL and its parameters."""
    where, where_params = match_sql(table, person)
    exprs: list[str] = []
    params: list[Any] = []
    for col, dtype in zip(table.columns, table.types, strict=True):
        q = DUCKDB.ident(col)
        if col in table.person_columns:
            if dtype not in ("VARCHAR", "TEXT", "STRING"):
                raise InputError(f"[rights] cannot pseudonymize {table.label}.{col}: it is {dtype}, not text; remove {table.label} from pseudonymize_tables")
            named, p = column_match(q, person)
            exprs.append(f"CASE WHEN {named} THEN ? ELSE {q} END")
            params += [*p, pseudonym]
        elif col == key:
            exprs.append(f"? || '-' || CAST(row_number() OVER (ORDER BY {q}) AS VARCHAR)")
            params.append(pseudonym)
        elif col in SOURCE_COLUMNS:  # the messageId of the person's event the row came from: erased too
            exprs.append(f"CASE WHEN list_contains(?::VARCHAR[], CAST({q} AS VARCHAR)) THEN NULL ELSE {q} END")
            params.append(sorted(person.messages))
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


def erase_customer(
    db: str | os.PathLike[str] | None,
    customer_id: str,
    *,
    transactions: Mode | None = None,
    config: str | os.PathLike[str] | dict[str, Any] | None = None,
    now: dt.datetime | None = None,
) -> ErasureResult:
    """Erase everything held about the person ``customer_id`` (or any identifier of theirs: a user
    id, an anonymous id, an e-mail in any case, a phone; :func:`patron.people.identity.resolve_identifier`)
    from the database file ``db``.

    The person is followed through every identifier they ever had (:mod:`patron.people.rights.person`):
    rows whose person column (:data:`~patron.people.rights.rules.PERSON_COLUMNS`, ``[rights]
    extra_person_columns``) names them are removed from every table, in every schema; so are
    rejects rows that name them and dead letters whose identifiers resolve to them; their
    identifiers in rows of other people are replaced (:mod:`patron.people.rights.scrub`). With
    ``transactions="pseudonymize"`` (default from ``[rights] transactions``), the person's rows of
    ``[rights] pseudonymize_tables`` (default: ``transactions``) are kept with the person columns
    replaced by one random pseudonym (and, with ``pseudonymize_keys``, the row keys by random
    tokens), so revenue and order counts are unchanged; with ``"delete"`` they are removed too.

    The database file is rewritten and atomically replaced (see the module docstring) so that no
    byte of the erased data remains in it; an ``erasures`` row records the erasure without
    personal data, and keyed digests of the person's identifiers and messageIds join the
    suppression list (:mod:`patron.people.rights.suppress`). All or nothing: on any error the original file
    is left as it was.

    Raises :class:`~patron.errors.NoDataError` when nothing is held about ``customer_id``, and
    :class:`~patron.errors.InputError` when the rewrite cannot be verified.
    """
    rules = section("rights", RightsRules, config)
    mode: Mode = transactions or rules.transactions
    if mode not in ("pseudonymize", "delete"):
        raise InputError(f"erasure mode must be pseudonymize or delete; got {mode!r}")
    path = _db_path(db)
    traits = identity_traits(config)
    erased_at = (now or dt.datetime.now(dt.UTC)).astimezone(dt.UTC).replace(tzinfo=None)
    with erasure_lock(path):
        remove_interrupted_erasures(path)  # nothing else holds the lock: a copy here is a dead one's
        discard_stale_snapshot(path)  # a killed service's snapshot (or half of one) still holds the person
        _fold_wal(path)
        fresh = path.with_name(f".{path.name}.erasing-{uuid.uuid4().hex}")
        try:
            with connect(path, read_only=True) as con:
                result = _rewrite(con, fresh, str(customer_id), mode=mode, rules=rules, erased_at=erased_at,
                                  db=str(path), traits=traits)
                if Path(str(fresh) + ".wal").exists():  # pragma: no cover - CHECKPOINT folds it
                    raise PatronError("erasure stopped, nothing changed: the rewritten database kept a write-ahead log")
                os.chmod(fresh, stat.S_IMODE(os.stat(path).st_mode))
                os.replace(fresh, path)  # the original is still open read-only: no writer in between
        except BaseException:
            remove_files(fresh, Path(str(fresh) + ".wal"))
            raise
        remove_files(Path(str(path) + ".wal"))
    return result


def find_person(con: duckdb.DuckDBPyConnection, identifier: str, rules: RightsRules, traits: Sequence[str]) -> tuple[list[Table], Person]:
    """The tables about people and the person ``identifier`` names (any identifier of theirs;
    the text itself when nothing resolves it), with their dead letters resolved."""
    from patron.people.identity.lookup import resolve_identifier

    source = con.execute("SELECT current_database()").fetchall()[0][0]
    found = tables(con, rules, source)
    customer_id = resolve_identifier(con, identifier) or str(identifier)
    person = gather(con, customer_id, rules)
    resolve_dead_letters(con, person, traits)
    return found, person


def _rewrite(
    con: duckdb.DuckDBPyConnection, fresh: Path, customer_id: str, *, mode: Mode, rules: RightsRules,
    erased_at: dt.datetime, db: str, traits: Sequence[str],
) -> ErasureResult:
    """Copy the open database into ``fresh`` without the person's rows, others' rows scrubbed;
    verify; return the result."""
    source = con.execute("SELECT current_database()").fetchall()[0][0]
    found_all, person = find_person(con, customer_id, rules, traits)
    found = [t for t in found_all if not t.is_view]
    totals: dict[str, int] = {}
    matched: dict[str, int] = {}
    for t in found:
        totals[t.label] = con.execute(count_sql(t)).fetchall()[0][0]
        if t.about_people:
            where, params = match_sql(t, person)
            matched[t.label] = con.execute(count_sql(t, where=where), params).fetchall()[0][0]
    if not sum(matched.values()):
        raise NoDataError(f"no data about customer {customer_id!r} in database {db}: nothing to erase")

    key = database_key(con, create=False)
    new_key = key is None
    if key is None:
        import secrets

        key = secrets.token_bytes(32)
    plan = build_plan(con, found, person, key)
    suppressed = digests(key, person.digest_pairs())
    pseudonym = new_pseudonym()
    report: dict[str, dict[str, int]] = {}
    target = DUCKDB.ident(TARGET_ALIAS)
    planned = plan_tables(plan, found)
    con.execute(f"ATTACH {DUCKDB.literal(str(fresh))} AS {target} (READ_WRITE)").fetchall()
    try:
        con.execute(f"COPY FROM DATABASE {DUCKDB.ident(source)} TO {target} (SCHEMA)").fetchall()
        con.execute(erasures_ddl(f"{target}.main.{AUDIT_TABLE}")).fetchall()
        con.execute(suppression_ddl(f"{target}.main.{SUPPRESSED_TABLE}")).fetchall()
        con.execute(secret_ddl(f"{target}.main.{SECRET_TABLE}")).fetchall()
        con.execute("BEGIN TRANSACTION").fetchall()
        try:
            for t in found:
                _copy_table(con, t, person, planned.get(t.label), matched.get(t.label, 0))
                n = matched.get(t.label, 0)
                if not n:
                    continue
                if _pseudonymized(t, rules, mode):
                    contract = CONTRACTS.get(t.label)
                    pk = contract.key if contract is not None and rules.pseudonymize_keys else None
                    sql, p = pseudonymize_sql(t, person, target=TARGET_ALIAS, pseudonym=pseudonym, key=pk)
                    con.execute(sql, p).fetchall()
                    report[t.label] = {"deleted": 0, "pseudonymized": n}
                else:
                    report[t.label] = {"deleted": n, "pseudonymized": 0}
            if new_key:
                con.execute(f"INSERT INTO {target}.main.{SECRET_TABLE} VALUES (?, ?)", [DIGEST_KEY, key.hex()]).fetchall()
            _patron_digests = pa.table({"digest": pa.array(suppressed, pa.string())})  # replacement scan
            con.execute(f"INSERT INTO {target}.main.{SUPPRESSED_TABLE} SELECT digest, ? FROM _patron_digests "
                        "ON CONFLICT DO NOTHING", [erased_at]).fetchall()
            result = ErasureResult(
                erasure_id=uuid.uuid4().hex, erased_at=erased_at, mode=mode, db=db,
                identifiers=person.identifiers, tables=report, rejects_files=_rejects_files(con, found, person),
                scrubbed=plan.mentions(), suppressed=len(suppressed),
            )
            con.execute(
                f"INSERT INTO {target}.main.{AUDIT_TABLE} VALUES (?, ?, ?, ?, ?, ?, ?)",
                [result.erasure_id, erased_at, mode, result.identifiers, result.rows_deleted,
                 result.rows_pseudonymized, json.dumps(report, sort_keys=True)],
            ).fetchall()
            con.execute("COMMIT").fetchall()
        except BaseException:
            try:
                con.execute("ROLLBACK").fetchall()
            except duckdb.Error:  # the failed statement may have ended the transaction already
                pass
            raise
        added = {AUDIT_TABLE: 1, SECRET_TABLE: int(new_key)}
        _verify(con, found, totals, report, plan, person, rules, added)
        con.execute(f"CHECKPOINT {target}").fetchall()
    finally:
        try:
            con.execute(f"DETACH {target}").fetchall()
        except duckdb.Error:  # pragma: no cover - already detached or never attached
            pass
    return result


def _copy_table(con: duckdb.DuckDBPyConnection, t: Table, person: Person,
                planned: tuple[pa.Table, pa.Table, list[str]] | None, matched: int) -> None:
    """Copy the rows of ``t`` that are not the person's, with the plan's changes."""
    if planned is None:
        if not matched:
            con.execute(copy_sql(t, TARGET_ALIAS)).fetchall()
            return
        where, params = match_sql(t, person)
        con.execute(copy_sql(t, TARGET_ALIAS, where=f"NOT {where}"), params).fetchall()
        return
    _patron_changes, _patron_drops, cols = planned  # read by the replacement scan of the copy
    where, params = match_sql(t, person, alias="o") if matched else ("FALSE", [])
    con.execute(planned_copy_sql(t, TARGET_ALIAS, cols, f"NOT {where}"), params).fetchall()


def _rejects_files(con: duckdb.DuckDBPyConnection, found: Sequence[Table], person: Person) -> list[str]:
    """Rejects CSV files (``ingests.rejects_file``) of the ingests whose rejects rows name the person,
    as they are on disk (a path may itself be named after the person: it is yours to clean)."""
    rejects = next((t for t in found if t.is_rejects), None)
    ingests = next((t for t in found if t.label == "ingests"), None)
    if rejects is None or ingests is None or not {"ingest_id", "rejects_file"} <= set(ingests.columns) or "ingest_id" not in rejects.columns:
        return []
    where, params = match_sql(rejects, person)
    sql = (f"SELECT DISTINCT i.rejects_file FROM {ingests.ref()} AS i WHERE i.rejects_file IS NOT NULL AND i.ingest_id IN "
           f"(SELECT ingest_id FROM {rejects.ref()} WHERE {where}) ORDER BY 1")
    return [r[0] for r in con.execute(sql, params).fetchall()]


def _verify(
    con: duckdb.DuckDBPyConnection, found: Sequence[Table], totals: dict[str, int],
    report: dict[str, dict[str, int]], plan: Plan, person: Person, rules: RightsRules, added: dict[str, int],
) -> None:
    """The copy holds the same tables as the original plus the audit log, each with the original
    row count minus the deleted rows (and the rows the plan left out) plus ``added`` (the audit row,
    a new key; the suppression list is not counted: a digest may be there already), and
    (``residue_check``) no
    text value naming the person (``equals``), nor containing their e-mail, phone or long ids
    (``contains``). Raises :class:`PatronError` otherwise (the caller discards the copy)."""
    copied = {t.label: t for t in tables(con, rules, TARGET_ALIAS) if not t.is_view}
    missing = sorted(set(totals) - set(copied))
    if missing:
        raise PatronError(f"erasure stopped, nothing changed: the rewritten database lacks table {missing[0]}")
    for label, t in copied.items():
        expected = (totals.get(label, 0) - report.get(label, {}).get("deleted", 0) - len(plan.drops.get(label, ()))
                    + added.get(label, 0))
        got = con.execute(count_sql(t, TARGET_ALIAS)).fetchall()[0][0]
        if label != SUPPRESSED_TABLE and got != expected:
            raise PatronError(f"erasure stopped, nothing changed: table {label} would have {got} rows, expected {expected}")
        if rules.residue_check == "off":
            continue
        built = residue_sql(t, person, TARGET_ALIAS, contained=rules.residue_check == "contains")
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
