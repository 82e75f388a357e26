"""Do the segments' names hold: segments and named RFM cells as of a past date against what their
members did next.

:func:`segment_backtest` builds the customer profiles as of ``as_of`` exactly as ``patron
profiles --as-of`` would (every model fitted on the history up to ``as_of``), evaluates every
segment in force (built-in, rules file, ``--rules``) and every named RFM cell on them, in an
in-memory database (the stored ``customer_profiles`` table is left alone), then follows the
members over the horizon: the share who bought again (Wilson interval), mean purchases and mean
spend (Student-t intervals), beside what the profiles said then (mean CLV, share lapsed or lost).
"""

from __future__ import annotations

import os
from datetime import date, datetime
from typing import Any

import duckdb
import pandas as pd

from patron.config import section
from patron.dates import parse_day
from patron.relationship.backtest.outcomes import (
    LEVEL,
    Backtest,
    group_outcomes,
    observed_window,
    outcomes,
)

GONE_STATUSES: tuple[str, ...] = ("lapsed", "lost")
"""Statuses counted in ``gone_share``."""

ALL_BUYERS = "all buyers"
"""Label of the last row: every customer with a purchase by ``as_of``."""

ConfigArg = str | os.PathLike[str] | dict[str, Any] | None


def membership_sql(compiled: dict[str, str], rfm_cell: str) -> str:
    """``customer_id, segment, kind`` for every member of each segment (name -> compiled WHERE
    clause) and the named RFM cell of every buyer, over ``customer_profiles``."""
    from patron.data.dialect import DUCKDB
    from patron.relationship.profiles import PROFILE_TABLE

    parts = [f"SELECT customer_id, {DUCKDB.literal(name)} AS segment, 'segment' AS kind FROM {PROFILE_TABLE} WHERE {where}"
             for name, where in compiled.items()]
    parts.append(f"SELECT customer_id, {rfm_cell} AS segment, 'rfm_cell' AS kind FROM {PROFILE_TABLE} WHERE recency_score IS NOT NULL")
    return "\nUNION ALL\n".join(parts)


def segment_backtest(
    db: str | os.PathLike[str] | None = None,
    *,
    as_of: str | date | datetime | None = None,
    horizon: str = "26W",
    config: ConfigArg = None,
    rules: str | os.PathLike[str] | None = None,
    level: float = LEVEL,
) -> Backtest:
    """Every segment and named RFM cell as of ``as_of`` against purchases and spend in the
    ``horizon`` after it (see :func:`patron.relationship.backtest.status_backtest` for ``as_of`` and ``horizon``).

    Returns a :class:`~patron.relationship.backtest.outcomes.Backtest` whose ``table`` has ``segment``,
    ``kind`` (``segment``, ``rfm_cell`` or ``all``), ``mean_clv`` (CLV, next 52 weeks, as of
    ``as_of``), ``mean_total_spend`` (spend up to ``as_of``), ``gone_share`` (share lapsed or lost
    as of ``as_of``) and :data:`patron.relationship.backtest.outcomes.GROUP_COLUMNS`, in the order of the
    segment definitions, then the cells in :data:`patron.relationship.rfm.RFM_CELLS` order, then
    ``"all buyers"``.
    """
    from patron.relationship.profiles import PROFILE_TABLE, build_profiles
    from patron.relationship.rfm import RFM_CELLS, RfmRules, rfm_cell_sql
    from patron.relationship.segments import KNOWN_VALUES, _run, definitions, profile_columns
    from patron.relationship.segments.rules import compile_rule, rule_label

    window = observed_window(db, parse_day(as_of, "as_of"), horizon)
    defs = definitions(config=config, rules=rules)
    profiles = build_profiles(db, as_of=window.as_of, config=config, write=False)
    bins = section("rfm", RfmRules, config).bins
    con = duckdb.connect()  # in memory: the profiles of as_of never replace the stored ones
    try:
        con.register("_profiles", profiles)
        con.execute(f"CREATE TABLE {PROFILE_TABLE} AS SELECT * FROM _profiles")
        columns = profile_columns(con, bins=bins)
        compiled = {name: compile_rule(text, columns, name=name, source=src, known_values=KNOWN_VALUES)
                    for name, (text, src) in defs.items()}
        labels = [(rule_label(name, src), compiled[name]) for name, (_, src) in defs.items()]
        members = _run(con, membership_sql(compiled, rfm_cell_sql(bins)), labels)  # an engine error names its rule
    finally:
        con.close()
    buyers = profiles[profiles["n_orders"].fillna(0) > 0]
    everyone = pd.DataFrame({"customer_id": buyers["customer_id"], "segment": ALL_BUYERS, "kind": "all"})
    members = pd.concat([members, everyone], ignore_index=True)
    done = outcomes(db, window, profiles["customer_id"]).set_index("customer_id")
    facts = profiles.set_index("customer_id")[["clv", "total_spend", "status"]]
    frame = members.join(done, on="customer_id").join(facts, on="customer_id")
    frame["gone"] = frame["status"].isin(GONE_STATUSES)
    frame["key"] = frame["kind"] + ":" + frame["segment"].astype(str)  # a segment may share a cell's name
    order = [f"segment:{n}" for n in defs] + [f"rfm_cell:{n}" for n in RFM_CELLS.values()] + [f"all:{ALL_BUYERS}"]
    table = group_outcomes(frame, "key", order=order, level=level)
    extra = frame.groupby("key", sort=False).agg(segment=("segment", "first"), kind=("kind", "first"), mean_clv=("clv", "mean"),
                                                 mean_total_spend=("total_spend", "mean"), gone_share=("gone", "mean"))
    table = table.join(extra, on="key").drop(columns=["key", "predicted_share", "within", "predicted_purchases"])
    head = ["segment", "kind", "mean_clv", "mean_total_spend", "gone_share"]
    table = table[head + [c for c in table.columns if c not in head]]
    last = table[table["segment"] == ALL_BUYERS]
    base = float(last["bought_share"].iloc[0]) if len(last) else float("nan")
    notes = [f"profiles, models and segments as of {window.as_of} only (built in memory; the stored profiles are unchanged)"]
    if window.cut:
        notes.append(f"the data end on {window.observed_end}, before the horizon ends ({window.end}): {window.weeks:.1f} weeks observed")
    empty = [name for name in defs if name not in set(table["segment"])]
    if empty:
        notes.append(f"no members as of {window.as_of}: {', '.join(empty)}")
    return Backtest("segments", window, table.reset_index(drop=True), base, {}, tuple(notes))
