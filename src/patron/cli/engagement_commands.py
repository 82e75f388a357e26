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
    from patron.data.io import write_table
    from patron.relationship.engagement import engagement as run_engagement
    from patron.relationship.engagement import engagement_lift

    with spinner("summarising interactions", quiet=as_json):
        result = run_engagement(db, as_of=as_of, since=since, config=config, kinds=kinds_out is not None, output="arrow")
    for path, table in ((out_file, result.weekly), (customers_out, result.customers), (kinds_out, result.kinds)):
        if path is not None and table is not None:
            write_table(table, path)
    cust = result.customers.to_pandas()
    labels = cust["engagement_trend_label"].value_counts().to_dict()
    bands = cust["engagement_band"].value_counts().to_dict()
    lifted = None
    if lift:
        with spinner("fitting BG/NBD on the calibration period", quiet=as_json):
            lifted = engagement_lift(db, calibration_end=calibration_end, holdout_weeks=holdout_weeks, config=config)
    if as_json:
        payload: dict[str, Any] = {
            "as_of": str(result.as_of), "customers": len(cust), "customer_weeks": result.weekly.num_rows,
            "mean_score": float(cust["engagement_score"].mean()) if len(cust) else None,
            "trend": {k: int(labels.get(k, 0)) for k in ("rising", "flat", "falling")},
            "bands": {k: int(bands.get(k, 0)) for k in ("high", "medium", "low", "none")},
            "out": str(out_file) if out_file else None, "customers_out": str(customers_out) if customers_out else None,
        }
        if lifted is not None:
            payload["lift"] = {"calibration_end": str(lifted.calibration_end), "holdout_end": str(lifted.holdout_end),
                               "bands": lifted.bands.astype(object).where(lifted.bands.notna(), None).to_dict(orient="records")}
        _print_json(payload)
        return
    out.print(f"engagement as of {result.as_of}: {len(cust):,} customers with interactions, "
              f"{result.weekly.num_rows:,} customer-weeks; mean score {_num(cust['engagement_score'].mean())}% of days active")
    out.print("trend: " + ", ".join(f"{k} {int(labels.get(k, 0)):,}" for k in ("rising", "flat", "falling"))
              + f" (threshold {result.rules.trend_threshold:g} points/week over {result.rules.weeks} weeks)")
    out.print("band: " + ", ".join(f"{k} {int(bands.get(k, 0)):,}" for k in ("high", "medium", "low", "none")))
    for path, what in ((out_file, "per-customer-week table"), (customers_out, "per-customer engagement"), (kinds_out, "weeks by channel and kind")):
        if path is not None:
            out.print(f"{what} written to {path}")
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
