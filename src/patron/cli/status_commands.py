"""Commands about relationship status: ``patron status`` and ``patron migration``."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated

import typer

from patron.cli.app import DbOption, JsonOption, _print_json, app, out
from patron.cli.choices import Engine, TransactionModel, choice
from patron.cli.output import records, write_frame
from patron.cli.progress import spinner

AsOfOption = Annotated[str | None, typer.Option("--as-of", help="Date of the assessment, e.g. 1998-06-30 [default: day of the last purchase].")]
ConfigOption = Annotated[Path | None, typer.Option("--config", help="Rules file with a [status] section [default: $PATRON_CONFIG or ./patron.toml].")]
ModelOption = Annotated[TransactionModel, typer.Option("--model", help="Transaction model giving P(alive): bgnbd, mbgnbd or pareto.", **choice())]
ModelFileOption = Annotated[Path | None, typer.Option("--model-file", help="Use this fitted model (JSON from patron fit MODEL --save FILE) instead of fitting.")]



@app.command()
def status(
    db: DbOption = None,
    as_of: AsOfOption = None,
    config: ConfigOption = None,
    model: ModelOption = "bgnbd",
    model_file: ModelFileOption = None,
    out_file: Annotated[Path | None, typer.Option("--out", help="Write every customer's status and reason to a .csv or .parquet file (with --engine spark: a Parquet folder).")] = None,
    engine: Annotated[Engine | None, typer.Option("--engine", help="duckdb (the --db file) or spark (--transactions Parquet) [default: $PATRON_ENGINE or duckdb].", **choice())] = None,
    transactions: Annotated[str | None, typer.Option("--transactions", help="With --engine spark: Parquet file or folder of transactions.")] = None,
    customers: Annotated[str | None, typer.Option("--customers", help="With --engine spark: Parquet of known customers (adds prospects).")] = None,
    by: Annotated[str | None, typer.Option("--by", help="Break the statuses down by a profile column: a customer attribute (city, ...), region, value_tier, ...")] = None,
    as_json: JsonOption = False,
) -> None:
    """Relationship status of every customer (prospect, new, active, cooling, at_risk, lapsed,
    lost) as of a date, set by the model's chance of a purchase within the status horizon: the
    distribution, and per customer with reasons in --out.

    With --engine spark, customers are classified on the executors by the same code and only the
    counts per status come back (--as-of and --transactions are then required)."""
    from patron.data.engines import resolve_engine
    from patron.dates import parse_day
    from patron.relationship.status import load_model, relationship_status, status_counts

    parse_day(as_of, "as_of")
    if by is not None:
        print_breakdown(db, by, as_of=as_of, config=config, as_json=as_json, loyalty=False)
        return
    if resolve_engine(engine) is Engine.SPARK:
        # without pyspark: MissingExtraError, one line naming the spark extra
        from patron.relationship.spark_status import status_on_spark

        with spinner("assessing relationship status on Spark", quiet=as_json):
            counts = status_on_spark(transactions, as_of=as_of, config=config, model=model, customers=customers, out=out_file)
        n, day = int(counts["count"].sum()), str(as_of)
    else:
        fixed = load_model(model_file) if model_file is not None else None
        with spinner("assessing relationship status", quiet=as_json):
            statuses = relationship_status(db, as_of=as_of, config=config, model=model, params=fixed)
        counts, n = status_counts(statuses), len(statuses)
        day = str(statuses["as_of"].iloc[0]) if len(statuses) else str(as_of)
        write_frame(statuses, out_file)
    if as_json:
        rows = records(counts)
        _print_json({"as_of": day, "customers": n, "statuses": rows, "out": str(out_file) if out_file else None})
        return
    from rich.table import Table

    from patron.relationship.status import status_rules

    horizon = status_rules(config).horizon_label()
    t = Table(title=f"Relationship status as of {day}: {n:,} customers", title_justify="left")
    for name, justify in (("status", "left"), ("customers", "right"), ("share", "right"),
                          (f"mean P(purchase in {horizon})", "right"), ("mean P(alive)", "right")):
        t.add_column(name, justify=justify)  # type: ignore[arg-type]
    for row in counts.itertuples(index=False):
        q, p = ("" if math.isnan(v) else f"{v:.3f}" for v in (row.mean_probability_purchase, row.mean_probability_alive))
        t.add_row(row.status, f"{row.count:,}", f"{row.share:.1%}", q, p)
    out.print(t)
    if out_file is not None:
        out.print(f"statuses and reasons of {n:,} customers written to {out_file}")


def print_breakdown(db: str | None, by: str, *, as_of: str | None, config: Path | None, as_json: bool, loyalty: bool) -> None:
    """``--by COLUMN`` of ``patron status`` and ``patron loyalty``: statuses (or loyalty figures)
    per value of a profile column (:func:`patron.relationship.segments.breakdown.breakdown_by`)."""
    from rich.table import Table

    from patron.relationship.segments.breakdown import breakdown_by
    from patron.relationship.status import STATUSES

    with spinner(f"breaking down by {by}", quiet=as_json):
        table = breakdown_by(db, by, config=config, as_of=as_of)
    col = table.columns[0]
    if as_json:
        _print_json({"by": col, "rows": records(table)})
        return

    def pct(v: float) -> str:
        return "" if v is None or math.isnan(v) else f"{v:.1%}"

    names = (["customers", "return rate", "discount dependent", "mean spend", "mean CLV"] if loyalty
             else ["customers", *STATUSES, "mean P(alive)"])
    t = Table(title=f"{'Loyalty' if loyalty else 'Relationship status'} by {col}", title_justify="left")
    t.add_column(col)
    for name in names:
        t.add_column(name, justify="right")
    for r in table.to_dict(orient="records"):
        label = "(none)" if r[col] is None or (isinstance(r[col], float) and math.isnan(r[col])) else str(r[col])
        if loyalty:
            cells = [f"{r['customers']:,}", pct(r["return_rate"]), pct(r["discount_dependent_share"]),
                     "" if math.isnan(r["mean_total_spend"]) else f"{r['mean_total_spend']:,.2f}", f"{r['mean_clv']:,.2f}"]
        else:
            p = r["mean_probability_alive"]
            cells = [f"{r['customers']:,}", *(f"{int(r[s]):,}" for s in STATUSES), "" if math.isnan(p) else f"{p:.3f}"]
        t.add_row(label, *cells)
    out.print(t)


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
    slipped (new/active/cooling to at_risk/lapsed/lost) and how many came back (at_risk/lapsed/lost
    to a better status)."""
    from patron.dates import parse_day
    from patron.relationship.status import load_model
    from patron.relationship.status_history import migration_flows, migration_matrix

    parse_day(from_date, "from_date"), parse_day(to_date, "to_date")
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
        f"[bold]{flows['slipped']:,}[/]; came back (at_risk/lapsed/lost -> a better status): [bold]{flows['came_back']:,}[/]; "
        f"acquired: {flows['acquired']:,}"
    )
