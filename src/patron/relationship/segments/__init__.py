"""Segments: named rules over the customer profile table, evaluated in the engine.

A segment is a name and a rule in the language of :mod:`patron.relationship.segments.rules`, e.g.
``at_risk_valuable = "status in [cooling, at_risk] and value_tier in [platinum, gold]"``. Rules
are compiled to SQL and run over the ``customer_profiles`` table (:mod:`patron.relationship.profiles`), which is
built first when absent. Segments may overlap: a customer can be in several, so the equity shares
of the segment table need not sum to 1 (they do for segments that partition the customers).

Where segments come from, later sources replacing earlier ones by name:

1. :data:`BUILTIN_SEGMENTS`;
2. the ``[segments]`` section of the rules file (``config``: ``patron.toml``/``$PATRON_CONFIG``);
3. the ``[segments]`` section of an extra rules file (``rules``: ``patron segments --rules FILE``).

A segment defined as an empty string is removed (e.g. ``champions = ""`` drops the built-in).
"""

from __future__ import annotations

import difflib
import os
import re
from typing import Any

import duckdb
import pandas as pd
from pydantic import RootModel

from patron.config import config_path, load_config, section
from patron.data.dialect import DUCKDB
from patron.data.store import reader, table_exists
from patron.dates import DayArg, parse_day
from patron.errors import InputError
from patron.relationship.engagement import ENGAGED_NOT_BUYING
from patron.relationship.motivation import MOTIVATIONS
from patron.relationship.profiles import (
    PROFILE_TABLE,
    SETTINGS_TABLE,
    build_profiles,
    served_profiles,
    settings_json,
)
from patron.relationship.rfm import RfmRules, rfm_cell_sql
from patron.relationship.segments.rules import (
    Column,
    RuleError,
    columns_from_types,
    compile_rule,
    quote_identifier,
    rule_label,
)
from patron.relationship.status import STATUSES
from patron.value.settings import ValueSettings, value_settings

BUILTIN_SEGMENTS: dict[str, str] = {
    "champions": "recency_score >= 4 and frequency_score >= 4 and monetary_score >= 4 and status in [new, active, cooling]",
    "at_risk_valuable": "status in [cooling, at_risk] and value_tier in [platinum, gold]",
    "discount_hunters": "discount_dependent",
    "full_price_loyalists": "returned and discount_order_share = 0 and status in [new, active, cooling]",
    "lost_low_value": "status in [lapsed, lost] and value_tier = 'bronze'",
    "engaged_not_buying": ENGAGED_NOT_BUYING,
}
"""Segments defined without any rules file (see docs/segments.md for what each means)."""

ConfigArg = str | os.PathLike[str] | dict[str, Any] | None


class SegmentRules(RootModel[dict[str, str]]):
    """The ``[segments]`` section: ``name = "rule"``, one line per segment."""


def _source_label(config: ConfigArg) -> str | None:
    if isinstance(config, dict):
        return None
    path = config_path(config)
    return str(path) if path else None


def definitions(*, config: ConfigArg = None, rules: str | os.PathLike[str] | None = None) -> dict[str, tuple[str, str | None]]:
    """Every segment in force: name -> (rule text, the file it came from or ``None``)."""
    out: dict[str, tuple[str, str | None]] = {k: (v, None) for k, v in BUILTIN_SEGMENTS.items()}
    sources: list[tuple[dict[str, Any] | str | os.PathLike[str] | None, str | None]] = [(config, _source_label(config))]
    if rules is not None:
        sources.append((load_config(rules), str(rules)))
    for src, label in sources:
        for name, text in section("segments", SegmentRules, src).root.items():
            if text.strip():
                out[name] = (text, label)
            else:
                out.pop(name, None)
    return out


def ensure_profiles(db: str | os.PathLike[str] | None, *, as_of: DayArg = None, config: ConfigArg = None,
                    settings: ValueSettings | None = None) -> ValueSettings:
    """Build ``customer_profiles`` when it is absent, when ``as_of`` differs from its date, or
    when it was built with other value settings than ``settings`` (default: the ``[value]``
    section of ``config``); returns the value settings of the profiles. Profiles stored without
    their settings (by hand, or by an older patron, which used the defaults) count as built with
    the defaults."""
    value = settings if settings is not None else value_settings(config)
    if served_profiles(db, as_of=parse_day(as_of), settings=value) is not None:
        return value  # beside a running service: its last refresh's profiles, or a one-line error
    with reader(db) as con:
        present = table_exists(con, PROFILE_TABLE)
        current = con.execute(f"SELECT max(as_of) FROM {PROFILE_TABLE}").fetchall()[0][0] if present else None
        stored = con.execute(f"SELECT settings FROM {SETTINGS_TABLE}").fetchall() if present and table_exists(con, SETTINGS_TABLE) else []
    other_day = as_of is not None and str(current)[:10] != str(as_of)[:10]
    other_value = stored[0][0] != settings_json(value) if stored else value.model_dump() != ValueSettings().model_dump()
    if not present or other_day or other_value:
        build_profiles(db, as_of=as_of if as_of is not None or not present else current, config=config, settings=value)
    return value


