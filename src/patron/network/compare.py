"""Do referred customers behave differently? And what is each customer's referral value?

Referred customers (acquired through an acquisition edge) are compared with the other customers
whose first purchase fell in the **same calendar months** (months holding both groups), so that
both groups had about the same time to buy again. Metrics, per customer:

* ``repeat_rate``: share with at least one repeat purchase (``frequency > 0``), Newcombe interval;
* ``purchase_rate``: repeat purchases per week of tenure (``frequency / T``), Welch t interval;
* ``clv`` and ``probability_alive``: BG/NBD + Gamma-Gamma (``patron.value.scoring.score``), Welch;
* ``discount_order_share``: share of orders with a discount, when discount data exist, Welch.

Values come from the ``customer_profiles`` table when it exists, else from
``patron.summary(db, period="W")`` and ``patron.value.scoring.score``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from patron.data.store import reader, table_exists
from patron.errors import PatronError
from patron.network.cascades import Cascades, cascades
from patron.network.rules import ReferralRules, referral_rules
from patron.network.sql import ALL
from patron.network.stats import newcombe, welch
from patron.settings import get_settings

METRICS: tuple[str, ...] = ("repeat_rate", "purchase_rate", "clv", "probability_alive", "discount_order_share")
"""Metrics compared between referred and other customers, in report order."""

PROFILE_COLUMNS = ("customer_id", "first_purchase", "frequency", "T", "clv", "probability_alive", "discount_order_share")


@dataclass(frozen=True)
class Comparison:
    """``differences``: one row per metric (referred minus others, interval at ``level``);
    ``customers``: the compared customers with ``referred`` and ``acquisition_month``;
    ``referral_value``: one row per referrer; ``note``: why a metric is missing, if one is."""

    differences: pd.DataFrame
    customers: pd.DataFrame
    referral_value: pd.DataFrame
    note: str = ""


def _columns(con: Any, table: str) -> set[str]:
    rows = con.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_name = ? AND table_schema = 'main' "
        "AND table_catalog = current_database()",
        [table],
    ).fetchall()
    return {r[0] for r in rows}


def customer_metrics(db: str | os.PathLike[str] | None = None, *, rules: ReferralRules | None = None) -> tuple[pd.DataFrame, str]:
    """Per-customer ``first_purchase, frequency, T, clv, probability_alive, discount_order_share``
    (weeks; NaN where unavailable) and a note saying what could not be computed."""
    rules = rules or ReferralRules()
    path = db if db is not None else get_settings().db
    note = ""
    with reader(path) as con:
        if table_exists(con, "customer_profiles") and set(PROFILE_COLUMNS[:5]) <= _columns(con, "customer_profiles"):
            have = _columns(con, "customer_profiles")
            cols = ", ".join(c if c in have else f"CAST(NULL AS DOUBLE) AS {c}" for c in PROFILE_COLUMNS)
            return con.execute(f"SELECT {cols} FROM customer_profiles WHERE first_purchase IS NOT NULL").df(), note
        if not table_exists(con, "transactions"):
            return pd.DataFrame(columns=list(PROFILE_COLUMNS)), "no transactions"
        discount = con.execute(
            "SELECT customer_id, avg(CASE WHEN discount > 0 THEN 1.0 ELSE 0.0 END) AS discount_order_share FROM transactions "
            "WHERE amount > 0 GROUP BY customer_id HAVING count(discount) > 0").df()
    from patron.value.scoring import score
    from patron.value.summary import summary

    summ = summary(path, period="W")
    frame = summ[["customer_id", "first_purchase", "frequency", "T"]].copy()
    try:
        scored = score(summ, period="W", horizon=rules.clv_horizon_weeks, discount_rate=rules.annual_discount_rate).customers
        frame = frame.merge(scored[["customer_id", "clv", "probability_alive"]], on="customer_id", how="left")
    except (PatronError, ValueError, RuntimeError, np.linalg.LinAlgError) as exc:
        frame["clv"], frame["probability_alive"] = np.nan, np.nan
        note = f"CLV and P(alive) not available: {exc}"
    return frame.merge(discount, on="customer_id", how="left"), note


def _differences(customers: pd.DataFrame, level: float) -> pd.DataFrame:
    ref, oth = customers[customers["referred"]], customers[~customers["referred"]]
    rows = []
    for metric in METRICS:
        a, b = ref[metric].to_numpy(dtype=float), oth[metric].to_numpy(dtype=float)
        a, b = a[np.isfinite(a)], b[np.isfinite(b)]
        if metric == "repeat_rate":
            est = newcombe(a.sum(), len(a), b.sum(), len(b), level=level)
        else:
            est = welch(a, b, level=level)
        rows.append({
            "metric": metric, "n_referred": len(a), "n_other": len(b),
            "referred": float(a.mean()) if len(a) else np.nan, "other": float(b.mean()) if len(b) else np.nan,
            "difference": est.value, "lower": est.lower, "upper": est.upper, "level": level, "method": est.method,
        })
    return pd.DataFrame(rows)


def referral_value(c: Cascades, clv: pd.Series) -> pd.DataFrame:
    """Per referrer: people brought directly and in all, and their CLV discounted by generation
    (a customer at distance g counts ``generation_discount ** (g - 1)`` times), over all campaigns.

    ``clv`` is indexed by ``customer_id``; people without one count 0."""
    nodes = c.nodes[c.nodes["scope"] == ALL].reset_index(drop=True)
    cols = ["customer_id", "direct_referred", "total_referred", "direct_value", "referral_value"]
    if nodes.empty:
        return pd.DataFrame(columns=cols)
    index = pd.Series(np.arange(len(nodes)), index=nodes["customer_id"])
    parent = index.reindex(nodes["parent_id"].fillna("\x00")).fillna(-1).to_numpy(dtype=np.int64)
    value = clv.reindex(nodes["customer_id"]).fillna(0.0).to_numpy(dtype=float)
    total = np.zeros(len(nodes))
    direct = np.bincount(parent[parent >= 0], weights=value[parent >= 0], minlength=len(nodes))
    ancestor, weight = parent.copy(), 1.0
    while (ancestor >= 0).any():  # one pass per generation
        live = ancestor >= 0
        total += np.bincount(ancestor[live], weights=value[live] * weight, minlength=len(nodes))
        ancestor = np.where(live, parent[np.maximum(ancestor, 0)], -1)
        weight *= c.rules.generation_discount
    out = pd.DataFrame({
        "customer_id": nodes["customer_id"], "direct_referred": np.bincount(parent[parent >= 0], minlength=len(nodes)),
        "total_referred": nodes["subtree_size"].to_numpy(dtype=np.int64) - 1, "direct_value": direct, "referral_value": total,
    })
    return out[out["total_referred"] > 0].sort_values(["referral_value", "customer_id"], ascending=[False, True]).reset_index(drop=True)


def compare_referred(
    db: str | os.PathLike[str] | None = None,
    *,
    config: Any = None,
    cascade: Cascades | None = None,
    metrics: pd.DataFrame | None = None,
) -> Comparison:
    """Referred vs other customers acquired in the same months, and the referral value per referrer.

    ``cascade`` and ``metrics`` (as :func:`customer_metrics` returns) may be given to avoid
    recomputing them.
    """
    rules = cascade.rules if cascade is not None else referral_rules(config)
    c = cascade if cascade is not None else cascades(db, config=rules)
    note = ""
    if metrics is None:
        metrics, note = customer_metrics(db, rules=rules)
    frame = metrics.copy()
    referred = set(c.nodes.loc[(c.nodes["scope"] == ALL) & (c.nodes["depth"] > 0), "customer_id"])
    frame["referred"] = frame["customer_id"].isin(referred)
    frame["acquisition_month"] = pd.to_datetime(frame["first_purchase"]).dt.to_period("M").astype(str)
    both = frame.groupby("acquisition_month")["referred"].agg(["min", "max"])
    months = both.index[(both["min"] == False) & (both["max"] == True)]  # noqa: E712  (pandas booleans)
    frame = frame[frame["acquisition_month"].isin(months)].copy()
    frame["repeat_rate"] = (frame["frequency"] > 0).astype(float)
    with np.errstate(divide="ignore", invalid="ignore"):
        frame["purchase_rate"] = np.where(frame["T"] > 0, frame["frequency"] / frame["T"], np.nan)
    for col in ("clv", "probability_alive", "discount_order_share"):
        frame[col] = pd.to_numeric(frame[col], errors="coerce") if col in frame else np.nan
    clv = metrics.set_index("customer_id")["clv"] if "clv" in metrics else pd.Series(dtype=float)
    return Comparison(
        differences=_differences(frame, rules.level), customers=frame.reset_index(drop=True),
        referral_value=referral_value(c, pd.to_numeric(clv, errors="coerce")), note=note,
    )
