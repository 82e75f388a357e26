"""Commands about loyalty behaviour and profitability: ``patron loyalty``, ``patron cohorts`` and
``patron profitability``."""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from patron.cli.app import DbOption, JsonOption, _print_json, app, out
from patron.cli.choices import CohortFrequency, CohortValue, choice
from patron.cli.output import json_safe, records, write_frame
from patron.cli.progress import spinner
from patron.cli.value_options import default_value, period_name, print_value_lines, value_flags

if TYPE_CHECKING:
    import pandas as pd

    from patron.value.settings import ValueSettings

AsOfOption = Annotated[str | None, typer.Option("--as-of", help="Date of the assessment, e.g. 1998-06-30 [default: day of the last purchase].")]
ConfigOption = Annotated[Path | None, typer.Option("--config", help="Rules file [default: $PATRON_CONFIG or ./patron.toml].")]
OutOption = Annotated[Path | None, typer.Option("--out", help="Write the per-customer (or long) table to a .csv or .parquet file.")]





def _pct(value: float | None) -> str:
    return "" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.1%}"


def _num(value: float | None, fmt: str = ",.2f") -> str:
    return "" if value is None or (isinstance(value, float) and math.isnan(value)) else format(value, fmt)


@app.command()
def loyalty(
    db: DbOption = None,
    as_of: AsOfOption = None,
    config: ConfigOption = None,
    out_file: OutOption = None,
    by: Annotated[str | None, typer.Option("--by", help="Break loyalty down by a profile column: a customer attribute (city, ...), region, value_tier, ...")] = None,
    as_json: JsonOption = False,
) -> None:
    """Loyalty by behaviour: return rate and time to the second purchase, inter-purchase and spend
    trends, discount dependency vs full-price buyers, revenue by category (per customer in --out)."""
    if by is not None:
        from patron.cli.status_commands import print_breakdown

        print_breakdown(db, by, as_of=as_of, config=config, as_json=as_json, loyalty=True)
        return
    from patron.relationship.loyalty import (
        category_revenue,
        category_shares,
        loyalty,
        summarize_loyalty,
    )
    from patron.relationship.satisfaction import satisfaction_vs_loyalty

    with spinner("measuring loyalty behaviour", quiet=as_json):
        frame = loyalty(db, as_of=as_of, config=config)
        figures = summarize_loyalty(frame)
        figures["categories"] = records(category_revenue(category_shares(db, as_of=as_of)))
        satisfaction = satisfaction_vs_loyalty(db, as_of=as_of)
    write_frame(frame, out_file)
    if as_json:
        _print_json({**figures, "satisfaction": records(satisfaction), "out": str(out_file) if out_file else None})
        return
    from rich.table import Table

    t = Table(title=f"Loyalty behaviour: {figures['customers']:,} customers", show_header=False, title_justify="left")
    t.add_column("figure")
    t.add_column("value", justify="right")
    t.add_row("came back (bought again on a later day)", f"{figures['returned']:,} ({_pct(figures['return_rate'])})")
    t.add_row("days to second purchase: median / mean",
              f"{_num(figures['days_to_second_purchase_median'], 'g')} / {_num(figures['days_to_second_purchase_mean'], '.1f')}")
    t.add_row(f"gaps between purchases shortening / lengthening ({figures['with_interpurchase_trend']:,} with a trend)",
              f"{_pct(figures['shortening_share'])} / {_pct(figures['lengthening_share'])}")
    t.add_row(f"spend per purchase rising / falling ({figures['with_spend_trend']:,} with a trend)",
              f"{_pct(figures['rising_share'])} / {_pct(figures['falling_share'])}")
    if figures["with_discount_data"]:
        t.add_row(f"discount dependent / full price ({figures['with_discount_data']:,} with discount data)",
                  f"{_pct(figures['discount_dependent_share'])} / {_pct(figures['full_price_share'])}")
        for name, g in figures["discount_groups"].items():
            t.add_row(f"  {name.replace('_', ' ')}: customers, mean revenue, mean orders",
                      f"{g['customers']:,}, {_num(g['mean_revenue'])}, {_num(g['mean_orders'], '.2f')}")
    else:
        t.add_row("discount dependency", "no discount data")
    for c in figures["categories"][:10]:
        t.add_row(f"  category {c['category']}: revenue share", _pct(c["share"]))
    out.print(t)
    if not satisfaction.empty:
        _print_satisfaction(satisfaction)
    if out_file is not None:
        out.print(f"loyalty of {len(frame):,} customers written to {out_file}")


def _print_satisfaction(table: pd.DataFrame) -> None:
    from rich.table import Table

    t = Table(title="Satisfaction vs behaviour (first response per customer and survey)", title_justify="left")
    for name in ("survey", "band", "customers", "came back", "mean orders", "mean spend", "buys/year after", "Spearman rho"):
        t.add_column(name, justify="left" if name in ("survey", "band") else "right")
    for row in table.itertuples(index=False):
        t.add_row(str(row.kind), str(row.band), f"{row.customers:,}", _pct(row.return_rate), _num(row.mean_orders),
                  _num(row.mean_spend), _num(row.mean_purchases_after_per_year), _num(row.spearman_rho, "+.2f"))
    out.print(t)


