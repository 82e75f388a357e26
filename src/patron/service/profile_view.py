"""The single view of a customer: resolve any identifier to the person id, and gather identities,
traits, scores, segments, consents, preferences, recent contacts and orders, and merges.

A handful of targeted ``WHERE customer_id = ?`` queries on the caller's cursor, no whole-table
read; ledger queries are skipped for a customer without ledger rows. Used by
``GET /v1/customers/{identifier}`` (:mod:`patron.service.customers_api`).
"""

from __future__ import annotations

import json
import logging
import threading
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from patron.contact.consent.check import points_sql
from patron.errors import NoDataError
from patron.people.identity import identities_of, identity_counts, list_merges, resolve_identifier
from patron.people.rights.export import jsonable
from patron.service.refresh import RefreshInfo, has_table, on_refresh, refresher
from patron.service.state import ServiceState

log = logging.getLogger("patron.service.customers")

RECENT_ROWS = 20
"""Contacts and orders listed in the single view (most recent first)."""

IDENTITIES_SHOWN = 50
"""Identity-graph identifiers listed in the single view (by kind, most recently seen first); the
view counts all of them (``identity_counts``) and ``GET /v1/customers/{identifier}/identities``
pages through the rest: one person may hold thousands of anonymous ids."""

IDENTIFYING_TRAITS: tuple[str, ...] = ("email", "phone")
"""Keys of ``customers.attributes`` listed in the single view's identities (``source`` traits)."""


def resolve_customer(con: Any, identifier: str) -> str | None:
    """The person id (``customer_id``) that ``identifier`` names, or None
    (:func:`patron.people.identity.resolve_identifier`: the identity graph first, then ids and traits of
    people it never saw)."""
    return resolve_identifier(con, identifier)


def graph_identities(con: Any, customer_id: str, *, limit: int, offset: int = 0) -> list[dict[str, Any]]:
    """A page of the identity graph's identifiers of a person (an email as its SHA-256), as JSON
    data with ``source`` graph (order: :func:`patron.people.identity.identities_of`)."""
    return [{**jsonable(i), "source": "graph"} for i in identities_of(con, customer_id, limit=limit, offset=offset)]


def identity_page(con: Any, customer_id: str, *, offset: int, limit: int) -> dict[str, Any]:
    """``GET /v1/customers/{identifier}/identities``: the total and one page of the graph's identifiers."""
    total = sum(identity_counts(con, customer_id).values())
    page = graph_identities(con, customer_id, limit=limit, offset=offset) if offset < total else []
    return {"customer_id": customer_id, "total": total, "offset": offset, "limit": limit, "identities": page}


def _identities(con: Any, customer_id: str, traits: dict[str, Any], *, graph: bool = True) -> list[dict[str, Any]]:
    """The person id, the first :data:`IDENTITIES_SHOWN` identifiers of the identity graph, and the
    email and phone traits (``source`` graph or traits)."""
    out: list[dict[str, Any]] = [{"kind": "customer_id", "value": customer_id, "source": "customer_id"}]
    if graph:
        out += graph_identities(con, customer_id, limit=IDENTITIES_SHOWN)
    out += [{"kind": k, "value": str(traits[k]), "source": "traits"} for k in IDENTIFYING_TRAITS if traits.get(k)]
    return out


FOUND_BY_KINDS: tuple[str, ...] = ("customer_id", "user_id", "email", "phone", "anonymous_id")
"""Identifier kinds tried, in this order, to say which one a lookup matched (``found_by``)."""


