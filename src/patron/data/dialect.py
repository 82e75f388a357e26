"""The few SQL spellings that differ between the engines patron runs on.

Everything else in patron's engine SQL is the common subset of DuckDB and Spark SQL (ANSI joins,
``GROUP BY``, ``CASE``, ``CAST(x AS DATE)``, ``DATE 'YYYY-MM-DD'`` literals, ``min_by``). Why a
dialect module rather than a transpiler (SQLGlot) or an expression compiler (Ibis): the summary
needs only date arithmetic to differ, these few lines are easy to read and to pin with snapshot
tests, and they add no dependency whose SQL output could change under us between releases.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime


@dataclass(frozen=True)
class Dialect:
    """How one engine spells date arithmetic."""

    name: str

    def days_between(self, start: str, end: str) -> str:
        """Whole days from ``start`` to ``end`` (both DATE expressions), ``end - start``."""
        if self.name == "spark":
            return f"datediff({end}, {start})"
        return f"date_diff('day', {start}, {end})"

    def months_between(self, start: str, end: str) -> str:
        """Whole calendar months from the month of ``start`` to the month of ``end``."""
        return f"((year({end}) - year({start})) * 12 + (month({end}) - month({start})))"

    def period_start(self, day: str, grain: str) -> str:
        """First day of the period (``D`` day, ``W`` ISO week starting Monday, ``M`` month) that
        holds ``day`` (a DATE expression)."""
        if grain == "D":
            return day
        unit = {"W": "week", "M": "month"}[grain]
        if self.name == "spark":
            return f"CAST(date_trunc('{unit.upper()}', {day}) AS DATE)"
        return f"CAST(date_trunc('{unit}', {day}) AS DATE)"

    def hour_start(self, ts: str) -> str:
        """The start of the hour holding the TIMESTAMP expression ``ts`` (grain ``H``)."""
        if self.name == "spark":
            return f"date_trunc('HOUR', {ts})"
        return f"date_trunc('hour', {ts})"

    def micros_between(self, start: str, end: str) -> str:
        """Microseconds from ``start`` to ``end`` (TIMESTAMP expressions), ``end - start``."""
        if self.name == "spark":
            return f"(unix_micros({end}) - unix_micros({start}))"
        return f"date_diff('microsecond', {start}, {end})"

    @staticmethod
    def timestamp_literal(value: datetime) -> str:
        """A TIMESTAMP literal with microseconds, the same in both engines."""
        return f"TIMESTAMP '{value.isoformat(sep=' ', timespec='microseconds')}'"

    def bucket(self, expr: str, n: int) -> str:
        """A bucket number in ``[0, n)`` from a hash of ``expr`` (same value, same bucket)."""
        if self.name == "spark":
            return f"pmod(hash({expr}), {int(n)})"
        return f"(hash({expr}) % {int(n)})"

    @staticmethod
    def date_literal(value: date) -> str:
        """A DATE literal, the same in both engines."""
        return f"DATE '{value.isoformat()}'"

    # --- spellings used by validated ingest (patron.data.ingest.checks) ---------------------------

    def ident(self, name: str) -> str:
        """A quoted identifier: ``"name"`` in DuckDB, ```name``` in Spark.

        :meth:`ident` and :meth:`literal` are patron's only SQL quoting: every name or value that
        comes from input, configuration, rules or a request and is written into SQL text goes
        through them (``tests/test_sql_quoting.py`` scans ``src/`` for f-strings that do not)."""
        if self.name == "spark":
            return "`" + name.replace("`", "``") + "`"
        return '"' + name.replace('"', '""') + '"'

    def literal(self, value: str) -> str:
        """A string literal. Spark reads backslash escapes in literals and joins adjacent literals,
        so there ``\\`` and ``'`` are escaped with a backslash."""
        if self.name == "spark":
            return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
        return "'" + value.replace("'", "''") + "'"

    def type_name(self, sql_type: str) -> str:
        """The engine's name of a contract SQL type (``VARCHAR`` is ``STRING`` in Spark)."""
        if self.name == "spark" and sql_type.upper() == "VARCHAR":
            return "STRING"
        return sql_type

    def typed_null(self, sql_type: str) -> str:
        """A NULL of the contract SQL type ``sql_type``."""
        if self.name == "spark":
            return f"CAST(NULL AS {self.type_name(sql_type)})"
        return f"NULL::{sql_type}"

    def to_text(self, expr: str) -> str:
        """``expr`` as text."""
        return f"CAST({expr} AS {self.type_name('VARCHAR')})"

    def to_json_text(self, expr: str) -> str:
        """A nested value (struct, list, map) as JSON text."""
        if self.name == "spark":
            return f"to_json({expr})"
        return f"CAST(to_json({expr}) AS VARCHAR)"

    def full_match(self, expr: str, pattern: str) -> str:
        """True when the whole of ``expr`` matches the regular expression ``pattern`` (Spark: ``\\z``,
        since Java's ``$`` also matches before a final line break)."""
        if self.name == "spark":
            return f"{expr} RLIKE {self.literal('^(?:' + pattern + ')' + chr(92) + 'z')}"
        return f"regexp_full_match({expr}, {self.literal(pattern)})"

    def regexp_matches(self, expr: str, pattern: str) -> str:
        """True when some part of ``expr`` matches ``pattern``."""
        if self.name == "spark":
            return f"{expr} RLIKE {self.literal(pattern)}"
        return f"regexp_matches({expr}, {self.literal(pattern)})"

    def regexp_extract(self, expr: str, pattern: str, group: int) -> str:
        """Group ``group`` (0: the whole match) of the first match of ``pattern`` in ``expr``,
        ``''`` when the group took no part in it."""
        return f"regexp_extract({expr}, {self.literal(pattern)}, {int(group)})"

    def try_cast(self, expr: str, sql_type: str) -> str:
        """``expr`` cast to the contract type ``sql_type``, NULL when it cannot be."""
        return f"try_cast({expr} AS {self.type_name(sql_type)})"

    def non_finite(self, expr: str) -> str:
        """True when the DOUBLE ``expr`` is NaN or infinite."""
        if self.name == "spark":
            return f"(isnan({expr}) OR abs({expr}) = CAST('Infinity' AS DOUBLE))"
        # not isnan() OR isinf(): DuckDB 2.0 folds those to false from a Parquet column's
        # statistics, which leave NaN out (a NaN amount read from Parquet passed the check)
        return f"(NOT isfinite({expr}))"

    def minus_minutes(self, ts: str, minutes: str) -> str:
        """The TIMESTAMP ``ts`` minus ``minutes`` (an INTEGER expression) minutes."""
        if self.name == "spark":
            return f"timestampadd(MINUTE, -({minutes}), {ts})"
        return f"({ts} - to_minutes({minutes}))"

    def iso_to_utc(self, text: str) -> str:
        """ISO 8601 text without zone, or ending in ``Z`` or ``+hh:mm`` right after the time (the
        caller checks the layout), as a UTC TIMESTAMP. Spark's cast reads the offset; DuckDB's
        TIMESTAMPTZ cast is three times slower than its TIMESTAMP cast, so the offset is cut off
        and subtracted here."""
        if self.name == "spark":
            return f"try_cast({text} AS TIMESTAMP)"
        sign = f"substr({text}, -6, 1)"
        minutes = (f"(CASE WHEN {sign} = '-' THEN -1 ELSE 1 END) * "
                   f"(CAST(substr({text}, -5, 2) AS INTEGER) * 60 + CAST(right({text}, 2) AS INTEGER))")
        return (f"CASE WHEN {sign} IN ('+', '-') AND substr({text}, -3, 1) = ':' "
                f"THEN TRY_CAST(left({text}, -6) AS TIMESTAMP) - to_minutes({minutes}) "
                f"WHEN right({text}, 1) = 'Z' THEN TRY_CAST(left({text}, -1) AS TIMESTAMP) "
                f"ELSE TRY_CAST({text} AS TIMESTAMP) END")

    def local_to_utc(self, ts: str, zone: str) -> str:
        """The TIMESTAMP ``ts``, a local time in the IANA zone named by the text ``zone``, as UTC;
        NULL for an unknown zone. A local time that occurs twice is the first of the two; one that
        does not occur is read with the offset before the change (Java's rule, which Spark applies;
        DuckDB's ICU takes the second of two, so the first is found one hour earlier and used when
        it reads back as the same local time)."""
        if self.name == "spark":
            return f"try_cast(concat(date_format({ts}, 'yyyy-MM-dd HH:mm:ss.SSSSSS'), ' ', {zone}) AS TIMESTAMP)"
        fmt = "'%Y-%m-%d %H:%M:%S.%f'"
        later = f"TRY_CAST(strftime({ts}, {fmt}) || ' ' || {zone} AS TIMESTAMPTZ)"
        earlier = f"(TRY_CAST(strftime({ts} - INTERVAL 1 HOUR, {fmt}) || ' ' || {zone} AS TIMESTAMPTZ) + INTERVAL 1 HOUR)"
        known = f"CASE WHEN {later} IS NULL THEN 'UTC' ELSE {zone} END"
        return (f"timezone('UTC', CASE WHEN {earlier} < {later} AND timezone({known}, {earlier}) = {ts} "
                f"THEN {earlier} ELSE {later} END)")

    def code_point_hex(self, ch: str) -> str:
        """The code point of the first character of ``ch`` as at least four upper-case hex digits."""
        if self.name == "spark":
            return f"format_string('%04X', ascii({ch}))"
        return f"printf('%04X', unicode({ch}))"

    def strptime(self, text: str, strftime_format: str) -> str:
        """Text to TIMESTAMP with a strftime format, NULL when it does not parse. Spark gets the
        format translated to a Java pattern (:func:`java_datetime_pattern`)."""
        if self.name == "spark":
            return f"try_to_timestamp({text}, {self.literal(java_datetime_pattern(strftime_format))})"
        return f"try_strptime({text}, {self.literal(strftime_format)})"

    def json_object(self, pairs: list[tuple[str, str]]) -> str:
        """A JSON object text of ``(key, text expression)`` pairs. Spark's ``to_json`` leaves out
        keys whose value is NULL, DuckDB writes them as ``null``."""
        if self.name == "spark":
            pack = ", ".join(f"{self.literal(k)}, {v}" for k, v in pairs)
            return f"to_json(named_struct({pack}))"
        pack = ", ".join(f"{self.literal(k)}, {v}" for k, v in pairs)
        return f"CAST(json_object({pack}) AS VARCHAR)"

    def md5_text(self, items: list[str]) -> str:
        """The md5 (32 lower-case hex digits) of ``items`` (text expressions) joined by the unit
        separator character 31."""
        return f"md5(concat_ws(chr(31), {', '.join(items)}))"


