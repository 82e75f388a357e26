"""From Segment events to the rows of patron's tables (transactions, contacts, consents, customers)
and to the identifiers that identity resolution links.

:func:`map_event` looks at one checked :class:`~patron.service.segment_spec.Event` and returns the
rows it implies, each starting with the event's ``messageId`` and without ``customer_id`` (the
writer fills it after identity resolution, for a whole group of events at once, and inserts every
table with one Arrow-backed ``INSERT ... SELECT``). Invalid business content raises
:class:`~patron.service.segment_spec.EventError` with a one-line reason; the writer keeps such an event
in ``dead_letters`` instead of storing it.

The rules follow the data contract (:mod:`patron.data.schema`) and validated ingest: money is a finite
number (text such as ``"12.50"`` is accepted, as in CSV ingest), ``discount`` is not negative,
``currency`` is three letters (stored upper case), choices (contact kind, consent channel and
status) are lower-cased and must be among the contract's values. The event time was already
checked against the ingest's future tolerance. The mapping is documented in ``docs/service.md``
(section *Events*).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from patron.data.ingest.plausible import (
    Implausible,
    id_text,
    money_problem,
    number_value,
    parse_number,
    show,
)
from patron.service.segment_spec import DATE_FLOOR, Event, EventError
from patron.service.settings import ServiceRules

ORDER_COMPLETED = "Order Completed"
ORDER_REFUNDED = "Order Refunded"
CONSENT_PREFERENCE_UPDATED = "Segment Consent Preference Updated"
"""Segment's consent-management event: ``context.consent.categoryPreferences`` ``{category: bool}``."""

REFUND_KEY = "{order_id}/refund/{refund_id}"
"""``order_id`` of a refund row in ``transactions``: the refunded order's id, ``/refund/``, and the
refund's ``properties.refund_id`` or, when absent, the event's ``messageId``. The original order
keeps its own row (and key); a replayed refund event is stored once (its ``messageId`` is already
known); several partial refunds of one order are distinct rows."""

REFUND_OVERRIDE = "refund_override"
"""``Order Refunded`` property: ``true`` lets the event refund an order booked on another person
(a back office refunding on a customer's behalf); the refund is then booked on the order's person.
Without it such a refund is rejected (:func:`patron.service.refunds.check_refunds`)."""

CONTACT_EVENTS: dict[str, tuple[str, str]] = {
    # Segment email spec
    "Email Sent": ("email", "sent"),
    "Email Delivered": ("email", "delivered"),
    "Email Opened": ("email", "opened"),
    "Email Link Clicked": ("email", "clicked"),
    "Email Bounced": ("email", "bounced"),
    "Email Marked as Spam": ("email", "complained"),
    "Unsubscribed": ("email", "unsubscribed"),
    "Email Unsubscribed": ("email", "unsubscribed"),
    # SMS (Twilio Engage names)
    "SMS Sent": ("sms", "sent"),
    "SMS Delivered": ("sms", "delivered"),
    "SMS Opened": ("sms", "opened"),
    "SMS Link Clicked": ("sms", "clicked"),
    "SMS Bounced": ("sms", "bounced"),
    "SMS Failed": ("sms", "bounced"),
    "SMS Undelivered": ("sms", "bounced"),
    "SMS Marked as Spam": ("sms", "complained"),
    "SMS Unsubscribed": ("sms", "unsubscribed"),
    # Segment mobile spec (push)
    "Push Notification Sent": ("push", "sent"),
    "Push Notification Received": ("push", "delivered"),
    "Push Notification Tapped": ("push", "opened"),
    "Push Notification Bounced": ("push", "bounced"),
}
"""Track event name -> (contacts ``channel``, contacts ``kind``)."""

_CURRENCY = re.compile(r"[A-Za-z]{3}")


