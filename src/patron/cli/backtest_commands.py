"""``patron backtest status`` and ``patron backtest segments``: labels as of a past date against
what the customers did next."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated, Any

import typer

from patron.cli.app import DbOption, JsonOption, _print_json, app, out, typer_app
from patron.cli.choices import TransactionModel, choice
from patron.cli.output import json_safe, records, write_frame
from patron.cli.progress import spinner

backtest_app = typer_app(
    name="backtest",
    help="Check patron's labels against what customers did next: statuses or segments as of a past date.",
    no_args_is_help=True,
)
app.add_typer(backtest_app, name="backtest")

AsOfOption = Annotated[str | None, typer.Option("--as-of", help="The past date of the labels, e.g. 1997-12-31 [default: the latest date whose whole horizon is in the data].")]
HorizonOption = Annotated[str, typer.Option("--horizon", help="How long to follow the customers: 26W (weeks), 182D (days) or 6M (months); cut at the end of the data.")]
ConfigOption = Annotated[Path | None, typer.Option("--config", help="Rules file ([status], [segments], ...) [default: $PATRON_CONFIG or ./patron.toml].")]
OutOption = Annotated[Path | None, typer.Option("--out", help="Also write the table to a .csv or .parquet file.")]


def _pct(v: Any) -> str:
    return "" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.1%}"


def _num(v: Any, digits: int = 2) -> str:
    return "" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:,.{digits}f}"


def _missing(v: Any) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v))


def _share(v: Any, low: Any, high: Any) -> str:
    """``"69.1% (67.5-70.8)"``: a share and its interval, in percent."""
    return "" if _missing(v) else f"{v:.1%}" + ("" if _missing(low) else f" ({100 * low:.1f}-{100 * high:.1f})")


def _mean(v: Any, low: Any, high: Any, digits: int = 2) -> str:
    """``"2.23 (2.11-2.35)"``: a mean and its interval."""
    return "" if _missing(v) else f"{v:,.{digits}f}" + ("" if _missing(low) else f" ({low:,.{digits}f}-{high:,.{digits}f})")


def _check(horizon: str, check: Any) -> None:
    """A bad --horizon is reported before any work (:func:`patron.cli.main` names the flag)."""
    check(horizon)


def _payload(result: Any, out_file: Path | None) -> dict[str, Any]:
    w = result.window
    return {"kind": result.kind, "as_of": str(w.as_of), "horizon": w.horizon, "end": str(w.end),
            "observed_end": str(w.observed_end), "weeks": w.weeks, "base_rate": json_safe(result.base_rate),
            "checks": {k: json_safe(v) if not isinstance(v, list) else v for k, v in result.checks.items()},
            "rows": records(result.table), "notes": list(result.notes), "out": str(out_file) if out_file else None}


@backtest_app.command("status")
def backtest_status(
    db: DbOption = None,
    as_of: AsOfOption = None,
    horizon: HorizonOption = "26W",
    config: ConfigOption = None,
    model: Annotated[TransactionModel, typer.Option("--model", help="Transaction model behind the statuses: bgnbd, mbgnbd or pareto.", **choice())] = "bgnbd",
    out_file: OutOption = None,
    as_json: JsonOption = False,
) -> None:
    """Statuses as of a past date against purchases in the horizon after it: per status the share
    who bought again and their purchases (95% intervals) beside the model's prediction."""
    from patron.dates import parse_day
    from patron.relationship.backtest import check_horizon, status_backtest
    from patron.relationship.backtest.status import ALL_BUYERS, LOST_MAX_RATIO

    day = parse_day(as_of, "as_of")
    _check(horizon, check_horizon)
    with spinner("backtesting statuses", quiet=as_json):
        result = status_backtest(db, as_of=day, horizon=horizon, config=config, model=model)
    write_frame(result.table, out_file)
    if as_json:
        _print_json(_payload(result, out_file))
        return
    from rich.table import Table

    t = Table(title=f"Statuses as of {result.window.as_of}, purchases in the {result.window.describe()}", title_justify="left")
    for name in ("status", "n", "bought again (95%)", "model", "purchases (95%)", "model"):
        t.add_column(name, justify="left" if name == "status" else "right", no_wrap=True)
    for r in result.table.to_dict(orient="records"):
        style = "bold" if r["status"] == ALL_BUYERS else None
        flag = "" if r["within"] or _missing(r["predicted_share"]) else "*"
        t.add_row(r["status"], f"{r['customers']:,}", _share(r["bought_share"], r["bought_lower"], r["bought_upper"]),
                  _pct(r["predicted_share"]) + flag, _mean(r["purchases"], r["purchases_lower"], r["purchases_upper"]),
                  _num(r["predicted_purchases"]), style=style)
    out.print(t)
    c = result.checks
    falls = "falls" if c["falls"] else "[bold red]does not fall[/]"
    ratio = c["lost_vs_base"]
    lost = "no lost customers" if math.isnan(ratio) else (
        f"lost buy again at {ratio:.2f} x the base rate {result.base_rate:.1%} "
        + ("(at most half)" if c["lost_at_most_half"] else f"[bold red](more than {LOST_MAX_RATIO:g})[/]"))
    out.print(f"share buying again {falls} from {' > '.join(c['statuses'])}; {lost}")
    if c["outside"]:
        out.print(f"* model outside the 95% interval of the actual share: {', '.join(c['outside'])} (docs/status.md, \"Calibration\")")
    for note in result.notes:
        out.print(f"note: {note}", highlight=False)
    if out_file is not None:
        out.print(f"table written to {out_file}")


