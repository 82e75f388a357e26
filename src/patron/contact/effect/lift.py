"""Campaign lift against a holdout: :func:`campaign_effect`.

The aggregation (one row per campaign and arm) runs in SQL (:func:`patron.contact.effect.sql.campaign_arms_sql`);
the intervals are computed here with SciPy, vectorised over campaigns:

* response rate (share of the arm buying within the window): difference with Newcombe's hybrid
  score interval;
* purchases and revenue per customer: difference with Welch's interval;
* incremental purchases and revenue in total: the per-customer difference times the number of
  treated customers (the treated count taken as fixed), with the interval scaled the same way;
* relative lift: difference divided by the control value (a point estimate);
* ``revenue_proven``: the interval of the revenue lift excludes 0.

:func:`revenue_headline` sums incremental revenue for a headline: only over proven campaigns, with
an interval; the unproven ones are totalled apart, never added to it.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import pandas as pd

from patron.contact.effect.rules import rules
from patron.contact.effect.sql import campaign_arms_sql
from patron.data.store import reader, table_exists
from patron.errors import NoDataError
from patron.value.intervals import newcombe_interval, welch_interval, wilson_interval, z_value

Config = str | os.PathLike[str] | dict[str, Any] | None

LIFT_COLUMNS: tuple[str, ...] = (
    "campaign_id", "n_treated", "n_control", "first_exposure", "last_exposure", "window_days", "window_complete",
    "response_rate_treated", "response_rate_control", "response_lift", "response_lift_lower", "response_lift_upper",
    "response_lift_relative",
    "purchases_treated", "purchases_control", "purchases_lift", "purchases_lift_lower", "purchases_lift_upper",
    "revenue_treated", "revenue_control", "revenue_lift", "revenue_lift_lower", "revenue_lift_upper",
    "revenue_lift_relative",
    "incremental_responders", "incremental_purchases", "incremental_purchases_lower", "incremental_purchases_upper",
    "incremental_revenue", "incremental_revenue_lower", "incremental_revenue_upper", "revenue_proven",
    "unsubscribe_rate_treated", "unsubscribe_rate_control", "unsubscribe_lift", "unsubscribe_lift_lower",
    "unsubscribe_lift_upper", "complaint_rate_treated", "complaint_rate_control", "level",
)
"""Columns of :func:`campaign_effect`, in order."""


def campaign_arms(db: str | os.PathLike[str] | None, *, window_days: int, campaign_id: str | None = None) -> tuple[pd.DataFrame, Any]:
    """The per-campaign, per-arm aggregates (SQL) and the time of the last transaction."""
    with reader(db) as con:
        if not table_exists(con, "contacts") or not table_exists(con, "transactions"):
            raise NoDataError(f"database {db} holds no contacts or transactions: ingest them first (patron ingest FILE --kind contacts)")
        arms = con.execute(campaign_arms_sql(window_days=window_days, campaign_id=campaign_id)).df()
        data_end = con.execute("SELECT MAX(occurred_at) FROM transactions").fetchall()[0][0]
    if arms.empty:
        where = f"campaign {campaign_id!r}" if campaign_id is not None else "any campaign"
        raise NoDataError(f"database {db}: no 'sent' contacts of {where} in table contacts (column campaign_id)")
    return arms, data_end


def lift_table(arms: pd.DataFrame, *, window_days: int, level: float = 0.95, data_end: Any = None) -> pd.DataFrame:
    """Lift per campaign from per-arm aggregates (columns of :func:`~patron.contact.effect.sql.campaign_arms_sql`).

    A campaign with no control arm (or no treated arm) gets NaN lifts. Pure function of its input.
    """
    keys = ["campaign_id"]
    t = arms[arms["in_control"] == 0].set_index(keys)
    c = arms[arms["in_control"] == 1].set_index(keys)
    ids = sorted(set(t.index) | set(c.index))
    t, c = t.reindex(ids), c.reindex(ids)

    def col(frame: pd.DataFrame, name: str, fill: float = np.nan) -> np.ndarray:
        return frame[name].astype(float).fillna(fill).to_numpy()

    n1, n0 = col(t, "n", 0.0), col(c, "n", 0.0)
    x1, x0 = col(t, "responders", 0.0), col(c, "responders", 0.0)
    res = pd.DataFrame({"campaign_id": ids, "n_treated": n1.astype(int), "n_control": n0.astype(int)})
    first = pd.concat([t["first_exposure"], c["first_exposure"]], axis=1).min(axis=1)
    last = pd.concat([t["last_exposure"], c["last_exposure"]], axis=1).max(axis=1)
    res["first_exposure"], res["last_exposure"] = first.to_numpy(), last.to_numpy()
    res["window_days"] = int(window_days)
    if data_end is None:
        res["window_complete"] = pd.NA
    else:
        res["window_complete"] = (last + pd.Timedelta(days=window_days) <= pd.Timestamp(data_end)).to_numpy()

    r1, _, _ = wilson_interval(x1, n1, level=level)
    r0, _, _ = wilson_interval(x0, n0, level=level)
    d, lo, hi = newcombe_interval(x1, n1, x0, n0, level=level)
    res["response_rate_treated"], res["response_rate_control"] = r1, r0
    res["response_lift"], res["response_lift_lower"], res["response_lift_upper"] = d, lo, hi
    with np.errstate(invalid="ignore", divide="ignore"):
        res["response_lift_relative"] = np.where(r0 > 0, d / r0, np.nan)

    for name in ("purchases", "revenue"):
        m1, m0 = col(t, f"{name}_mean"), col(c, f"{name}_mean")
        dm, lm, hm = welch_interval(m1, col(t, f"{name}_var"), n1, m0, col(c, f"{name}_var"), n0, level=level)
        res[f"{name}_treated"], res[f"{name}_control"] = m1, m0
        res[f"{name}_lift"], res[f"{name}_lift_lower"], res[f"{name}_lift_upper"] = dm, lm, hm
    with np.errstate(invalid="ignore", divide="ignore"):
        rc = res["revenue_control"].to_numpy()
        res["revenue_lift_relative"] = np.where(rc > 0, res["revenue_lift"].to_numpy() / rc, np.nan)

    res["incremental_responders"] = res["response_lift"] * n1
    for name in ("purchases", "revenue"):
        for suffix in ("", "_lower", "_upper"):
            res[f"incremental_{name}{suffix}"] = res[f"{name}_lift{suffix}"] * n1

    lo_r, hi_r = res["revenue_lift_lower"].to_numpy(), res["revenue_lift_upper"].to_numpy()
    res["revenue_proven"] = (lo_r > 0) | (hi_r < 0)

    u1, u0 = col(t, "unsubscribed", 0.0), col(c, "unsubscribed", 0.0)
    du, lu, hu = newcombe_interval(u1, n1, u0, n0, level=level)
    res["unsubscribe_rate_treated"], res["unsubscribe_rate_control"] = wilson_interval(u1, n1)[0], wilson_interval(u0, n0)[0]
    res["unsubscribe_lift"], res["unsubscribe_lift_lower"], res["unsubscribe_lift_upper"] = du, lu, hu
    res["complaint_rate_treated"] = wilson_interval(col(t, "complained", 0.0), n1)[0]
    res["complaint_rate_control"] = wilson_interval(col(c, "complained", 0.0), n0)[0]
    res["level"] = level
    return res[list(LIFT_COLUMNS)]


def campaign_effect(
    db: str | os.PathLike[str] | None = None,
    *,
    campaign_id: str | None = None,
    window_days: int | None = None,
    config: Config = None,
) -> pd.DataFrame:
    """Per campaign: treated and control sizes, response rate, purchases and revenue per customer
    in each arm, their differences (lift) with intervals, incremental totals, unsubscribe and
    complaint rates.

    Parameters
    ----------
    db
        The patron database (tables ``contacts`` and ``transactions``).
    campaign_id
        Only this campaign (default: every campaign with ``sent`` contacts).
    window_days
        Outcome window in days after each customer's exposure; default ``[contact_effect]
        window_days`` (30).
    config
        Rules file (path or parsed dict); its ``[contact_effect] level`` sets the interval level.

    Returns
    -------
    One row per campaign with the columns :data:`LIFT_COLUMNS`. Rates are shares (0-1); money is in
    the orders' currency; ``*_lower``/``*_upper`` bound the ``level`` confidence interval.
    ``window_complete`` is false when the last exposure plus the window ends after the last
    transaction in the data (the outcome is then still being counted).
    """
    r = rules(config)
    days = int(window_days if window_days is not None else r.window_days)
    arms, data_end = campaign_arms(db, window_days=days, campaign_id=campaign_id)
    return lift_table(arms, window_days=days, level=r.level, data_end=data_end)


def revenue_headline(lift: pd.DataFrame) -> dict[str, Any]:
    """Incremental revenue of the campaigns in ``lift`` (from :func:`campaign_effect`) for a headline.

    ``proven``: the campaigns whose revenue lift interval excludes 0 (``revenue_proven``, whether
    they raised or lowered revenue); ``incremental_revenue`` is their total, with an interval
    ``incremental_revenue_lower`` / ``_upper`` at the table's level: each campaign's standard error
    is its interval's half-width over the normal quantile (at least Welch's, so the interval is, if
    anything, too wide), campaigns taken as independent (a customer in two campaigns makes this an
    approximation). ``unproven``: campaigns with a holdout whose interval includes 0; their point
    estimates are totalled apart (``unproven_incremental_revenue``, with its interval) and are not
    part of the headline. ``without_holdout``: campaigns with no control arm (nothing measured).
    Money in the orders' currency.
    """
    level = float(lift["level"].iloc[0]) if len(lift) else 0.95
    measured = lift[lift["incremental_revenue"].notna() & lift["incremental_revenue_lower"].notna()]
    z = z_value(level)

    def total(rows: pd.DataFrame) -> tuple[float, float, float]:
        point = float(rows["incremental_revenue"].sum())
        se = (rows["incremental_revenue_upper"] - rows["incremental_revenue_lower"]) / (2.0 * z)
        half = z * float(np.sqrt((se**2).sum()))
        return point, point - half, point + half

    proven = measured[measured["revenue_proven"].astype(bool)]
    unproven = measured[~measured["revenue_proven"].astype(bool)]
    p, plo, phi = total(proven)
    u, ulo, uhi = total(unproven)
    return {
        "level": level, "campaigns": len(lift), "proven": len(proven), "unproven": len(unproven),
        "without_holdout": len(lift) - len(measured),
        "proven_campaigns": [str(c) for c in proven["campaign_id"]],
        "unproven_campaigns": [str(c) for c in unproven["campaign_id"]],
        "incremental_revenue": p, "incremental_revenue_lower": plo, "incremental_revenue_upper": phi,
        "unproven_incremental_revenue": u, "unproven_incremental_revenue_lower": ulo, "unproven_incremental_revenue_upper": uhi,
    }


def revenue_headline_text(h: dict[str, Any]) -> str:
    """The incremental-revenue headline in words: proven campaigns only, with the interval; the
    unproven ones counted apart."""
    measured = h["proven"] + h["unproven"]
    if not measured:
        return "Incremental revenue: no campaign has a holdout, nothing is measured."
    head = (f"Incremental revenue, {h['proven']} of {measured} measured campaigns proven by their holdout: "
            f"{h['incremental_revenue']:+,.0f} [{h['incremental_revenue_lower']:+,.0f}, {h['incremental_revenue_upper']:+,.0f}] "
            f"({h['level']:.0%} interval)." if h["proven"] else
            f"Incremental revenue: none of the {measured} measured campaigns is proven by its holdout.")
    if h["unproven"]:
        head += (f" Not proven (interval includes 0), not counted: {h['unproven']} campaign(s), "
                 f"{h['unproven_incremental_revenue']:+,.0f} [{h['unproven_incremental_revenue_lower']:+,.0f}, "
                 f"{h['unproven_incremental_revenue_upper']:+,.0f}].")
    return head