def found_by(con: Any, identifier: str, customer_id: str, traits: dict[str, Any]) -> dict[str, str]:
    """How ``identifier`` led to the person ``customer_id``: ``{"identifier", "kind"}``, where
    ``kind`` is ``customer_id`` (the person id itself), an identity-graph kind whose stored value
    the identifier normalizes to (an e-mail in any case, a phone in any format), ``email``/``phone``
    when it is the person's trait, else ``identifier`` (matched otherwise: a merged id, a phone
    written without its country code). Targeted queries on the person's rows only."""
    from patron.people.identity import normalize_identifier

    text = str(identifier).strip()
    if text == customer_id:
        return {"identifier": text, "kind": "customer_id"}
    if has_table(con, "identities"):
        candidates = [(k, normalize_identifier(k, text)) for k in FOUND_BY_KINDS]
        pairs = [(k, v) for k, v in candidates if v]
        if pairs:
            clauses = " OR ".join("(kind = ? AND value = ?)" for _ in pairs)
            rows = con.execute(f"SELECT kind FROM identities WHERE customer_id = ? AND ({clauses})",
                               [customer_id, *[x for pair in pairs for x in pair]]).fetchall()
            kinds = {r[0] for r in rows}
            for kind in FOUND_BY_KINDS:
                if kind in kinds:
                    return {"identifier": text, "kind": kind}
            if rows:
                return {"identifier": text, "kind": str(rows[0][0])}
    for kind in IDENTIFYING_TRAITS:
        value = traits.get(kind)
        if value and normalize_identifier(kind, str(value)) == normalize_identifier(kind, text):
            return {"identifier": text, "kind": kind}
    return {"identifier": text, "kind": "identifier"}


def merges_of(con: Any, customer_id: str | None) -> list[dict[str, Any]]:
    """Merges (and refused merges) into ``customer_id``, or all, newest first, as JSON data."""
    return [jsonable(m) for m in list_merges(con, customer_id)]


def resolve_or_404(con: Any, identifier: str) -> str:
    found = resolve_customer(con, identifier)
    if found is None:
        raise NoDataError(f"no customer matches {identifier!r}")
    return found


# -- the single view ---------------------------------------------------------------------------

class Scores(BaseModel):
    """Scores from the last refresh (``customer_profiles``), as of ``as_of`` (see docs/segments.md)."""

    model_config = ConfigDict(extra="allow")

    as_of: str | None = Field(None, description="Date the scores are computed as of (inclusive).")
    status: str | None = Field(None, description="prospect, new, active, cooling, at_risk, lapsed or lost.")
    status_reason: str | None = Field(None, description="The numbers that put the customer in that status.")
    clv: float | None = Field(None, description="CLV with the [value] settings (default: next 52 weeks, discounted at 10% a year, margin 1: revenue); GET /v1/equity states them.")
    clv_lower: float | None = Field(None, description="Lower end of the 95% interval of clv.")
    clv_upper: float | None = Field(None, description="Upper end of the 95% interval of clv.")
    probability_alive: float | None = Field(None, description="P(alive) at as_of (BG/NBD), 0-1.")
    expected_purchases: float | None = Field(None, description="Expected purchases over the [value] horizon (default: the next 52 weeks).")
    spend_basis: str | None = Field(None, description="Where the expected spend comes from: own, or the population mean and why.")
    value_tier: str | None = Field(None, description="platinum, gold, silver or bronze by CLV.")
    motivation: str | None = Field(None, description="Why the customer buys: discount, values, mixed, other or unknown; the motivation_* columns give the signals (docs/motivation.md).")
    recency_score: int | None = None
    frequency_score: int | None = None
    monetary_score: int | None = None
    rfm_score: str | None = Field(None, description="The three RFM scores, e.g. '545'.")
    n_orders: int | None = None
    total_spend: float | None = None
    first_purchase: str | None = None
    last_purchase: str | None = None