@app.command()
def cohorts(
    db: DbOption = None,
    freq: Annotated[CohortFrequency, typer.Option("--freq", help="Cohort and period length: M (month), Q (quarter) or W (ISO week).", **choice())] = "M",
    as_of: AsOfOption = None,
    periods: Annotated[int, typer.Option("--periods", min=1, help="Periods since acquisition shown in the table.")] = 12,
    value: Annotated[CohortValue, typer.Option("--value", help="Cell value: retention or cumulative_revenue_per_customer.", **choice())] = "retention",
    out_file: OutOption = None,
    as_json: JsonOption = False,
) -> None:
    """Acquisition cohorts (by first-purchase month): retention and cumulative revenue per customer
    by periods since acquisition, as a matrix (long table in --out)."""
    from patron.relationship.cohorts import cohorts as run_cohorts
    from patron.relationship.cohorts import retention_matrix

    with spinner("building cohorts", quiet=as_json):
        frame = run_cohorts(db, freq=freq, as_of=as_of)
        matrix = retention_matrix(frame, value=value, max_periods=periods - 1)
    write_frame(frame, out_file)
    if as_json:
        sizes = frame.drop_duplicates("cohort")
        rows = [
            {"cohort": str(c), "customers": int(n), "values": [json_safe(v) for v in matrix.loc[c].tolist()]}
            for c, n in zip(sizes["cohort"], sizes["customers"], strict=True)
        ]
        _print_json({"freq": freq.upper(), "value": value, "periods": [int(p) for p in matrix.columns], "cohorts": rows, "out": str(out_file) if out_file else None})
        return
    from rich import box
    from rich.table import Table

    sizes = frame.drop_duplicates("cohort").set_index("cohort")["customers"]
    t = Table(title=f"Cohorts by first purchase ({freq.upper()}): {value.replace('_', ' ')} by periods since acquisition",
              title_justify="left", box=box.SIMPLE_HEAD, padding=(0, 1), collapse_padding=True, pad_edge=False, show_edge=False)
    t.add_column("cohort", no_wrap=True, min_width=7 if freq.upper() != "W" else 10)
    t.add_column("size", justify="right", no_wrap=True)
    for p in matrix.columns:
        t.add_column(str(p), justify="right", no_wrap=True)
    fmt = (lambda v: _num(v, ".0%")) if value == "retention" else (lambda v: _num(v, ",.0f"))
    for c, row in matrix.iterrows():
        t.add_row(str(c)[:7] if freq.upper() != "W" else str(c), f"{int(sizes[c]):,}", *[fmt(float(v)) for v in row.tolist()])
    out.print(t)
    if out_file is not None:
        out.print(f"{len(frame):,} cohort-period rows written to {out_file}")


@app.command()
@value_flags
def profitability(
    db: DbOption = None,
    as_of: AsOfOption = None,
    config: ConfigOption = None,
    out_file: OutOption = None,
    as_json: JsonOption = False,
    value: ValueSettings | None = None,
) -> None:
    """Customer profitability: margin, cost-to-serve from contacts sent (cost per channel from the
    costs section of the rules file), and CLV net of both (per customer in --out). CLV follows
    the [value] section of the rules file (the flags override it)."""
    from patron.relationship.profitability import profitability as run_profitability
    from patron.value.settings import db_currencies, spend_counts, spend_note

    value = value or default_value()
    with spinner("scoring customers and costing contacts", quiet=as_json):
        frame = run_profitability(db, as_of=as_of, config=config, settings=value)
    write_frame(frame, out_file)
    currencies = db_currencies(db)
    spend = spend_counts(frame["spend_basis"])
    horizon = f"next {value.horizon:g} {period_name(value.period)}"
    known = frame["margin_rate"].notna()
    figures = {
        "customers": len(frame),
        "revenue": float(frame["revenue"].sum()),
        "with_margin": int(known.sum()),
        "margin_total": float(frame["margin_total"].sum()) if known.any() else None,
        "contacts": int(frame["contacts"].sum()),
        "contact_cost": float(frame["contact_cost"].sum()),
        "clv": float(frame["clv"].sum()),
        "expected_contact_cost": float(frame["expected_contact_cost"].sum()),
        "clv_net": float(frame["clv_net"].sum()) if frame["clv_net"].notna().any() else None,
        "unprofitable": int((frame["clv_net"] < 0).sum()),
        "out": str(out_file) if out_file else None,
        "value_settings": value.to_dict(currencies), "spend_basis": spend,
    }
    if as_json:
        _print_json(figures)
        return
    from rich.table import Table

    t = Table(title=f"Customer profitability: {len(frame):,} customers", show_header=False, title_justify="left")
    t.add_column("figure")
    t.add_column("value", justify="right")
    t.add_row("revenue (net of refunds)", _num(figures["revenue"]))
    t.add_row(f"margin ({figures['with_margin']:,} customers with margin data)", _num(figures["margin_total"]) or "unknown: set \\[costs] default_margin_rate")
    t.add_row("contacts sent / their cost", f"{figures['contacts']:,} / {_num(figures['contact_cost'])}")
    t.add_row(f"CLV, {horizon}", _num(figures["clv"]))
    t.add_row(f"expected contact cost, {horizon}", _num(figures["expected_contact_cost"]))
    t.add_row("CLV net of margin and contact cost", _num(figures["clv_net"]) or "unknown (no margin)")
    t.add_row("customers with negative net CLV", f"{figures['unprofitable']:,}")
    out.print(t)
    print_value_lines([value.line(currencies), spend_note(spend, currency=value.label(currencies))])
    if out_file is not None:
        out.print(f"profitability of {len(frame):,} customers written to {out_file}")
