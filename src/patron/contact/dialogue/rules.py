"""Trigger and destination declarations: ``[[triggers]]`` and ``[[destinations]]`` of the rules file.

A **trigger** says when a message goes out to one person: when an event arrives (``on = "event"``,
with property conditions), when their relationship status moves at a score refresh
(``on = "status"``), or when they enter or leave a segment at a refresh (``on = "segment"``);
optionally after a ``delay`` (``"30m"``, ``"12h"``, ``"3d"``) unless an ``unless`` event came in the
meantime; and only if the person satisfies the segment rule ``send_if`` at send time. It names the
channel, purpose, message and topic of the message, the destination to post it to, and the share of
persons held out to measure its effect.

A **destination** is a webhook: ``url``, the name of the environment variable holding the signing
secret (never the secret itself in the file), a rate limit per second and the attempts before a
delivery is dead-lettered.

Example::

    [[destinations]]
    name = "crm"
    url = "https://hooks.example.com/patron"
    secret_env = "PATRON_HOOK_SECRET"
    rate_per_second = 20
    max_attempts = 8

    [[triggers]]
    name = "thank_you"
    on = "event"
    event = "Order Completed"
    where = { "properties.total" = { ">=" = 20 } }
    channel = "email"
    purpose = "service"
    message = "thank-you"
    destination = "crm"

    [[triggers]]
    name = "second_order_nudge"
    on = "event"
    event = "Order Completed"
    once = true                     # the first order only: one firing per person
    delay = "3d"
    unless = "Order Completed"      # not if a second order came within the 3 days
    send_if = "status in [new, active]"
    channel = "email"
    purpose = "marketing"
    topic = "offers"
    destination = "crm"
    holdout = 0.2

Everything is checked when the service starts: a wrong declaration stops it with one line naming
the file, the trigger and the field.
"""

from __future__ import annotations

import os
import re
from datetime import timedelta
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from patron.config import config_path, load_config
from patron.contact.consent.policy import CHANNELS, ContactPolicy
from patron.errors import InputError

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,79}$")
"""A trigger or destination name: letters, digits, ``_ . -``, at most 80 characters."""

_DELAY = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}

OPERATORS: tuple[str, ...] = ("=", "!=", ">", ">=", "<", "<=", "in", "exists")
"""Operators of a property condition."""

MAX_DELAY = timedelta(days=366)
"""Longest delay a trigger may declare."""


def parse_delay(text: str) -> timedelta:
    """``"45s"``, ``"30m"``, ``"12h"``, ``"3d"``, ``"2w"`` as a :class:`timedelta`; raises ValueError."""
    m = _DELAY.match(str(text))
    if not m:
        raise ValueError(f"{text!r} is not a delay such as 30m, 12h or 3d (a number and one of s, m, h, d, w)")
    value = timedelta(seconds=float(m.group(1)) * _UNIT_SECONDS[m.group(2)])
    if value > MAX_DELAY:
        raise ValueError(f"{text!r} is longer than {MAX_DELAY.days} days")
    return value


def _name(value: str) -> str:
    if not NAME.match(value):
        raise ValueError(f"{value!r} is not a name (letters, digits, _ . -; at most 80 characters)")
    return value


class Destination(BaseModel):
    """``[[destinations]]``: a webhook the triggers' messages are posted to."""

    model_config = ConfigDict(extra="forbid")

    name: str
    url: str = Field(description="http:// or https:// address the JSON message is POSTed to.")
    secret_env: str | None = Field(
        None, description="Environment variable holding the HMAC-SHA256 signing secret (none: unsigned).")
    rate_per_second: float = Field(50.0, gt=0, le=10_000, description="Most requests per second to this destination.")
    max_attempts: int = Field(8, ge=1, le=100, description="Attempts before a delivery is dead-lettered.")
    timeout_seconds: float = Field(5.0, gt=0, le=120, description="Longest wait for an answer, in seconds.")

    _check_name = field_validator("name")(classmethod(lambda cls, v: _name(v)))

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        if not value.startswith(("https://", "http://")) or any(c.isspace() for c in value):
            raise ValueError(f"{value!r} must be an http:// or https:// address")
        return value

    def secret(self) -> bytes | None:
        """The signing secret read from the environment (None when none is named)."""
        if self.secret_env is None:
            return None
        value = os.environ.get(self.secret_env)
        if not value:
            raise InputError(f"destination {self.name}: environment variable {self.secret_env} (its secret) is not set")
        return value.encode()


