"""Commands about segments and customer equity: ``patron segments``, ``patron profiles`` and
``patron equity``."""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from patron.cli.app import DbOption, JsonOption, _print_json, app, out
from patron.cli.choices import EquityFrequency, choice
from patron.cli.output import records, write_frame
from patron.cli.progress import spinner
from patron.cli.value_options import default_value, print_value_lines, value_flags

if TYPE_CHECKING:
    from patron.value.settings import ValueSettings

AsOfOption = Annotated[str | None, typer.Option("--as-of", help="Date of the profiles, e.g. 1998-06-30 [default: the stored profiles, else the day of the last purchase].")]
ConfigOption = Annotated[Path | None, typer.Option("--config", help="Rules file ([value], [segments], [rfm], [tiers], [status], ...) [default: $PATRON_CONFIG or ./patron.toml].")]
OutOption = Annotated[Path | None, typer.Option("--out", help="Also write the table to a .csv or .parquet file.")]





def _check_date(value: str | None, name: str) -> None:
    from patron.dates import parse_day

    parse_day(value, name)


def _money(v: float) -> str:
    return "" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:,.2f}"


def _value_info(db: str | None, value: ValueSettings) -> tuple[dict, list[str | None]]:
    """The settings behind the stated values (JSON) and the lines to print: the settings line and
    the note on customers valued at the population mean spend (from the stored profiles)."""
    from patron.data.store import reader
    from patron.relationship.profiles import profile_spend_counts
    from patron.value.settings import data_currencies, spend_note

    with reader(db) as con:
        currencies = data_currencies(con)
        counts = profile_spend_counts(con)
    return {"value_settings": value.to_dict(currencies), "spend_basis": counts}, [value.line(currencies), spend_note(counts, currency=value.label(currencies))]


@app.command()
@value_flags
def segments(
    db: DbOption = None,
    as_of: AsOfOption = None,
    rules: Annotated[Path | None, typer.Option("--rules", help="TOML file whose [segments] section adds or replaces segments (name = \"rule\").")] = None,
    config: ConfigOption = None,
    out_file: OutOption = None,
    members: Annotated[str | None, typer.Option("--members", help="Write the members of this segment (customer id, status, value tier, CLV and its interval, P(alive), orders, spend, purchase days, RFM score; by customer id) to --out FILE (.csv or .parquet) instead of the segment table.")] = None,
    as_json: JsonOption = False,
    value: ValueSettings | None = None,
) -> None:
    """Every segment (built-in and from the rules files) with its size, total and mean CLV,
    share of customer equity, and status mix; rules are evaluated in the database. CLV follows
    the [value] section of the rules file (the flags override it). With --members NAME, the
    segment's member list is written to --out instead (by the engine, streamed to the file)."""
    from patron.errors import InputError
    from patron.relationship.segments import segment_table

    _check_date(as_of, "as_of")
    if rules is not None and not rules.is_file():
        raise InputError(f"--rules: file {rules} does not exist")
    if members is not None:
        _write_members(db, members, out_file, as_of=as_of, config=config, rules=rules, as_json=as_json, value=value)
        return
    with spinner("evaluating segments", quiet=as_json):
        table = segment_table(db, config=config, rules=rules, as_of=as_of, settings=value)
    write_frame(table, out_file)
    info, lines = _value_info(db, value or default_value())
    if as_json:
        _print_json({"segments": records(table), "out": str(out_file) if out_file else None} | info)
        return
    from rich.markup import escape
    from rich.table import Table

    from patron.relationship.status import STATUSES

    t = Table(title="Segments (a customer may be in several; equity share = segment CLV / all CLV)", title_justify="left")
    t.add_column("segment", no_wrap=True)
    for name in ("customers", "total CLV", "mean CLV", "share", "status mix"):
        t.add_column(name, justify="left" if name == "status mix" else "right")
    for row in table.to_dict(orient="records"):
        share = row["equity_share"]
        mix = ", ".join(f"{s} {int(row[s]):,}" for s in STATUSES if row[s])
        t.add_row(
            escape(str(row["segment"])), f"{row['customers']:,}", _money(row["total_clv"]), _money(row["mean_clv"]),
            "" if share is None or math.isnan(share) else f"{share:.1%}", mix,
        )
    out.print(t)
    for row in table.itertuples(index=False):
        out.print(f"  [bold]{escape(str(row.segment))}[/]: {escape(str(row.rule))}", highlight=False)
    print_value_lines(lines)
    if out_file is not None:
        out.print(f"segments written to {out_file}")


def _write_members(db: str | None, name: str, out_file: Path | None, *, as_of: str | None, config: Path | None,
                   rules: Path | None, as_json: bool, value: ValueSettings | None) -> None:
    """``patron segments --members NAME --out FILE``: the member list of one segment to a file."""
    from rich.markup import escape

    from patron.errors import InputError
    from patron.relationship.segments import ensure_profiles, write_members

    if out_file is None:
        raise InputError("--members needs --out FILE (.csv or .parquet) to write the member list to")
    with spinner(f"writing the members of {name}", quiet=as_json):
        if as_of is not None:
            ensure_profiles(db, as_of=as_of, config=config, settings=value)
        count = write_members(db, name, out_file, config=config, rules=rules, settings=value)
    if as_json:
        _print_json({"segment": name, "members": count, "out": str(out_file)})
        return
    out.print(f"{count:,} members of segment [bold]{escape(name)}[/] written to {escape(str(out_file))}", highlight=False)


