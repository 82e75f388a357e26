"""Commands about data rights: ``patron export-customer`` and ``patron erase-customer``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from patron.cli.app import DbOption, JsonOption, _print_json, app, err, out
from patron.cli.choices import ErasureMode, choice

ConfigOption = Annotated[
    Path | None, typer.Option("--config", help="Rules file with a [rights] section (default: $PATRON_CONFIG or ./patron.toml).")
]


@app.command("export-customer")
def export_customer_command(
    customer_id: Annotated[str, typer.Argument(help="Any identifier of the person: customer id, userId, anonymousId, email (any case), phone.")],
    db: DbOption = None,
    out_file: Annotated[Path | None, typer.Option("--out", help="Write the JSON document here instead of stdout.")] = None,
    config: ConfigOption = None,
) -> None:
    """Everything held about one person (every table with a person column, rejects naming them),
    as one JSON document."""
    from patron.people.rights import export_customer

    doc = export_customer(db, customer_id, config=config)
    text = json.dumps(doc, indent=2, ensure_ascii=False)
    if out_file is None:
        typer.echo(text)
        return
    from patron.data.outputs import atomic_output

    with atomic_output(out_file) as target:
        target.write_text(text + "\n", encoding="utf-8")
    n_rows = sum(len(rows) for rows in doc["tables"].values())
    n_tables = sum(1 for rows in doc["tables"].values() if rows)
    err.print(f"{n_rows:,} rows from {n_tables} tables written to {out_file}")


@app.command("erase-customer")
def erase_customer_command(
    customer_id: Annotated[str, typer.Argument(help="Any identifier of the person: customer id, userId, anonymousId, email (any case), phone.")],
    db: DbOption = None,
    mode: Annotated[
        ErasureMode | None,
        typer.Option("--mode", help="pseudonymize (keep transactions under a random pseudonym) or delete (default: [rights] transactions, else pseudonymize).", **choice()),
    ] = None,
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")] = False,
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Erase everything held about one person, rewrite the database file so no byte of it remains,
    and record the erasure (without personal data) in the erasures table."""
    from patron.errors import InputError
    from patron.people.rights import erase_customer

    if mode is not None and mode not in ("pseudonymize", "delete"):
        raise InputError(f"--mode must be pseudonymize or delete; got {mode!r}")
    if not yes and not typer.confirm(
        f"Erase everything held about {customer_id!r} from {db or 'the database'}? This cannot be undone", err=True
    ):
        err.print("nothing erased")
        raise typer.Exit(1)
    result = erase_customer(db, customer_id, transactions=mode, config=config)  # type: ignore[arg-type]
    if as_json:
        _print_json(result.to_dict())
        return
    from rich.table import Table

    t = Table(title=f"erasure {result.erasure_id} ({result.mode})", title_justify="left")
    t.add_column("table")
    t.add_column("deleted", justify="right")
    t.add_column("pseudonymized", justify="right")
    for name, counts in sorted(result.tables.items()):
        t.add_row(name, f"{counts['deleted']:,}", f"{counts['pseudonymized']:,}")
    out.print(t)
    out.print(f"{result.rows_deleted:,} rows deleted, {result.rows_pseudonymized:,} kept under a pseudonym; {result.db} rewritten")
    if result.scrubbed:
        out.print(f"{sum(result.scrubbed.values()):,} value(s) of other people's rows that named them replaced: "
                  + ", ".join(f"{k} {v:,}" for k, v in sorted(result.scrubbed.items())))
    out.print(f"{result.suppressed:,} keyed digest(s) of their identifiers and messageIds on the suppression list "
              "(replays of their events are dropped)")
    for path in result.rejects_files:
        err.print(f"warning: the rejects file {path} (outside the database) still holds erased rows: clean or delete it")