@dataclass(slots=True)
class Mapped:
    """The rows one event implies; every row tuple starts with the event's ``messageId``.

    ``transactions``: ``(message_id, order_id, occurred_at, amount, currency, channel, category,
    discount, margin)``. ``refunds``: ``(message_id, refund_key, order_id, occurred_at, amount or
    None (full refund: minus the stored order's amount), currency, override)`` (``override``:
    :data:`REFUND_OVERRIDE` was true). ``contacts``: ``(message_id, contact_id, occurred_at,
    channel, campaign_id, kind, in_holdout)``. ``consents`` and ``preferences``: ``(message_id,
    record)``, the record a dict of the ledger's contract columns but ``customer_id``
    (:func:`patron.contact.consent.records.check_record`). ``traits``: identify traits (``None`` for other events).
    ``identifiers``: ``(kind, value)`` pairs the event carries, for identity resolution.
    """

    transactions: list[tuple[Any, ...]] = field(default_factory=list)
    refunds: list[tuple[Any, ...]] = field(default_factory=list)
    contacts: list[tuple[Any, ...]] = field(default_factory=list)
    consents: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    preferences: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    traits: dict[str, Any] | None = None
    identifiers: list[tuple[str, str]] = field(default_factory=list)

    def __reduce__(self) -> tuple[type[Mapped], tuple[Any, ...]]:
        """Pickled (the journal) as the class and its fields in order (cheaper than the
        dataclass's ``__getstate__`` of slots, as :class:`patron.service.items.Accepted`)."""
        return (Mapped, (self.transactions, self.refunds, self.contacts, self.consents, self.preferences,
                         self.traits, self.identifiers))


# --- identifiers -------------------------------------------------------------------------------

PREVIOUS_ID_KIND = "anonymous_id"
"""Kind under which an ``alias`` event's ``previousId`` is linked. Segment's ``alias`` joins the id
a person had before (usually a pre-login anonymous id) to their ``userId``; linking it as an
anonymous id lets it merge even when ``user_id`` is a unique identifier (two user ids never merge)."""


def _raw_identifier(value: Any, where: str) -> str | None:
    if value is None or value == "":
        return None
    try:
        return id_text(value) or None
    except Implausible as exc:
        raise EventError(f"{where} {exc}") from None


def identifiers(ev: Event, rules: ServiceRules) -> list[tuple[str, str]]:
    """``(kind, raw value)`` identifiers ``ev`` carries: ``user_id`` (userId), ``anonymous_id``
    (anonymousId; an alias's previousId, :data:`PREVIOUS_ID_KIND`), and each trait of
    ``rules.identity_traits`` found in ``traits`` (identify) or ``context.traits``. Values are
    raw text: :func:`patron.people.identity.normalize_identifier` normalizes them (an email is trimmed,
    lower-cased and stored as its SHA-256 only). A trait value that breaks the id rule
    (:func:`patron.data.ingest.plausible.id_text`: an object, a list, a fraction, an invisible
    character, ...) raises :class:`EventError`."""
    out: list[tuple[str, str]] = []
    if ev.user_id is not None:
        out.append(("user_id", ev.user_id))
    if ev.anonymous_id is not None:
        out.append(("anonymous_id", ev.anonymous_id))
    if ev.previous_id is not None:
        out.append((PREVIOUS_ID_KIND, ev.previous_id))
    raw = ev.raw
    traits = raw.get("traits") if ev.type == "identify" else None
    ctx = raw.get("context")
    ctx_traits = ctx.get("traits") if isinstance(ctx, dict) else None
    for source, where in ((traits, "traits"), (ctx_traits, "context.traits")):
        if not isinstance(source, dict):
            continue
        for kind in rules.identity_traits:
            v = _raw_identifier(source.get(kind), f"{ev.type}: {where}.{kind}")
            if v is not None and (kind, v) not in out:
                out.append((kind, v))
    return out


# --- values ------------------------------------------------------------------------------------


def _number(props: dict[str, Any], key: str, where: str) -> float | None:
    """``props[key]`` by the number rule of :mod:`patron.data.ingest.plausible` (finite; numeric text as
    in file ingest), ``None`` when absent or empty."""
    v = props.get(key)
    if v is None or v == "":
        return None
    if isinstance(v, str) and parse_number(v) is None:
        raise EventError(f'{where}: non-numeric properties.{key} {show(v)}')
    try:
        return number_value(v)
    except Implausible as exc:
        raise EventError(f"{where}: properties.{key} {exc}") from None


def _money(x: float | None, what: str, where: str) -> float | None:
    problem = None if x is None else money_problem(x)
    if problem is not None:
        raise EventError(f"{where}: {what} {problem}")
    return x


def _text(value: Any) -> str | None:
    if value is None or isinstance(value, bool) or not isinstance(value, str | int | float):
        return None
    s = str(value).strip()
    return s or None


