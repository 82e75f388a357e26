"""Commands of the ``patron`` CLI. Each one parses, calls the Python API, and prints."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from patron.cli.choices import Engine, Kind, SummaryUnit, choice, plain_arguments
from patron.cli.output import print_overview
from patron.cli.progress import counting_progress, spinner
from patron.errors import InputError

if TYPE_CHECKING:
    from rich.console import Console

    from patron.settings import Settings

CONTEXT_SETTINGS: dict[str, Any] = {"help_option_names": ["-h", "--help"]}
"""Click settings of every command: ``-h`` as well as ``--help``."""


class _Typer(typer.Typer):
    """A Typer app whose commands receive their choices as plain ``str``
    (:func:`patron.cli.choices.plain_arguments`) on every Typer version."""

    def command(self, *args: Any, **kwargs: Any) -> Any:
        register = super().command(*args, **kwargs)

        def decorator(f: Any) -> Any:
            register(plain_arguments(f))
            return f

        return decorator


def typer_app(**kwargs: Any) -> typer.Typer:
    """A Typer app (the root or a group of subcommands) with the house settings; its commands
    receive choices as plain ``str`` (:class:`_Typer`).

    Help is rendered by Click as plain text, not Rich markup: a help text is shown as written, so
    ``[value]`` or ``[default: W]`` stay (Rich would take them for style tags and drop them), and
    Click joins the lines of each paragraph and wraps them to the terminal, so hard-wrapped
    docstrings do not print ragged (a paragraph starting with a ``\\b`` line keeps its lines).
    """
    return _Typer(rich_markup_mode=None, context_settings=CONTEXT_SETTINGS,
                  pretty_exceptions_enable=False, **kwargs)


app = typer_app(
    name="patron",
    help="Manage customer relationships by what they are worth.",
    no_args_is_help=True,
)


class _LazyConsole:
    """A Rich console made on first use, so that ``patron --help`` and ``patron version`` do not
    import Rich's console machinery."""

    def __init__(self, *, stderr: bool) -> None:
        self._stderr = stderr
        self._console: Console | None = None
        self._saved: dict[str, Any] = {}

    def _made(self) -> Console:
        if self._console is None:
            from rich.console import Console

            self._console = Console(stderr=self._stderr)
        return self._console

    def __getattr__(self, name: str) -> Any:
        return getattr(self._made(), name)

    def __setattr__(self, name: str, value: Any) -> None:
        """``out.width = 250`` sets the console's width; ``del out.width`` puts back the value it
        had before (what ``monkeypatch.setattr`` does when it undoes)."""
        if name.startswith("_"):
            object.__setattr__(self, name, value)
            return
        console = self._made()
        self._saved.setdefault(name, getattr(console, name))
        setattr(console, name, value)

    def __delattr__(self, name: str) -> None:
        if name not in self._saved:
            raise AttributeError(name)
        setattr(self._made(), name, self._saved.pop(name))


out: Console = _LazyConsole(stderr=False)  # type: ignore[assignment]
err: Console = _LazyConsole(stderr=True)  # type: ignore[assignment]


def get_settings() -> Settings:
    """:func:`patron.settings.get_settings`, imported when a command runs (Pydantic Settings
    takes a noticeable part of a start-up)."""
    from patron.settings import get_settings as settings

    return settings()


DbOption = Annotated[str | None, typer.Option("--db", help="DuckDB database file [default: patron.duckdb or $PATRON_DB].")]
JsonOption = Annotated[bool, typer.Option("--json", help="Print one JSON object on stdout instead of text.")]


def _show_version(value: bool) -> None:
    if value:
        from patron import __version__

        typer.echo(f"patron {__version__}")
        raise typer.Exit()


@app.callback()
def _options(
    version: Annotated[bool, typer.Option("--version", callback=_show_version, is_eager=True, help="Print patron's version and exit.")] = False,
    csv_raw: Annotated[bool, typer.Option("--csv-raw", help="Write CSV cells that begin with =, +, -, @, tab or CR as they are, without the apostrophe that stops spreadsheets running them as formulas (also PATRON_CSV_SAFE=false).")] = False,
) -> None:
    """Manage customer relationships by what they are worth."""
    if csv_raw:
        from patron.scope import set_csv_raw

        set_csv_raw()


def _print_json(data: Any) -> None:
    typer.echo(json.dumps(data, default=str))


