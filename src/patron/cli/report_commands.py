"""``patron report``: write the customer equity report as one self-contained HTML file."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from patron.cli.app import DbOption, JsonOption, _print_json, app, out
from patron.cli.value_options import default_value, print_value_lines, value_flags

if TYPE_CHECKING:
    from patron.value.settings import ValueSettings


@app.command()
@value_flags
def report(
    out_file: Annotated[Path, typer.Option("--out", help="The HTML file to write, e.g. report.html.")],
    db: DbOption = None,
    as_of: Annotated[str | None, typer.Option("--as-of", help="Report date (default: the day of the last purchase).")] = None,
    config: Annotated[Path | None, typer.Option("--config", help="Rules file (default: $PATRON_CONFIG, else ./patron.toml).")] = None,
    title: Annotated[str | None, typer.Option("--title", help="Title of the report.")] = None,
    as_json: JsonOption = False,
    value: ValueSettings | None = None,
) -> None:
    """Write the customer equity report (equity over time and by segment, status and migration,
    cohort retention, CLV distribution, loyalty, top segments) as one HTML file that opens
    without a network. CLV follows the [value] section of the rules file (the flags override
    it); the report states the settings."""
    from rich.console import Console
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    from patron.extras import require

    require("report", "patron report", modules=("plotly",))
    from patron.report import write_report

    started = time.perf_counter()
    columns = (SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn())
    with Progress(*columns, console=Console(stderr=True, quiet=as_json), transient=True) as bar:
        task = bar.add_task("building report", total=None)
        path = write_report(db, out_file, as_of=as_of, config=config, title=title, settings=value,
                            on_section=lambda name: bar.update(task, description=f"building report: {name}"))
    seconds = time.perf_counter() - started
    from patron.data.store import reader
    from patron.relationship.profiles import profile_spend_counts
    from patron.value.settings import data_currencies, spend_note

    value = value or default_value()
    with reader(db) as con:
        currencies, spend = data_currencies(con), profile_spend_counts(con)
    if as_json:
        _print_json({"out": str(path), "bytes": path.stat().st_size, "seconds": round(seconds, 2),
                     "value_settings": value.to_dict(currencies), "spend_basis": spend})
        return
    out.print(f"report written to [bold]{path}[/] ({path.stat().st_size / 1e6:.1f} MB, {seconds:.1f} s)")
    print_value_lines([value.line(currencies), spend_note(spend, currency=value.label(currencies))])
