"""The report's "Contact effect" section (registered on import; see :mod:`patron.report.registry`)."""

from __future__ import annotations

import pandas as pd

from patron.contact.effect.dose import CAVEAT, dose_response, over_contacted_segments
from patron.contact.effect.figures import dose_figure, lift_figure, qini_figure
from patron.contact.effect.lift import campaign_effect, revenue_headline, revenue_headline_text
from patron.contact.effect.uplift import fit_uplift
from patron.errors import PatronError
from patron.report import Metric, Section, register_section

LIFT_TABLE = {
    "campaign_id": "campaign", "n_treated": "treated", "n_control": "control",
    "response_rate_treated": "response treated", "response_rate_control": "response control",
    "response_lift": "lift", "response_lift_lower": "lift low", "response_lift_upper": "lift high",
    "incremental_revenue": "incremental revenue", "incremental_revenue_lower": "revenue low",
    "incremental_revenue_upper": "revenue high", "revenue_proven": "proven", "unsubscribe_lift": "unsubscribe lift",
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
        h = revenue_headline(lift)
        value = (f"{h['incremental_revenue']:+,.0f}" if h["proven"] else "none proven")
        detail = (f"{h['level']:.0%} interval {h['incremental_revenue_lower']:+,.0f} to {h['incremental_revenue_upper']:+,.0f}; "
                  f"{h['proven']} of {h['proven'] + h['unproven']} campaigns proven" if h["proven"] else
                  f"no campaign's revenue lift interval excludes 0 ({h['unproven']} measured)")
        sec.metrics.append(Metric("incremental revenue, proven campaigns", value, detail))
        sec.notes.append(revenue_headline_text(h))
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
        sec.tables.append(("Over-contact by segment (segments as of each month's start)", pd.DataFrame(seg)))
        sec.notes.append(f"Dose-response: {CAVEAT}")
    except PatronError as exc:
        sec.notes.append(f"No dose-response: {exc}")
    return sec
