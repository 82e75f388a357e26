"""The report's "Triggers" section (registered on import; see :mod:`patron.report.registry`): per
trigger, its firings, sends, holdouts, exclusions by reason, deliveries (delivered, failing, dead)
and the measured lift of its sends against its holdout. Left out when no trigger ever fired."""

from __future__ import annotations

import pandas as pd

from patron.contact.dialogue.stats import trigger_stats
from patron.contact.effect.lift import campaign_effect
from patron.data.store import reader
from patron.errors import PatronError
from patron.report import Metric, Section, register_section

TRIGGER_TABLE = {
    "trigger": "trigger", "firings": "firings", "sends": "sent", "held_out": "held out", "excluded": "excluded",
    "exclusions": "excluded by reason", "cancelled": "cancelled", "scheduled": "waiting", "delivered": "delivered",
    "failing": "failing", "dead": "dead", "response_lift": "lift", "response_lift_lower": "lift low",
    "response_lift_upper": "lift high",
}
"""Columns of the trigger table, and their headings."""


def trigger_table(db: str, config: object = None) -> pd.DataFrame:
    """One row per trigger that fired: the counts of :func:`patron.contact.dialogue.stats.trigger_stats`,
    the exclusions as text (``cap_reached 3, denied 1``) and the response lift of its sends
    against its holdout (:func:`patron.contact.effect.campaign_effect`; empty without a holdout)."""
    with reader(db) as con:
        stats = trigger_stats(con)
    if not stats:
        return pd.DataFrame(columns=list(TRIGGER_TABLE))
    table = pd.DataFrame(stats)
    table["exclusions"] = [", ".join(f"{k} {v}" for k, v in e.items()) for e in table["exclusions"]]
    try:
        lift = campaign_effect(db, config=config)  # type: ignore[arg-type]
    except PatronError:
        lift = pd.DataFrame(columns=["campaign_id", "response_lift", "response_lift_lower", "response_lift_upper"])
    lift = lift[["campaign_id", "response_lift", "response_lift_lower", "response_lift_upper"]].rename(
        columns={"campaign_id": "trigger"})
    return table.merge(lift, on="trigger", how="left")[list(TRIGGER_TABLE)]


@register_section("triggers", order=82, title="Triggers")
def dialogue_section(db: str, ctx: object) -> Section | None:
    """Triggers: firings, sends, exclusions, deliveries and lift; ``None`` when none fired."""
    table = trigger_table(db, getattr(ctx, "config", None))
    if table.empty:
        return None
    sec = Section("triggers", "Triggers",
                  intro="Messages sent when an event, a status change or a segment change happened, each through the "
                        "contact gate (consent, preferences, caps, quiet hours, pauses, status, topics) and a random "
                        "holdout; lift is the response rate of those sent minus those held out. See docs/dialogue.md.")
    sec.metrics += [Metric("firings", f"{int(table['firings'].sum()):,}"),
                    Metric("sent", f"{int(table['sends'].sum()):,}"),
                    Metric("excluded by the gate", f"{int(table['excluded'].sum()):,}"),
                    Metric("deliveries dead", f"{int(table['dead'].sum()):,}")]
    sec.tables.append(("Triggers", table.rename(columns=TRIGGER_TABLE)))
    return sec
