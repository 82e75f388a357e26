"""Files patron writes for its users (``--out``, ``--save``, ``--rejects-file``, ``--plots``,
``--report``): one way to write them, safe for the data patron keeps and for whoever opens them.

Every user-named output is written through :func:`atomic_output` (tables through
:func:`patron.data.io.write_table`, which uses it):

* **Refused** before a byte is written, with one line naming the file (:class:`OutputError`):

  - a DuckDB database file (recognised by its header, whatever its name; symbolic and hard links
    are followed), or a file that belongs to one: its write-ahead log ``<db>.wal`` or the marker
    ``<db>.serve.json`` of a running ``patron serve``;
  - a file the running command uses otherwise: its database, input and rules files, its other
    outputs (noted by :func:`patron.scope.note_file` within a :func:`patron.scope.command_scope`:
    every CLI command runs in one), and the files a caller names in ``avoid`` (e.g. an ingest's
    source);
  - a directory, or a path whose folder does not exist (unless the caller creates folders).

* **Whole or not at all**: the output goes to a temporary file in the same folder
  (``.patron-<random>-<name>``: the name's extensions are kept for writers that go by them), is
  flushed to disk, then renamed over the target (``os.replace``). A failed or interrupted write
  leaves the previous file as it was. A symbolic link is followed: the file it points to is
  replaced and the link kept. The new file keeps the previous one's permission bits (a new name
  gets ``0666`` less the umask, as ``open`` gives).
* **Special files** (``/dev/null``, ``/dev/stdout``, a named pipe, a terminal) are written in
  place: they cannot be renamed over, and replacing one with a regular file would be wrong.
* **Write errors** (no space left on the device, permission denied, read-only file system) are one
  line naming the file.

CSV cells that a spreadsheet would run as a formula are neutralised: :func:`guard_formulas`
(tables) and :func:`guard_formulas_sql` (SQL ``COPY``), unless :func:`patron.scope.csv_safe` says not
to.
"""

from __future__ import annotations

import os
import re
import secrets
import stat
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from patron.data.dialect import DUCKDB
from patron.errors import OutputError
from patron.scope import note_file, noted_files

if TYPE_CHECKING:
    import pyarrow as pa

DUCKDB_MAGIC = b"DUCK"
DUCKDB_MAGIC_OFFSET = 8
"""A DuckDB database file holds ``DUCK`` at byte 8 of its header (after an 8-byte checksum)."""

DATABASE_COMPANIONS = (".wal", ".serve.json")
"""Suffixes of the files that belong to a database ``<db>``: its write-ahead log and the marker
of a running ``patron serve``."""

FORMULA_START = r"^[=+\-@\t\r]"
"""A text cell beginning with one of these characters (``=``, ``+``, ``-``, ``@``, tab, carriage
return) may be run as a formula by a spreadsheet (OWASP, "CSV Injection"). A regular expression
read the same by Python, Arrow and DuckDB (RE2)."""

PLAIN_NUMBER = r"^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$"
"""A cell that is only a number (``-12``, ``+33612345678``, ``-1.5e3``) is no formula and is
written as it is, so that identifiers and amounts in text columns survive a round trip; a cell
such as ``-1+cmd|'/C calc'!A0`` is guarded."""

FORMULA_GUARD = "'"
"""Prefix that makes a spreadsheet show a cell as text (OWASP's recommendation)."""

def write_errors() -> tuple[type[BaseException], ...]:
    """Exceptions of a failed write (Arrow's I/O errors are ``OSError``; DuckDB ``COPY`` raises
    ``duckdb.IOException``). A function, so that importing this module does not import DuckDB."""
    import duckdb

    return (OSError, duckdb.IOException)