def profile_columns(con: duckdb.DuckDBPyConnection, *, bins: int = 5) -> dict[str, Column]:
    """The columns a rule may name: those of the stored ``customer_profiles`` table, and the
    virtual column ``rfm_cell`` (named RFM cell, :func:`patron.relationship.rfm.rfm_cell_sql`)."""
    types = con.execute(
        "SELECT column_name, data_type FROM information_schema.columns WHERE table_name = ? AND table_schema = 'main' "
        "AND table_catalog = current_database() ORDER BY ordinal_position",
        [PROFILE_TABLE],
    ).fetchall()
    cols = columns_from_types(dict(types))
    cols["rfm_cell"] = Column(rfm_cell_sql(bins), "text")
    return cols


_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")

KNOWN_VALUES: dict[str, tuple[str, ...]] = {"status": STATUSES, "motivation": MOTIVATIONS}
"""Columns whose text values are checked when a rule names them (a misspelt status is an error)."""


def _compile(con: duckdb.DuckDBPyConnection, text: str, name: str, source: str | None, config: ConfigArg) -> str:
    from patron.relationship.place import read_stores

    bins = section("rfm", RfmRules, config).bins
    stores = read_stores(con) if isinstance(text, str) and "within_km" in text.lower() else None
    return compile_rule(text, profile_columns(con, bins=bins), name=name, source=source, known_values=KNOWN_VALUES,
                        stores=stores)


ENGINE_RULE_ERRORS = (duckdb.BinderException, duckdb.ParserException, duckdb.ConversionException,
                      duckdb.OutOfRangeException, duckdb.InvalidInputException)
"""Errors the engine may raise for a compiled rule that the compiler could not foresee (e.g. a
date literal such as '2024-01-01x' that only the engine's timestamp parser refuses)."""


def _run(con: duckdb.DuckDBPyConnection, sql: str, rules: list[tuple[str, str]]) -> pd.DataFrame:
    """Run ``sql`` built from the compiled ``rules`` ((label, SQL condition) pairs); an engine
    error that one rule alone raises is that rule's one-line :class:`RuleError`."""
    try:
        return con.sql(sql).df()
    except ENGINE_RULE_ERRORS as exc:
        for label, where in rules:
            try:
                con.execute(f"SELECT count(*) FROM {PROFILE_TABLE} WHERE {where}").fetchall()
            except ENGINE_RULE_ERRORS as own:
                raise RuleError(f"{label}: the database cannot evaluate the rule: {str(own).strip().splitlines()[0]}") from None
        raise exc from None


def evaluate(db: str | os.PathLike[str] | None, rule_text: str, *, name: str = "rule", config: ConfigArg = None, as_of: DayArg = None,
             settings: ValueSettings | None = None) -> pd.DataFrame:
    """The customers (column ``customer_id``, sorted) for whom ``rule_text`` is true, evaluated
    by the engine over ``customer_profiles`` (built first when absent, of another ``as_of`` or of
    other value settings)."""
    ensure_profiles(db, as_of=as_of, config=config, settings=settings)
    with reader(db) as con:
        where = _compile(con, rule_text, name, None, config)
        return _run(con, f"SELECT customer_id FROM {PROFILE_TABLE} WHERE {where} ORDER BY customer_id", [(rule_label(name), where)])


def members(db: str | os.PathLike[str] | None, name_or_rule: str, *, config: ConfigArg = None, rules: str | os.PathLike[str] | None = None,
            settings: ValueSettings | None = None) -> pd.Series:
    """The ``customer_id`` values of a segment: ``name_or_rule`` is the name of a defined segment
    (:func:`definitions`) or else a rule (a single word that is no segment's name is an error,
    unless it is a true/false column). Returns a Series named ``customer_id``, sorted."""
    defs = definitions(config=config, rules=rules)
    text, source = defs.get(name_or_rule, (name_or_rule, None))
    name = name_or_rule if name_or_rule in defs else "rule"
    ensure_profiles(db, config=config, settings=settings)
    with reader(db) as con:
        word = name_or_rule.strip()
        if name == "rule" and _WORD.fullmatch(word) and word.lower() not in {c.lower() for c in profile_columns(con)}:
            close = difflib.get_close_matches(word, list(defs), n=1)
            hint = f" (did you mean {close[0]}?)" if close else f"; defined: {', '.join(defs)}"
            raise InputError(f'unknown segment "{word}"{hint}')
        where = _compile(con, text, name, source, config)
        frame = _run(con, f"SELECT customer_id FROM {PROFILE_TABLE} WHERE {where} ORDER BY customer_id", [(rule_label(name, source), where)])
    return frame["customer_id"].rename("customer_id")


