"""Time helpers of the consent package: every instant is stored and compared as a naive UTC
timestamp (the store's convention); local times exist only to test quiet hours."""

from __future__ import annotations

from datetime import UTC, date, datetime

from patron.errors import InputError


def to_utc_naive(value: datetime | date | str, *, where: str = "time") -> datetime:
    """``value`` as a naive UTC datetime. Text is ISO 8601; a value without an offset is UTC.

    Raises :class:`InputError` naming ``where`` (a parameter name, or a place such as a row) when
    text cannot be parsed.
    """
    if isinstance(value, str):
        text = value.strip()
        if text.endswith(("Z", "z")):
            text = text[:-1] + "+00:00"
        try:
            value = datetime.fromisoformat(text)
        except ValueError:
            raise InputError(f"{where}: {value!r} is not an ISO 8601 timestamp such as 2024-03-31T09:00:00+02:00",
                             parameters=(where,) if where.isidentifier() else ()) from None
    elif isinstance(value, date) and not isinstance(value, datetime):
        value = datetime(value.year, value.month, value.day)
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    return value


def now_utc() -> datetime:
    """The current time as a naive UTC datetime."""
    return datetime.now(UTC).replace(tzinfo=None)
