"""What a customer's own page shows: what is held about them against what they get back, as data
and as a few plain sentences.

**Held**: their identifiers (the customer id, the user ids the identity graph links, the email and
phone of their profile, how many device ids and hashed emails), profile details, orders (count,
totals per currency, the latest), the messages sent to them this month per channel (contacts of
kind ``sent``, never a holdout record, since the first of the month, UTC), recorded visits and
actions (events), their consents and preferences in force, and the estimates patron makes from
their purchases (status and why, value tier, the value expected over the ``[value]`` horizon, the
segments they are in).

**Given back**: discounts (``transactions.discount`` on their orders, per currency), rewards for
referrals (people they referred who signed up or bought, per offer), and what personalisation
uses their data for: each purpose of ``[preference_center] purposes`` with its words and the
channels the customer allows it on.

Every query names the one person (``WHERE customer_id = ?``, or the referrer columns): nothing
of anyone else is read. Used by :mod:`patron.service.preference_center`.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from patron.data.dialect import DUCKDB
from patron.people.identity import identities_of, identity_counts
from patron.people.rights.export import jsonable
from patron.service.profile_view import consents_in_force, preferences_in_force, scores_and_segments
from patron.service.refresh import has_table
from patron.service.state import ServiceState

RECENT_ORDERS = 10
"""Orders listed on the page, most recent first."""

SHOWN_IDS = 20
"""User ids listed by value (device ids and hashed emails are only counted)."""

REWARD_KINDS: tuple[str, ...] = ("signed_up", "purchased")
"""Referral steps that earn the referrer a reward: the person they referred signed up or bought."""

TRAIT_HIDDEN: frozenset[str] = frozenset({"password", "password_hash"})
"""Trait names never shown, even to the person (a sender should never have sent them)."""


def _one(con: Any, sql: str, params: list[Any]) -> tuple[Any, ...]:
    return con.execute(sql, params).fetchone()


def _rows(con: Any, sql: str, params: list[Any]) -> list[dict[str, Any]]:
    cur = con.execute(sql, params)
    names = [d[0] for d in cur.description]
    return [{n: jsonable(v) for n, v in zip(names, row, strict=True)} for row in cur.fetchall()]


def _identifiers(con: Any, customer_id: str, traits: dict[str, Any]) -> dict[str, Any]:
    counts = identity_counts(con, customer_id)
    users = [i["value"] for i in identities_of(con, customer_id, limit=SHOWN_IDS) if i["kind"] == "user_id"]
    shown: list[dict[str, str]] = [{"kind": "customer id", "value": customer_id}]
    shown += [{"kind": "user id", "value": str(u)} for u in users if u != customer_id]
    shown += [{"kind": k, "value": str(traits[k])} for k in ("email", "phone") if traits.get(k)]
    counted = {k: n for k, n in counts.items() if k not in ("user_id",)}
    return {"shown": shown, "counts": counted}


def _orders(con: Any, customer_id: str) -> dict[str, Any]:
    by_currency = _rows(con, """SELECT coalesce(currency, '') AS currency,
            count(*) FILTER (WHERE amount >= 0) AS orders, count(*) FILTER (WHERE amount < 0) AS refunds,
            sum(amount) AS net_spend, coalesce(sum(discount) FILTER (WHERE discount > 0), 0) AS discounts,
            count(*) FILTER (WHERE discount > 0) AS discounted_orders,
            min(occurred_at) AS first_order, max(occurred_at) AS last_order
        FROM transactions WHERE customer_id = ? GROUP BY 1 ORDER BY 2 DESC, 1""", [customer_id])
    recent = _rows(con, f"""SELECT order_id, occurred_at, amount, currency, discount, category FROM transactions
        WHERE customer_id = ? ORDER BY occurred_at DESC, order_id LIMIT {RECENT_ORDERS}""", [customer_id])
    return {"by_currency": by_currency, "count": sum(r["orders"] for r in by_currency), "recent": recent}


def _contacts(con: Any, customer_id: str, now: datetime) -> dict[str, Any]:
    since = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    rows = con.execute("""SELECT channel, count(*) FROM contacts
        WHERE customer_id = ? AND kind = 'sent' AND NOT coalesce(in_holdout, FALSE) AND occurred_at >= ?
        GROUP BY channel ORDER BY channel""", [customer_id, since]).fetchall()
    total_ever = _one(con, "SELECT count(*) FROM contacts WHERE customer_id = ? AND kind = 'sent' "
                           "AND NOT coalesce(in_holdout, FALSE)", [customer_id])[0]
    by_channel = {str(c): int(n) for c, n in rows}
    return {"since": jsonable(since), "by_channel": by_channel, "this_month": sum(by_channel.values()),
            "ever": int(total_ever)}


def _events(con: Any, customer_id: str) -> dict[str, Any]:
    if not has_table(con, "events"):
        return {"count": 0, "first": None, "last": None}
    n, first, last = _one(con, "SELECT count(*), min(occurred_at), max(occurred_at) FROM events WHERE customer_id = ?",
                          [customer_id])
    return {"count": int(n), "first": jsonable(first), "last": jsonable(last)}


def _rewards(con: Any, customer_id: str) -> dict[str, Any]:
    kinds = ", ".join(DUCKDB.literal(k) for k in REWARD_KINDS)
    by_offer = _rows(con, f"""SELECT coalesce(campaign_id, '') AS offer, count(DISTINCT coalesce(referred_id, referral_id)) AS people
        FROM referrals WHERE referrer_id = ? AND kind IN ({kinds}) GROUP BY 1 ORDER BY 2 DESC, 1""", [customer_id])
    return {"referred_people": sum(r["people"] for r in by_offer), "by_offer": by_offer}


def _estimates(con: Any, state: ServiceState, customer_id: str) -> dict[str, Any] | None:
    scores, segments = scores_and_segments(con, state, customer_id)
    if scores is None:
        return None
    keep = ("as_of", "status", "status_reason", "value_tier", "clv", "clv_lower", "clv_upper", "probability_alive",
            "expected_purchases")
    return {**{k: scores.get(k) for k in keep}, "segments": segments}


def _personalisation(state: ServiceState, consents: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for purpose, words in state.center.purposes.items():
        allowed = sorted({c["channel"] for c in consents if c["purpose"] == purpose and c["granted"]})
        out.append({"purpose": purpose, "description": words, "allowed_channels": allowed})
    return out


def _money(rows: list[dict[str, Any]], key: str) -> str:
    parts = [f"{r[key]:,.2f}{' ' + r['currency'] if r['currency'] else ''}" for r in rows if r[key]]
    return " and ".join(parts) or "nothing"


def _sentences(held: dict[str, Any], back: dict[str, Any]) -> list[str]:
    orders, contacts = held["orders"], held["contacts"]
    n_ids = len(held["identifiers"]["shown"]) + sum(held["identifiers"]["counts"].values())
    channels = ", ".join(f"{n} by {c}" for c, n in contacts["by_channel"].items())
    est = held["estimates"]
    held_line = (f"We hold {orders['count']} order{'s' if orders['count'] != 1 else ''} of yours "
                 f"({_money(orders['by_currency'], 'net_spend')} in all), {n_ids} identifier{'s' if n_ids != 1 else ''}, "
                 f"{held['events']['count']} recorded visit{'s' if held['events']['count'] != 1 else ''} and actions, "
                 f"your consents and contact preferences"
                 + (f", and our estimates from your purchases (status: {est['status']})" if est else "") + ". "
                 f"This month we sent you {contacts['this_month']} message{'s' if contacts['this_month'] != 1 else ''}"
                 + (f" ({channels})" if channels else "") + ".")
    discounted = sum(r["discounted_orders"] for r in back["discounts"])
    uses = [p["purpose"] for p in back["personalisation"] if p["allowed_channels"]]
    back_line = (f"In return you received {_money(back['discounts'], 'discounts')} in discounts"
                 + (f" on {discounted} order{'s' if discounted != 1 else ''}" if discounted else "")
                 + f", rewards for {back['rewards']['referred_people']} people you referred, and "
                 + (f"you allow us to use your data for: {', '.join(uses)}." if uses
                    else "no use of your data beyond your orders: you have not allowed any."))
    return [held_line, back_line]


def statement(con: Any, state: ServiceState, customer_id: str, now: datetime) -> dict[str, Any]:
    """The page's data for ``customer_id`` at ``now`` (naive UTC): ``held``, ``returned``,
    ``sentences`` and what the forms offer (``choices``). See the module docstring."""
    attributes, first_seen = _one(con, "SELECT any_value(attributes), min(first_seen) FROM customers WHERE customer_id = ?",
                                  [customer_id])
    try:
        traits = json.loads(attributes) if attributes else {}
    except ValueError:
        traits = {}
    traits = {k: v for k, v in (traits if isinstance(traits, dict) else {}).items() if k.lower() not in TRAIT_HIDDEN}
    consents = consents_in_force(con, customer_id, now)
    orders = _orders(con, customer_id)
    held = {
        "identifiers": _identifiers(con, customer_id, traits),
        "profile": jsonable(traits), "first_seen": jsonable(first_seen),
        "orders": orders,
        "contacts": _contacts(con, customer_id, now),
        "events": _events(con, customer_id),
        "consents": consents,
        "preferences": preferences_in_force(con, customer_id, now),
        "estimates": _estimates(con, state, customer_id),
    }
    returned = {
        "discounts": [{"currency": r["currency"], "discounts": r["discounts"], "discounted_orders": r["discounted_orders"]}
                      for r in orders["by_currency"]],
        "rewards": _rewards(con, customer_id),
        "personalisation": _personalisation(state, consents),
    }
    center = state.center
    return {
        "customer_id": customer_id, "as_of": jsonable(now), "held": held, "returned": returned,
        "sentences": _sentences(held, returned),
        "choices": {"purposes": center.purposes, "channels": list(center.channels), "topics": list(center.topics),
                    "erasure": center.erasure},
    }


def holds_anything(con: Any, customer_id: str) -> bool:
    """Whether any row is still held under ``customer_id`` (customers, orders, events, ledgers):
    false once the person was merged into another or erased."""
    events = "OR EXISTS (SELECT 1 FROM events WHERE customer_id = $1)" if has_table(con, "events") else ""
    return bool(_one(con, f"""SELECT EXISTS (SELECT 1 FROM customers WHERE customer_id = $1)
        OR EXISTS (SELECT 1 FROM transactions WHERE customer_id = $1)
        OR EXISTS (SELECT 1 FROM consents WHERE customer_id = $1)
        OR EXISTS (SELECT 1 FROM preferences WHERE customer_id = $1) {events}""", [customer_id])[0])
