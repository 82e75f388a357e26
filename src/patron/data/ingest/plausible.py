"""Plausibility rules for values, defined once for files and for events.

Validated ingest checks files with SQL built here (:func:`number_sql`, :func:`timestamp_sql`,
:func:`id_problem_sql`, run on DuckDB and Spark through :mod:`patron.data.ingest.checks`); the service
checks events with the Python functions beside them (:func:`parse_number`, :func:`parse_timestamp`,
:func:`id_problem`). Both sides read the same patterns, so a text is accepted by one exactly when it
is accepted by the other, with the same value (a property test holds them to it). The rules are
documented for people in ``docs/data-contract.md``, section *Plausibility rules*.

* **Numbers**: :data:`NUMBER_PATTERN` after trimming spaces: optional sign, digits with an optional
  decimal point, optional exponent. No thousands separators (``1,000``), no underscores (``1_000``),
  no hex, no currency symbols. ``inf``, ``infinity`` and ``nan`` are read, then rejected as not
  finite. Money (``amount``, ``discount``, ``margin``; an event's ``revenue``, ``total``, each
  ``price × quantity`` and their sum) must be finite and at most :data:`MAX_MONEY` in absolute value.
* **Timestamps**: ISO 8601 by :data:`TIMESTAMP_PATTERN` (date; date and time; then ``Z``, ``UTC``,
  an offset within ±14:00, or a space and an IANA zone name such as ``Europe/Paris``) or
  ``YYYYMMDD``. An offset is subtracted; a zone name is honoured (the local time read in that zone,
  see :func:`parse_timestamp` for daylight-saving changes); no zone means UTC. The result must lie
  between the date floor (:data:`~patron.constants.DEFAULT_DATE_FLOOR`, ``PATRON_DATE_FLOOR``) and
  now plus the future tolerance (columns that may lie in the future: :data:`TIMESTAMP_MAX`).
* **Identifiers** (customer, order, event ids): no control, zero-width or bidi characters
  (:data:`FORBIDDEN_ID_CHARACTERS`) and not a JSON object or array. Such ids are rejected, never
  cleaned: an invisible character makes two ids look the same, and silently removing it could merge
  two people (or hide a bug in the sender). Ids are otherwise kept as given (opaque text: no case
  folding, no Unicode normalization).
"""

from __future__ import annotations

import json
import math
import re
import unicodedata
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from patron.data.dialect import DUCKDB, Dialect

# --- limits ------------------------------------------------------------------------------------

TIMESTAMP_MAX: datetime = datetime(9999, 12, 31, 23, 59, 59, 999999)
"""Latest timestamp of a column that may lie in the future (an expiry): the last instant of year
9999, the largest a Python ``datetime`` holds."""

MAX_MONEY: float = 1e15
"""Largest absolute money value accepted (order amount, discount, margin, in the order's currency).
A thousand trillion is beyond any order in any currency in use; a larger value is a unit or parsing
error. Below it a double still holds whole cents exactly (2^53 is about 9.007e15)."""

TRIM: str = " "
"""Characters trimmed from both ends of a text before it is read (spaces only, as SQL ``trim``)."""


class Implausible(ValueError):
    """A value breaks a plausibility rule; ``str()`` is the reason, without the field name."""


def floor_datetime(floor: date) -> datetime:
    """The date floor as a naive UTC datetime (midnight)."""
    return datetime(floor.year, floor.month, floor.day)


# --- numbers -----------------------------------------------------------------------------------

NUMBER_PATTERN: str = (
    r"[+-]?(?:[0-9]+(?:[.][0-9]*)?|[.][0-9]+)(?:[eE][+-]?[0-9]+)?"
    r"|[+-]?(?i:inf|infinity)|(?i:nan)"
)
"""What a number written as text is (the whole trimmed text, in Python, RE2 and Java regex syntax).
The words ``inf``, ``infinity`` and ``nan`` are numbers here only to be rejected as not finite, with
that reason."""

_NUMBER = re.compile(NUMBER_PATTERN)

JSON_INT_DIGITS: int = 4300
"""Longest integer a JSON body may hold as an exact ``int`` (Python's own limit on converting
digits to ``int``); longer integers are read as a float, infinite beyond about 309 digits."""