def _currency(props: dict[str, Any], where: str) -> str | None:
    c = props.get("currency")
    if c is None or c == "":
        return None
    if not isinstance(c, str) or not _CURRENCY.fullmatch(c.strip()):
        raise EventError(f'{where}: currency "{str(c)[:20]}" is not a three-letter ISO 4217 code')
    return c.strip().upper()


def _products(props: dict[str, Any], where: str) -> list[dict[str, Any]]:
    p = props.get("products")
    if p is None:
        return []
    if not isinstance(p, list):
        raise EventError(f"{where}: properties.products must be a list")
    return [x for x in p if isinstance(x, dict)]


def _products_total(products: list[dict[str, Any]], where: str) -> float | None:
    total = None
    for i, prod in enumerate(products):
        price = _number(prod, "price", f"{where}: products[{i}]")
        if price is None:
            continue
        qty = _number(prod, "quantity", f"{where}: products[{i}]")
        line = _money(price * (1.0 if qty is None else qty), "price × quantity", f"{where}: products[{i}]")
        total = _money((total or 0.0) + (line or 0.0), f"the sum of products[0..{i}]", where)
    return total


def order_amount(props: dict[str, Any], where: str) -> float | None:
    """The order's value: ``revenue``, else ``total``, else the sum of ``products[].price *
    quantity`` (quantity 1 when absent); ``None`` when none is given. Every product, every partial
    sum and the result are checked by the money rule (finite, at most
    :data:`~patron.data.ingest.plausible.MAX_MONEY` in absolute value)."""
    for key in ("revenue", "total"):
        x = _number(props, key, where)
        if x is not None:
            return _money(x, f"properties.{key}", where)
    return _products_total(_products(props, where), where)


def _prop_id(props: dict[str, Any], where: str, key: str = "order_id") -> str | None:
    """``properties[key]`` (an order, refund or campaign id) by the id rule; ``order_id`` is required."""
    v = props.get(key)
    oid = _raw_identifier(v, f"{where}: properties.{key}") if v is not None else None
    if oid is None and key == "order_id":
        raise EventError(f"{where}: properties.order_id is required")
    return oid


# --- events ------------------------------------------------------------------------------------


def _order_completed(ev: Event, props: dict[str, Any], out: Mapped) -> None:
    where = ORDER_COMPLETED
    oid = _prop_id(props, where)
    amount = order_amount(props, where)
    if amount is None:
        raise EventError(f"{where}: properties.revenue, total or products[].price is required")
    if amount < 0:
        raise EventError(f"{where}: amount {amount:g} is negative (send Order Refunded for a refund)")
    discount = _money(_number(props, "discount", where), "properties.discount", where)
    if discount is not None and discount < 0:
        raise EventError(f"{where}: properties.discount {discount:g} is negative")
    margin = _money(_number(props, "margin", where), "properties.margin", where)
    category = _text(props.get("category"))
    if category is None:
        category = next((c for c in (_text(p.get("category")) for p in _products(props, where)) if c), None)
    out.transactions.append((ev.message_id, oid, ev.occurred_at, amount, _currency(props, where),
                             _text(props.get("channel")), category, discount, margin))


def _order_refunded(ev: Event, props: dict[str, Any], out: Mapped) -> None:
    where = ORDER_REFUNDED
    oid = _prop_id(props, where)
    amount = order_amount(props, where)
    refund_id = _prop_id(props, where, "refund_id") or ev.message_id
    key = REFUND_KEY.format(order_id=oid, refund_id=refund_id)
    override = props.get(REFUND_OVERRIDE)
    if override is not None and not isinstance(override, bool):
        raise EventError(f"{where}: properties.{REFUND_OVERRIDE} must be true or false")
    out.refunds.append((ev.message_id, key, oid, ev.occurred_at,
                        None if amount is None else -abs(amount), _currency(props, where), override is True))


def _contact(ev: Event, props: dict[str, Any], channel: str, kind: str, out: Mapped) -> None:
    ch = _text(props.get("channel"))
    if ch is not None and kind == "unsubscribed":
        channel = ch.lower()
    ctx = ev.raw.get("context")
    camp = ctx.get("campaign") if isinstance(ctx, dict) else None
    campaign = (_prop_id(props, str(ev.event), "campaign_id") or _text(props.get("campaign_name"))
                or (_text(camp.get("name")) if isinstance(camp, dict) else None))
    hold = props.get("in_holdout")
    out.contacts.append((ev.message_id, ev.message_id, ev.occurred_at, channel, campaign, kind,
                         hold if isinstance(hold, bool) else None))


