"""The report's "Contact effect" section (registered on import; see :mod:`patron.report.registry`)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from patron.contact.effect.dose import CAVEAT, dose_response, over_contacted_segments
from patron.contact.effect.figures import (
    PERCENT,
    dose_figure,
    lift_figure,
    qini_figure,
    segment_order,
)
from patron.contact.effect.lift import campaign_effect, revenue_headline, revenue_headline_text
from patron.contact.effect.uplift import fit_uplift
from patron.display import money, money_title
from patron.errors import PatronError
from patron.report import Metric, Section, register_section

LIFT_TABLE = {
    "campaign_id": "campaign", "n_treated": "treated", "n_control": "control",
    "response_rate_treated": "response treated", "response_rate_control": "response control",
    "response_lift": "lift", "response_lift_lower": "lift low", "response_lift_upper": "lift high",
    "incremental_revenue": "incremental revenue", "incremental_revenue_lower": "revenue low",
    "incremental_revenue_upper": "revenue high", "revenue_proven": "proven", "unsubscribe_lift": "unsubscribe lift",
}
"""Columns of the campaign lift results and their short names (:func:`lift_table` shows them)."""


def lift_table(measured: pd.DataFrame, currency: str | None = None) -> pd.DataFrame:
    """The lift per campaign for reading and sorting, one unit per column, named in its header:
    response rates in %, response and unsubscribe lifts and their interval in percentage points (as
    the lift chart), incremental revenue and its interval in ``currency``, ``revenue proven`` a
    boolean (printed yes / no). Cells are numbers, so that the report's tables sort them as numbers
    and download them unformatted."""
    m = measured.reset_index(drop=True)
    pp = lambda c: m[c].to_numpy(dtype=float) * PERCENT  # noqa: E731
    out = pd.DataFrame({
        "campaign": m["campaign_id"].astype(str),
        "treated": m["n_treated"].astype("int64"), "control": m["n_control"].astype("int64"),
        "response treated (%)": pp("response_rate_treated"), "response control (%)": pp("response_rate_control"),
        "response lift (pp)": pp("response_lift"), "lift low (pp)": pp("response_lift_lower"),
        "lift high (pp)": pp("response_lift_upper"),
        money_title("incremental revenue", currency): m["incremental_revenue"].to_numpy(dtype=float),
        money_title("revenue low", currency): m["incremental_revenue_lower"].to_numpy(dtype=float),
        money_title("revenue high", currency): m["incremental_revenue_upper"].to_numpy(dtype=float),
        "revenue proven": m["revenue_proven"].astype(bool).to_numpy(),
    })
    if "unsubscribe_lift" in m.columns:
        out["unsubscribe lift (pp)"] = pp("unsubscribe_lift")
    return out


OVER_CONTACT_TABLE = {
    "segment": "segment", "justified_contacts": "justified contacts per month", "customer_months": "customer-months",
    "months_beyond": "customer-months beyond it", "share_beyond": "share beyond (%)", "unsubscribe_rise": "unsubscribes rise",
    "over_contacted": "over-contacted",
}
"""Columns of the over-contact table shown, and their headings (booleans print as yes / no)."""


@register_section("contact_effect", order=80, title="Contact effect")
def contact_effect_section(db: str, ctx: object) -> Section | None:
    """Lift per campaign, the uplift model's Qini curve, dose-response and over-contacted segments."""
    config = getattr(ctx, "config", None)
    currency = ctx.currency() if hasattr(ctx, "currency") else None
    try:
        lift = campaign_effect(db, config=config)
    except PatronError:
        return None
    measured = lift.dropna(subset=["response_lift"])
    sec = Section("contact_effect", "Contact effect",
                  intro="Campaigns against their random holdout: the share of customers who bought within the outcome "
                        "window, purchases and revenue, with confidence intervals. See docs/contact-effect.md.")
    if len(measured):
        sec.metrics.append(Metric("campaigns with a holdout", f"{len(measured):,}", "",
                                  "Campaigns whose contacts had a random holdout, so their effect can be measured."))
        h = revenue_headline(lift)
        cash = lambda v: money(v, currency, decimals=0, sign=True)  # noqa: E731
        value = (cash(h["incremental_revenue"]) if h["proven"] else "none proven")
        detail = (f"{h['level']:.0%} interval {cash(h['incremental_revenue_lower'])} to {cash(h['incremental_revenue_upper'])}; "
                  f"{h['proven']} of {h['proven'] + h['unproven']} campaigns proven" if h["proven"] else
                  f"no campaign's revenue lift interval excludes 0 ({h['unproven']} measured)")
        sec.metrics.append(Metric("incremental revenue, proven campaigns", value, detail,
                                  "Revenue of contacted customers beyond their holdout's, summed over campaigns whose "
                                  "interval excludes 0."))
        sec.notes.append(revenue_headline_text(h))
        sec.figures.append(lift_figure(lift))
        sec.tables.append(("Lift per campaign (lifts in percentage points)", lift_table(measured, currency)))
    else:
        sec.notes.append("No campaign has a holdout: its effect cannot be measured.")
    try:
        res = fit_uplift(db, config=config, score=False, write=False)
        sec.figures.append(qini_figure(res.qini_curve, label=res.label))
        sec.metrics.append(Metric("Qini coefficient (held out)", f"{res.qini_coefficient:.4f}", f"random score {res.qini_random:.4f}",
                                  "Area between the uplift model's Qini curve and random targeting, on held-out customers."))
    except PatronError as exc:
        sec.notes.append(f"No uplift model: {exc}")
    try:
        curves = dose_response(db, config=config)
        sec.figures.append(dose_figure(curves, config=config))
        seg = over_contacted_segments(curves)
        seg = pd.DataFrame(seg)
        if "segment" in seg.columns:  # all, then statuses / tiers in their order, not alphabetical
            rank = {s: i for i, s in enumerate(segment_order(seg["segment"], config=config))}
            seg = seg.iloc[np.argsort([rank[str(s)] for s in seg["segment"]], kind="stable")]
        if "share_beyond" in seg.columns:
            seg["share_beyond"] = seg["share_beyond"].to_numpy(dtype=float) * PERCENT
        cols = [c for c in OVER_CONTACT_TABLE if c in seg.columns]
        sec.tables.append(("Over-contact by segment (segments as of each month's start)",
                           seg[cols].rename(columns=OVER_CONTACT_TABLE)))
        sec.notes.append(f"Dose-response: {CAVEAT}")
    except PatronError as exc:
        sec.notes.append(f"No dose-response: {exc}")
    return sec
