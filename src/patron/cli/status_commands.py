"""Commands about relationship status: ``patron status`` and ``patron migration``."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated

import typer

from patron.cli.app import DbOption, JsonOption, _print_json, app, out
from patron.cli.output import json_safe
from patron.cli.progress import spinner

AsOfOption = Annotated[str | None, typer.Option("--as-of", help="Date of the assessment, e.g. 1998-06-30 [default: day of the last purchase].")]
ConfigOption = Annotated[Path | None, typer.Option("--config", help="Rules file with a [status] section [default: $PATRON_CONFIG or ./patron.toml].")]
ModelOption = Annotated[str, typer.Option("--model", help="Transaction model giving P(alive): bgnbd, mbgnbd or pareto.")]
ModelFileOption = Annotated[Path | None, typer.Option("--model-file", help="Use this fitted model (JSON from patron fit MODEL --save FILE) instead of fitting.")]



@app.command()
def status(
    db: DbOption = None,
    as_of: AsOfOption = None,
    config: ConfigOption = None,
    model: ModelOption = "bgnbd",
    model_file: ModelFileOption = None,
    out_file: Annotated[Path | None, typer.Option("--out", help="Write every customer's status and reason to a .csv or .parquet file.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Relationship status of every customer (prospect, new, active, cooling, at_risk, lapsed,
    lost) as of a date: the distribution, and per customer with reasons in --out."""
    from patron.status import load_model, parse_date, relationship_status, status_counts

    parse_date(as_of, "--as-of")
    fixed = load_model(model_file) if model_file is not None else None
    with spinner("assessing relationship status", quiet=as_json):
        statuses = relationship_status(db, as_of=as_of, config=config, model=model, params=fixed)
    counts = status_counts(statuses)
    day = str(statuses["as_of"].iloc[0]) if len(statuses) else str(as_of)
    if out_file is not None:
        import pyarrow as pa

        from patron.io import write_table

        write_table(pa.Table.from_pandas(statuses, preserve_index=False), out_file)
    if as_json:
        rows = [{k: json_safe(v) for k, v in row.items()} for row in counts.to_dict(orient="records")]
        _print_json({"as_of": day, "customers": len(statuses), "statuses": rows, "out": str(out_file) if out_file else None})
        return
    from rich.table import Table

    t = Table(title=f"Relationship status as of {day}: {len(statuses):,} customers", title_justify="left")
    for name, justify in (("status", "left"), ("customers", "right"), ("share", "right"), ("mean P(alive)", "right")):
        t.add_column(name, justify=justify)  # type: ignore[arg-type]
    for row in counts.itertuples(index=False):
        p = "" if math.isnan(row.mean_probability_alive) else f"{row.mean_probability_alive:.3f}"
        t.add_row(row.status, f"{row.count:,}", f"{row.share:.1%}", p)
    out.print(t)
    if out_file is not None:
        out.print(f"statuses and reasons of {len(statuses):,} customers written to {out_file}")


@app.command()
def migration(
    from_date: Annotated[str, typer.Option("--from", help="First as-of date, e.g. 1997-12-31.")],
    to_date: Annotated[str, typer.Option("--to", help="Second as-of date, e.g. 1998-03-31.")],
    db: DbOption = None,
    config: ConfigOption = None,
    model: ModelOption = "bgnbd",
    model_file: ModelFileOption = None,
    as_json: JsonOption = False,
) -> None:
    """Migration matrix: customers by status at --from (rows) and at --to (columns), with how many
    slipped (new/active/cooling to at_risk/lapsed/lost) and how many came back."""
    from patron.status import load_model, parse_date
    from patron.status_history import migration_flows, migration_matrix

    parse_date(from_date, "--from"), parse_date(to_date, "--to")
    fixed = load_model(model_file) if model_file is not None else None
    with spinner("assessing status at both dates", quiet=as_json):
        matrix = migration_matrix(db, from_date=from_date, to_date=to_date, config=config, model=model, params=fixed)
    flows = migration_flows(matrix)
    if as_json:
        _print_json({"from": from_date, "to": to_date, "matrix": {r: {c: int(v) for c, v in row.items()} for r, row in matrix.iterrows()}, "flows": flows})
        return
    from rich.table import Table

    t = Table(title=f"Status migration {from_date} (rows) -> {to_date} (columns)", title_justify="left")
    t.add_column("from \\ to", no_wrap=True)
    for c in matrix.columns:
        t.add_column(str(c), justify="right")
    t.add_column("total", justify="right")
    for r, row in matrix.iterrows():
        t.add_row(str(r), *(f"{int(v):,}" for v in row), f"{int(row.sum()):,}")
    out.print(t)
    out.print(
        f"active -> at_risk: [bold]{flows['active_to_at_risk']:,}[/]; slipped (new/active/cooling -> at_risk/lapsed/lost): "
        f"[bold]{flows['slipped']:,}[/]; came back (at_risk/lapsed/lost -> new/active): [bold]{flows['came_back']:,}[/]; "
        f"acquired: {flows['acquired']:,}"
    )
