"""``patron referrals``: referral cascades, K and amplification per campaign, and whether referred
customers are worth more."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from patron.cli.app import DbOption, JsonOption, _print_json, app, err, out
from patron.cli.progress import spinner


def _num(value: Any, fmt: str = ".3g") -> str:
    try:
        return "-" if value is None or value != value else format(float(value), fmt)
    except (TypeError, ValueError):
        return str(value)


def _interval(row: Any, name: str) -> str:
    return f"{_num(row[name])} [{_num(row[name + '_lower'])}, {_num(row[name + '_upper'])}]"


@app.command()
def referrals(
    db: DbOption = None,
    campaign: Annotated[str | None, typer.Option("--campaign", help="Only this campaign (offer) id.")] = None,
    compare: Annotated[bool, typer.Option("--compare/--no-compare", help="Compare referred and other customers (fits BG/NBD + Gamma-Gamma).")] = True,
    config: Annotated[str | None, typer.Option("--config", help="Rules file with a [referrals] section [default: patron.toml].")] = None,
    as_json: JsonOption = False,
) -> None:
    """Referral cascades per campaign: reach, generations, K with interval, amplification,
    structural virality, and referred vs other customers acquired in the same months."""
    from patron.network import referral_report

    with spinner("building referral cascades", quiet=as_json):
        report = referral_report(db, campaign=campaign, config=config, compare=compare)
    if as_json:
        _print_json(report.to_dict())
        return
    from rich.table import Table

    level = report.cascades.rules.level
    t = Table(title=f"Referral cascades ({level:.0%} intervals)", title_justify="left")
    for col in ("campaign", "seeds", "reach", "generations", "K", "amplification", "virality", "cycle days", "anomalies"):
        t.add_column(col, justify="left" if col == "campaign" else "right")
    for _, r in report.campaigns.iterrows():
        anomalies = int(r["self_referral"] + r["already_customer"] + r["duplicate_claim"] + r["cycle"])
        t.add_row(str(r["scope"]), f"{int(r['seeds']):,}", f"{int(r['reach']):,}", str(int(r["generations"])),
                  _interval(r, "k"), _interval(r, "amplification"), _num(r["structural_virality"]), _num(r["viral_cycle_days"]), str(anomalies))
    out.print(t)
    if report.comparison is not None:
        c = Table(title="Referred minus other customers acquired in the same months", title_justify="left")
        for col in ("metric", "referred", "other", "difference", "interval", "n referred", "n other"):
            c.add_column(col, justify="left" if col == "metric" else "right")
        for _, r in report.comparison.differences[report.comparison.differences["n_referred"] > 0].iterrows():
            c.add_row(r["metric"], _num(r["referred"]), _num(r["other"]), _num(r["difference"]),
                      f"[{_num(r['lower'])}, {_num(r['upper'])}]", f"{int(r['n_referred']):,}", f"{int(r['n_other']):,}")
        out.print(c)
    counts = report.cascades.anomalies.groupby("reason").size()
    if len(counts):
        out.print("not counted as acquisitions: " + ", ".join(f"{k} {v:,}" for k, v in counts.items()))
    if not report.offers.empty:
        o = report.offers
        out.print(f"offer limits: {int(o['inside_limits'].sum()):,} of {len(o):,} referred acquisitions inside their offer's limits")
    if report.note:
        err.print(f"note: {report.note}")
