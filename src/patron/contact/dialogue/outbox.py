"""The outbox: one row per trigger firing, written in the transaction of what caused it, and the
decision each firing gets through the contact gate.

Table ``trigger_firings`` (one row per firing, keyed by a deterministic ``firing_id``):

``state``
    ``scheduled`` waiting for ``due_at`` (a delay, or quiet hours: ``reason = quiet_hours``);
    ``pending`` decided to send, waiting for delivery; ``delivered`` accepted by the destination
    (a 2xx); ``dead`` given up after the destination's ``max_attempts`` (``last_error`` says why);
    ``held_out`` in the trigger's random holdout, never sent; ``excluded`` refused by the gate
    (``reason`` is the planner's exclusion code: no_consent, denied, revoked, expired, paused, lost,
    topic, unknown_time_zone, cap_reached, unknown_customer; or ``send_if`` when the person no longer
    satisfies the trigger's send-time rule); ``cancelled`` the condition stopped holding before the
    delay passed (``reason = unless``) or the trigger was deleted (``trigger_deleted``).

Firing ids. ``sha256(trigger, cause)`` where the cause is the event's messageId (an event trigger),
the status move and refresh day (a status trigger) or the segment change and refresh day; with
``once = true`` the cause is the person, so a person fires the trigger at most once. A replayed
event never reaches this module (the writer stores a messageId once, so an event's firing ids are
new); the ids of once-triggers and of refreshes are looked up first and one already in the table is
not inserted again (a look-up, not ``ON CONFLICT DO NOTHING``, which costs ~10 ms a statement on
DuckDB 2.0 against ~1 ms for a plain insert).

The gate. :func:`decide` runs :func:`patron.contact.consent.check.check_contact` -- the function
behind ``/v1/contacts/check``, which applies the planner's rules and SQL builders -- for each due
firing at the decision time, in the transaction that writes the decision. A firing in quiet hours
is moved to the end of the quiet period (``due_at``) and decided again then. The holdout draw is
the planner's: ``u = int(md5(f"0:{trigger}:{customer_id}")[:13], 16) / 16**13``, held out when
``u < holdout``; it is drawn among persons the gate lets through, so the two arms are comparable.

Contacts. A firing decided ``pending`` writes a ``contacts`` row (``kind = 'sent'``,
``campaign_id`` = the trigger, ``contact_id`` = the firing id) at once, so the caps of the next
decision, profitability and ``patron contact-effect --campaign TRIGGER`` count it; a held-out
firing writes the holdout row (``in_holdout = true``) that is the effect's control arm.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import pyarrow as pa

from patron.contact.consent.check import check_contact, facts_many
from patron.contact.consent.planner import HASH_DIGITS
from patron.contact.consent.policy import ContactPolicy, contact_policy
from patron.contact.dialogue.rules import DialogueRules, Trigger, parse_delay
from patron.data.store import table_exists
from patron.errors import InputError

log = logging.getLogger("patron.dialogue")

FIRINGS_DDL = """CREATE TABLE IF NOT EXISTS trigger_firings (
  firing_id VARCHAR PRIMARY KEY,
  trigger VARCHAR NOT NULL,
  customer_id VARCHAR NOT NULL,
  cause VARCHAR NOT NULL,
  caused_at TIMESTAMP NOT NULL,
  created_at TIMESTAMP NOT NULL,
  due_at TIMESTAMP NOT NULL,
  state VARCHAR NOT NULL,
  reason VARCHAR,
  decided_at TIMESTAMP,
  destination VARCHAR NOT NULL,
  channel VARCHAR NOT NULL,
  purpose VARCHAR NOT NULL,
  message VARCHAR,
  topic VARCHAR,
  attempts INTEGER NOT NULL DEFAULT 0,
  next_attempt_at TIMESTAMP,
  last_error VARCHAR,
  delivered_at TIMESTAMP
)"""
"""The outbox (module docstring). Times are naive UTC."""

TRIGGERS_DDL = """CREATE TABLE IF NOT EXISTS dialogue_triggers (
  name VARCHAR PRIMARY KEY,
  definition VARCHAR NOT NULL,
  created_at TIMESTAMP NOT NULL
)"""
"""Triggers created through the API (``definition``: the trigger as JSON); the rules file's
triggers are not stored here."""

STATUSES_DDL = """CREATE TABLE IF NOT EXISTS dialogue_statuses (
  customer_id VARCHAR PRIMARY KEY,
  status VARCHAR
)"""
"""Each person's status at the last refresh the dialogue saw (status triggers diff against it)."""

