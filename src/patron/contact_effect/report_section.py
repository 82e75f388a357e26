"""The report's "Contact effect" section (registered on import; see :mod:`patron.report.registry`)."""

from __future__ import annotations

import pandas as pd

from patron.contact_effect.dose import dose_response, over_contacted_segments
from patron.contact_effect.figures import dose_figure, lift_figure, qini_figure
from patron.contact_effect.lift import campaign_effect
from patron.contact_effect.uplift import fit_uplift
from patron.errors import PatronError
from patron.report import Metric, Section, register_section

LIFT_TABLE = {
    "campaign_id": "campaign", "n_treated": "treated", "n_control": "control",
    "response_rate_treated": "response treated", "response_rate_control": "response control",
    "response_lift": "lift", "response_lift_lower": "lift low", "response_lift_upper": "lift high",
    "incremental_revenue": "incremental revenue", "unsubscribe_lift": "unsubscribe lift",
}
"""Columns of the lift table shown in the report, and their headings."""


@register_section("contact_effect", order=80, title="Contact effect")
def contact_effect_section(db: str, ctx: object) -> Section | None:
    """Lift per campaign, the uplift model's Qini curve, dose-response and over-contacted segments."""
    config = getattr(ctx, "config", None)
    try:
        lift = campaign_effect(db, config=config)
    except PatronError:
        return None
    measured = lift.dropna(subset=["response_lift"])
    sec = Section("contact_effect", "Contact effect",
                  intro="Campaigns against their random holdout: the share of customers who bought within the outcome "
                        "window, purchases and revenue, with confidence intervals. See docs/contact-effect.md.")
    if len(measured):
        sec.metrics.append(Metric("campaigns with a holdout", f"{len(measured):,}"))
        total = measured["incremental_revenue"].sum()
        sec.metrics.append(Metric("incremental revenue (sum over campaigns)", f"{total:,.0f}"))
        sec.figures.append(lift_figure(lift))
        sec.tables.append(("Lift per campaign", measured[list(LIFT_TABLE)].rename(columns=LIFT_TABLE)))
    else:
        sec.notes.append("No campaign has a holdout: its effect cannot be measured.")
    try:
        res = fit_uplift(db, config=config, score=False, write=False)
        sec.figures.append(qini_figure(res.qini_curve, label=res.label))
        sec.metrics.append(Metric("Qini coefficient (held out)", f"{res.qini_coefficient:.4f}", f"random score {res.qini_random:.4f}"))
    except PatronError as exc:
        sec.notes.append(f"No uplift model: {exc}")
    try:
        curves = dose_response(db, config=config)
        sec.figures.append(dose_figure(curves))
        seg = over_contacted_segments(curves)
        sec.tables.append(("Over-contact by segment", pd.DataFrame(seg)))
    except PatronError as exc:
        sec.notes.append(f"No dose-response: {exc}")
    return sec