Condition = Any
"""A property condition: a value (equality) or a table of one or more operators, e.g. ``{">=" = 20}``."""


class Trigger(BaseModel):
    """``[[triggers]]``: when a message goes to one person, through which gate, to which destination."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    name: str
    on: Literal["event", "status", "segment"] = "event"
    event: str | None = Field(None, description="on = event: the track event name, e.g. Order Completed.")
    where: dict[str, Condition] = Field(
        default_factory=dict,
        description="on = event: conditions on the event's fields by dotted path (properties.total), all must hold.")
    status_from: list[str] | None = Field(None, description="on = status: the statuses moved from (none: any).")
    status_to: list[str] | None = Field(None, description="on = status: the statuses moved to (none: any).")
    segment: str | None = Field(None, description="on = segment: a segment rule over the profile table.")
    change: Literal["enter", "leave"] = Field("enter", description="on = segment: fire on entering or on leaving.")
    once: bool = Field(False, description="Fire at most once per person (e.g. the first order only).")
    delay: str | None = Field(None, description="Wait this long after the cause (30m, 12h, 3d) before sending.")
    unless: str | None = Field(None, description="With a delay: cancel when the person sends this event meanwhile.")
    send_if: str | None = Field(None, description="A segment rule the person must satisfy at send time.")
    channel: str = "email"
    purpose: str = "marketing"
    message: str | None = Field(None, description="The message to send (a template name the receiver knows).")
    topic: str | None = None
    destination: str
    holdout: float = Field(0.0, ge=0.0, lt=1.0, description="Share of persons held out at random (0 <= h < 1).")

    _check_name = field_validator("name")(classmethod(lambda cls, v: _name(v)))

    @field_validator("channel")
    @classmethod
    def _channel(cls, value: str) -> str:
        if value not in CHANNELS:
            raise ValueError(f"{value!r} is not a channel ({', '.join(CHANNELS)})")
        return value

    @field_validator("status_from", "status_to")
    @classmethod
    def _statuses(cls, value: list[str] | None) -> list[str] | None:
        from patron.relationship.status import STATUSES

        bad = [v for v in value or [] if v not in STATUSES]
        if bad:
            raise ValueError(f"{', '.join(map(repr, bad))} is not a status ({', '.join(STATUSES)})")
        return value

    @field_validator("delay")
    @classmethod
    def _delay(cls, value: str | None) -> str | None:
        if value is not None:
            parse_delay(value)
        return value

    @field_validator("where")
    @classmethod
    def _where(cls, value: dict[str, Condition]) -> dict[str, Condition]:
        for path, cond in value.items():
            if not path or any(not part for part in path.split(".")):
                raise ValueError(f"{path!r} is not a dotted field path such as properties.total")
            if isinstance(cond, dict):
                bad = [op for op in cond if op not in OPERATORS]
                if bad or not cond:
                    raise ValueError(f"{path}: operators are {', '.join(OPERATORS)}; got {', '.join(bad) or 'none'}")
                if "in" in cond and not isinstance(cond["in"], list):
                    raise ValueError(f"{path}: 'in' takes a list of values")
        return value

    @model_validator(mode="after")
    def _shape(self) -> Trigger:
        if self.on == "event" and not self.event:
            raise ValueError("on = event needs event (the track event name)")
        if self.on != "event" and (self.event or self.where):
            raise ValueError(f"event and where apply to on = event, not on = {self.on}")
        if self.on == "segment" and not self.segment:
            raise ValueError("on = segment needs segment (a segment rule)")
        if self.on != "status" and (self.status_from or self.status_to):
            raise ValueError("status_from and status_to apply to on = status")
        if self.unless and not self.delay:
            raise ValueError("unless needs a delay (the time in which the unless event cancels the firing)")
        return self

    @property
    def delay_td(self) -> timedelta:
        """The delay (zero when none)."""
        return parse_delay(self.delay) if self.delay else timedelta(0)


class DialogueRules(BaseModel):
    """Every trigger and destination, checked together (each trigger's destination exists, names
    are unique, purposes are allowed by the contact policy)."""

    model_config = ConfigDict(extra="forbid")

    triggers: list[Trigger] = Field(default_factory=list)
    destinations: list[Destination] = Field(default_factory=list)

    @model_validator(mode="after")
    def _refs(self) -> DialogueRules:
        for kind, items in (("trigger", self.triggers), ("destination", self.destinations)):
            seen: set[str] = set()
            for it in items:
                if it.name in seen:
                    raise ValueError(f"{kind} {it.name!r} is declared twice")
                seen.add(it.name)
        names = {d.name for d in self.destinations}
        for t in self.triggers:
            if t.destination not in names:
                raise ValueError(f"trigger {t.name}: destination {t.destination!r} is not declared in [[destinations]]")
        return self

    def trigger(self, name: str) -> Trigger | None:
        """The trigger called ``name`` (None when none is)."""
        return next((t for t in self.triggers if t.name == name), None)

    def destination(self, name: str) -> Destination | None:
        """The destination called ``name`` (None when none is)."""
        return next((d for d in self.destinations if d.name == name), None)


def check_purposes(rules: DialogueRules, policy: ContactPolicy, where: str = "rules") -> None:
    """Each trigger's purpose must be one the contact policy knows (a marketing or transactional
    purpose); raises a one-line :class:`InputError`."""
    known = [*policy.marketing_purposes, *policy.transactional_purposes]
    for t in rules.triggers:
        if t.purpose not in known:
            raise InputError(f"{where}: trigger {t.name}: purpose {t.purpose!r} is not a purpose of "
                             f"[contact_policy] ({', '.join(known)})")


def one_line(exc: ValidationError, items: list[Any] | None = None, kind: str = "") -> str:
    """The first error of ``exc`` as ``trigger NAME: field: problem`` (one line)."""
    first = exc.errors()[0]
    loc = list(first["loc"])
    head = ""
    if loc and loc[0] in ("triggers", "destinations") and len(loc) > 1 and isinstance(loc[1], int):
        which = "trigger" if loc[0] == "triggers" else "destination"
        entry = (items or {}).get(loc[0], []) if isinstance(items, dict) else []
        name = entry[loc[1]].get("name") if loc[1] < len(entry) and isinstance(entry[loc[1]], dict) else None
        head = f"{which} {name or '#' + str(loc[1] + 1)}: "
        loc = loc[2:]
    elif kind:
        head = f"{kind}: "
    msg = str(first["msg"]).removeprefix("Value error, ")
    field = ".".join(str(p) for p in loc)
    return f"{head}{field + ': ' if field else ''}{msg}"


def dialogue_rules(config: str | os.PathLike[str] | dict[str, Any] | None = None) -> DialogueRules:
    """``[[triggers]]`` and ``[[destinations]]`` of the rules file (none when absent); raises a
    one-line :class:`InputError` naming the file, the trigger or destination and the field."""
    data = config if isinstance(config, dict) else load_config(config)
    where = str(config_path(None if isinstance(config, dict) else config) or "rules")
    raw = {k: data.get(k, []) for k in ("triggers", "destinations")}
    for k, v in raw.items():
        if not isinstance(v, list):
            raise InputError(f"{where}: {k} must be an array of tables ([[{k}]])")
    try:
        rules = DialogueRules.model_validate(raw)
    except ValidationError as exc:
        raise InputError(f"{where}: {one_line(exc, raw)}") from None
    from patron.contact.consent.policy import contact_policy

    check_purposes(rules, contact_policy(config if config is not None else None), where)
    return rules


__all__ = ["Destination", "DialogueRules", "Trigger", "check_purposes", "dialogue_rules", "one_line", "parse_delay"]