@app.command()
def ingest(
    path: Annotated[Path, typer.Argument(help="CSV/TSV/whitespace-separated text, Parquet, or JSON Lines file.")],
    kind: Annotated[Kind, typer.Option("--kind", help="Kind of input: the data contract its rows are checked against.", **choice())] = "transactions",
    db: DbOption = None,
    mapping: Annotated[list[str] | None, typer.Option("--map", help="target=source column mapping, e.g. --map occurred_at=date (repeatable).")] = None,
    date_format: Annotated[str | None, typer.Option("--date-format", help="strftime format of text timestamps, e.g. %Y%m%d.")] = None,
    columns: Annotated[str | None, typer.Option("--columns", help="Comma-separated column names for a file without a header.")] = None,
    delimiter: Annotated[str | None, typer.Option("--delimiter", help="A character, or tab/comma/semicolon/pipe/whitespace [default: sniffed].")] = None,
    encoding: Annotated[str | None, typer.Option("--encoding", help="Encoding of a text file, e.g. latin-1, cp1252, utf-16 [default: a byte-order mark, else utf-8].")] = None,
    rejects_file: Annotated[Path | None, typer.Option("--rejects-file", help="Where to write rejected rows as CSV (with --engine spark: a Parquet folder).")] = None,
    engine: Annotated[Engine | None, typer.Option("--engine", help="duckdb (store in --db) or spark (Parquet in, checked on Spark, Parquet out) [default: $PATRON_ENGINE or duckdb].", **choice())] = None,
    out_dir: Annotated[Path | None, typer.Option("--out", help="With --engine spark: Parquet folder for the accepted rows.")] = None,
    config: Annotated[Path | None, typer.Option("--config", help="Rules file whose [service] identity rules link a customers file's ids, emails and phones (default: $PATRON_CONFIG or ./patron.toml).")] = None,
    as_json: JsonOption = False,
) -> None:
    """Validate a file against the data contract and store its good rows; bad rows go to the
    rejects table and a rejects CSV with row, column and reason. The customers of a customers
    file enter the identity graph: a person of the events with the same email or phone joins them.

    With --engine spark the Parquet input is checked by Spark with the same rules and the good rows
    are written as Parquet to --out (there is no store on Spark, so keys already stored are not checked)."""
    from patron.data.engines import resolve_engine
    from patron.data.ingest import ingest as run_ingest

    if resolve_engine(engine) is Engine.SPARK:
        _ingest_on_spark(path, kind=kind, mapping=mapping, date_format=date_format, out_dir=out_dir,
                         rejects_dir=rejects_file, as_json=as_json)
        return
    cols = [c.strip() for c in columns.split(",")] if columns else None
    with counting_progress(f"ingesting {path.name}", quiet=as_json) as progress:
        result = run_ingest(
            path, kind=kind, db=db, mapping=mapping, date_format=date_format, columns=cols,
            delimiter=delimiter, encoding=encoding, rejects_file=rejects_file, progress=progress, config=config,
        )
    if as_json:
        _print_json(result.to_dict())
        return
    out.print(
        f"{result.kind}: [bold]{result.accepted:,}[/] accepted, [bold]{result.rejected:,}[/] rejected, "
        f"{result.already_present:,} already present" + (f", {result.updated:,} updated" if result.updated else "")
        + f" (from {result.rows_read:,} rows of {result.source} into {result.db})"
    )
    if result.merged:
        out.print(f"{result.merged:,} person(s) of the events joined customers of this file (patron.people.identity: same email or phone)")
    if result.erased_before:
        err.print(f"warning: {result.erased_before:,} row(s) of this file name a person erased before (their id, email or "
                  "phone is on the suppression list): stored again; remove them from the source system too")
    if result.rejects_file:
        out.print(f"rejected rows and reasons: {result.rejects_file}")


def _ingest_on_spark(path: Path, *, kind: str, mapping: list[str] | None, date_format: str | None,
                     out_dir: Path | None, rejects_dir: Path | None, as_json: bool) -> None:
    # without pyspark: MissingExtraError, one line naming the spark extra
    from patron.data.ingest.spark import ingest_on_spark

    with spinner(f"checking {path.name} on Spark", quiet=as_json):
        result = ingest_on_spark(str(path), out=out_dir, kind=kind, rejects_out=rejects_dir, mapping=mapping,
                                 date_format=date_format)
    if as_json:
        _print_json(result)
        return
    out.print(f"{kind}: [bold]{result['accepted']:,}[/] accepted, [bold]{result['rejected']:,}[/] rejected "
              f"(from {result['rows_read']:,} rows of {path}) -> {out_dir}; rejects in {result['rejects']}")


