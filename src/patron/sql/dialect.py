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


DUCKDB = Dialect("duckdb")
SPARK = Dialect("spark")
DIALECTS = {"duckdb": DUCKDB, "spark": SPARK}
