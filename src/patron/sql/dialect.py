"""The few SQL spellings that differ between the engines patron runs on.

Everything else in patron's engine SQL is the common subset of DuckDB and Spark SQL (ANSI joins,
``GROUP BY``, ``CASE``, ``CAST(x AS DATE)``, ``DATE 'YYYY-MM-DD'`` literals, ``min_by``). Why a
dialect module rather than a transpiler (SQLGlot) or an expression compiler (Ibis): the summary
needs only date arithmetic to differ, these few lines are easy to read and to pin with snapshot
tests, and they add no dependency whose SQL output could change under us between releases.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date


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

    def bucket(self, expr: str, n: int) -> str:
        """A bucket number in ``[0, n)`` from a hash of ``expr`` (same value, same bucket)."""
        if self.name == "spark":
            return f"pmod(hash({expr}), {int(n)})"
        return f"(hash({expr}) % {int(n)})"

    @staticmethod
    def date_literal(value: date) -> str:
        """A DATE literal, the same in both engines."""
        return f"DATE '{value.isoformat()}'"

    # --- spellings used by validated ingest (patron.ingest.checks) ---------------------------

    def ident(self, name: str) -> str:
        """A quoted identifier: ``"name"`` in DuckDB, ```name``` in Spark."""
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

    def full_match(self, expr: str, pattern: str) -> str:
        """True when the whole of ``expr`` matches the regular expression ``pattern``."""
        if self.name == "spark":
            return f"{expr} RLIKE {self.literal('^(?:' + pattern + ')$')}"
        return f"regexp_full_match({expr}, {self.literal(pattern)})"

    def text_to_double(self, text: str) -> str:
        """Text to DOUBLE, NULL when it is not a number. Spark's cast also takes Java's ``1.5d``
        and ``1.5f``; a pattern keeps it to what DuckDB reads (decimal or exponent notation,
        ``inf``, ``infinity``, ``nan``)."""
        if self.name == "spark":
            number = r"[+-]?([0-9]+[.]?[0-9]*|[.][0-9]+)([eE][+-]?[0-9]+)?|[+-]?(inf|infinity)|nan"
            return f"CASE WHEN lower({text}) RLIKE {self.literal('^(?:' + number + ')$')} THEN try_cast({text} AS DOUBLE) END"
        return f"TRY_CAST({text} AS DOUBLE)"

    def non_finite(self, expr: str) -> str:
        """True when the DOUBLE ``expr`` is NaN or infinite."""
        if self.name == "spark":
            return f"(isnan({expr}) OR abs({expr}) = CAST('Infinity' AS DOUBLE))"
        return f"(isnan({expr}) OR isinf({expr}))"

    def strptime(self, text: str, strftime_format: str) -> str:
        """Text to TIMESTAMP with a strftime format, NULL when it does not parse. Spark gets the
        format translated to a Java pattern (:func:`java_datetime_pattern`)."""
        if self.name == "spark":
            return f"try_to_timestamp({text}, {self.literal(java_datetime_pattern(strftime_format))})"
        return f"try_strptime({text}, {self.literal(strftime_format)})"

    def text_to_timestamp(self, raw: str) -> str:
        """ISO 8601 text (date, date and time, optional UTC offset or Z) or ``YYYYMMDD`` to a UTC
        TIMESTAMP, NULL otherwise."""
        if self.name == "spark":
            # Spark's cast reads offsets itself (converted to the session's UTC) but also takes
            # partial dates such as 2024 or 2024-03, which DuckDB refuses: a pattern keeps it to ISO.
            iso = r"[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}([T ][0-9]{1,2}:[0-9]{2}(:[0-9]{2}([.][0-9]+)?)? ?(Z|z|UTC|[+-][0-9]{2}(:?[0-9]{2})?)?)?"
            return (
                f"CASE WHEN {self.full_match(raw, iso)} THEN try_cast({raw} AS TIMESTAMP) "
                f"WHEN length({raw}) = 8 AND {self.full_match(raw, '[0-9]{8}')} THEN {self.strptime(raw, '%Y%m%d')} END"
            )
        # A plain TIMESTAMP cast is fast but ignores a UTC offset, so text ending in Z or +hh:mm
        # goes through TIMESTAMPTZ (converted to UTC); eight digits are YYYYMMDD.
        return (
            f"CASE WHEN regexp_matches({raw}, '[0-9]:[0-9]{{2}}(:[0-9]{{2}}([.][0-9]+)?)? ?(Z|z|UTC|[+-][0-9]{{2}}(:?[0-9]{{2}})?)$') "
            f"THEN TRY_CAST(TRY_CAST({raw} AS TIMESTAMPTZ) AS TIMESTAMP) "
            f"WHEN length({raw}) = 8 AND regexp_full_match({raw}, '[0-9]{{8}}') THEN try_strptime({raw}, '%Y%m%d') "
            f"ELSE TRY_CAST({raw} AS TIMESTAMP) END"
        )

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