def json_int(text: str) -> int | float:
    """``parse_int`` hook for :func:`json.loads`: an integer of at most :data:`JSON_INT_DIGITS`
    digits as ``int``, a longer one as ``float`` (so one absurd number in a batch is a bad value of
    one event, not an unreadable body)."""
    return int(text) if len(text) <= JSON_INT_DIGITS else float(text)


def parse_number(text: str) -> float | None:
    """``text`` read by :data:`NUMBER_PATTERN` (after trimming spaces), ``None`` when it is not a
    number. The result may be infinite or NaN (callers reject those: :func:`number_value`,
    :func:`money_problem`)."""
    s = text.strip(TRIM)
    return float(s) if _NUMBER.fullmatch(s) else None


def number_value(value: Any) -> float:
    """A JSON value as a number: an ``int`` or ``float``, or text by :func:`parse_number`.
    Raises :class:`Implausible` for anything else and for values that are not finite."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise Implausible("is not a number")
    if isinstance(value, str):
        x = parse_number(value)
        if x is None:
            raise Implausible(f"is not a number ({show(value)})")
    elif isinstance(value, int):
        try:
            x = float(value)
        except OverflowError:
            raise Implausible("is not a finite number (too large)") from None
    else:
        x = value
    if not math.isfinite(x):
        raise Implausible("is not a finite number")
    return x


def money_problem(x: float) -> str | None:
    """The reason a money value is implausible (not finite, over :data:`MAX_MONEY`), or ``None``."""
    if not math.isfinite(x):
        return "is not a finite number"
    if abs(x) > MAX_MONEY:
        return f"is over the largest plausible amount ({MAX_MONEY:.0e})"
    return None


def number_sql(raw: str, dialect: Dialect = DUCKDB) -> str:
    """SQL reading the text ``raw`` (trimmed, NULL when empty) as DOUBLE by
    :data:`NUMBER_PATTERN`, NULL when it is not a number."""
    return f"CASE WHEN {dialect.full_match(raw, NUMBER_PATTERN)} THEN {dialect.try_cast(raw, 'DOUBLE')} END"


# --- timestamps --------------------------------------------------------------------------------

_DATE = r"[0-9]{4}-(?:0?[1-9]|1[0-2])-(?:0?[1-9]|[12][0-9]|3[01])"
_TIME = r"(?:[01]?[0-9]|2[0-3]):[0-5][0-9](?::[0-5][0-9](?:[.][0-9]{1,9})?)?"
OFFSET_PATTERN: str = r"[+-](?:(?:0[0-9]|1[0-3])(?::?[0-5][0-9])?|14(?::?00)?)"
"""A UTC offset: ``+hh``, ``+hhmm`` or ``+hh:mm`` (or ``-``), at most 14 hours (the range of the
offsets in use, UTC-12:00 to UTC+14:00; ``+25:00`` is an error, not a time zone)."""
ZONE_NAME_PATTERN: str = r"[A-Za-z][A-Za-z0-9_+-]*(?:/[A-Za-z0-9_+-]+)+"
"""An IANA time-zone name, ``Area/Location`` (``Europe/Paris``, ``America/Argentina/Salta``).
Abbreviations (``CET``, ``PST``) are not names: they are ambiguous and the engines disagree."""
TIMESTAMP_PATTERN: str = (
    rf"({_DATE})(?:([T ]{_TIME})( ?(?:Z|z|UTC|{OFFSET_PATTERN})| {ZONE_NAME_PATTERN})?)?"
)
"""ISO 8601 as patron reads it: groups 1 date (month and day may have one digit), 2 the time with
its ``T`` or space (seconds optional, fractions down to nanoseconds, truncated to microseconds),
3 the zone (``Z``, ``UTC``, an offset, or a space and a zone name), which needs a time."""
COMPACT_DATE_PATTERN: str = r"[0-9]{8}"
"""``YYYYMMDD``."""

_TIMESTAMP = re.compile(TIMESTAMP_PATTERN)
_COMPACT = re.compile(COMPACT_DATE_PATTERN)
_COLON_OFFSET = r"[+-](?:(?:0[0-9]|1[0-3]):[0-5][0-9]|14:00)"
_COMMON = rf"{_DATE}(?:[T ]{_TIME}(?:Z|{_COLON_OFFSET})?)?"
"""The layouts most files use, a subset of :data:`TIMESTAMP_PATTERN`: no zone, or ``Z`` or
``+hh:mm`` right after the time (:func:`timestamp_sql` gives them to the engine's cast)."""
_FAST = re.compile(
    r"[0-9]{4}-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12][0-9]|3[01])"
    rf"(?:[T ](?:[01][0-9]|2[0-3]):[0-5][0-9](?::[0-5][0-9](?:[.][0-9]{{1,9}})?)?(?:Z|{_COLON_OFFSET})?)?"
)
""":data:`_COMMON` with two-digit fields: what :func:`datetime.fromisoformat` reads exactly as
:data:`TIMESTAMP_PATTERN` does (the layouts SDKs send)."""
_BAD_OFFSET = re.compile(rf"{_DATE}[T ]{_TIME} ?([+-][0-9]{{2}}(?::?[0-9]{{2}})?)")
_TIME_PARTS = re.compile(r"[T ]([0-9]{1,2}):([0-9]{2})(?::([0-9]{2})(?:[.]([0-9]+))?)?")

TIMESTAMP_HELP: str = (
    "ISO 8601 such as 2024-03-31, 2024-03-31T14:05:00Z, 2024-03-31T16:05:00+02:00 (offsets up to "
    "±14:00) or 2024-03-31T16:05:00 Europe/Paris, or YYYYMMDD"
)
"""The accepted layouts, for reasons."""


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise Implausible(f'unknown time zone "{name[:40]}"') from None


def parse_timestamp(text: str) -> datetime:
    """``text`` (trimmed) as a naive UTC datetime, by :data:`TIMESTAMP_PATTERN` or ``YYYYMMDD``.

    A zone name is read with the IANA time-zone database (:mod:`zoneinfo`): a local time that
    occurs twice (clocks going back) is the first of the two, a local time that does not occur
    (clocks going forward) is read with the offset before the change (02:30 on a spring-forward
    night in Paris is 01:30 UTC), as Java and PostgreSQL do. Raises :class:`Implausible` with the
    reason (not ISO 8601, no such date, an unknown zone, out of the representable range)."""
    s = text.strip(TRIM)
    if _FAST.fullmatch(s):  # what SDKs send: read by datetime (4x faster than the general path)
        try:
            t = datetime.fromisoformat(s)
        except ValueError:
            raise Implausible(f"no such date or time ({show(text)})") from None
        offset = t.utcoffset()
        if offset is None:
            return t
        try:
            return t.replace(tzinfo=None) - offset
        except OverflowError:
            raise Implausible(f"out of the range of dates ({show(text)})") from None
    m = _TIMESTAMP.fullmatch(s)
    if m is None:
        c = _COMPACT.fullmatch(s)
        off = _BAD_OFFSET.fullmatch(s) if c is None else None
        if off is not None:
            raise Implausible(f"offset {off.group(1)} is not a UTC offset (at most ±14:00) in {show(text)}")
        if c is None:
            raise Implausible(f"not an ISO-8601 time ({show(text)}; expected {TIMESTAMP_HELP})")
        parts = [int(s[:4]), int(s[4:6]), int(s[6:])]
        zone = None
    else:
        parts = [int(p) for p in m.group(1).split("-")]
        if m.group(2):
            tm = _TIME_PARTS.fullmatch(m.group(2))
            assert tm is not None  # the same digits the pattern matched
            h, mi, sec, frac = tm.groups()
            parts += [int(h), int(mi), int(sec or 0), int(((frac or "") + "000000")[:6])]
        zone = (m.group(3) or "").strip(TRIM) or None
    try:
        local = datetime(*parts)  # type: ignore[arg-type]
    except ValueError:
        raise Implausible(f"no such date or time ({show(text)})") from None
    try:
        if zone is None or zone in ("Z", "z", "UTC"):
            return local
        if zone[0] in "+-":
            digits = zone[1:].replace(":", "")
            minutes = int(digits[:2]) * 60 + int(digits[2:] or 0)
            return local - timedelta(minutes=minutes if zone[0] == "+" else -minutes)
        return local.replace(tzinfo=_zone(zone)).astimezone(UTC).replace(tzinfo=None)
    except OverflowError:
        raise Implausible(f"out of the range of dates ({show(text)})") from None


def timestamp_sql(raw: str, dialect: Dialect = DUCKDB) -> str:
    """SQL reading the text ``raw`` (trimmed, NULL when empty) as a naive UTC TIMESTAMP, NULL when
    it does not parse: the same rule as :func:`parse_timestamp` (a property test compares them).

    The common layouts (no zone; ``Z`` or ``+hh:mm`` right after the time) take one pattern and the
    engine's own cast (:meth:`~patron.data.dialect.Dialect.iso_to_utc`). Other zones (``+hh``,
    ``+hhmm``, a space before the zone, ``UTC``, a zone name) are taken apart and converted here:
    several times slower, so kept off the common path."""
    anchored = "^(?:" + TIMESTAMP_PATTERN + ")$"
    local = f"{dialect.regexp_extract(raw, anchored, 1)} || {dialect.regexp_extract(raw, anchored, 2)}"
    zone = f"trim({dialect.regexp_extract(raw, anchored, 3)})"
    local_ts = dialect.try_cast(local, "TIMESTAMP")
    digits = f"replace(substr({zone}, 2), ':', '')"
    hours = dialect.try_cast(f"left({digits}, 2)", "INTEGER")
    mins = dialect.try_cast(f"substr({digits}, 3)", "INTEGER")
    minutes = f"(CASE WHEN left({zone}, 1) = '-' THEN -1 ELSE 1 END) * ({hours} * 60 + coalesce({mins}, 0))"
    convert = (
        f"CASE WHEN {zone} IN ('', 'Z', 'z', 'UTC') THEN {local_ts} "
        f"WHEN left({zone}, 1) IN ('+', '-') THEN {dialect.minus_minutes(local_ts, minutes)} "
        f"ELSE {dialect.local_to_utc(local_ts, zone)} END"
    )
    return (f"CASE WHEN {dialect.full_match(raw, _COMMON)} THEN {dialect.iso_to_utc(raw)} "
            f"WHEN {dialect.full_match(raw, TIMESTAMP_PATTERN)} THEN {convert} "
            f"WHEN {dialect.full_match(raw, COMPACT_DATE_PATTERN)} THEN {dialect.strptime(raw, '%Y%m%d')} END")


def timestamp_problem(t: datetime, *, floor: datetime, ceiling: datetime | None) -> str | None:
    """The reason ``t`` (naive UTC) is implausible: before ``floor``, or after ``ceiling`` (now plus
    the future tolerance; ``None`` for a column that may lie in the future: :data:`TIMESTAMP_MAX`)."""
    if t < floor:
        return f"is before {floor.date().isoformat()} (the date floor, PATRON_DATE_FLOOR)"
    if ceiling is not None and t > ceiling:
        return "is in the future (later than now plus the allowed clock skew)"
    return None


# --- identifiers -------------------------------------------------------------------------------

FORBIDDEN_ID_CHARACTERS: tuple[tuple[int, int, str], ...] = (
    (0x0000, 0x001F, "C0 control characters (NUL, tab, line feed, ...)"),
    (0x007F, 0x009F, "DEL and C1 control characters"),
    (0x00AD, 0x00AD, "soft hyphen"),
    (0x061C, 0x061C, "Arabic letter mark (bidi)"),
    (0x180E, 0x180E, "Mongolian vowel separator (zero width)"),
    (0x200B, 0x200F, "zero width space, non-joiner, joiner; left-to-right and right-to-left marks"),
    (0x2028, 0x202E, "line and paragraph separators; bidi embeddings and overrides"),
    (0x2060, 0x2064, "word joiner and invisible operators"),
    (0x2066, 0x2069, "bidi isolates"),
    (0xFEFF, 0xFEFF, "zero width no-break space (byte order mark)"),
)
"""Code point ranges (first, last, what) an identifier may not contain. In Python, lone surrogates
(U+D800-U+DFFF, which a JSON string can hold but UTF-8 text cannot) are refused too."""

_ID_CLASS_PY = "[" + "".join(f"\\u{lo:04x}-\\u{hi:04x}" for lo, hi, _ in FORBIDDEN_ID_CHARACTERS) + "\\ud800-\\udfff]"
_ID_CLASS_SQL = "[" + "".join(f"\\x{{{lo:04X}}}-\\x{{{hi:04X}}}" for lo, hi, _ in FORBIDDEN_ID_CHARACTERS) + "]"
_FORBIDDEN = re.compile(_ID_CLASS_PY)


def _code_point(ch: str) -> str:
    name = unicodedata.name(ch, "")
    return f"U+{ord(ch):04X}" + (f" ({name})" if name else "")


JSON_CONTAINER_PATTERN: str = (
    r'(?s:\{[ \t\n\r]*(?:\}|".*\})|\[[ \t\n\r]*(?:\]|(?:["{\[0-9-]|true|false|null).*\]))'
)
"""Text that is a JSON object or array written out (what a JSON Lines reader makes of a nested
value): ``{`` then ``"`` or ``}``, or ``[`` then the start of a JSON value or ``]``, up to the
closing bracket. A GUID in braces (``{3F2504E0-...}``) or ``[guest]`` is not such text. A pattern,
not a JSON parser, so that every engine draws the line in the same place (DuckDB's parser reads
``NaN``, Python's does not)."""

_JSON_CONTAINER = re.compile(JSON_CONTAINER_PATTERN)


def id_problem(text: str) -> str | None:
    """The reason ``text`` (an identifier, trimmed) is implausible, or ``None``: it holds a character
    of :data:`FORBIDDEN_ID_CHARACTERS`, or it is a JSON object or array
    (:data:`JSON_CONTAINER_PATTERN`: a JSON Lines ``customer_id`` that is an object)."""
    bad = _FORBIDDEN.search(text)
    if bad is not None:
        return f"contains {_code_point(bad.group())}: ids may not hold control, zero-width or bidi characters"
    if text[:1] in ("{", "[") and _JSON_CONTAINER.fullmatch(text):
        return "is a JSON object or array, not an id"
    return None


def id_problem_sql(raw: str, dialect: Dialect = DUCKDB) -> str:
    """SQL giving the reason (text) the identifier ``raw`` is implausible, NULL when it is fine: the
    rule of :func:`id_problem` (the code point is named, without its Unicode name)."""
    found = dialect.regexp_extract(raw, _ID_CLASS_SQL, 0)
    return (f"CASE WHEN {dialect.regexp_matches(raw, _ID_CLASS_SQL)} THEN 'contains U+' || "
            f"{dialect.code_point_hex(found)} || ': ids may not hold control, zero-width or bidi characters' "
            f"WHEN {dialect.full_match(raw, JSON_CONTAINER_PATTERN)} THEN 'is a JSON object or array, not an id' END")


def id_text(value: Any) -> str:
    """A JSON id value as text: a string (trimmed), or an integer as its decimal digits. Raises
    :class:`Implausible` for other values (objects, lists, booleans, fractions, NaN, infinities:
    they are never coerced) and for ids that break :func:`id_problem`."""
    if isinstance(value, str):
        text = value.strip(TRIM)
    elif isinstance(value, int) and not isinstance(value, bool):
        if value.bit_length() > 1024:  # over 308 digits: longer than any id field allows
            raise Implausible("is a number too long to be an id")
        text = str(value)
    elif isinstance(value, float):
        raise Implausible("must be a string (a non-integer number is not an id)" if math.isfinite(value)
                          else "must be a string (NaN and infinities are not ids)")
    else:
        raise Implausible("must be a string")
    problem = id_problem(text)
    if problem is not None:
        raise Implausible(problem)
    return text


# --- shared helpers ----------------------------------------------------------------------------


def show(value: Any, width: int = 40) -> str:
    """``value`` quoted for a reason, cut to ``width`` characters."""
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return '"' + (text if len(text) <= width else text[: width - 3] + "...") + '"'