MEMBER_COLUMNS: tuple[str, ...] = (
    "customer_id", "status", "value_tier", "clv", "clv_lower", "clv_upper", "probability_alive",
    "expected_purchases", "n_orders", "total_spend", "first_purchase", "last_purchase", "rfm_score",
)
"""Columns of a segment's member list (those of them the stored ``customer_profiles`` has), in
this order: the person id, status, value tier, CLV with its 95% interval (in the profiles'
currency), P(alive) (0-1), expected purchases over the value horizon, orders, total spend, the
first and last purchase days and the RFM score; then every column the profiles have beyond
:data:`patron.relationship.profiles.PROFILE_COLUMNS` (customer attributes, place, ...), in table
order."""


def segment_where(con: duckdb.DuckDBPyConnection, name: str, *, config: ConfigArg = None,
                  rules: str | os.PathLike[str] | None = None) -> str:
    """The SQL condition (over ``customer_profiles``) of the defined segment ``name``
    (:func:`definitions`), compiled from its rule. An unknown name is a
    :class:`~patron.errors.NoDataError` naming the defined segments (and the closest one)."""
    from patron.errors import NoDataError

    defs = definitions(config=config, rules=rules)
    if name not in defs:
        close = difflib.get_close_matches(name, list(defs), n=1)
        hint = f" (did you mean {close[0]}?)" if close else ""
        raise NoDataError(f'unknown segment "{name}"{hint}; defined: {", ".join(defs) or "none"}')
    text, source = defs[name]
    return _compile(con, text, name, source, config)


def member_columns(con: duckdb.DuckDBPyConnection) -> list[str]:
    """:data:`MEMBER_COLUMNS` that the stored ``customer_profiles`` table has, in that order, then
    its columns beyond :data:`~patron.relationship.profiles.PROFILE_COLUMNS` (customer attributes,
    place) in table order."""
    from patron.relationship.profiles import PROFILE_COLUMNS

    have = profile_columns(con)
    extra = [c for c in have if c not in PROFILE_COLUMNS and c != "rfm_cell"]
    return [c for c in MEMBER_COLUMNS if c in have] + extra


def members_sql(where: str, columns: list[str], *, after: bool = False, limit: int | None = None,
                guard: bool = False, text: set[str] | None = None) -> str:
    """One SELECT of a segment's members: ``columns`` of ``customer_profiles`` for the rows where
    ``where`` (a compiled rule) holds, ordered by ``customer_id``. ``after``: only ids greater than
    the one bound parameter ``?`` (keyset paging); ``limit``: at most that many rows; ``guard``:
    text columns (``text``, default the text columns of :data:`MEMBER_COLUMNS`) prefixed as
    :func:`patron.data.outputs.guard_formulas_sql` does, for CSV."""
    from patron.data.outputs import guard_formulas_sql

    text = text if text is not None else {"customer_id", "status", "value_tier", "rfm_score"}
    cols = ", ".join(
        f"{guard_formulas_sql(f'CAST({quote_identifier(c)} AS VARCHAR)')} AS {quote_identifier(c)}" if guard and c in text
        else quote_identifier(c)
        for c in columns)
    page = " AND customer_id > ?" if after else ""
    tail = f" LIMIT {int(limit)}" if limit is not None else ""
    return f"SELECT {cols} FROM {PROFILE_TABLE} WHERE ({where}){page} ORDER BY customer_id{tail}"


