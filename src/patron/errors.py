"""Errors that patron reports to its users.

Every problem a user can fix (a missing file, a missing column, no valid rows, a bad option) is a
:class:`PatronError`: its message is one line that names the file, row and column where they are
known. Surfaces (CLI, HTTP) print that line and exit non-zero; they never show a traceback for it.
"""

from __future__ import annotations


class PatronError(Exception):
    """A problem with the user's input or settings, described in one line.

    The message names arguments by their Python parameter names (``interval_method must be delta
    or bootstrap``), never by a command-line flag: ``parameters`` lists the names it mentions, the
    first mention of each being the parameter, so that a surface can write them its own way (the
    CLI writes the running command's flag: ``--interval-method must be ...``).
    """

    exit_code: int = 2

    def __init__(self, message: str, *, parameters: tuple[str, ...] = ()) -> None:
        super().__init__(" ".join(message.split()))
        self.parameters = tuple(parameters)


class InputError(PatronError):
    """An input file or table cannot be used at all (missing, unreadable, wrong columns, no valid rows)."""


class NoDataError(PatronError):
    """The database holds no data of the kind a command needs."""


class OutputError(PatronError):
    """An output file cannot be written: it would overwrite the database or a file the command
    reads, it is a directory, its folder is missing, or the write failed (disk full, permission)."""


class IncompleteInputError(InputError):
    """Part of an input could not be read (damaged or truncated data): the rows read before the
    damage were checked and stored, and ``result`` (an :class:`~patron.data.ingest.IngestResult`) says
    what was stored."""

    def __init__(self, message: str, result: object) -> None:
        super().__init__(message)
        self.result = result
