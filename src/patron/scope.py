"""The running command: the files it uses, and whether its CSV output is guarded.

Every CLI command runs in one :func:`command_scope`. Within it, :func:`note_file` records each file
the command uses (the database, input and rules files, outputs already written), so that an output
may not overwrite any of them (:func:`patron.data.outputs.atomic_output` asks :func:`noted_files`);
:func:`set_csv_raw` records ``patron --csv-raw``. Outside any scope (the Python API) nothing is
recorded: only the checks on the database and the files a caller names apply.

This is part of the kernel: it imports nothing of patron but the settings, so that the rules file
reader (:mod:`patron.config`) and every stage can note the files they read.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field


@dataclass
class _Scope:
    files: dict[str, str] = field(default_factory=dict)
    """Resolved path -> what it is to the command (``the database``, ``an input``, ``an output``)."""
    csv_safe: bool | None = None
    """``False`` when the command was run with ``--csv-raw``."""


_SCOPES: list[_Scope] = []


@contextmanager
def command_scope() -> Iterator[None]:
    """Run one command: within the block, every file noted by :func:`note_file` (the database,
    inputs, rules files, outputs already written) is one that an output may not overwrite. The
    CLI runs each command in one; outside any, only the database checks and ``avoid`` apply."""
    _SCOPES.append(_Scope())
    try:
        yield
    finally:
        _SCOPES.pop()


def note_file(path: str | os.PathLike[str], role: str = "an input") -> None:
    """Record that the running command uses ``path`` as ``role`` (no-op outside a
    :func:`command_scope`, and for ``:memory:``)."""
    if _SCOPES and str(path) != ":memory:":
        _SCOPES[-1].files.setdefault(os.path.realpath(path), role)


def noted_files() -> dict[str, str]:
    """The files noted by the running command so far: resolved path -> role (a copy; empty
    outside a :func:`command_scope`)."""
    return dict(_SCOPES[-1].files) if _SCOPES else {}


def set_csv_raw() -> None:
    """Write this command's CSV files without formula guards (``patron --csv-raw``)."""
    if _SCOPES:
        _SCOPES[-1].csv_safe = False


def csv_safe(value: bool | None = None) -> bool:
    """Whether CSV output is guarded: ``value`` when given, else ``--csv-raw`` of the running
    command, else the setting ``PATRON_CSV_SAFE`` (default true)."""
    if value is not None:
        return value
    if _SCOPES and _SCOPES[-1].csv_safe is not None:
        return _SCOPES[-1].csv_safe
    from patron.settings import get_settings

    return get_settings().csv_safe