def _ledger(kind: str, where: str, ev: Event, props: dict[str, Any], date_floor: datetime) -> dict[str, Any]:
    """The ledger record an event's properties give, checked by the rules of file ingest
    (:func:`patron.contact.consent.records.check_record`): ``occurred_at`` the event's time, ``channel``
    ``any`` and ``source`` ``event`` when absent; other properties are ignored; the key is the
    event's messageId."""
    from patron.contact.consent.records import LEDGERS, Limits, RecordProblem, check_record

    contract = LEDGERS[kind]
    known = {c.name for c in contract.columns} - {"customer_id", contract.key, "occurred_at"}
    values = {k: v for k, v in props.items() if k in known}
    limits = Limits.at(ev.received_at, date_floor=date_floor.date())
    try:
        row = check_record(kind, values, limits=limits, prefix="properties.",
                           defaults={"channel": "any", "occurred_at": ev.occurred_at, "source": "event"})
    except RecordProblem as exc:
        raise EventError(f"{where}: {exc}") from None
    row[contract.key] = ev.message_id
    return row


def _consent(ev: Event, props: dict[str, Any], rules: ServiceRules, out: Mapped, date_floor: datetime) -> None:
    out.consents.append((ev.message_id, _ledger("consents", rules.consent_event, ev, props, date_floor)))


def _preferences(ev: Event, props: dict[str, Any], rules: ServiceRules, out: Mapped, date_floor: datetime) -> None:
    out.preferences.append((ev.message_id, _ledger("preferences", rules.preferences_event, ev, props, date_floor)))


def _consent_preferences(ev: Event, out: Mapped) -> None:
    where = CONSENT_PREFERENCE_UPDATED
    ctx = ev.raw.get("context")
    consent = ctx.get("consent") if isinstance(ctx, dict) else None
    prefs = consent.get("categoryPreferences") if isinstance(consent, dict) else None
    if not isinstance(prefs, dict) or not prefs:
        raise EventError(f"{where}: context.consent.categoryPreferences is required")
    for category, allowed in prefs.items():
        if not isinstance(allowed, bool):
            raise EventError(f"{where}: context.consent.categoryPreferences.{category} must be true or false")
        purpose = str(category).strip().lower()
        if not purpose:
            continue
        out.consents.append((ev.message_id, {
            "consent_id": f"{ev.message_id}/{purpose}", "purpose": purpose, "channel": "any",
            "status": "granted" if allowed else "denied", "occurred_at": ev.occurred_at, "source": "segment consent",
            "lawful_basis": None, "policy_version": None, "expires_at": None}))


def map_event(ev: Event, rules: ServiceRules, *, date_floor: datetime = DATE_FLOOR) -> Mapped:
    """The rows ``ev`` implies (see :class:`Mapped` and ``docs/service.md``). Raises
    :class:`~patron.service.segment_spec.EventError` for invalid business content (``date_floor``: the
    earliest plausible time, for ``expires_at``)."""
    out = Mapped(identifiers=identifiers(ev, rules))
    if ev.type == "identify":
        traits = ev.raw.get("traits")
        out.traits = traits if isinstance(traits, dict) else {}
        return out
    if ev.type != "track":
        return out
    props = ev.raw.get("properties")
    props = props if isinstance(props, dict) else {}
    name = ev.event
    if name == ORDER_COMPLETED:
        _order_completed(ev, props, out)
    elif name == ORDER_REFUNDED:
        _order_refunded(ev, props, out)
    elif name in CONTACT_EVENTS:
        channel, kind = CONTACT_EVENTS[name]
        _contact(ev, props, channel, kind, out)
    elif name == rules.consent_event:
        _consent(ev, props, rules, out, date_floor)
    elif name == rules.preferences_event:
        _preferences(ev, props, rules, out, date_floor)
    elif name == CONSENT_PREFERENCE_UPDATED:
        _consent_preferences(ev, out)
    return out


def merge_traits(existing: dict[str, Any], new: dict[str, Any], *, new_wins: bool) -> dict[str, Any]:
    """Traits after ``new`` arrives. ``new_wins`` (an event with a ``userId``, or any event of a
    person not known by a ``userId``): its values replace the stored ones; otherwise (an anonymous
    event of a known person) it only fills traits the person does not have yet, so an anonymous
    profile never overwrites a known one."""
    return {**existing, **new} if new_wins else {**new, **existing}