STRFTIME_TO_JAVA: dict[str, str] = {"Y": "yyyy", "m": "MM", "d": "dd", "H": "HH", "M": "mm", "S": "ss"}
"""The strftime codes validated ingest on Spark understands, and their Java (Spark) patterns.
Two-letter Java fields read exactly two digits: ``%d`` matches ``05`` but not ``5`` on Spark."""


def java_datetime_pattern(strftime_format: str) -> str:
    """The Spark (Java ``DateTimeFormatter``) pattern of a strftime format made of the codes of
    :data:`STRFTIME_TO_JAVA`, ``%%`` and literal characters (letters are quoted).

    Raises ``ValueError`` naming the first code it cannot translate.
    """
    out: list[str] = []
    i = 0
    while i < len(strftime_format):
        ch = strftime_format[i]
        if ch == "%":
            code = strftime_format[i + 1: i + 2]
            if code == "%":
                out.append("%")
            elif code in STRFTIME_TO_JAVA:
                out.append(STRFTIME_TO_JAVA[code])
            else:
                known = " ".join("%" + c for c in STRFTIME_TO_JAVA)
                raise ValueError(f"date format {strftime_format!r}: %{code} is not supported on Spark (use {known} and literal characters)")
            i += 2
            continue
        if ch == "'":
            out.append("''")
        elif ch.isalpha():
            out.append(f"'{ch}'")
        else:
            out.append(ch)
        i += 1
    return "".join(out)


DUCKDB = Dialect("duckdb")
SPARK = Dialect("spark")
DIALECTS = {"duckdb": DUCKDB, "spark": SPARK}
