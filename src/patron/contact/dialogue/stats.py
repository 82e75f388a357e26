"""What the triggers did: per trigger, firings, sends, exclusions by reason, deliveries, and the
measured lift (sent vs held out, :func:`patron.contact.effect.campaign_effect`)."""

from __future__ import annotations

from typing import Any

from patron.data.dialect import DUCKDB
from patron.data.store import table_exists

STATS_SQL = """SELECT trigger,
  count(*) AS firings,
  count(*) FILTER (WHERE state IN ('pending', 'delivered', 'dead')) AS sends,
  count(*) FILTER (WHERE state = 'held_out') AS held_out,
  count(*) FILTER (WHERE state = 'excluded') AS excluded,
  count(*) FILTER (WHERE state = 'cancelled') AS cancelled,
  count(*) FILTER (WHERE state = 'scheduled') AS scheduled,
  count(*) FILTER (WHERE state = 'delivered') AS delivered,
  count(*) FILTER (WHERE state = 'pending') AS pending,
  count(*) FILTER (WHERE state = 'pending' AND attempts > 0) AS failing,
  count(*) FILTER (WHERE state = 'dead') AS dead
FROM trigger_firings GROUP BY trigger"""

COUNTS: tuple[str, ...] = ("firings", "sends", "held_out", "excluded", "cancelled", "scheduled", "delivered",
                           "pending", "failing", "dead")
"""Counts of :func:`trigger_stats`: firings, decided to send, held out, excluded by the gate,
cancelled, waiting (delay or quiet hours), delivered, waiting for delivery, of which failed at least
once, dead-lettered."""


def trigger_stats(con: Any, names: list[str] | None = None) -> list[dict[str, Any]]:
    """One dict per trigger (``names`` first, in order, then any other trigger with firings):
    :data:`COUNTS` and ``exclusions`` (reason -> firings)."""
    if not table_exists(con, "trigger_firings"):
        rows: list[tuple[Any, ...]] = []
        reasons: list[tuple[Any, ...]] = []
    else:
        rows = con.execute(STATS_SQL).fetchall()
        reasons = con.execute("SELECT trigger, reason, count(*) FROM trigger_firings WHERE state IN "
                              "('excluded', 'cancelled') GROUP BY ALL ORDER BY 1, 3 DESC, 2").fetchall()
    by = {r[0]: dict(zip(COUNTS, (int(v) for v in r[1:]), strict=True)) for r in rows}
    order = list(dict.fromkeys([*(names or []), *sorted(by)]))
    out = []
    for name in order:
        d = {"trigger": name, **by.get(name, dict.fromkeys(COUNTS, 0))}
        d["exclusions"] = {r[1]: int(r[2]) for r in reasons if r[0] == name}
        out.append(d)
    return out


def firing_list(con: Any, *, trigger: str | None = None, state: str | None = None, customer_id: str | None = None,
                limit: int = 100) -> list[dict[str, Any]]:
    """Firings, newest first, as JSON-ready dicts (times ISO 8601 UTC with ``Z``)."""
    if not table_exists(con, "trigger_firings"):
        return []
    where = ["TRUE"]
    for col, value in (("trigger", trigger), ("state", state), ("customer_id", customer_id)):
        if value is not None:
            where.append(f"{col} = {DUCKDB.literal(value)}")
    cur = con.execute(
        "SELECT firing_id, trigger, customer_id, cause, caused_at, created_at, due_at, state, reason, decided_at, "
        "destination, channel, purpose, attempts, next_attempt_at, last_error, delivered_at FROM trigger_firings "
        f"WHERE {' AND '.join(where)} ORDER BY created_at DESC, firing_id LIMIT {int(limit)}")
    cols = [c[0] for c in cur.description]
    out = []
    for row in cur.fetchall():
        d = dict(zip(cols, row, strict=True))
        for k, v in d.items():
            if hasattr(v, "isoformat"):
                d[k] = v.isoformat() + "Z"
        d["cause"] = str(d["cause"]).replace("\x1f", " ")
        out.append(d)
    return out


__all__ = ["COUNTS", "firing_list", "trigger_stats"]
