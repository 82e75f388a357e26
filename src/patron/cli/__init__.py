"""The ``patron`` command line: thin commands that parse options, call the Python API, and turn
:class:`~patron.errors.PatronError` into one line on stderr and a non-zero exit."""

from __future__ import annotations

import copy
import os
import re
import sys
from importlib import import_module

import typer
import typer.main

from patron.cli.app import app
from patron.errors import PatronError
from patron.scope import command_scope

COMMAND_MODULES: tuple[str, ...] = (
    "value_commands",  # fit, score, evaluate
    "status_commands",  # status, migration
    "backtest_commands",  # backtest status, backtest segments
    "loyalty_commands",  # loyalty, cohorts, profitability
    "segment_commands",  # segments, profiles, equity
    "report_commands",  # report
    "consent_commands",  # consent, plan
    "contact_commands",  # contact-effect
    "rights_commands",  # export-customer, erase-customer
    "customer_commands",  # customer, contact-check
    "referral_commands",  # referrals
    "engagement_commands",  # engagement
    "place_commands",  # stores
    "motivation_commands",  # motivation
    "service_commands",  # serve, keys
)
"""Modules under ``patron.cli`` whose import registers commands on :data:`app`."""

for _module in COMMAND_MODULES:
    import_module(f"patron.cli.{_module}")


def command_flags(argv: list[str]) -> dict[str, str]:
    """The options of the command ``argv`` runs, by name -> its long flag: by the command's
    Python parameter name (``interval_method`` -> ``--interval-method``, ``from_date`` ->
    ``--from``) and by the flag's own name (``out`` -> ``--out`` for a parameter ``out_file``);
    empty when ``argv`` names no command."""
    import typer

    command = typer.main.get_command(app)  # a group (Typer carries its own copy of click)
    words = [a for a in argv if not a.startswith("-")]
    while hasattr(command, "commands") and words:
        sub = command.commands.get(words.pop(0))
        if sub is None:
            return {}
        command = sub
    flags: dict[str, str] = {}
    for p in command.params:
        if p.param_type_name == "option" and p.name:
            flag = next((o for o in p.opts if o.startswith("--")), p.opts[0])
            flags[p.name] = flag
            flags.setdefault(flag.lstrip("-").replace("-", "_"), flag)
    return flags


def flag_message(exc: PatronError, argv: list[str]) -> str:
    """``exc``'s one line with the parameters it names (:attr:`PatronError.parameters`) written
    as the running command's flags (the first mention of each); a parameter the command has no
    flag for keeps its Python name."""
    text = str(exc)
    if not exc.parameters:
        return text
    flags = command_flags(argv)
    for name in exc.parameters:
        flag = flags.get(name)
        if flag is not None:  # the first mention as a word of its own (not inside a path or a longer name)
            text = re.sub(rf"(?:(?<=^)|(?<=[\s(])){re.escape(name)}(?=$|[\s:;,)])", flag, text, count=1)
    return text


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``patron`` console script; returns the exit code."""
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        with command_scope():  # outputs never overwrite the database or a file of the command
            code = _app_for(args)(args=args, prog_name="patron", standalone_mode=False)
    except PatronError as exc:
        print(f"patron: error: {flag_message(exc, args)}", file=sys.stderr)
        return exc.exit_code
    except Exception as exc:
        code = _usage_error(exc)
        if code is None:
            code = _database_error(exc)
        if code is None:
            raise
        return code
    except KeyboardInterrupt:
        print("patron: interrupted", file=sys.stderr)
        return 130
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    return code if isinstance(code, int) else 0  # a command's typer.Exit(code), else 0


def _app_for(argv: list[str]) -> typer.Typer:
    """The app to run ``argv``: when it starts with a command's name, a copy of :data:`app` that
    holds that command alone, else the whole app (``patron``, ``patron -h``, a misspelt command,
    shell completion). Typer builds the Click parameters of every command it holds on each run
    (about 30 ms for the 60 commands), so a command builds only its own."""
    if not argv or argv[0].startswith("-") or os.environ.get("_PATRON_COMPLETE"):
        return app
    commands = [c for c in app.registered_commands
                if (c.name or typer.main.get_command_name(c.callback.__name__)) == argv[0]]  # type: ignore[union-attr]
    groups = [g for g in app.registered_groups if g.name == argv[0]]
    if len(commands) + len(groups) != 1:
        return app
    narrow = copy.copy(app)
    narrow.registered_commands, narrow.registered_groups = commands, groups
    return narrow


def _usage_error(exc: Exception) -> int | None:
    """Print one line for an error of the command line itself (an unknown option, a value outside
    an option's choices: Click's usage errors, exit 2) and return the exit code, as for every other
    error; ``None`` for any other exception. A group given no command prints its help instead.

    Click's classes are matched by name: Typer ships its own copy of Click."""
    kinds = {c.__name__ for c in type(exc).__mro__}
    if "NoArgsIsHelpError" in kinds:
        exc.show()  # type: ignore[attr-defined]
        return int(exc.exit_code)  # type: ignore[attr-defined]
    if "Abort" in kinds:
        print("patron: aborted", file=sys.stderr)
        return 1
    if "ClickException" not in kinds:
        return None
    message = " ".join(exc.format_message().replace("Value error, ", "").split())  # type: ignore[attr-defined]
    choice = _choice_error(exc, message)
    ctx = getattr(exc, "ctx", None)
    hint = f" (see {ctx.command_path} -h)" if ctx is not None else ""
    print(f"patron: error: {choice or message + hint}", file=sys.stderr)
    return int(exc.exit_code)  # type: ignore[attr-defined]


def _choice_error(exc: Exception, message: str) -> str | None:
    """For a value outside an option's choices, the library's wording with the flag and the
    canonical spellings (``--freq must be one of M, Q, W; got 'X'``: the same line as the Python
    API's ``freq must be one of ...``); ``None`` for any other usage error."""
    param = getattr(exc, "param", None)
    # Typer 0.29 keeps the choices on the parameter's type descriptor, 0.28 on its Click type
    values = (getattr(getattr(param, "type_descriptor", None), "choices", None)
              or getattr(getattr(param, "type", None), "choices", None))
    given = re.search(r"'([^']*)' is not one of ", message)
    if not values or given is None:
        return None
    flag = next((o for o in param.opts if o.startswith("--")), param.name)  # type: ignore[union-attr]
    return f"{flag} must be one of {', '.join(str(getattr(v, 'value', v)) for v in values)}; got {given.group(1)!r}"


def _database_error(exc: Exception) -> int | None:
    """Print one line for an error of the database engine and return the exit code; ``None`` for
    any other exception. DuckDB is looked up in ``sys.modules`` (a command that raised one of its
    errors has imported it), so that the CLI starts without importing it."""
    duckdb = sys.modules.get("duckdb")
    if duckdb is None or not isinstance(exc, duckdb.Error):
        return None
    if isinstance(exc, duckdb.OutOfMemoryException):
        first = str(exc).splitlines()[0]
        print(f"patron: error: the database engine ran out of memory ({first}); raise PATRON_MEMORY_LIMIT or --memory-limit", file=sys.stderr)
        return 1
    from patron.data.served import lock_conflict

    conflict = lock_conflict(exc)  # a lock met after the first open (e.g. an ATTACH)
    if conflict is not None:
        print(f"patron: error: {conflict}", file=sys.stderr)
        return 2
    print(f"patron: error: database engine: {str(exc).splitlines()[0]}", file=sys.stderr)
    return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