MEMBERS_DDL = """CREATE TABLE IF NOT EXISTS dialogue_members (
  trigger VARCHAR NOT NULL,
  customer_id VARCHAR
)"""
"""The members of each segment trigger's segment at the last refresh the dialogue saw, and one
row with no ``customer_id`` per trigger saying that a refresh was seen (the segment may be empty)."""

STATES: tuple[str, ...] = ("scheduled", "pending", "delivered", "dead", "held_out", "excluded", "cancelled")
"""States of a firing (module docstring)."""

SENDING_STATES: tuple[str, ...] = ("pending", "delivered", "dead")
"""States of a firing decided to be sent."""

HOLDOUT_SEED = 0
"""Seed of the holdout draw (the planner's formula with this seed)."""

DEFAULT_MAX_AGE = timedelta(days=1)
"""An event that happened longer than this before it arrived (a backfill, an import) fires no
trigger: a thank-you for an order of last year is not a dialogue."""


def create_tables(con: Any) -> None:
    """Create the outbox and the dialogue's memory tables when missing."""
    for ddl in (FIRINGS_DDL, TRIGGERS_DDL, STATUSES_DDL, MEMBERS_DDL):
        con.execute(ddl)


def firing_id(trigger: str, cause: str) -> str:
    """The deterministic id of the firing of ``trigger`` for ``cause`` (32 hex digits)."""
    return hashlib.sha256(f"{trigger}\x1f{cause}".encode()).hexdigest()[:32]


def holdout_draw(trigger: str, customer_id: str) -> float:
    """The planner's uniform draw in [0, 1) for ``customer_id`` in campaign ``trigger``."""
    digest = hashlib.md5(f"{HOLDOUT_SEED}:{trigger}:{customer_id}".encode()).hexdigest()
    return int(digest[:HASH_DIGITS], 16) / 16**HASH_DIGITS


# --- what an event looks like to a trigger ----------------------------------------------------


@dataclass(slots=True)
class EventFacts:
    """What triggers need of one stored event: its messageId, person, name, times (naive UTC),
    and the event as a dict (for ``where`` conditions)."""

    message_id: str
    customer_id: str
    event: str | None
    occurred_at: datetime
    received_at: datetime
    raw: dict[str, Any]
    stored_person: bool = False
    """Whether this event's transaction wrote the person to ``customers`` or ``transactions`` (an
    identify, an order): the person is then known, which is all a transactional decision needs."""


_MISSING = object()


def _get(raw: dict[str, Any], path: str) -> Any:
    cur: Any = raw
    for part in path.split("."):
        if not isinstance(cur, dict) or part not in cur:
            return _MISSING
        cur = cur[part]
    return cur


def _compare(value: Any, op: str, want: Any) -> bool:
    if op == "exists":
        return (value is not _MISSING) == bool(want)
    if value is _MISSING:
        return False
    if op == "=":
        return bool(value == want)
    if op == "!=":
        return bool(value != want)
    if op == "in":
        return value in want
    if isinstance(value, bool) or isinstance(want, bool):
        return False
    if isinstance(value, int | float) and isinstance(want, int | float):
        a, b = float(value), float(want)
    elif isinstance(value, str) and isinstance(want, str):
        a, b = value, want  # type: ignore[assignment]
    else:
        return False  # a number against text never holds
    return {">": a > b, ">=": a >= b, "<": a < b, "<=": a <= b}[op]