class CustomerView(BaseModel):
    """Everything that matters about one person, now."""

    customer_id: str = Field(description="The person id.")
    identities: list[dict[str, Any]] = Field(
        description=f"The person id, its email/phone traits and the first {IDENTITIES_SHOWN} identifiers the identity "
        "graph links to the person (by kind, most recently seen first; see identity_counts and "
        "GET /v1/customers/{identifier}/identities for the rest).")
    identity_counts: dict[str, int] = Field(
        default_factory=dict, description="How many identifiers of each kind the identity graph links to the person.")
    traits: dict[str, Any] = Field(description="customers.attributes (from identify traits or ingested files).")
    first_seen: str | None = None
    scores: Scores | None = Field(None, description="From the last refresh; null when never scored.")
    scores_refreshed_at: str | None = Field(None, description="When the service last refreshed scores (UTC), if it did.")
    segments: list[str] = Field(description="Named segments ([segments] rules and built-ins) the person is in.")
    consents: list[dict[str, Any]] = Field(description="Consent state now, per purpose and channel (ledger rules).")
    preferences: list[dict[str, Any]] = Field(description="Preferences in force now, per channel.")
    recent_contacts: list[dict[str, Any]] = Field(description=f"Last {RECENT_ROWS} contacts, newest first "
                                                  "(in_holdout true: held out of the campaign, nothing was sent).")
    recent_orders: list[dict[str, Any]] = Field(description=f"Last {RECENT_ROWS} orders and refunds, newest first.")
    merges: list[dict[str, Any]] = Field(description="Identity merges into this person, with their cause.")
    found_by: dict[str, str] | None = Field(
        None, description="The identifier looked up and its kind (customer_id, user_id, email, phone, anonymous_id, "
        "another identity kind, or identifier when it matched otherwise, e.g. a merged id).")


def _rows(con: Any, sql: str, params: list[Any]) -> list[dict[str, Any]]:
    cur = con.execute(sql, params)
    names = [d[0] for d in cur.description]
    return [{n: jsonable(v) for n, v in zip(names, row, strict=True)} for row in cur.fetchall()]


