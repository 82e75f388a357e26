"""Near real-time dialogue: triggers on events, status changes and segment changes, decided by the
contact gate, written to an outbox in the transaction of their cause, and delivered to webhooks.

* :mod:`.rules` -- ``[[triggers]]`` and ``[[destinations]]`` of the rules file (Pydantic models).
* :mod:`.outbox` -- the ``trigger_firings`` table, firing ids, the gate decision, holdout, contacts.
* :mod:`.delivery` -- signed webhook POSTs, backoff with jitter, rate limits, dead letters.

The service wires it (:mod:`patron.service.dialogue`). Definitions and rules: docs/dialogue.md.
"""

from patron.contact.dialogue.delivery import Deliverer, backoff_seconds, sign, verify
from patron.contact.dialogue.outbox import (
    Dialogue,
    EventFacts,
    create_tables,
    firing_id,
    holdout_draw,
)
from patron.contact.dialogue.rules import (
    Destination,
    DialogueRules,
    Trigger,
    dialogue_rules,
    parse_delay,
)

__all__ = [
    "Deliverer",
    "Destination",
    "Dialogue",
    "DialogueRules",
    "EventFacts",
    "Trigger",
    "backoff_seconds",
    "create_tables",
    "dialogue_rules",
    "firing_id",
    "holdout_draw",
    "parse_delay",
    "sign",
    "verify",
]