def matches(trigger: Trigger, ev: EventFacts) -> bool:
    """Whether the event trigger ``trigger`` fires on ``ev`` (name and every ``where`` condition)."""
    if trigger.on != "event" or ev.event != trigger.event:
        return False
    for path, cond in trigger.where.items():
        value = _get(ev.raw, path)
        ops = cond if isinstance(cond, dict) else {"=": cond}
        if not all(_compare(value, op, want) for op, want in ops.items()):
            return False
    return True


# --- the firings ------------------------------------------------------------------------------


@dataclass(slots=True)
class Firing:
    """A firing to insert (state ``scheduled``; decided at once when due)."""

    firing_id: str
    trigger: str
    customer_id: str
    cause: str
    caused_at: datetime
    due_at: datetime
    destination: str
    channel: str
    purpose: str


def _firing(t: Trigger, customer_id: str, cause: str, caused_at: datetime, now: datetime) -> Firing:
    fid = firing_id(t.name, f"once\x1f{customer_id}" if t.once else cause)
    return Firing(fid, t.name, customer_id, cause, caused_at, now + t.delay_td, t.destination, t.channel, t.purpose)


@dataclass
class Decided:
    """What one call of :func:`decide` did: firing ids by the state they were given."""

    by_state: dict[str, list[str]] = field(default_factory=dict)

    def add(self, state: str, fid: str) -> None:
        self.by_state.setdefault(state, []).append(fid)

    @property
    def sending(self) -> int:
        """Firings decided to be sent."""
        return len(self.by_state.get("pending", []))


