"""The report's "Word of mouse" section (registered on import; see :mod:`patron.report.registry`):
the largest referral cascades, cascade sizes, K by month, referred vs other customers, and the
per-campaign table of :func:`patron.network.campaign_summary`. Left out when nothing was referred."""

from __future__ import annotations

from patron.errors import PatronError
from patron.network.cascades import cascades
from patron.network.figures import report_figures
from patron.network.viral import campaign_summary
from patron.report import Metric, Section, register_section

CAMPAIGN_TABLE = {
    "scope": "campaign", "seeds": "seeds", "reach": "reach", "generations": "generations",
    "structural_virality": "structural virality", "k": "K", "k_lower": "K low", "k_upper": "K high",
    "amplification": "amplification",
}
"""Columns of the per-campaign table shown in the report (those present), and their headings."""

METRIC_DEFINITIONS = {
    "reach": "People in referral cascades, the seed customers who started them included.",
    "k": "Invitations per sharer times conversions per invitation: new customers per sharer.",
    "amplification": "People in cascades per seed customer (the mean cascade size, seed included).",
}
"""The one-line definition under each headline number of the section."""


@register_section("referrals", order=85, title="Word of mouse")
def referrals_section(db: str, ctx: object) -> Section | None:
    """Referral cascades and the viral coefficient; ``None`` when the database holds no referrals."""
    config = getattr(ctx, "config", None)
    try:
        c = cascades(db, config=config)
        summary = campaign_summary(c)
        figures = report_figures(db, config=config, cascade=c, currency=ctx.currency() if hasattr(ctx, "currency") else None)
    except PatronError:
        return None
    sec = Section("referrals", "Word of mouse",
                  intro="Who brought whom: referral cascades built in the engine, the viral coefficient K "
                        "(invitations per sharer x conversion per invitation) and whether referred customers "
                        "are worth more than others acquired in the same months. See docs/referrals.md.")
    overall = summary.iloc[0] if len(summary) else None
    if overall is not None:
        for key, label in (("reach", "people reached"), ("k", "viral coefficient K"), ("amplification", "amplification")):
            if key in summary.columns and overall[key] == overall[key]:
                value = overall[key]
                sec.metrics.append(Metric(label, f"{value:,.2f}" if isinstance(value, float) else f"{value:,}", "",
                                          METRIC_DEFINITIONS[key]))
    sec.figures.extend(fig for _, fig in figures)
    cols = [c for c in CAMPAIGN_TABLE if c in summary.columns]
    if cols:
        sec.tables.append(("Referrals per campaign", summary[cols].rename(columns=CAMPAIGN_TABLE)))
    return sec
