"""``POST /v1/contacts/check`` and ``patron contact-check`` outside a running service: the decision
of :func:`patron.contact.consent.check.check_contact` (moved there so that the contact stage's
triggers, :mod:`patron.contact.dialogue`, take the very same decision), for a person named by any
identifier in a database file."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from patron.contact.consent.check import ContactDecision, check_contact, parse_at


def contact_decision(db: Any, identifier: str, *, channel: str, purpose: str = "marketing",
                     at: datetime | None = None, topic: str | None = None, config: Any = None) -> ContactDecision:
    """May the person ``identifier`` names (any identifier) in the database file ``db`` be contacted
    on ``channel`` for ``purpose`` at ``at`` (default now; naive = UTC)? Outside a running service:
    what ``POST /v1/contacts/check`` and ``patron contact-check`` answer."""
    from patron.contact.consent.policy import contact_policy
    from patron.data.store import reader
    from patron.people.identity import resolve_identifier

    when = parse_at(at)
    policy = contact_policy(config)
    with reader(db) as con:
        return check_contact(con, resolve_identifier(con, identifier), channel=channel, purpose=purpose, at=when,
                             policy=policy, config=config, topic=topic, identifier=identifier)


__all__ = ["contact_decision"]