class Dialogue:
    """The triggers of one database: fires them on events and refreshes, decides due firings.

    ``clock`` returns the naive-UTC now (injectable for tests). Each method takes an open cursor
    inside the caller's transaction and writes nothing outside it."""

    def __init__(self, rules: DialogueRules, *, config: Any = None, policy: ContactPolicy | None = None,
                 clock: Callable[[], datetime] | None = None, max_age: timedelta = DEFAULT_MAX_AGE) -> None:
        from patron.contact.consent.times import now_utc

        self.file_rules = rules
        from patron.config import load_config

        # parsed once: each decision reads the policy and campaign rules from it (a path would be read each time)
        self.config = config if isinstance(config, dict) else load_config(config)
        self.policy = policy or contact_policy(config)
        self.clock: Callable[[], datetime] = clock or now_utc
        self.max_age = max_age
        self.api_triggers: list[Trigger] = []
        self._compiled: dict[str, str] = {}

    # -- the triggers in force ---------------------------------------------------------------
    @property
    def triggers(self) -> list[Trigger]:
        """The rules file's triggers, then those created through the API."""
        return [*self.file_rules.triggers, *self.api_triggers]

    def trigger(self, name: str) -> Trigger | None:
        return next((t for t in self.triggers if t.name == name), None)

    def load(self, con: Any) -> None:
        """Create the tables and read the triggers created through the API."""
        create_tables(con)
        rows = con.execute("SELECT definition FROM dialogue_triggers ORDER BY created_at, name").fetchall()
        self.api_triggers = [Trigger.model_validate_json(r[0]) for r in rows]
        self._compiled.clear()

    # -- firing on events ----------------------------------------------------------------------
    def fire_events(self, con: Any, events: Iterable[EventFacts]) -> list[str]:
        """Insert the firings the stored ``events`` cause and decide those due now; returns the
        ids of the firings decided to be sent (their delivery can start once committed)."""
        event_triggers = [t for t in self.triggers if t.on == "event"]
        if not event_triggers:
            return []
        now = self.clock()
        events = list(events)
        firings = [
            _firing(t, ev.customer_id, ev.message_id, ev.occurred_at, now)
            for ev in events if now - ev.occurred_at <= self.max_age
            for t in event_triggers if matches(t, ev)
        ]
        return self._fire(con, firings, now, known={ev.customer_id for ev in events if ev.stored_person})

    # -- firing on refreshes -------------------------------------------------------------------
    def fire_status_changes(self, con: Any) -> list[str]:
        """After a refresh: fire the status triggers for persons whose status in
        ``customer_profiles`` moved since the last refresh seen, then remember the statuses.
        The first refresh seen only records them (no move is known). Returns the ids to send."""
        if not table_exists(con, "customer_profiles"):
            return []
        now = self.clock()
        seen_before = con.execute("SELECT count(*) FROM dialogue_statuses").fetchall()[0][0] > 0
        moves = con.execute(
            """SELECT p.customer_id, d.status, p.status FROM customer_profiles p
               JOIN dialogue_statuses d ON d.customer_id = p.customer_id
               WHERE p.status IS DISTINCT FROM d.status""").fetchall() if seen_before else []
        con.execute("DELETE FROM dialogue_statuses")
        con.execute("INSERT INTO dialogue_statuses SELECT customer_id, any_value(status) FROM customer_profiles "
                    "GROUP BY customer_id")
        day = now.date().isoformat()
        firings = [
            _firing(t, cid, f"status\x1f{old}\x1f{new}\x1f{day}", now, now)
            for t in self.triggers if t.on == "status"
            for cid, old, new in moves
            if (not t.status_from or old in t.status_from) and (not t.status_to or new in t.status_to)
        ]
        return self._fire(con, firings, now, check=True)

    def fire_segment_changes(self, con: Any) -> list[str]:
        """After a refresh: fire the segment triggers for persons who entered (or left) their
        segment since the last refresh seen; the first refresh seen only records the members."""
        seg = [t for t in self.triggers if t.on == "segment"]
        if not seg or not table_exists(con, "customer_profiles"):
            return []
        now = self.clock()
        day = now.date().isoformat()
        firings: list[Firing] = []
        for t in seg:
            try:
                rule = self._rule(con, t.name, t.segment or "")
            except InputError as exc:  # a rule the profile table cannot answer: this trigger only is skipped
                log.warning("segment trigger %s skipped: %s", t.name, exc)
                continue
            known = con.execute("SELECT count(*) FROM dialogue_members WHERE trigger = ?", [t.name]).fetchall()[0][0] > 0
            con.execute("CREATE OR REPLACE TEMP TABLE _members AS SELECT DISTINCT customer_id FROM customer_profiles "
                        f"WHERE {rule}")
            if known:
                if t.change == "enter":
                    sql = ("SELECT customer_id FROM _members EXCEPT SELECT customer_id FROM dialogue_members "
                           "WHERE trigger = ? AND customer_id IS NOT NULL")
                else:
                    sql = ("SELECT customer_id FROM dialogue_members WHERE trigger = ? AND customer_id IS NOT NULL "
                           "EXCEPT SELECT customer_id FROM _members")
                firings += [_firing(t, r[0], f"segment\x1f{t.change}\x1f{r[0]}\x1f{day}", now, now)
                            for r in con.execute(sql, [t.name]).fetchall()]
            con.execute("DELETE FROM dialogue_members WHERE trigger = ?", [t.name])
            con.execute("INSERT INTO dialogue_members SELECT ?, customer_id FROM _members UNION ALL SELECT ?, NULL",
                        [t.name, t.name])
            con.execute("DROP TABLE _members")
        return self._fire(con, firings, now, check=True)

    def check_rules(self, con: Any, trigger: Trigger) -> None:
        """Compile ``trigger``'s segment rules against the profile table when it exists (raises a
        one-line :class:`InputError` naming the trigger); without profiles they are checked when
        first used."""
        if table_exists(con, "customer_profiles"):
            for text in (trigger.segment, trigger.send_if):
                if text:
                    self._rule(con, trigger.name, text)

    def _rule(self, con: Any, name: str, text: str) -> str:
        """The SQL condition of a segment rule over ``customer_profiles`` (compiled once)."""
        key = f"{name}\x1f{text}"
        if key not in self._compiled:
            from patron.relationship.segments import KNOWN_VALUES, profile_columns
            from patron.relationship.segments.rules import compile_rule

            self._compiled[key] = compile_rule(text, profile_columns(con), name=f"trigger {name}",
                                               known_values=KNOWN_VALUES)
        return self._compiled[key]

    # -- deciding ------------------------------------------------------------------------------
    def due_count(self, con: Any) -> int:
        """Scheduled firings whose time has come."""
        return int(con.execute("SELECT count(*) FROM trigger_firings WHERE state = 'scheduled' AND due_at <= ?",
                               [self.clock()]).fetchall()[0][0])

    def decide(self, con: Any, now: datetime | None = None, *, limit: int = 1000) -> Decided:
        """Decide the scheduled firings due at ``now`` (default the clock), oldest first, at most
        ``limit`` (one round of the scheduler); the decisions and bodies are written with one
        ``UPDATE``."""
        now = now or self.clock()
        rows = con.execute(
            "SELECT firing_id, trigger, customer_id, cause, caused_at FROM trigger_firings WHERE state = 'scheduled' "
            f"AND due_at <= ? ORDER BY due_at, created_at, firing_id LIMIT {int(limit)}", [now]).fetchall()
        out = Decided()
        if not rows:
            return out
        decided = self._judge(con, rows, now, out)
        _write_decisions(con, decided, now, update=True)
        return out

    def _fire(self, con: Any, firings: Sequence[Firing], now: datetime, *, check: bool = False,
              known: set[str] | None = None) -> list[str]:
        """Store new ``firings``: those due now decided first, then every one inserted with its
        decision in one statement (a firing id already stored is skipped). Returns the
        ids decided to be sent."""
        unique = list({f.firing_id: f for f in firings}.values())
        if not unique:
            return []
        # An event's firing ids are new (the writer stores a messageId once); a once-trigger's id or a
        # refresh's (``check``) may be stored already. (No ON CONFLICT: it costs ~10 ms a statement.)
        if check or any(t.once for t in self.triggers):
            _ids = pa.table({"firing_id": pa.array([f.firing_id for f in unique], pa.string())})
            present = {r[0] for r in con.execute(
                "SELECT t.firing_id FROM trigger_firings t SEMI JOIN _ids i ON i.firing_id = t.firing_id").fetchall()}
            unique = [f for f in unique if f.firing_id not in present]
        out = Decided()
        due = [f for f in sorted(unique, key=lambda f: (f.due_at, f.firing_id)) if f.due_at <= now]
        decided = {d[0]: d for d in self._judge(
            con, [(f.firing_id, f.trigger, f.customer_id, f.cause, f.caused_at) for f in due], now, out,
            known=known)}
        rows = [decided.get(f.firing_id) or [f.firing_id, "scheduled", None, f.due_at] for f in unique]
        _write_decisions(con, rows, now, update=False, new={f.firing_id: f for f in unique})
        return out.by_state.get("pending", [])

    def _judge(self, con: Any, rows: Sequence[tuple[str, str, str, str, datetime]], now: datetime,
               out: Decided, known: set[str] | None = None) -> list[list[Any]]:
        """Decide ``rows`` (firing_id, trigger, customer_id, cause, caused_at) at ``now``: the
        persons' facts are read in one query per purpose; the gate runs per firing; the contacts
        rows of the sends and holdouts are written with one statement (a person's second firing in
        the batch is decided after the first one's row is written, so it counts toward the caps).
        ``known``: persons this transaction wrote to ``customers`` or ``transactions``; for a
        transactional purpose their facts need no query (known is all that decides).
        Returns ``[firing_id, state, reason, due_at]`` per row."""
        by_purpose: dict[str, list[str]] = {}
        for _, name, cid, _, _ in rows:
            t = self.trigger(name)
            if t is not None:
                by_purpose.setdefault(t.purpose, []).append(cid)
        facts: dict[str, dict[str, Any]] = {}
        for p, ids_ in by_purpose.items():
            marketing = p not in self.policy.transactional_purposes
            sure = {} if marketing or not known else {c: (True, None, False, False) for c in ids_ if c in known}
            rest = [c for c in ids_ if c not in sure]
            facts[p] = {**sure, **(facts_many(con, rest, p, marketing=marketing) if rest else {})}
        contacts: list[list[Any]] = []
        decided: list[list[Any]] = []
        batch_people: set[str] = set()
        for fid, name, cid, cause, caused_at in rows:
            if cid in batch_people:
                _insert_contacts(con, contacts)
                contacts, batch_people = [], set()
            batch_people.add(cid)
            t = self.trigger(name)
            state, reason, due = self._decide_one(con, t, cid, cause, caused_at, now,
                                                  facts.get(t.purpose, {}).get(cid) if t else None)
            if t is not None and state in ("pending", "held_out"):
                contacts.append([fid, cid, now, t.channel, t.name, "sent", state == "held_out", cause])
            decided.append([fid, state, reason, due, t.message if t else None, t.topic if t else None])
            out.add(state, fid)
        _insert_contacts(con, contacts)
        return decided

    def _decide_one(self, con: Any, t: Trigger | None, cid: str, cause: str, caused_at: datetime, now: datetime,
                    facts: Any) -> tuple[str, str, datetime]:
        if t is None:
            return "cancelled", "trigger_deleted", now
        if t.unless:
            later = con.execute(
                "SELECT message_id FROM events WHERE customer_id = ? AND event = ? AND occurred_at > ? "
                "AND message_id <> ? LIMIT 1", [cid, t.unless, caused_at, cause]).fetchall()
            if later:
                return "cancelled", "unless", now
        if t.send_if:
            if not table_exists(con, "customer_profiles"):
                return "excluded", "send_if", now
            try:
                rule = self._rule(con, t.name, t.send_if)
            except InputError:
                return "excluded", "send_if_invalid", now
            ok = con.execute(f"SELECT bool_or({rule}) FROM customer_profiles WHERE customer_id = ?", [cid]).fetchall()
            if not ok or not ok[0][0]:
                return "excluded", "send_if", now
        decision = check_contact(con, cid, channel=t.channel, purpose=t.purpose, at=now, policy=self.policy,
                                 config=self.config, topic=t.topic, facts=facts)
        if decision.reason == "quiet_hours" and decision.details.get("quiet_until"):
            until = decision.details["quiet_until"]
            return "scheduled", "quiet_hours", max(until, now + timedelta(seconds=1))
        if not decision.allowed:
            return "excluded", decision.reason, now
        if t.holdout > 0 and holdout_draw(t.name, cid) < t.holdout:
            return "held_out", "holdout", now
        return "pending", "allowed", now


