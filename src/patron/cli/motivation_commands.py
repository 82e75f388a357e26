"""``patron motivation``: why customers buy (discount seekers, values sharers, mixed, other), each
motivation's share, CLV and loyalty side by side, and how the mix moved over the last periods."""

from __future__ import annotations

import math
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from patron.cli.app import DbOption, JsonOption, _print_json, app, out
from patron.cli.choices import EquityFrequency, choice
from patron.cli.output import records, write_frame
from patron.cli.progress import spinner
from patron.cli.value_options import default_value, value_flags

if TYPE_CHECKING:
    from patron.value.settings import ValueSettings


def _pct(v: float | None) -> str:
    return "" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.1%}"


def _num(v: float | None, fmt: str = ",.2f") -> str:
    return "" if v is None or (isinstance(v, float) and math.isnan(v)) else format(v, fmt)


@app.command()
@value_flags
def motivation(
    db: DbOption = None,
    as_of: Annotated[str | None, typer.Option("--as-of", help="Date of the profiles, e.g. 2024-12-31 [default: the stored profiles, else the day of the last purchase].")] = None,
    freq: Annotated[EquityFrequency, typer.Option("--freq", help="Periods of the mix over time: M (month ends), Q (quarter ends) or Y (year ends).", **choice())] = "Q",
    periods: Annotated[int, typer.Option("--periods", help="Period ends shown in the mix over time (the last one is --as-of).")] = 8,
    config: Annotated[Path | None, typer.Option("--config", help="Rules file ([motivation], [value], ...) [default: $PATRON_CONFIG or ./patron.toml].")] = None,
    out_file: Annotated[Path | None, typer.Option("--out", help="Also write the side-by-side table to a .csv or .parquet file.")] = None,
    as_json: JsonOption = False,
    value: ValueSettings | None = None,
) -> None:
    """Why customers buy: the share of buyers who come for discounts, share the brand's values,
    both (mixed), neither (other) or show too little (unknown), with their CLV and loyalty, and the
    mix at each period end. Definitions and thresholds: docs/motivation.md ([motivation] section)."""
    from patron.dates import parse_day
    from patron.relationship.motivation_mix import motivation_over_time, motivation_table

    parse_day(as_of, "as_of")
    with spinner("classifying motivations", quiet=as_json):
        table = motivation_table(db, as_of=as_of, config=config, settings=value)
        day = _profiles_day(db)
        history = motivation_over_time(db, as_of=day, freq=freq, periods=periods, config=config)
    write_frame(table, out_file)
    settings = value or default_value()
    currencies = _currencies(db)
    if as_json:
        _print_json({"as_of": day.isoformat(), "motivations": records(table), "over_time": records(history),
                     "value_settings": settings.to_dict(currencies), "out": str(out_file) if out_file else None})
        return
    from rich.table import Table

    t = Table(title=f"Why customers buy, as of {day.isoformat()} (buyers; {settings.line(currencies)})", title_justify="left")
    for name in ("motivation", "customers", "share", "mean CLV", "equity share", "repeat rate", "active", "P(alive)",
                 "discount share"):
        t.add_column(name, justify="left" if name == "motivation" else "right")
    for r in table.itertuples(index=False):
        t.add_row(r.motivation, f"{r.customers:,}", _pct(r.share), _num(r.mean_clv), _pct(r.equity_share),
                  _pct(r.repeat_rate), _pct(r.active_share), _num(r.mean_probability_alive, ".2f"), _pct(r.mean_discount_share))
    out.print(t)
    if not history.empty:
        from patron.relationship.motivation import MOTIVATIONS

        wide = history.pivot(index="as_of", columns="motivation", values="share").fillna(0.0)
        wide = wide[[m for m in MOTIVATIONS if m in wide.columns]]
        h = Table(title="The mix over time (share of customers with evidence in the year before each date)", title_justify="left")
        h.add_column("as of")
        for m in wide.columns:
            h.add_column(str(m), justify="right")
        for day_, row in wide.iterrows():
            h.add_row(str(day_)[:10], *(_pct(v) for v in row))
        out.print(h)
    if out_file is not None:
        out.print(f"table written to {out_file}")


def _profiles_day(db: str | None) -> date:
    """The date of the stored profiles (built by motivation_table just before)."""
    from patron.data.store import reader
    from patron.relationship.profiles import PROFILE_TABLE

    with reader(db) as con:
        return con.execute(f"SELECT max(as_of) FROM {PROFILE_TABLE}").fetchall()[0][0]


def _currencies(db: str | None) -> tuple[str, ...]:
    from patron.data.store import reader
    from patron.value.settings import data_currencies

    with reader(db) as con:
        return data_currencies(con)