def write_members(db: str | os.PathLike[str] | None, name: str, path: str | os.PathLike[str], *, config: ConfigArg = None,
                  rules: str | os.PathLike[str] | None = None, settings: ValueSettings | None = None,
                  csv_safe_cells: bool | None = None) -> int:
    """Write the members of the defined segment ``name`` (:data:`MEMBER_COLUMNS`, ordered by
    ``customer_id``) to ``path`` (``.parquet``/``.pq``, else CSV with a header row) by the
    engine's ``COPY``, streamed from the database without passing through Python; returns how
    many. CSV text cells a spreadsheet could run as formulas are guarded (the ``PATRON_CSV_SAFE``
    setting, or ``csv_safe_cells``). ``customer_profiles`` is built first when absent or of other
    value settings."""
    from pathlib import Path

    from patron.data.outputs import atomic_output
    from patron.scope import csv_safe

    ensure_profiles(db, config=config, settings=settings)
    out = Path(path)
    parquet = out.suffix.lower() in (".parquet", ".pq")
    with reader(db) as con:
        where = segment_where(con, name, config=config, rules=rules)
        columns = member_columns(con)
        kinds = profile_columns(con)
        text = {c for c in columns if kinds[c].kind == "text"}
        sql = members_sql(where, columns, guard=not parquet and csv_safe(csv_safe_cells), text=text)
        options = "FORMAT parquet" if parquet else "FORMAT csv, HEADER true"
        with atomic_output(out) as target:
            _run(con, f"COPY ({sql}) TO {DUCKDB.literal(str(target))} ({options})", [(rule_label(name), where)])
        return int(con.execute(f"SELECT count(*) FROM {PROFILE_TABLE} WHERE {where}").fetchone()[0])


def segment_table_sql(compiled: dict[str, tuple[str, str]]) -> str:
    """One SELECT listing each segment (name -> (rule text, compiled SQL)) with its size, total and
    mean CLV, equity share (segment CLV / CLV of every profile) and a count per status."""
    status_cols = ", ".join(f"COALESCE(SUM(CASE WHEN status = {DUCKDB.literal(s)} THEN 1 ELSE 0 END), 0) AS {quote_identifier(s)}" for s in STATUSES)
    parts = [
        f"""SELECT {i} AS _order, {DUCKDB.literal(name)} AS segment, {DUCKDB.literal(text)} AS rule, COUNT(*) AS customers,
    COALESCE(SUM(clv), 0.0) AS total_clv, AVG(clv) AS mean_clv, {status_cols}
FROM {PROFILE_TABLE} WHERE {where}"""
        for i, (name, (text, where)) in enumerate(compiled.items())
    ]
    statuses = ", ".join(f"CAST(seg.{quote_identifier(s)} AS BIGINT) AS {quote_identifier(s)}" for s in STATUSES)
    return f"""SELECT seg.segment, seg.rule, seg.customers, seg.total_clv, seg.mean_clv,
    CASE WHEN tot.equity > 0 THEN seg.total_clv / tot.equity END AS equity_share, {statuses}
FROM ({' UNION ALL '.join(parts)}) AS seg
CROSS JOIN (SELECT SUM(clv) AS equity FROM {PROFILE_TABLE}) AS tot
ORDER BY seg._order"""


def segment_table(
    db: str | os.PathLike[str] | None = None,
    *,
    config: ConfigArg = None,
    rules: str | os.PathLike[str] | None = None,
    segments: dict[str, str] | None = None,
    as_of: DayArg = None,
    settings: ValueSettings | None = None,
) -> pd.DataFrame:
    """Every segment with ``segment, rule, customers, total_clv, mean_clv, equity_share`` and one
    count column per status (:data:`STATUSES`), computed in SQL over ``customer_profiles``.

    Segments are :func:`definitions` (built-ins, ``config``, ``rules``), or exactly ``segments``
    (name -> rule) when given. Segments may overlap, so shares need not sum to 1. A segment with
    no members has ``customers`` 0, ``total_clv`` 0 and ``mean_clv`` NaN. CLV is computed with
    ``settings`` (default: the ``[value]`` section of ``config``).
    """
    defs = {k: (v, None) for k, v in segments.items()} if segments is not None else definitions(config=config, rules=rules)
    if not defs:
        raise InputError("no segments defined: add a [segments] section to the rules file")
    ensure_profiles(db, as_of=as_of, config=config, settings=settings)
    with reader(db) as con:
        compiled = {name: (text, _compile(con, text, name, src, config)) for name, (text, src) in defs.items()}
        labels = [(rule_label(name, src), compiled[name][1]) for name, (_, src) in defs.items()]
        return _run(con, segment_table_sql(compiled), labels)


from patron.relationship.segments.equity import equity_by, equity_over_time  # noqa: E402  (uses ensure_profiles)

__all__ = [
    "BUILTIN_SEGMENTS", "MEMBER_COLUMNS", "RuleError", "compile_rule", "definitions", "equity_by", "equity_over_time",
    "evaluate", "member_columns", "members", "members_sql", "segment_table", "segment_table_sql", "segment_where",
    "write_members",
]
