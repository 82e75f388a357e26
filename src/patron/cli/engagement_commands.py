"""``patron engagement``: interactions per customer and week, the engagement score and trend per
customer, and whether engagement predicts purchases (docs/engagement.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from patron.cli.app import DbOption, JsonOption, _print_json, app, err, out
from patron.cli.progress import spinner

_OUT_HELP = " (.parquet, .csv, or .arrow for Arrow IPC)."


def _num(value: Any, fmt: str = ".3g") -> str:
    try:
        return "-" if value is None or value != value else format(float(value), fmt)
    except (TypeError, ValueError):
        return str(value)


@app.command()
def engagement(
    db: DbOption = None,
    as_of: Annotated[str | None, typer.Option("--as-of", help="Day of the score and trend [default: the day of the last interaction].")] = None,
    since: Annotated[str | None, typer.Option("--since", help="Weekly tables: only weeks from this day.")] = None,
    out_file: Annotated[Path | None, typer.Option("--out", help="Write the per-customer-week table" + _OUT_HELP)] = None,
    customers_out: Annotated[Path | None, typer.Option("--customers-out", help="Write the per-customer score, trend and recency" + _OUT_HELP)] = None,
    kinds_out: Annotated[Path | None, typer.Option("--kinds-out", help="Write the weeks by channel and kind" + _OUT_HELP)] = None,
    lift: Annotated[bool, typer.Option("--lift", help="Holdout lift of purchases vs BG/NBD by engagement band (fits BG/NBD).")] = False,
    calibration_end: Annotated[str | None, typer.Option("--calibration-end", help="With --lift: last day of calibration [default: --holdout-weeks before the last purchase].")] = None,
    holdout_weeks: Annotated[int, typer.Option("--holdout-weeks", min=1, max=520, help="With --lift: weeks of holdout.")] = 26,
    config: Annotated[str | None, typer.Option("--config", help="Rules file with an [engagement] section [default: patron.toml].")] = None,
    as_json: JsonOption = False,
) -> None:
    """Engagement from every touchpoint (interactions table and the service's page, screen and
    touchpoint events): per customer and week, and per customer the score (percent of days
    active), its trend (points per week), band and recency."""
    from patron.relationship.engagement import engagement_lift, write_engagement

    with spinner("summarising interactions", quiet=as_json):
        result = write_engagement(db, out=out_file, customers_out=customers_out, kinds_out=kinds_out, as_of=as_of,
                                  since=since, config=config)
    lifted = None
    if lift:
        with spinner("fitting BG/NBD on the calibration period", quiet=as_json):
            lifted = engagement_lift(db, calibration_end=calibration_end, holdout_weeks=holdout_weeks, config=config)
    if as_json:
        payload: dict[str, Any] = {k: v for k, v in result.items() if k != "rules"}
        payload["as_of"] = str(result["as_of"])
        payload |= {"out": str(out_file) if out_file else None, "customers_out": str(customers_out) if customers_out else None,
                    "kinds_out": str(kinds_out) if kinds_out else None}
        if lifted is not None:
            bands = lifted.bands.astype(object).where(lifted.bands.notna(), None)
            payload["lift"] = {"calibration_end": str(lifted.calibration_end), "holdout_end": str(lifted.holdout_end),
                               "bands": bands.to_dict(orient="records")}
        _print_json(payload)
        return
    rules = result["rules"]
    out.print(f"engagement as of {result['as_of']}: {result['customers']:,} customers with interactions; "
              f"mean score {_num(result['mean_score'])}% of days active over {rules.weeks} weeks")
    out.print("trend: " + ", ".join(f"{k} {v:,}" for k, v in result["trend"].items())
              + f" (threshold {rules.trend_threshold:g} points/week)")
    out.print("band: " + ", ".join(f"{k} {v:,}" for k, v in result["bands"].items()))
    for path, what, key in ((out_file, "per-customer-week table", "weekly_rows"), (customers_out, "per-customer engagement", "customers"),
                            (kinds_out, "weeks by channel and kind", "kinds_rows")):
        if path is not None:
            out.print(f"{what} ({result[key]:,} rows) written to {path}")
    if lifted is not None:
        from rich.table import Table

        t = Table(title=f"Holdout purchases vs BG/NBD by engagement band (calibration to {lifted.calibration_end}, "
                        f"holdout to {lifted.holdout_end})", title_justify="left")
        for col in ("band", "customers", "score", "actual", "predicted", "lift", "95% interval"):
            t.add_column(col, justify="left" if col == "band" else "right")
        for _, r in lifted.bands.iterrows():
            t.add_row(str(r["band"]), f"{int(r['customers']):,}", f"{_num(r['score_min'])}-{_num(r['score_max'])}",
                      _num(r["actual"], ".4g"), _num(r["predicted"], ".4g"), _num(r["lift"]),
                      f"[{_num(r['lift_lower'])}, {_num(r['lift_upper'])}]")
        out.print(t)
        err.print("lift above 1: the band bought more than BG/NBD predicted from its purchases alone")