@backtest_app.command("segments")
def backtest_segments(
    db: DbOption = None,
    as_of: AsOfOption = None,
    horizon: HorizonOption = "26W",
    rules: Annotated[Path | None, typer.Option("--rules", help="TOML file whose [segments] section adds or replaces segments.")] = None,
    config: ConfigOption = None,
    out_file: OutOption = None,
    as_json: JsonOption = False,
) -> None:
    """Segments and named RFM cells as of a past date against the horizon after it: per segment the
    share who bought again, their purchases and spend (95% intervals), beside all buyers."""
    from patron.dates import parse_day
    from patron.errors import InputError
    from patron.relationship.backtest import check_horizon
    from patron.relationship.backtest.segments import segment_backtest

    day = parse_day(as_of, "as_of")
    _check(horizon, check_horizon)
    if rules is not None and not rules.is_file():
        raise InputError(f"--rules: file {rules} does not exist")
    with spinner("backtesting segments", quiet=as_json):
        result = segment_backtest(db, as_of=day, horizon=horizon, config=config, rules=rules)
    write_frame(result.table, out_file)
    if as_json:
        _print_json(_payload(result, out_file))
        return
    from rich.markup import escape
    from rich.table import Table

    t = Table(title=f"Segments as of {result.window.as_of}, purchases in the {result.window.describe()}", title_justify="left")
    for name in ("segment", "n", "mean CLV", "lapsed/lost", "bought again (95%)", "purchases", "spend (95%)"):
        t.add_column(name, justify="left" if name == "segment" else "right", no_wrap=True)
    for r in result.table.to_dict(orient="records"):
        label = ("cell " if r["kind"] == "rfm_cell" else "") + escape(str(r["segment"]))
        t.add_row(label, f"{r['customers']:,}", _num(r["mean_clv"]), _pct(r["gone_share"]),
                  _share(r["bought_share"], r["bought_lower"], r["bought_upper"]), _num(r["purchases"]),
                  _mean(r["spend"], r["spend_lower"], r["spend_upper"]))
    out.print(t)
    for note in result.notes:
        out.print(f"note: {note}", highlight=False)
    if out_file is not None:
        out.print(f"table written to {out_file}")