def _insert_contacts(con: Any, rows: list[list[Any]]) -> None:
    """Insert ``contacts`` rows (one statement)."""
    if not rows:
        return
    cols = list(zip(*rows, strict=True))
    _rows = pa.table({
        "contact_id": pa.array(cols[0], pa.string()), "customer_id": pa.array(cols[1], pa.string()),
        "occurred_at": pa.array(cols[2], pa.timestamp("us")), "channel": pa.array(cols[3], pa.string()),
        "campaign_id": pa.array(cols[4], pa.string()), "kind": pa.array(cols[5], pa.string()),
        "in_holdout": pa.array(cols[6], pa.bool_()), "ingest_id": pa.array(cols[7], pa.string())})
    con.execute("INSERT INTO contacts (contact_id, customer_id, occurred_at, channel, campaign_id, kind, in_holdout, "
                "ingest_id) SELECT * FROM _rows")


PENDING_SQL = """WITH f AS (
  SELECT * FROM trigger_firings WHERE state = 'pending' AND (next_attempt_at IS NULL OR next_attempt_at <= ?)
  ORDER BY due_at, firing_id LIMIT ?)
SELECT f.firing_id, f.destination, f.attempts, f.trigger, f.customer_id, f.channel, f.purpose,
  f.message, f.topic, f.cause, f.caused_at, f.decided_at, c.attributes
FROM f LEFT JOIN (SELECT customer_id, any_value(attributes) AS attributes FROM customers
                  WHERE customer_id IN (SELECT customer_id FROM f) GROUP BY customer_id) c
  ON c.customer_id = f.customer_id
ORDER BY f.due_at, f.firing_id"""
"""The firings to post now (parameters: now, most rows), with the person's traits: read by the
deliverer on a reading cursor, so the body's cost stays off the event path."""


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat() + "Z"


