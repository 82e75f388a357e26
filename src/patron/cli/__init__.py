"""The ``patron`` command line: thin commands that parse options, call the Python API, and turn
:class:`~patron.errors.PatronError` into one line on stderr and a non-zero exit."""

from __future__ import annotations

import sys
from importlib import import_module

import duckdb

from patron.cli.app import app
from patron.errors import PatronError
from patron.outputs import command_scope
from patron.served import lock_conflict

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
    "service_commands",  # serve, keys
)
"""Modules under ``patron.cli`` whose import registers commands on :data:`app`."""

for _module in COMMAND_MODULES:
    import_module(f"patron.cli.{_module}")


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``patron`` console script; returns the exit code."""
    try:
        with command_scope():  # outputs never overwrite the database or a file of the command
            app(args=argv, prog_name="patron")  # standalone: usage errors print and exit 2
    except PatronError as exc:
        print(f"patron: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except duckdb.OutOfMemoryException as exc:
        first = str(exc).splitlines()[0]
        print(f"patron: error: the database engine ran out of memory ({first}); raise PATRON_MEMORY_LIMIT or --memory-limit", file=sys.stderr)
        return 1
    except duckdb.Error as exc:
        conflict = lock_conflict(exc)  # a lock met after the first open (e.g. an ATTACH)
        if conflict is not None:
            print(f"patron: error: {conflict}", file=sys.stderr)
            return 2
        print(f"patron: error: database engine: {str(exc).splitlines()[0]}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("patron: interrupted", file=sys.stderr)
        return 130
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
