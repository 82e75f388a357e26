"""How right were the statuses: statuses as of a past date against what customers did next.

:func:`status_backtest` assesses every customer as :func:`patron.relationship.status.relationship_status` would
have on ``as_of`` (the model fitted on the purchases up to ``as_of`` only, so nothing after it
leaks in), then follows them over the horizon: per status, the share who bought again with its
Wilson interval and their mean purchases and spend with Student-t intervals, beside the same
fitted model's prediction for the group (mean P(a purchase in the window) and mean expected
purchases), i.e. a calibration table.

:func:`status_checks` states what the statuses promise: the share who bought again falls from
``active`` through ``cooling``, ``at_risk`` and ``lapsed`` to ``lost``, and ``lost`` customers
buy again at most half as often as the average buyer.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from datetime import date, datetime
from itertools import pairwise
from typing import Any

import numpy as np
import pandas as pd

from patron.dates import parse_day
from patron.relationship.backtest.outcomes import (
    LEVEL,
    Backtest,
    group_outcomes,
    observed_window,
    outcomes,
    outcomes_from_lists,
)
from patron.relationship.status import STATUSES, StatusRules, assess, status_rules
from patron.value.models import BaseModel as TransactionModel

ORDERED_STATUSES: tuple[str, ...] = ("active", "cooling", "at_risk", "lapsed", "lost")
"""Statuses whose share buying again must fall in this order."""

ALL_BUYERS = "all buyers"
"""Label of the table's last row: every customer with a purchase by ``as_of``."""

LOST_MAX_RATIO = 0.5
"""``lost`` customers buy again at most this share of the base rate."""


def status_checks(table: pd.DataFrame, base_rate: float) -> dict[str, Any]:
    """What the statuses promise, checked on a backtest table (column ``status``):

    * ``falls``: the share who bought again strictly falls along :data:`ORDERED_STATUSES`
      (statuses without customers skipped);
    * ``lost_vs_base``: the ``lost`` share over the base rate, ``lost_at_most_half`` whether it is
      at most :data:`LOST_MAX_RATIO`;
    * ``outside``: statuses whose predicted share lies outside the interval of the actual share.
    """
    rows = table.set_index("status")
    present = [s for s in ORDERED_STATUSES if s in rows.index and rows.loc[s, "customers"] > 0]
    shares = [float(rows.loc[s, "bought_share"]) for s in present]
    lost = float(rows.loc["lost", "bought_share"]) if "lost" in present else float("nan")
    ratio = lost / base_rate if base_rate > 0 else float("nan")
    outside = [s for s in rows.index if s in STATUSES and not pd.isna(rows.loc[s, "predicted_share"]) and not rows.loc[s, "within"]]
    return {
        "statuses": present,
        "falls": bool(all(a > b for a, b in pairwise(shares))),
        "lost_vs_base": ratio,
        "lost_at_most_half": bool(ratio <= LOST_MAX_RATIO),
        "outside": outside,
    }


def status_backtest(
    db: str | os.PathLike[str] | None = None,
    *,
    as_of: str | date | datetime | None = None,
    horizon: str = "26W",
    config: str | os.PathLike[str] | dict[str, Any] | StatusRules | None = None,
    model: str = "bgnbd",
    params: Mapping[str, float] | TransactionModel | None = None,
    level: float = LEVEL,
    assessed: tuple[pd.DataFrame, TransactionModel] | None = None,
    lists: tuple[Any, date] | None = None,
) -> Backtest:
    """Statuses as of ``as_of`` against purchases in the ``horizon`` after it.

    Parameters
    ----------
    db
        The patron database.
    as_of
        The past date of the statuses (inclusive); default the latest date whose whole horizon
        is in the data.
    horizon
        ``"26W"`` (weeks), ``"182D"`` (days) or ``"6M"`` (calendar months). A horizon that runs
        past the last purchase in the data is cut there, and the predictions are made for the
        cut window (``result.window.weeks``).
    config, model, params
        As :func:`patron.relationship.status.relationship_status` (the ``[status]`` rules; the model is fitted
        on the history up to ``as_of`` unless ``params`` fix it).
    level
        Confidence level of the intervals.
    assessed
        ``(statuses, fitted model)`` as :func:`patron.relationship.status.assess` returned them for
        these rules and model (at least the columns ``customer_id, status, frequency, recency, T,
        as_of``; e.g. shared with a migration matrix of the same day); used when
        their ``as_of`` is the window's start, else assessed here.
    lists
        ``(order lists, last day)``: every customer's orders up to that day as lists
        (:func:`patron.value.summary_sql.order_lists_sql`), when the caller holds them; the
        outcomes are counted from them (:func:`~patron.relationship.backtest.outcomes.outcomes_from_lists`)
        when the window ends on or before that day, else queried.

    Returns
    -------
    :class:`~patron.relationship.backtest.outcomes.Backtest` whose ``table`` has ``status`` (every status with
    customers, then ``"all buyers"``) and :data:`patron.relationship.backtest.outcomes.GROUP_COLUMNS`;
    ``checks`` from :func:`status_checks`. Prospects' ``bought`` means a first purchase, and they
    have no prediction.
    """
    rules = status_rules(config)
    window = observed_window(db, parse_day(as_of, "as_of"), horizon)
    if assessed is not None and len(assessed[0]) and pd.Timestamp(assessed[0]["as_of"].iloc[0]).date() == window.as_of:
        statuses, fitted = assessed
    else:  # the table needs statuses, not their reasons
        statuses, fitted = assess(db, as_of=window.as_of, config=rules, model=model, params=params, reasons=False)
    if lists is not None and window.observed_end <= lists[1]:
        frame = outcomes_from_lists(lists[0], window, statuses["customer_id"])
    else:
        frame = outcomes(db, window, statuses["customer_id"])
    frame["status"] = statuses["status"].to_numpy()
    buyer = (frame["status"] != "prospect").to_numpy()
    x, tx, T = (statuses.loc[buyer, c].to_numpy(dtype=float) for c in ("frequency", "recency", "T"))
    for column, predict in (("predicted_probability", fitted.conditional_probability_of_purchase),
                            ("predicted_purchases", fitted.conditional_expected_purchases)):
        values = np.full(len(frame), np.nan)
        if buyer.any():
            values[buyer] = predict(window.weeks, x, tx, T)
        frame[column] = values
    by_status = group_outcomes(frame, "status", order=list(STATUSES), level=level)
    everyone = group_outcomes(frame[buyer].assign(status=ALL_BUYERS), "status", level=level)
    table = pd.concat([by_status, everyone], ignore_index=True)
    table.insert(2, "customer_share", table["customers"] / max(int(buyer.sum()), 1))
    base = float(everyone["bought_share"].iloc[0]) if len(everyone) else float("nan")
    notes = [f"statuses and the {fitted.name} model from the purchases up to {window.as_of} only; "
             f"P(purchase) horizon of the statuses {rules.horizon_label()}"]
    if window.cut:
        notes.append(f"the data end on {window.observed_end}, before the horizon ends ({window.end}): "
                     f"actual and predicted are both over the {window.weeks:.1f} weeks observed")
    return Backtest("status", window, table, base, status_checks(table, base), tuple(notes))
