"""``patron contact-effect``: campaign lift against holdouts, uplift model evaluation, dose-response."""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from patron.cli.app import DbOption, JsonOption, _print_json, app, out
from patron.cli.choices import Learner, UpliftBase, choice
from patron.cli.output import records
from patron.cli.progress import spinner

if TYPE_CHECKING:
    import pandas as pd


def _pp(v: float) -> str:
    return "" if v is None or math.isnan(v) else f"{100 * v:+.2f}"


def _interval(lo: float, hi: float, fmt: str = "{:+.2f}", scale: float = 100.0) -> str:
    if math.isnan(lo) or math.isnan(hi):
        return ""
    return f"[{fmt.format(scale * lo)}, {fmt.format(scale * hi)}]"


@app.command("contact-effect")
def contact_effect(
    db: DbOption = None,
    campaign: Annotated[str | None, typer.Option("--campaign", help="Only this campaign id (default: every campaign).")] = None,
    window_days: Annotated[int | None, typer.Option("--window-days", min=1, help="Outcome window in days after the send (default: window_days of the contact_effect rules, 30).")] = None,
    uplift: Annotated[bool, typer.Option("--uplift", help="Fit an uplift model, evaluate it (Qini, uplift at k) and write table incremental_value.")] = False,
    learner: Annotated[Learner, typer.Option("--learner", help="Uplift meta-learner: t or x.", **choice())] = "t",
    base: Annotated[UpliftBase, typer.Option("--base", help="Uplift base model: gbm or logistic.", **choice())] = "gbm",
    dose: Annotated[bool, typer.Option("--dose", help="Dose-response of contacts per month vs purchases and unsubscribes; over-contacted segments.")] = False,
    config: Annotated[Path | None, typer.Option("--config", help="Rules file with a contact_effect section (default: $PATRON_CONFIG or ./patron.toml).")] = None,
    as_json: JsonOption = False,
) -> None:
    """Measured effect of contact: per campaign, response rate, purchases and revenue vs the holdout
    with 95% intervals; optionally an uplift model (--uplift) and dose-response (--dose)."""
    from patron.contact.effect import (
        campaign_effect,
        dose_response,
        fit_uplift,
        over_contacted_segments,
        revenue_headline,
    )
    from patron.contact.effect.dose import CAVEAT
    from patron.errors import InputError

    if learner not in ("t", "x") or base not in ("gbm", "logistic"):
        raise InputError(f"--learner must be t or x and --base gbm or logistic; got {learner!r}, {base!r}")
    if uplift:
        from patron.extras import require

        require("uplift", "patron contact-effect --uplift")
    result: dict[str, Any] = {}
    with spinner("measuring campaign lift", quiet=as_json):
        lift = campaign_effect(db, campaign_id=campaign, window_days=window_days, config=config)
    result["campaigns"] = records(lift)
    headline = revenue_headline(lift)
    result["headline"] = headline
    fitted = curves = segments = None
    if uplift:
        with spinner("fitting the uplift model", quiet=as_json):
            fitted = fit_uplift(db, campaign_id=campaign, learner=learner, base=base, window_days=window_days, config=config)
        result["uplift"] = fitted.to_dict()
    if dose:
        with spinner("relating contacts to purchases", quiet=as_json):
            curves = dose_response(db, config=config)
            segments = over_contacted_segments(curves)
        result["dose_response"] = records(curves)
        result["over_contacted_segments"] = records(segments)
        result["dose_response_caveat"] = CAVEAT
    if as_json:
        _print_json(result)
        return
    _print_lift(lift, headline)
    if fitted is not None:
        _print_uplift(fitted)
    if curves is not None and segments is not None:
        _print_dose(curves, segments)
        out.print(CAVEAT)


def _money(v: float) -> str:
    return "" if v is None or math.isnan(v) else f"{v:+,.0f}"


