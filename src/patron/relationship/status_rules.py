"""The rules of relationship status, without a database: the ``[status]`` settings and
:func:`classify`, which turns each buyer's numbers into a status and a reason.

Definitions (all as of ``as_of``; docs/status.md has the reasoning and the backtests):

* ``probability_purchase`` (P(purchase)): the model's chance of at least one purchase in the
  ``horizon_weeks`` weeks after ``as_of``;
* ``days_since_first_purchase`` / ``days_since_last_purchase``: whole days to ``as_of``;
* ``frequency``: repeat purchases (0 for a one-time buyer).

Rules, first match wins (:data:`PRECEDENCE`; prospects are found by the caller):

1. ``lost``: P(purchase) < ``lost_probability``, more than ``lapsed_days`` since the last
   purchase, and either a one-time buyer or more than ``lost_days`` since the last purchase;
2. ``lapsed``: P(purchase) < ``lapsed_probability`` and more than ``lapsed_days`` since the last purchase;
3. ``new``: first purchase at most ``new_days`` before ``as_of``;
4. ``at_risk``: P(purchase) < ``at_risk_probability``;
5. ``cooling``: P(purchase) < ``active_probability``;
6. ``active``: everything else.

Everything is vectorised over customers (``numpy.select`` and ``numpy.char``), and the same
function classifies Arrow batches on Spark executors (:mod:`patron.relationship.spark_status`).
"""

from __future__ import annotations

import os
from datetime import date
from typing import Any

import numpy as np
import pandas as pd
from pydantic import BaseModel as PydanticModel
from pydantic import ConfigDict, Field, model_validator

from patron.config import section

STATUSES: tuple[str, ...] = ("prospect", "new", "active", "cooling", "at_risk", "lapsed", "lost")
"""Every status, from the start of a relationship to its end (the order tables are shown in)."""

PRECEDENCE: tuple[str, ...] = ("prospect", "lost", "lapsed", "new", "at_risk", "cooling", "active")
"""Order in which the rules are evaluated; the first match wins (``active`` when none matches)."""

NO_MARKETING_STATUSES: tuple[str, ...] = ("lost",)
"""Statuses whose customers get no marketing contact (the planner and the contact check): their
chance of buying again is below ``lost_probability`` and, on CDNOW, a third of the base rate."""

LEGACY_KEYS: dict[str, str] = {
    "lost_probability_alive": "lost_probability", "lapsed_probability_alive": "lapsed_probability",
    "at_risk_probability_alive": "at_risk_probability", "at_risk_days": "at_risk_probability",
    "cooling_relative_drop": "active_probability", "cooling_lookback_days": "lookback_days",
}
"""Keys of the ``[status]`` section before statuses were set by P(purchase), and what replaced them."""


class StatusRules(PydanticModel):
    """The ``[status]`` section of the rules file: thresholds of each relationship status.

    Probabilities are P(at least one purchase in the next ``horizon_weeks`` weeks), compared
    strictly (``P < threshold``); day limits strictly (``days since last purchase > limit``);
    ``new`` is inclusive (``<= new_days``).
    """

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)

    horizon_weeks: float = Field(26.0, gt=0.0)
    """P(purchase): the chance of at least one purchase within this many weeks after as_of (weeks)."""
    new_days: int = Field(90, ge=0)
    """new: first purchase at most this many days before as_of (days)."""
    active_probability: float = Field(0.50, ge=0.0, le=1.0)
    """active: P(purchase) at least this; below it, cooling (probability)."""
    at_risk_probability: float = Field(0.30, ge=0.0, le=1.0)
    """at_risk: P(purchase) below this (probability)."""
    lapsed_probability: float = Field(0.20, ge=0.0, le=1.0)
    """lapsed: P(purchase) below this, and more than lapsed_days since the last purchase (probability)."""
    lost_probability: float = Field(0.15, ge=0.0, le=1.0)
    """lost ("not that into you"): P(purchase) below this, more than lapsed_days since the last
    purchase, and either one purchase only or more than lost_days since the last (probability)."""
    lapsed_days: int = Field(90, ge=0)
    """lapsed and lost: more than this many days since the last purchase (days)."""
    lost_days: int = Field(365, ge=0)
    """lost, for a repeat buyer: more than this many days since the last purchase (days)."""
    lookback_days: int = Field(90, ge=1)
    """the trend in the reasons: the same numbers this many days before as_of (days)."""

    @model_validator(mode="before")
    @classmethod
    def _renamed(cls, data: Any) -> Any:
        if isinstance(data, dict):
            old = [k for k in data if k in LEGACY_KEYS]
            if old:
                moves = ", ".join(f"{k} -> {LEGACY_KEYS[k]}" for k in old)
                raise ValueError(f"statuses are now set by P(purchase within horizon_weeks), see docs/status.md; replace {moves}")
        return data

    @model_validator(mode="after")
    def _ordered(self) -> StatusRules:
        if not self.lost_probability <= self.lapsed_probability <= self.at_risk_probability <= self.active_probability:
            raise ValueError("need lost_probability <= lapsed_probability <= at_risk_probability <= active_probability")
        if not self.lost_days >= self.lapsed_days:
            raise ValueError("need lost_days >= lapsed_days")
        return self

    def horizon_label(self) -> str:
        """``"26 weeks"``: the horizon of P(purchase) as text."""
        return f"{self.horizon_weeks:g} weeks"