@app.command()
def summary(
    db: DbOption = None,
    period: Annotated[SummaryUnit, typer.Option("--period", help="Unit of recency and T: D, W or M.", **choice())] = "W",
    end: Annotated[str | None, typer.Option("--end", help="Last day of the calibration period (inclusive) [default: last purchase].")] = None,
    holdout_end: Annotated[str | None, typer.Option("--holdout-end", help="Last day of a holdout period after --end.")] = None,
    grain: Annotated[SummaryUnit, typer.Option("--grain", help="Orders within one D/W/M/H period count as one purchase.", **choice())] = "D",
    out_file: Annotated[Path | None, typer.Option("--out", help="Write the summary to a .csv or .parquet file.")] = None,
    memory_limit: Annotated[str | None, typer.Option("--memory-limit", help="DuckDB memory limit, e.g. 4GB.")] = None,
    engine: Annotated[Engine | None, typer.Option("--engine", help="duckdb (the --db file) or spark (--transactions Parquet) [default: $PATRON_ENGINE or duckdb].", **choice())] = None,
    transactions: Annotated[str | None, typer.Option("--transactions", help="With --engine spark: Parquet file or folder of transactions.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Per-customer frequency, recency, T and monetary value (lifetimes definitions), computed in SQL."""
    from patron.data.engines import resolve_engine
    from patron.value.overview import overview
    from patron.value.summary import summary as run_summary

    engine = resolve_engine(engine)
    source = transactions if engine is Engine.SPARK else db
    with spinner(f"summarising customers ({engine})", quiet=as_json):
        table = run_summary(source, period=period, end=end, holdout_end=holdout_end, grain=grain, output="arrow", memory_limit=memory_limit, engine=engine)
    if out_file is not None:
        from patron.data.io import write_table

        write_table(table, out_file)  # from the Arrow table, as the engine returned it
    figures = overview(table)  # on the Arrow columns, without a pandas frame
    if as_json:
        _print_json({"customers": table.num_rows, "out": str(out_file) if out_file else None, "overview": figures.to_dict()})
        return
    print_overview(out, figures, unit=period.upper())
    if out_file is not None:
        out.print(f"summary of {table.num_rows:,} customers written to {out_file}")


@app.command()
def simulate(
    customers: Annotated[int, typer.Option("--customers", min=1, help="Number of customers.")],
    out_file: Annotated[Path, typer.Option("--out", help="Output .csv or .parquet file of transactions.")],
    seed: Annotated[int, typer.Option("--seed", help="Random seed.")] = 0,
    r: Annotated[float, typer.Option(help="BG/NBD r (purchase-rate shape).")] = 0.2426,
    alpha: Annotated[float, typer.Option(help="BG/NBD alpha (purchase-rate rate, per week).")] = 4.4136,
    a: Annotated[float, typer.Option(help="BG/NBD a (dropout Beta).")] = 0.7929,
    b: Annotated[float, typer.Option(help="BG/NBD b (dropout Beta).")] = 2.4259,
    p: Annotated[float, typer.Option(help="Gamma-Gamma p (spend shape).")] = 6.25,
    q: Annotated[float, typer.Option(help="Gamma-Gamma q.")] = 3.74,
    v: Annotated[float, typer.Option(help="Gamma-Gamma v.")] = 15.44,
    start: Annotated[str, typer.Option(help="First day of the acquisition cohort.")] = "2024-01-01",
    cohort_days: Annotated[int, typer.Option(help="Days over which first purchases are spread.")] = 84,
    observation_days: Annotated[int, typer.Option(help="Days from start to the end of observation.")] = 546,
    truth: Annotated[Path | None, typer.Option("--truth", help="Also write each customer's true parameters here.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Draw a customer base from BG/NBD + Gamma-Gamma with known parameters (rates per week)."""
    from patron.value.simulate import write_simulated

    if out_file.suffix.lower() not in (".csv", ".parquet"):
        raise InputError(f"--out must end in .csv or .parquet; got {out_file}")
    with counting_progress(f"simulating {customers:,} customers", quiet=as_json, unit="customers") as progress:
        res = write_simulated(
            out_file, customers, seed=seed, truth_path=truth, progress=progress, r=r, alpha=alpha, a=a, b=b, p=p, q=q, v=v,
            start=start, cohort_days=cohort_days, observation_days=observation_days,
        )
    info = {"out": str(res.path), "customers": res.n_customers, "transactions": res.n_transactions, "truth": str(res.truth_path) if res.truth_path else None}
    if as_json:
        _print_json(info)
    else:
        out.print(f"{res.n_transactions:,} transactions of {res.n_customers:,} customers written to {res.path}")


@app.command()
def demo(
    db: Annotated[str, typer.Option("--db", help="Database file for the demo.")] = "demo.duckdb",
    report: Annotated[Path, typer.Option("--report", help="Where to write the HTML report.")] = Path("patron-report.html"),
) -> None:
    """Ingest the bundled CDNOW sample, summarise it, value every customer, and write the HTML report."""
    from patron.cli.demo import run_demo

    run_demo(db, out, err, report=report)


@app.command()
def version() -> None:
    """Print patron's version."""
    from patron import __version__

    typer.echo(__version__)