def _print_lift(lift: pd.DataFrame, headline: dict[str, Any]) -> None:
    from rich.table import Table

    from patron.contact.effect.lift import revenue_headline_text

    level = float(lift["level"].iloc[0])
    t = Table(title=f"Campaign lift vs holdout (window {int(lift['window_days'].iloc[0])} days; {level:.0%} intervals; lifts in percentage points or currency)", title_justify="left")
    for name in ("campaign", "treated", "control", "response T / C", "response lift (pp)", "interval",
                 "revenue/customer lift", "interval", "incremental revenue", "interval", "proven", "unsubscribe lift (pp)"):
        t.add_column(name, justify="left" if name == "campaign" else "right")
    for row in lift.itertuples(index=False):
        rr = "" if math.isnan(row.response_rate_control) else f"{row.response_rate_treated:.1%} / {row.response_rate_control:.1%}"
        measured = not math.isnan(row.incremental_revenue_lower)
        t.add_row(
            str(row.campaign_id) + ("" if row.window_complete is not False else " *"), f"{row.n_treated:,}", f"{row.n_control:,}", rr,
            _pp(row.response_lift), _interval(row.response_lift_lower, row.response_lift_upper),
            "" if math.isnan(row.revenue_lift) else f"{row.revenue_lift:+,.2f}",
            _interval(row.revenue_lift_lower, row.revenue_lift_upper, "{:+,.2f}", 1.0),
            _money(row.incremental_revenue), _interval(row.incremental_revenue_lower, row.incremental_revenue_upper, "{:+,.0f}", 1.0),
            ("yes" if row.revenue_proven else "no") if measured else "",
            _pp(row.unsubscribe_lift),
        )
    out.print(t)
    if (lift["window_complete"] == False).any():  # noqa: E712 - a pandas column
        out.print("* the outcome window of some exposures ends after the last transaction: results may still change")
    if lift["n_control"].eq(0).any():
        out.print("campaigns without a holdout (control 0) have no measurable lift")
    out.print(revenue_headline_text(headline))


def _print_uplift(res: Any) -> None:
    from rich.table import Table

    t = Table(title=f"Uplift model {res.label} (held-out evaluation)", show_header=False, title_justify="left")
    t.add_column("figure")
    t.add_column("value", justify="right")
    t.add_row("exposures: train / test", f"{res.n_train:,} / {res.n_test:,}")
    t.add_row("Qini coefficient (random score)", f"{res.qini_coefficient:.4f} ({res.qini_random:.4f})")
    for k, v in res.uplift_at_k.items():
        t.add_row(f"uplift at top {k:.0%} (pp)", _pp(v))
    t.add_row("observed lift, whole test set (pp)", _pp(res.observed_lift_test))
    t.add_row("value per response", f"{res.value_per_response:,.2f}")
    t.add_row("customers scored into incremental_value", f"{len(res.scores):,}")
    out.print(t)


def _print_dose(curves: pd.DataFrame, segments: pd.DataFrame) -> None:
    from rich.table import Table

    t = Table(title="Dose-response, all customers: contacts per month vs purchases and unsubscribes "
                    "(effect of one more contact, compared within alike customer-months)", title_justify="left")
    for name in ("contacts", "customer-months", "bought (%)", "effect of this contact (pp)", "interval",
                 "unadjusted (pp)", "net value", "pays", "unsubscribed (%)", "beyond justified"):
        t.add_column(name, justify="right")
    for row in curves[curves["segment"] == "all"].itertuples(index=False):
        t.add_row(str(row.dose_bin), f"{row.customer_months:,}", f"{100 * row.purchase_rate:.2f}", _pp(row.gain),
                  _interval(row.gain_lower, row.gain_upper), _pp(row.gain_crude),
                  "" if math.isnan(row.net_value) else f"{row.net_value:+,.3f}", "yes" if row.pays else "",
                  f"{100 * row.unsubscribe_rate:.2f}", "yes" if row.beyond_justified else "")
    out.print(t)
    s = Table(title="Over-contact by segment (segments as of each month's start)", title_justify="left")
    for name in ("segment", "contacts that pay", "unsubscribes rise at", "justified contacts/month",
                 "value per purchase", "cost per contact", "customer-months beyond", "share beyond", "over-contacted"):
        s.add_column(name, justify="left" if name == "segment" else "right")
    for row in segments.itertuples(index=False):
        s.add_row(str(row.segment), str(row.paying_bin), str(row.unsubscribe_bin or ""),
                  "no limit" if math.isinf(row.justified_contacts) else f"{row.justified_contacts:g}",
                  f"{row.value_per_purchase:,.2f}", f"{row.cost_per_contact:,.4f}",
                  f"{row.months_beyond:,}", f"{row.share_beyond:.1%}", "yes" if row.over_contacted else "")
    out.print(s)