def status_rules(config: str | os.PathLike[str] | dict[str, Any] | StatusRules | None = None) -> StatusRules:
    """The ``[status]`` rules from ``config`` (a rules file path, a parsed dict, a
    :class:`StatusRules`, or ``None`` for ``$PATRON_CONFIG`` / ``./patron.toml`` / defaults)."""
    if isinstance(config, StatusRules):
        return config
    return section("status", StatusRules, config)


def _f3(values: np.ndarray) -> np.ndarray:
    return np.char.mod("%.3f", np.asarray(values, dtype=float))


def _fd(values: np.ndarray) -> np.ndarray:
    return np.char.mod("%d", np.asarray(values, dtype=float).astype(np.int64))


def _join(*parts: Any) -> np.ndarray:
    out = np.asarray(parts[0], dtype=str)
    for part in parts[1:]:
        out = np.char.add(out, np.asarray(part, dtype=str))
    return out


CLASSIFY_COLUMNS: tuple[str, ...] = (
    "probability_purchase", "probability_purchase_before", "frequency", "days_since_first_purchase",
    "days_since_last_purchase",
)
"""Columns :func:`classify` reads."""


def classify(frame: pd.DataFrame, rules: StatusRules, *, as_of: date, before: date,
             reasons: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Status and reason per row of ``frame`` (customers with a purchase by ``as_of``).

    ``frame`` has :data:`CLASSIFY_COLUMNS` (``probability_purchase_before`` is NaN for customers
    who had not bought by ``before``, the lookback date shown in the reasons). Rules in
    :data:`PRECEDENCE` order (prospects are handled by the caller); each reason names the numbers
    that decided, e.g. ``"P(purchase in 26 weeks) 0.104 < 0.15, one purchase only, 300 days ago > 90 (lost)"``;
    without ``reasons`` the reasons are left empty (``None``), for callers that count statuses.
    """
    r = rules
    q = frame["probability_purchase"].to_numpy(dtype=float)
    qb = frame["probability_purchase_before"].to_numpy(dtype=float)
    repeat = frame["frequency"].to_numpy(dtype=float) > 0
    first = frame["days_since_first_purchase"].to_numpy(dtype=float)
    last = frame["days_since_last_purchase"].to_numpy(dtype=float)
    quiet = last > r.lapsed_days
    below = {name: q < getattr(r, f"{name}_probability") for name in ("lost", "lapsed", "at_risk", "active")}
    conds = {
        "lost": below["lost"] & quiet & (~repeat | (last > r.lost_days)),
        "lapsed": below["lapsed"] & quiet,
        "new": first <= r.new_days,
        "at_risk": below["at_risk"],
        "cooling": below["active"],
    }
    order = list(conds)
    status = np.select([conds[s] for s in order], order, default="active").astype(object)
    reason = np.empty(status.size, dtype=object)
    if not reasons:  # statuses only (migration counts): no text per customer
        return status, reason
    prob = f"P(purchase in {r.horizon_label()}) "
    days = _join(_fd(last), " days since last purchase")
    trend = np.where(np.isnan(qb), f"; no purchase by {before}", _join("; ", _f3(qb), f" on {before}"))

    m = status == "lost"
    if m.any():
        once = _join(", one purchase only, ", _fd(last[m]), f" days ago > {r.lapsed_days}")
        repeated = _join(" and ", days[m], f" > {r.lost_days}")
        reason[m] = _join(prob, _f3(q[m]), f" < {r.lost_probability:g}", np.where(repeat[m], repeated, once), " (lost)")
    m = status == "lapsed"
    if m.any():
        held = np.where(repeat[m] & below["lost"][m], f"; a repeat buyer is lost only after {r.lost_days} days", "")
        reason[m] = _join(prob, _f3(q[m]), f" < {r.lapsed_probability:g} and ", days[m], f" > {r.lapsed_days} (lapsed)", held)
    m = status == "new"
    if m.any():
        reason[m] = _join("first purchase ", _fd(first[m]), f" days before {as_of} <= {r.new_days} (new); ", prob, _f3(q[m]))
    m = status == "at_risk"
    if m.any():
        held = np.where(below["lapsed"][m], f" <= {r.lapsed_days}, not yet lapsed", "")
        reason[m] = _join(prob, _f3(q[m]), f" < {r.at_risk_probability:g} (at risk); ", days[m], held, trend[m])
    m = status == "cooling"
    if m.any():
        reason[m] = _join(prob, _f3(q[m]), f" < {r.active_probability:g} (cooling); ", days[m], trend[m])
    m = status == "active"
    if m.any():
        reason[m] = _join(prob, _f3(q[m]), f" >= {r.active_probability:g} (active); ", days[m], trend[m])
    return status, reason


def classify_sql(rules: StatusRules, *, as_of: date, before: date, q: str = "probability_purchase",
                 qb: str = "probability_purchase_before", frequency: str = "frequency",
                 first: str = "days_since_first_purchase", last: str = "days_since_last_purchase") -> tuple[str, str]:
    """:func:`classify` as two DuckDB SQL expressions, ``(status, reason)``, over the columns named
    ``q``, ``qb``, ``frequency``, ``first`` and ``last`` (:data:`CLASSIFY_COLUMNS`; ``qb`` NULL or
    NaN for customers who had not bought by ``before``; the day counts whole numbers of days), so
    that a large base is classified in the engine without a string per customer in Python. The
    same rules and the same text as :func:`classify` (fractions printed with ``printf('%.3f')``
    and whole days as integers cast to text, as ``numpy.char.mod`` prints them)."""
    from patron.data.dialect import DUCKDB

    r = rules
    lit = DUCKDB.literal
    f3 = "printf('%.3f', CAST({} AS DOUBLE))".format
    fd = "CAST(CAST(trunc(CAST({} AS DOUBLE)) AS BIGINT) AS VARCHAR)".format  # printf('%d') text, a third of its cost
    quiet = f"({last} > {int(r.lapsed_days)})"
    repeat = f"({frequency} > 0)"
    below = {name: f"({q} < {float(getattr(r, f'{name}_probability'))!r})" for name in ("lost", "lapsed", "at_risk", "active")}
    conds = {
        "lost": f"{below['lost']} AND {quiet} AND (NOT {repeat} OR {last} > {int(r.lost_days)})",
        "lapsed": f"{below['lapsed']} AND {quiet}",
        "new": f"{first} <= {int(r.new_days)}",
        "at_risk": below["at_risk"],
        "cooling": below["active"],
    }
    status = "CASE " + " ".join(f"WHEN {c} THEN {lit(s)}" for s, c in conds.items()) + f" ELSE {lit('active')} END"

    def join(*parts: str) -> str:
        return "(" + " || ".join(parts) + ")"

    prob = join(lit(f"P(purchase in {r.horizon_label()}) "), f3(q))
    days = join(fd(last), lit(" days since last purchase"))
    trend = (f"CASE WHEN {qb} IS NULL OR isnan({qb}) THEN {lit(f'; no purchase by {before}')} "
             f"ELSE {join(lit('; '), f3(qb), lit(f' on {before}'))} END")
    once = join(lit(", one purchase only, "), fd(last), lit(f" days ago > {r.lapsed_days}"))
    repeated = join(lit(" and "), days, lit(f" > {r.lost_days}"))
    reasons = {
        "lost": join(prob, lit(f" < {r.lost_probability:g}"), f"CASE WHEN {repeat} THEN {repeated} ELSE {once} END", lit(" (lost)")),
        "lapsed": join(prob, lit(f" < {r.lapsed_probability:g} and "), days, lit(f" > {r.lapsed_days} (lapsed)"),
                       f"CASE WHEN {repeat} AND {below['lost']} THEN {lit(f'; a repeat buyer is lost only after {r.lost_days} days')} ELSE '' END"),
        "new": join(lit("first purchase "), fd(first), lit(f" days before {as_of} <= {r.new_days} (new); "), prob),
        "at_risk": join(prob, lit(f" < {r.at_risk_probability:g} (at risk); "), days,
                        f"CASE WHEN {below['lapsed']} THEN {lit(f' <= {r.lapsed_days}, not yet lapsed')} ELSE '' END", trend),
        "cooling": join(prob, lit(f" < {r.active_probability:g} (cooling); "), days, trend),
    }
    reason = ("CASE " + " ".join(f"WHEN {conds[s]} THEN {text}" for s, text in reasons.items())
              + f" ELSE {join(prob, lit(f' >= {r.active_probability:g} (active); '), days, trend)} END")
    return status, reason