def body_of(row: Sequence[Any]) -> str:
    """The JSON posted for a row of :data:`PENDING_SQL` (its columns from ``trigger`` on): the
    firing, the person's traits from ``customers`` (when the firing is posted) and the cause."""
    trigger, cid, channel, purpose, message, topic, cause, caused_at, decided_at, attributes = row[3:13]
    try:
        traits = json.loads(attributes) if attributes else {}
    except ValueError:
        traits = {}
    return json.dumps({
        "firing_id": row[0], "trigger": trigger, "customer_id": cid,
        "traits": traits if isinstance(traits, dict) else {}, "channel": channel, "purpose": purpose,
        "message": message, "topic": topic, "cause": str(cause).replace("\x1f", " "),
        "caused_at": _iso(caused_at), "decided_at": _iso(decided_at),
    }, separators=(",", ":"), ensure_ascii=False, default=str)


def _write_decisions(con: Any, rows: list[list[Any]], now: datetime, *, update: bool,
                     new: dict[str, Firing] | None = None) -> None:
    """Write decisions ``[firing_id, state, reason, due_at, message, topic]``: an ``UPDATE`` of
    stored firings, or (``new``) the ``INSERT`` of the new firings (one statement)."""
    if not rows:
        return
    cols = list(zip(*[row + [None] * (6 - len(row)) for row in rows], strict=True))
    table: dict[str, pa.Array] = {
        "firing_id": pa.array(cols[0], pa.string()), "state": pa.array(cols[1], pa.string()),
        "reason": pa.array(cols[2], pa.string()), "due_at": pa.array(cols[3], pa.timestamp("us")),
        "message": pa.array(cols[4], pa.string()), "topic": pa.array(cols[5], pa.string()),
        "decided_at": pa.array([now if s != "scheduled" or reason else None for s, reason in zip(cols[1], cols[2], strict=True)],
                               pa.timestamp("us")),
    }
    if update:
        _rows = pa.table(table)
        con.execute("UPDATE trigger_firings SET state = r.state, reason = r.reason, due_at = r.due_at, "
                    "decided_at = r.decided_at, message = r.message, topic = r.topic FROM _rows r "
                    "WHERE trigger_firings.firing_id = r.firing_id")
        return
    assert new is not None
    fs = [new[i] for i in cols[0]]
    for name, values, kind in (("trigger", [f.trigger for f in fs], pa.string()),
                               ("customer_id", [f.customer_id for f in fs], pa.string()),
                               ("cause", [f.cause for f in fs], pa.string()),
                               ("caused_at", [f.caused_at for f in fs], pa.timestamp("us")),
                               ("destination", [f.destination for f in fs], pa.string()),
                               ("channel", [f.channel for f in fs], pa.string()),
                               ("purpose", [f.purpose for f in fs], pa.string())):
        table[name] = pa.array(values, kind)
    _rows = pa.table(table)
    con.execute(
        "INSERT INTO trigger_firings (firing_id, trigger, customer_id, cause, caused_at, created_at, due_at, state, "
        "reason, decided_at, destination, channel, purpose, message, topic) "
        "SELECT firing_id, trigger, customer_id, cause, caused_at, ?, due_at, state, reason, decided_at, destination, "
        "channel, purpose, message, topic FROM _rows", [now])


def parse_delay_or_none(text: str | None) -> timedelta | None:
    """:func:`parse_delay` of ``text`` (None stays None)."""
    return parse_delay(text) if text else None


__all__ = [
    "DEFAULT_MAX_AGE",
    "FIRINGS_DDL",
    "SENDING_STATES",
    "STATES",
    "Decided",
    "Dialogue",
    "EventFacts",
    "create_tables",
    "firing_id",
    "holdout_draw",
    "matches",
]
