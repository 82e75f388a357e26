"""The service's dialogue: triggers fired in the writer's transactions, a deliverer thread posting
the outbox to webhooks, delayed firings decided when due, status and segment triggers fired after
each score refresh. The library part is :mod:`patron.contact.dialogue`; this module wires it.

* Events: the writer calls :meth:`ServiceDialogue.fire` inside each group's transaction with the
  events it stored (:mod:`patron.service.commit`), so a firing is in the outbox exactly when the
  event that caused it is stored -- a kill -9 after the acknowledgement loses no firing. After the
  commit the deliverer is woken.
* Deliveries and the scheduler: one thread (:class:`patron.contact.dialogue.Deliverer`); each round
  it decides, on the writer, the scheduled firings whose time came (a delay passed, quiet hours
  ended), then posts what is pending. On start, undelivered firings resume.
* Refreshes: after a successful score refresh the status and segment triggers fire (one writer job).
"""

from __future__ import annotations

import logging
import threading
from datetime import datetime
from typing import TYPE_CHECKING, Any

from patron.contact.dialogue import (
    Deliverer,
    Dialogue,
    DialogueRules,
    EventFacts,
    Trigger,
    dialogue_rules,
)

if TYPE_CHECKING:  # pragma: no cover
    from patron.service.items import Accepted
    from patron.service.refresh import RefreshInfo
    from patron.service.state import ServiceState

log = logging.getLogger("patron.service.dialogue")


def load_rules(config: Any) -> DialogueRules:
    """The triggers and destinations of the rules file, checked (one-line :class:`InputError`),
    and each destination's secret present in the environment."""
    rules = dialogue_rules(config)
    for d in rules.destinations:
        d.secret()
    return rules


class ServiceDialogue:
    """Triggers, outbox and delivery of one running service (module docstring)."""

    def __init__(self, state: ServiceState, rules: DialogueRules) -> None:
        self.state = state
        self.dialogue = Dialogue(rules, config=state.config)
        self._fired = threading.local()
        self.deliverer: Deliverer | None = None
        self._listener: Any = None

    @property
    def clock(self) -> Any:
        return self.dialogue.clock

    @clock.setter
    def clock(self, fn: Any) -> None:  # tests move time forward
        self.dialogue.clock = fn
        if self.deliverer is not None:
            self.deliverer.clock = fn

    @property
    def active(self) -> bool:
        """Whether any trigger is declared (no cost on the event path otherwise)."""
        return bool(self.dialogue.triggers)

    # -- life cycle --
    def start(self) -> None:
        """Create the tables, read the API's triggers, start delivering (undelivered firings resume)."""
        assert self.state.writer is not None
        self.state.writer.run(self.dialogue.load, people=False)
        self.state.writer.known.triggers = self
        if not self.dialogue.file_rules.destinations:
            return  # no destination: no trigger can be declared, nothing to deliver (no thread, no cost)
        writer = self.state.writer

        def write(fn: Any) -> Any:  # the outbox's jobs touch no person or order
            return writer.run(fn, people=False)

        self.deliverer = Deliverer(self.state.reading, write,
                                   {d.name: d for d in self.dialogue.file_rules.destinations},
                                   clock=self.dialogue.clock, on_round=self._scheduled)
        self.deliverer.start()
        self.deliverer.kick()
        from patron.service.refresh import on_refresh

        def listener(info: RefreshInfo) -> None:
            if info.trigger != "erasure":
                self.after_refresh()

        self._listener = listener
        on_refresh.append(listener)

    def stop(self) -> None:
        from patron.service.refresh import on_refresh

        if self._listener in on_refresh:
            on_refresh.remove(self._listener)
        if self.state.writer is not None:
            self.state.writer.known.triggers = None
        if self.deliverer is not None:
            self.deliverer.stop()
            self.deliverer = None

    # -- the writer's hooks (writer thread, inside the group's transaction) --
    def fire(self, cur: Any, accepted: list[Accepted], cust: dict[str, str], order_keys: list[str]) -> None:
        """Fire the event triggers on the group's stored events (``order_keys``: the order ids the
        transaction inserted; with identify traits they tell which persons it certainly stored)."""
        if not any(t.on == "event" for t in self.dialogue.triggers):
            return
        keys = set(order_keys)
        stored = {cust[a.event.message_id] for a in accepted
                  if a.mapped.traits is not None or any(t[1] in keys for t in a.mapped.transactions)}
        facts = [EventFacts(a.event.message_id, cust[a.event.message_id], a.event.event, a.event.occurred_at,
                            a.event.received_at, a.event.raw, cust[a.event.message_id] in stored)
                 for a in accepted if a.event.type == "track"]
        if facts and self.dialogue.fire_events(cur, facts):
            self._fired.value = True

    def committed(self) -> None:
        if getattr(self._fired, "value", False):
            self._fired.value = False
            if self.deliverer is not None:
                self.deliverer.kick()

    def rolled_back(self) -> None:
        self._fired.value = False

    # -- the deliverer's round: delayed firings --
    def _scheduled(self) -> None:
        with self.state.reading() as con:
            due = self.dialogue.due_count(con)
        if due and self.state.writer is not None:
            self.state.writer.run(lambda con: self.dialogue.decide(con), people=False)

    def decide_due(self, now: datetime | None = None) -> dict[str, list[str]]:
        """Decide the scheduled firings due at ``now`` (default the clock) on the writer; returns
        the firing ids by the state given. The deliverer does this every round."""
        assert self.state.writer is not None
        out = self.state.writer.run(lambda con: self.dialogue.decide(con, now), people=False).by_state
        if out.get("pending") and self.deliverer is not None:
            self.deliverer.kick()
        return out

    # -- refreshes --
    def after_refresh(self) -> None:
        """Fire the status and segment triggers on the refreshed profiles (one writer job)."""
        if self.state.writer is None or not any(t.on in ("status", "segment") for t in self.dialogue.triggers):
            return
        try:
            sent = self.state.writer.run(
                lambda con: [*self.dialogue.fire_status_changes(con), *self.dialogue.fire_segment_changes(con)],
                people=False)
        except Exception:  # a refresh's listeners must not fail it; the next refresh diffs again
            log.exception("status and segment triggers failed after a refresh")
            return
        if sent and self.deliverer is not None:
            self.deliverer.kick()

    # -- the API's triggers --
    def create_trigger(self, trigger: Trigger) -> None:
        """Store ``trigger`` (made through the API) and put it in force."""
        from patron.contact.consent.times import now_utc

        assert self.state.writer is not None

        def job(con: Any) -> None:
            con.execute("INSERT INTO dialogue_triggers VALUES (?, ?, ?)",
                        [trigger.name, trigger.model_dump_json(), now_utc()])
            self.dialogue.load(con)

        self.state.writer.run(job, people=False)

    def delete_trigger(self, name: str) -> None:
        """Remove the API trigger ``name``; its scheduled firings are cancelled when due."""
        assert self.state.writer is not None

        def job(con: Any) -> None:
            con.execute("DELETE FROM dialogue_triggers WHERE name = ?", [name])
            self.dialogue.load(con)

        self.state.writer.run(job, people=False)


__all__ = ["ServiceDialogue", "load_rules"]