# -- checks -----------------------------------------------------------------------------------
def is_database(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is a regular file with a DuckDB header."""
    p = Path(path)
    try:
        if not p.is_file():
            return False
        with open(p, "rb") as fh:
            head = fh.read(DUCKDB_MAGIC_OFFSET + len(DUCKDB_MAGIC))
    except OSError:
        return False
    return head[DUCKDB_MAGIC_OFFSET:] == DUCKDB_MAGIC


def _reason(exc: BaseException) -> str:
    code = getattr(exc, "errno", None)
    if not code:  # in the text: Arrow's "[errno 28] No space left on device", DuckDB's "errno":"28"
        found = re.search(r"errno\W{0,4}(\d+)", str(exc), re.IGNORECASE)
        code = int(found.group(1)) if found else None
    if code:
        return os.strerror(code)
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


def write_error(path: str | os.PathLike[str], exc: BaseException) -> OutputError:
    """The one-line error of a failed write of ``path``."""
    return OutputError(f"{path}: cannot write: {_reason(exc)}")


def _used_as(target: Path, st: os.stat_result | None, avoid: Mapping[str, str]) -> str | None:
    used = noted_files()
    for p, role in avoid.items():
        used.setdefault(os.path.realpath(p), role)
    for p, role in used.items():
        if p == str(target):
            return role
        if st is not None:
            try:
                other = os.stat(p)
            except OSError:
                continue
            if (other.st_dev, other.st_ino) == (st.st_dev, st.st_ino):  # a hard link
                return role
    return None


def _resolve(given: Path, avoid: Mapping[str | os.PathLike[str], str] | None, parents: bool) -> tuple[Path, bool]:
    """(the file to write, whether it is a special file written in place), or OutputError."""
    try:
        st: os.stat_result | None = os.stat(given)
    except FileNotFoundError:
        st = None
    except OSError as exc:
        raise write_error(given, exc) from None
    if st is not None and stat.S_ISDIR(st.st_mode):
        raise OutputError(f"{given}: is a directory; give a file name")
    if st is not None and not stat.S_ISREG(st.st_mode):
        return given, True
    target = Path(os.path.realpath(given))
    if is_database(target):
        raise OutputError(f"{given}: is a DuckDB database; patron never writes an output over a database (choose another file)")
    for suffix in DATABASE_COMPANIONS:
        owner = target.with_name(target.name[: -len(suffix)]) if target.name.endswith(suffix) else None
        if owner is not None and is_database(owner):
            raise OutputError(f"{given}: belongs to the database {owner.name}; choose another file for the output")
    role = _used_as(target, st, {str(k): v for k, v in (avoid or {}).items()})
    if role is not None:
        raise OutputError(f"{given}: is {role} of this command; write the output to another file")
    if not target.parent.is_dir():
        if not parents:
            raise OutputError(f"{given}: folder {given.parent} does not exist")
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise write_error(given, exc) from None
    return target, False


def check_output(path: str | os.PathLike[str], *, avoid: Mapping[str | os.PathLike[str], str] | None = None,
                 parents: bool = False) -> Path:
    """The file an output named ``path`` will be written to, after the checks of the module
    docstring (raises :class:`OutputError`). ``avoid``: more files it must not be, each with
    what it is (``{source: "the input"}``); ``parents``: create missing folders."""
    return _resolve(Path(path), avoid, parents)[0]


# -- writing ----------------------------------------------------------------------------------
def _discard(tmp: Path) -> None:
    try:
        tmp.unlink()
    except OSError:
        pass


@contextmanager
def atomic_output(path: str | os.PathLike[str], *, avoid: Mapping[str | os.PathLike[str], str] | None = None,
                  parents: bool = False) -> Iterator[Path]:
    """Write an output named ``path``: yields the path to write to (a temporary file beside it,
    or the special file itself) and, when the block ends without error, renames it over ``path``.

    Checks, ``avoid`` and ``parents`` as :func:`check_output`; a write error in the block
    (``OSError``, DuckDB's ``IOException``) becomes one :class:`OutputError` line naming
    ``path``. The output is noted (:func:`note_file`) so that the command cannot write it twice.
    """
    given = Path(path)
    target, special = _resolve(given, avoid, parents)
    note_file(target, "an output")
    if special:
        try:
            yield target
        except write_errors() as exc:
            raise write_error(given, exc) from None
        return
    tmp = target.with_name(f".patron-{secrets.token_hex(4)}-{target.name}")
    try:
        mode = stat.S_IMODE(os.stat(target).st_mode) if target.exists() else None
        os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
    except OSError as exc:
        raise write_error(given, exc) from None
    try:
        yield tmp
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        if mode is not None:
            os.chmod(tmp, mode)
        os.replace(tmp, target)
    except write_errors() as exc:
        _discard(tmp)
        raise write_error(given, exc) from None
    except BaseException:
        _discard(tmp)
        raise


def output_folder(path: str | os.PathLike[str]) -> Path:
    """The folder ``path`` for outputs (``--plots``), created when missing; a file there is an
    :class:`OutputError`."""
    given = Path(path)
    if given.exists() and not given.is_dir():
        raise OutputError(f"{given}: is a file, not a folder; give a folder for the output")
    try:
        given.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise write_error(given, exc) from None
    return given


# -- CSV formula guard ------------------------------------------------------------------------
_RISKY = re.compile(FORMULA_START)
_NUMBER = re.compile(PLAIN_NUMBER)


def guard_text(value: str) -> str:
    """``value`` with :data:`FORMULA_GUARD` in front when a spreadsheet could run it as a formula
    (it begins with a :data:`FORMULA_START` character and is not a :data:`PLAIN_NUMBER`)."""
    return FORMULA_GUARD + value if _RISKY.search(value) and not _NUMBER.search(value) else value


def guard_formulas(table: pa.Table) -> pa.Table:
    """``table`` with every text cell (and column name) that a spreadsheet could run as a formula
    prefixed by :data:`FORMULA_GUARD` (see :func:`guard_text`); numbers, dates and other
    non-text columns are untouched, as are nulls."""
    import pyarrow as pa
    import pyarrow.compute as pc

    table = table.rename_columns([guard_text(str(name)) for name in table.column_names])
    for i, fld in enumerate(table.schema):
        column = table.column(i)
        if pa.types.is_dictionary(fld.type) and (pa.types.is_string(fld.type.value_type) or pa.types.is_large_string(fld.type.value_type)):
            column = column.cast(fld.type.value_type)
        elif not (pa.types.is_string(fld.type) or pa.types.is_large_string(fld.type)):
            continue
        risky = pc.and_kleene(pc.match_substring_regex(column, FORMULA_START),
                              pc.invert(pc.match_substring_regex(column, PLAIN_NUMBER)))
        if not pc.any(risky).as_py():
            continue
        kind = column.type
        guarded = pc.if_else(risky, pc.binary_join_element_wise(pa.scalar(FORMULA_GUARD, kind), column, pa.scalar("", kind)), column)
        table = table.set_column(i, pa.field(fld.name, guarded.type, fld.nullable, fld.metadata), guarded)
    return table


def guard_formulas_sql(expr: str) -> str:
    """A DuckDB SQL expression: the text ``expr`` guarded as :func:`guard_text` does."""
    lit = DUCKDB.literal
    return (f"CASE WHEN regexp_matches({expr}, {lit(FORMULA_START)}) AND NOT regexp_matches({expr}, {lit(PLAIN_NUMBER)}) "
            f"THEN {lit(FORMULA_GUARD)} || {expr} ELSE {expr} END")
