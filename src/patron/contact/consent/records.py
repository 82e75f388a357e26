"""Ledger records given as JSON objects (a REST request, an event's properties, the preference
center), checked by the rules of validated file ingest, for the ``consents`` and ``preferences``
ledgers.

The rules are the table's contract (:data:`patron.data.schema.CONSENTS`, :data:`patron.data.schema.PREFERENCES`)
read the way file ingest reads a cell, with the plausibility rules defined once in
:mod:`patron.data.ingest.plausible`:

* a **choice** (``channel``, ``status``) is trimmed, lower-cased and must be one of the
  contract's values;
* a **number** (caps, quiet hours) is a JSON number or numeric text (:func:`~patron.data.ingest.plausible.number_value`),
  finite, not negative where the contract says so;
* a **timestamp** is ISO 8601 text (:func:`~patron.data.ingest.plausible.parse_timestamp`: an offset or
  a zone name is honoured, none means UTC), not before the date floor and, unless the column may
  lie in the future (``expires_at``, ``paused_until``), not after now plus the allowed clock skew;
* an **id** (``consent_id``, ``preference_id``) follows the id rule
  (:func:`~patron.data.ingest.plausible.id_text`); other **text** is trimmed (empty: absent);
* a **required** column must have a value (after the caller's defaults: ``channel`` ``any``,
  ``occurred_at`` now or the event's time, ``source``);
* a field the contract does not have is an error (a misspelt ``max_per_wek`` is never dropped
  silently), as is ``customer_id``: the record's person is the one the request or event names.

``topics`` may also be given as a list of topic names (joined with ``;``, the contract's form).
``purpose`` is lower-cased, as the consent event has always stored it.

**All or nothing**, as for a ledger file: :func:`check_records` checks every record and raises
one :class:`~patron.errors.InputError` naming the first bad record and field (and how many are
bad) before anything is stored; the caller stores all the records in one transaction. A property
test holds these checks to file ingest's (``tests/test_ledger_records.py``).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from patron.data.ingest.plausible import (
    Implausible,
    floor_datetime,
    id_text,
    number_value,
    parse_timestamp,
    show,
    timestamp_problem,
)
from patron.data.schema import CONSENTS, PREFERENCES, Column, TableContract
from patron.errors import InputError
from patron.settings import get_settings

LEDGERS: dict[str, TableContract] = {"consents": CONSENTS, "preferences": PREFERENCES}
"""The ledgers records may be appended to, by table name."""

LOWER_CASE: frozenset[str] = frozenset({"purpose"})
"""Text fields stored lower-cased (a consent's purpose, as the consent event stores it)."""

SOURCES: tuple[str, ...] = ("api", "event", "preference_center")
"""The ``source`` patron itself gives a record: the REST endpoints, an event without
``properties.source``, the customer's own page."""


class RecordProblem(ValueError):
    """One field of one record breaks a rule; ``str()`` names the field."""


@dataclass(frozen=True)
class Limits:
    """The time bounds of a check, naive UTC: now, the date floor, and the latest plausible time
    (now plus the allowed clock skew)."""

    now: datetime
    floor: datetime
    ceiling: datetime

    @classmethod
    def at(cls, now: datetime | None = None, *, date_floor: date | None = None,
           future_tolerance_hours: float | None = None) -> Limits:
        """The bounds as file ingest sets them (``PATRON_DATE_FLOOR``,
        ``PATRON_FUTURE_TOLERANCE_HOURS``), as of ``now`` (default: the current time)."""
        settings = get_settings()
        t = now or datetime.now(UTC)
        t = t.astimezone(UTC).replace(tzinfo=None) if t.tzinfo is not None else t
        hours = settings.future_tolerance_hours if future_tolerance_hours is None else future_tolerance_hours
        return cls(t, floor_datetime(settings.date_floor if date_floor is None else date_floor), t + timedelta(hours=hours))


def _text(value: Any, name: str) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise RecordProblem(f"{name} must be text")
    text = str(value).strip()
    return text or None


def _topics(value: Any, name: str) -> str | None:
    if isinstance(value, list):
        names = []
        for i, item in enumerate(value):
            topic = _text(item, f"{name}[{i}]")
            if topic is not None and ";" in topic:
                raise RecordProblem(f"{name}[{i}] {show(topic)} may not contain ;")
            if topic is not None:
                names.append(topic)
        return ";".join(names) or None
    return _text(value, name)


def field_value(col: Column, value: Any, *, name: str, limits: Limits) -> Any:
    """``value`` (JSON) as the contract column ``col`` stores it, or ``None`` when empty; raises
    :class:`RecordProblem` naming ``name`` (the module docstring lists the rules)."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    try:
        if col.type == "choice":
            text = _text(value, name)
            choice = text.lower() if text is not None else None
            if choice is not None and choice not in col.choices:
                raise RecordProblem(f"{name} {show(text)} is not one of {', '.join(col.choices)}")
            return choice
        if col.type == "number":
            x = number_value(value)
            if col.non_negative and x < 0:
                raise RecordProblem(f"{name} {show(value)} is negative")
            return x
        if col.type == "timestamp":
            if not isinstance(value, str):
                raise RecordProblem(f"{name} must be an ISO-8601 time given as text")
            t = parse_timestamp(value)
            problem = timestamp_problem(t, floor=limits.floor, ceiling=None if col.future_ok else limits.ceiling)
            if problem is not None:
                raise RecordProblem(f"{name} {t.isoformat()}Z {problem}")
            return t
        if col.identifier:
            return id_text(value) or None
        if col.name == "topics":
            return _topics(value, name)
        text = _text(value, name)
        return text.lower() if text is not None and col.name in LOWER_CASE else text
    except Implausible as exc:
        raise RecordProblem(f"{name} {exc}") from None


def check_record(kind: str, values: Mapping[str, Any], *, limits: Limits, defaults: Mapping[str, Any] | None = None,
                 prefix: str = "") -> dict[str, Any]:
    """One record of the ledger ``kind`` (``consents`` or ``preferences``) as a dict of every
    contract column but ``customer_id`` (the key ``None`` when not given); ``defaults`` fill
    absent or empty fields before the checks. ``prefix`` goes before field names in reasons
    (``properties.``). Raises :class:`RecordProblem`."""
    contract = LEDGERS[kind]
    columns = {c.name: c for c in contract.columns if c.name != "customer_id"}
    if not isinstance(values, Mapping):
        raise RecordProblem("a record must be a JSON object")
    unknown = sorted(k for k in values if k not in columns)
    if unknown:
        raise RecordProblem(f"unknown field {prefix}{str(unknown[0])[:40]} (fields: {', '.join(columns)})")
    merged = dict(values)
    for k, v in (defaults or {}).items():
        if merged.get(k) is None or (isinstance(merged.get(k), str) and not merged[k].strip()):
            merged[k] = v
    out: dict[str, Any] = {}
    for name, col in columns.items():
        value = merged.get(name)
        out[name] = value if isinstance(value, datetime) and col.type == "timestamp" else field_value(
            col, value, name=prefix + name, limits=limits)
        if out[name] is None and col.required and name != contract.key:
            raise RecordProblem(f"{prefix}{name} is required")
    return out


def check_records(kind: str, records: Sequence[Any], *, source: str, limits: Limits | None = None,
                  occurred_at: datetime | None = None, where: str = "") -> list[dict[str, Any]]:
    """Every record of ``records`` checked (:func:`check_record`) with the defaults of a request:
    ``channel`` ``any``, ``occurred_at`` ``occurred_at`` (default now), ``source``; a record
    without a key gets a new one (``<source>-`` and 32 random hex digits). All or nothing: the
    first bad record raises :class:`~patron.errors.InputError` (``where``: what to name, e.g.
    ``POST /v1/customers/c1/preferences``), with how many are bad."""
    if kind not in LEDGERS:
        raise InputError(f"unknown ledger {kind!r}: one of {', '.join(LEDGERS)}")
    if not records:
        raise InputError(f"{where}: no records given".lstrip(": "))
    limits = limits or Limits.at()
    defaults = {"channel": "any", "occurred_at": occurred_at or limits.now, "source": source}
    out: list[dict[str, Any]] = []
    problems: list[tuple[int, str]] = []
    for i, record in enumerate(records):
        try:
            row = check_record(kind, record, limits=limits, defaults=defaults)
        except RecordProblem as exc:
            problems.append((i, str(exc)))
            continue
        key = LEDGERS[kind].key
        row[key] = row[key] or f"{source}-{uuid.uuid4().hex}"
        out.append(row)
    if problems:
        i, reason = problems[0]
        more = f" ({len(problems)} of {len(records)} records are bad)" if len(problems) > 1 else ""
        head = f"{where}: " if where else ""
        raise InputError(f"{head}record {i}: {reason} ({kind} are stored whole or not at all){more}")
    keys = [r[LEDGERS[kind].key] for r in out]
    if len(set(keys)) != len(keys):
        dup = next(k for k in keys if keys.count(k) > 1)
        raise InputError(f"{where + ': ' if where else ''}duplicate {LEDGERS[kind].key} {show(dup)} in one request")
    return out