@app.command()
@value_flags
def profiles(
    db: DbOption = None,
    as_of: Annotated[str | None, typer.Option("--as-of", help="Date of the profiles, e.g. 1998-06-30 [default: day of the last purchase].")] = None,
    config: ConfigOption = None,
    out_file: OutOption = None,
    as_json: JsonOption = False,
    value: ValueSettings | None = None,
) -> None:
    """Build (or refresh) the customer_profiles table: one row per customer with summary, CLV,
    status, loyalty, profitability, RFM scores and value tier as of a date. CLV follows the
    [value] section of the rules file (the flags override it)."""
    from patron.data.io import write_table
    from patron.data.store import reader
    from patron.relationship.profiles import build_profiles, profiles_file_table, profiles_overview

    _check_date(as_of, "as_of")
    with spinner("building customer profiles", quiet=as_json):  # the table stays in the engine; only a file takes it out
        table = build_profiles(db, as_of=as_of, config=config, settings=value, output="arrow" if out_file is not None else None)
    if out_file is not None:
        write_table(profiles_file_table(table), out_file)
        del table
    with reader(db) as con:
        overview = profiles_overview(con)
    value_info, lines = _value_info(db, value or default_value())
    day = str(overview["as_of"])[:10] if overview["customers"] else str(as_of)
    info = {
        "as_of": day, "customers": overview["customers"], "customer_equity": overview["customer_equity"],
        "statuses": overview["statuses"], "value_tiers": overview["value_tiers"],
        "table": "customer_profiles", "out": str(out_file) if out_file else None,
    } | value_info
    if as_json:
        _print_json(info)
        return
    out.print(
        f"customer_profiles as of {day}: [bold]{info['customers']:,}[/] customers, customer equity {info['customer_equity']:,.2f}; "
        + ", ".join(f"{k} {v:,}" for k, v in info["statuses"].items())
    )
    print_value_lines(lines)
    if out_file is not None:
        out.print(f"profiles written to {out_file}")


@app.command()
@value_flags
def equity(
    db: DbOption = None,
    by: Annotated[str | None, typer.Option("--by", help="Profile column to group by: category (top_category), value_tier, status, rfm_cell, a customer attribute (city, ...), region, nearest_store, ...")] = None,
    over_time: Annotated[bool, typer.Option("--over-time", help="Customer equity as of each period end, re-fitting the models at each date.")] = False,
    as_of: AsOfOption = None,
    start: Annotated[str | None, typer.Option("--start", help="With --over-time: first date [default: first purchase].")] = None,
    end: Annotated[str | None, typer.Option("--end", help="With --over-time: last date [default: last purchase].")] = None,
    freq: Annotated[EquityFrequency, typer.Option("--freq", help="With --over-time: M (month ends), Q (quarter ends) or Y (year ends).", **choice())] = "M",
    config: ConfigOption = None,
    out_file: OutOption = None,
    as_json: JsonOption = False,
    value: ValueSettings | None = None,
) -> None:
    """Customer equity (sum of CLV) by a profile column (default value_tier), or over time with
    its interval. CLV follows the [value] section of the rules file (the flags override it)."""
    from patron.errors import InputError
    from patron.relationship.segments import equity_by, equity_over_time

    if over_time and by is not None:
        raise InputError("give either --by COLUMN or --over-time, not both")
    for day, name in ((as_of, "as_of"), (start, "start"), (end, "end")):
        _check_date(day, name)
    with spinner("computing customer equity", quiet=as_json):
        if over_time:
            table = equity_over_time(db, start=start, end=end, freq=freq, config=config, settings=value)
        else:
            table = equity_by(db, by or "value_tier", config=config, as_of=as_of, settings=value)
    write_frame(table, out_file)
    info, lines = _value_info(db, value or default_value())
    if over_time:  # the spend note is about the profiles; each date has its own customers
        lines = lines[:1]
        info.pop("spend_basis")
    if as_json:
        _print_json({"by": None if over_time else (by or "value_tier"), "over_time": over_time, "rows": records(table),
                     "out": str(out_file) if out_file else None} | info)
        return
    from rich.table import Table

    if over_time:
        t = Table(title="Customer equity over time (95% interval, parameter uncertainty)", title_justify="left")
        for name in ("as of", "customers", "equity", "lower", "upper"):
            t.add_column(name, justify="left" if name == "as of" else "right")
        for r in table.itertuples(index=False):
            t.add_row(str(r.as_of)[:10], f"{r.customers:,}", _money(r.equity), _money(r.equity_lower), _money(r.equity_upper))
    else:
        col = table.columns[0]
        t = Table(title=f"Customer equity by {col}", title_justify="left")
        for name in (col, "customers", "equity", "mean CLV", "equity share"):
            t.add_column(name, justify="left" if name == col else "right")
        for r in table.to_dict(orient="records"):
            share = r["equity_share"]
            label = "(none)" if r[col] is None or (isinstance(r[col], float) and math.isnan(r[col])) else str(r[col])
            t.add_row(label, f"{r['customers']:,}", _money(r["equity"]), _money(r["mean_clv"]), "" if share is None or math.isnan(share) else f"{share:.1%}")
    out.print(t)
    print_value_lines(lines)
    if out_file is not None:
        out.print(f"table written to {out_file}")