class _SegmentCache:
    """Compiled segment predicates, rebuilt after each refresh or erasure (the profile table changed)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._compiled: dict[int, list[tuple[str, str]]] = {}

    def clear(self, _info: RefreshInfo | None = None) -> None:
        with self._lock:
            self._compiled.clear()

    def get(self, con: Any, state: ServiceState) -> list[tuple[str, str]]:
        key = id(state)
        with self._lock:
            if key in self._compiled:
                return self._compiled[key]
        from patron.config import section
        from patron.relationship.rfm import RfmRules
        from patron.relationship.segments import KNOWN_VALUES, definitions, profile_columns
        from patron.relationship.segments.rules import compile_rule

        cols = profile_columns(con, bins=section("rfm", RfmRules, state.config).bins)
        out = []
        for name, (text, source) in definitions(config=state.config).items():
            try:
                out.append((name, compile_rule(text, cols, name=name, source=source, known_values=KNOWN_VALUES)))
            except Exception as exc:  # a broken rule in the rules file must not break the single view
                log.warning("segment %s skipped in the single view: %s", name, exc)
        with self._lock:
            self._compiled[key] = out
        return out


_segments = _SegmentCache()
on_refresh.append(_segments.clear)


def scores_and_segments(con: Any, state: ServiceState, customer_id: str) -> tuple[dict[str, Any] | None, list[str]]:
    """The customer's ``customer_profiles`` row (without the id) and the named segments they are
    in, in one query (segment rules compiled once, evaluated on that row)."""
    if not has_table(con, "customer_profiles"):
        return None, []
    compiled = _segments.get(con, state)
    flags = "".join(f", coalesce(({where}), FALSE) AS \"_segment_{i}\"" for i, (_, where) in enumerate(compiled))
    found = _rows(con, f"SELECT *{flags} FROM customer_profiles WHERE customer_id = ? LIMIT 1", [customer_id])
    if not found:
        return None, []
    row = found[0]
    segments = [name for i, (name, _) in enumerate(compiled) if row.pop(f"_segment_{i}")]
    row.pop("customer_id", None)
    return row, segments


def consents_in_force(con: Any, customer_id: str, at: datetime) -> list[dict[str, Any]]:
    """The consent state of ``customer_id`` at ``at`` (naive UTC), one entry per purpose and
    channel a ledger record speaks to (the ledger's rules, :func:`patron.contact.consent.ledger.state_at_sql`)."""
    from patron.contact.consent.ledger import STATE_COLUMNS, state_at_sql

    return [{k: c[k] for k in STATE_COLUMNS if k != "customer_id"}
            for c in _rows(con, state_at_sql(points_sql(customer_id, at)) + " ORDER BY purpose, channel", [])]


def preferences_in_force(con: Any, customer_id: str, at: datetime) -> list[dict[str, Any]]:
    """The preferences of ``customer_id`` in force at ``at``, per channel a record speaks to
    (:func:`patron.contact.consent.preferences.preferences_at_sql`)."""
    from patron.contact.consent.preferences import PREFERENCE_FIELDS, preferences_at_sql

    return [{k: p[k] for k in ("channel", *PREFERENCE_FIELDS, "occurred_at", "decided_by")}
            for p in _rows(con, preferences_at_sql(points_sql(customer_id, at)) + " ORDER BY channel", [])]


def single_view(con: Any, state: ServiceState, customer_id: str) -> dict[str, Any]:
    """The :class:`CustomerView` of ``customer_id`` as JSON data (targeted queries on ``con``)."""
    from patron.contact.consent.times import now_utc

    graph = ("EXISTS (SELECT 1 FROM identities WHERE customer_id = $1)" if has_table(con, "identities") else "FALSE")
    merged = ("EXISTS (SELECT 1 FROM identity_merges WHERE customer_id = $1 OR merged_id = $1)"
              if has_table(con, "identity_merges") else "FALSE")
    attributes, first_seen, has_consents, has_prefs, has_contacts, in_graph, has_merges = con.execute(
        f"""SELECT (SELECT attributes FROM customers WHERE customer_id = $1 LIMIT 1),
                  (SELECT first_seen FROM customers WHERE customer_id = $1 LIMIT 1),
                  EXISTS (SELECT 1 FROM consents WHERE customer_id = $1),
                  EXISTS (SELECT 1 FROM preferences WHERE customer_id = $1),
                  EXISTS (SELECT 1 FROM contacts WHERE customer_id = $1), {graph}, {merged}""",
        [customer_id],
    ).fetchall()[0]
    try:
        traits = json.loads(attributes) if attributes else {}
    except ValueError:
        traits = {"attributes": attributes}
    scores, segments = scores_and_segments(con, state, customer_id)
    now = now_utc()
    consents = consents_in_force(con, customer_id, now) if has_consents else []
    prefs = preferences_in_force(con, customer_id, now) if has_prefs else []
    contacts = _rows(con, f"""SELECT contact_id, occurred_at, channel, kind, campaign_id, in_holdout FROM contacts
        WHERE customer_id = ? ORDER BY occurred_at DESC, contact_id LIMIT {RECENT_ROWS}""", [customer_id]) if has_contacts else []
    orders = _rows(con, f"""SELECT order_id, occurred_at, amount, currency, channel, category FROM transactions
        WHERE customer_id = ? ORDER BY occurred_at DESC, order_id LIMIT {RECENT_ROWS}""", [customer_id])
    last = refresher(state).last
    return {
        "customer_id": customer_id, "identities": _identities(con, customer_id, traits, graph=in_graph),
        "identity_counts": identity_counts(con, customer_id) if in_graph else {}, "traits": traits,
        "first_seen": jsonable(first_seen), "scores": scores,
        "scores_refreshed_at": last.to_dict()["finished_at"] if last is not None and last.state == "succeeded" else None,
        "segments": segments, "consents": consents, "preferences": prefs, "recent_contacts": contacts,
        "recent_orders": orders, "merges": merges_of(con, customer_id) if has_merges else [],
    }


def customer_view(db: Any, identifier: str, *, config: Any = None) -> dict[str, Any]:
    """The single view (:class:`CustomerView` as JSON data) of the person ``identifier`` names (any
    identifier: :func:`patron.people.identity.resolve_identifier`) in the database file ``db``, outside a
    running service: what ``GET /v1/customers/{identifier}`` and ``patron customer`` answer (scores
    from the stored ``customer_profiles``; ``scores_refreshed_at`` is None). Raises
    :class:`~patron.errors.NoDataError` when nobody has the identifier."""
    from patron.config import section
    from patron.data.store import reader
    from patron.service.settings import ServiceRules

    state = ServiceState(db=str(db), rules=section("service", ServiceRules, config), config=config)
    with reader(db) as con:
        return single_view(con, state, resolve_or_404(con, identifier))
