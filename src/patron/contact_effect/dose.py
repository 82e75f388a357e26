"""Dose-response between contact frequency and purchases or unsubscribes, and over-contact.

Unit of analysis: a **customer-month** (calendar month, UTC) from the month of the customer's first
event (purchase or contact) to the last month in the data, ending with the month of their first
unsubscribe. Its **dose** is the number of ``sent`` contacts (holdout records excluded) in the
month, binned ``0, 1, 2, 3-4, 5-8, 9+``; its responses are whether the customer bought in the month
and whether they unsubscribed in it.

**Segments**: ``customer_profiles.<segment_column>`` (``[contact_effect] segment_column``, default
``value_tier``) when that table and column exist, else the band of purchases the customer made
before the month (``0``, ``1``, ``2-4``, ``5+ prior purchases``). Every table also has segment ``all``.

Only bins with at least ``dose_min_customer_months`` customer-months (*eligible*) enter the tests;
"significantly above" means the lower bound of the Newcombe interval of the difference is > 0.

* **Saturation bin**: the lowest eligible bin ``s`` such that no higher eligible bin has a purchase
  rate significantly above that of ``s``: more contacts bring no purchase response that the data
  can tell from none.
* **Unsubscribe bin**: the first eligible bin with at least one contact from which on every
  eligible bin has an unsubscribe rate significantly above the pooled rate of the eligible bins
  below it (a sustained rise; None when there is none).
* **Justified bin**: the saturation bin, or the last eligible bin before the unsubscribe bin when
  that is lower. Its top is the **justified number of contacts per month**; bins above it are
  **beyond justified**.

A segment is **over-contacted** when some of its customer-months are beyond the justified bin; a
customer is when their mean contacts per month over the latest ``dose_recent_months`` months
exceeds the justified number of their segment (of ``all`` when their segment has no eligible bin).

The curves are associations: unless contacts were assigned at random, customers who buy more may
also be contacted more. Campaign holdouts (:mod:`patron.contact_effect.lift`) measure causal effects.
"""

from __future__ import annotations

import os

import numpy as np
import pandas as pd

from patron.contact_effect.lift import Config
from patron.contact_effect.rules import ContactEffectRules, rules
from patron.contact_effect.sql import DOSE_BINS, dose_sql, recent_contacts_sql
from patron.contact_effect.stats import newcombe_interval, wilson_interval, z_value
from patron.errors import NoDataError
from patron.store import reader, table_exists

BIN_TOP: dict[str, float] = {name: (float(hi) if hi is not None else float("inf")) for name, _, hi in DOSE_BINS}
"""Most contacts per month in each bin (``inf`` for the open top bin)."""


def _profile_segment(con: object, column: str) -> str | None:
    if not table_exists(con, "customer_profiles"):  # type: ignore[arg-type]
        return None
    rows = con.execute(  # type: ignore[attr-defined]
        "SELECT count(*) FROM information_schema.columns WHERE table_name = 'customer_profiles' AND column_name = ? "
        "AND table_schema = 'main' AND table_catalog = current_database()",
        [column],
    ).fetchall()
    return column if rows[0][0] else None


def _need(con: object, db: object) -> None:
    for name in ("contacts", "transactions"):
        if not table_exists(con, name):  # type: ignore[arg-type]
            raise NoDataError(f"database {db} holds no {name}: ingest them first (patron ingest FILE --kind {name})")


def _first(mask: np.ndarray) -> int:
    idx = np.flatnonzero(mask)
    return int(idx[0]) if len(idx) else -1


def _unsubscribe_bin(order: np.ndarray, ok: np.ndarray, n: np.ndarray, u: np.ndarray, level: float) -> int:
    """Position of the first contacted eligible bin ``c`` such that every eligible bin from ``c`` up
    has an unsubscribe rate significantly above the pooled rate of the eligible bins below ``c``;
    -1 when there is none."""
    pos = np.arange(len(n))
    for c in np.flatnonzero(ok & (order >= 1)):
        below = ok & (pos < c)
        if not below.any():
            continue
        upper = ok & (pos >= c)
        _, lo, _ = newcombe_interval(u[upper], n[upper], u[below].sum(), n[below].sum(), level=level)
        if (lo > 0).all():
            return int(c)
    return -1


def saturation(curves: pd.DataFrame, *, level: float = 0.95, min_customer_months: int = 30) -> pd.DataFrame:
    """Add the over-contact analysis to per-segment, per-bin counts (pure function).

    ``curves`` has ``segment, dose_bin, bin_order, customer_months, buying_months, unsubscribes``.
    Adds, per row: ``eligible`` (at least ``min_customer_months``); per segment:
    ``saturation_bin`` (purchases), ``unsubscribe_bin`` (first bin where unsubscribes rise, or
    None), ``justified_bin`` and ``justified_contacts`` (its top, contacts per month); per bin:
    ``beyond_justified`` (a bin above the justified one, with data) and ``unsubscribe_rise``
    (at or above ``unsubscribe_bin``). Definitions in the module docstring.
    """
    out = []
    for _, g in curves.sort_values(["segment", "bin_order"]).groupby("segment", sort=True):
        g = g.copy()
        pos = np.arange(len(g))
        ok = (g["customer_months"] >= min_customer_months).to_numpy()
        n, x, u = (g[c].to_numpy(dtype=float) for c in ("customer_months", "buying_months", "unsubscribes"))
        # pairwise: is bin j's purchase rate significantly above bin i's? (lower bound > 0)
        _, lo, _ = newcombe_interval(x[None, :], n[None, :], x[:, None], n[:, None], level=level)
        above = (lo > 0) & ok[None, :] & ok[:, None] & (pos[None, :] > pos[:, None])
        s = _first(ok & ~above.any(axis=1))
        k = _unsubscribe_bin(g["bin_order"].to_numpy(), ok, n, u, level)
        j = s if k < 0 else min(s, int(np.flatnonzero(ok & (pos < k))[-1]))
        labels = g["dose_bin"].astype(str).to_numpy()
        g["eligible"] = ok
        g["saturation_bin"] = labels[s] if s >= 0 else None
        g["unsubscribe_bin"] = labels[k] if k >= 0 else None
        g["justified_bin"] = labels[j] if j >= 0 else None
        g["justified_contacts"] = BIN_TOP[labels[j]] if j >= 0 else np.nan
        g["beyond_justified"] = (pos > j) & (n > 0) if j >= 0 else False
        g["unsubscribe_rise"] = (pos >= k) & ok if k >= 0 else False
        out.append(g)
    return pd.concat(out, ignore_index=True) if out else curves


def dose_response(db: str | os.PathLike[str] | None = None, *, config: Config = None) -> pd.DataFrame:
    """Purchases and unsubscribes by contacts received per customer-month, per segment.

    Returns one row per segment (including ``all``) and contact bin: ``customer_months``,
    ``buying_months``, ``purchase_rate`` (share of customer-months with a purchase) with Wilson
    interval, ``purchases_mean`` (purchases per customer-month) with a t interval,
    ``unsubscribe_rate`` with Wilson interval, ``contacts_mean``, ``gain`` (purchase rate minus the
    previous bin's) with Newcombe interval, and the saturation columns of :func:`saturation`.
    """
    r = rules(config)
    with reader(db) as con:
        _need(con, db)
        seg = _profile_segment(con, r.segment_column)
        curves = con.execute(dose_sql(profile_segment=seg)).df()
    if curves.empty:
        raise NoDataError(f"database {db}: no contacts or transactions to relate")
    return _intervals(curves, r)


def _intervals(curves: pd.DataFrame, r: ContactEffectRules) -> pd.DataFrame:
    c = curves.sort_values(["segment", "bin_order"]).reset_index(drop=True)
    n = c["customer_months"].to_numpy(dtype=float)
    x = c["buying_months"].to_numpy(dtype=float)
    u = c["unsubscribes"].to_numpy(dtype=float)
    c["purchase_rate"], c["purchase_rate_lower"], c["purchase_rate_upper"] = wilson_interval(x, n, level=r.level)
    half = z_value(r.level) * np.sqrt(c["purchases_var"].fillna(0.0).to_numpy() / n)
    c["purchases_lower"], c["purchases_upper"] = c["purchases_mean"] - half, c["purchases_mean"] + half
    c["unsubscribe_rate"], c["unsubscribe_rate_lower"], c["unsubscribe_rate_upper"] = wilson_interval(u, n, level=r.level)
    prev_same = c["segment"].eq(c["segment"].shift(1)).to_numpy()
    xp, np_ = np.r_[np.nan, x[:-1]], np.r_[np.nan, n[:-1]]
    d, lo, hi = newcombe_interval(x, n, xp, np_, level=r.level)
    c["gain"], c["gain_lower"], c["gain_upper"] = (np.where(prev_same, a, np.nan) for a in (d, lo, hi))
    c = c.drop(columns=["purchases_var"])
    return saturation(c, level=r.level, min_customer_months=r.dose_min_customer_months)


def over_contacted_segments(curves: pd.DataFrame) -> pd.DataFrame:
    """Per segment, from :func:`dose_response`: saturation, unsubscribe and justified bins,
    justified contacts per month, customer-months beyond it (count and share), whether
    unsubscribes rise, and ``over_contacted`` (some customer-months beyond the justified bin)."""
    g = curves.assign(months_beyond=curves["customer_months"].where(curves["beyond_justified"], 0))
    agg = g.groupby("segment", sort=True).agg(
        saturation_bin=("saturation_bin", "first"), unsubscribe_bin=("unsubscribe_bin", "first"),
        justified_bin=("justified_bin", "first"), justified_contacts=("justified_contacts", "first"),
        customer_months=("customer_months", "sum"), months_beyond=("months_beyond", "sum"),
        unsubscribe_rise=("unsubscribe_rise", "any"),
    ).reset_index()
    agg["share_beyond"] = agg["months_beyond"] / agg["customer_months"]
    agg["over_contacted"] = agg["months_beyond"] > 0
    return agg


def over_contacted(db: str | os.PathLike[str] | None = None, *, level: str = "customer", config: Config = None) -> pd.DataFrame:
    """Over-contacted customers (``level="customer"``) or segments (``level="segment"``).

    Customers: ``customer_id, segment, contacts_per_month`` (mean over the latest
    ``dose_recent_months`` months), ``justified_contacts`` (of the segment; of ``all`` when the
    segment has no eligible bin), ``excess`` (contacts per month above it), ``unsubscribe_rise``
    (the segment's unsubscribes rise with contact) and ``reason``; only
    customers whose contacts per month exceed the justified number, most excessive first.
    """
    if level not in ("customer", "segment"):
        raise ValueError(f"level must be customer or segment; got {level!r}")
    r = rules(config)
    segments = over_contacted_segments(dose_response(db, config=config))
    if level == "segment":
        return segments
    with reader(db) as con:
        seg = _profile_segment(con, r.segment_column)
        recent = con.execute(recent_contacts_sql(recent_months=r.dose_recent_months, profile_segment=seg)).df()
    table = segments.set_index("segment")
    known = table["justified_contacts"].notna()
    seg = recent["segment"].where(recent["segment"].isin(table.index[known]), "all")
    row = table.reindex(seg)
    recent["justified_contacts"] = row["justified_contacts"].to_numpy(dtype=float)
    recent["unsubscribe_rise"] = row["unsubscribe_rise"].fillna(False).to_numpy(dtype=bool)
    recent["excess"] = recent["contacts_per_month"] - recent["justified_contacts"]
    keep = (recent["excess"] > 0).to_numpy()
    res = recent[keep].copy()
    sub = row[keep].reset_index(drop=True)
    unsub_limits = (sub["unsubscribe_bin"].notna() & (sub["justified_bin"] != sub["saturation_bin"])).to_numpy()
    justified = res["justified_contacts"].map("{:g}".format).to_numpy()
    why = np.where(
        unsub_limits,
        "unsubscribes rise from " + sub["unsubscribe_bin"].fillna("").astype(str).to_numpy(dtype=object) + " contacts a month",
        "purchases do not rise significantly beyond " + justified.astype(object),
    )
    res["reason"] = (
        "receives " + res["contacts_per_month"].round(1).astype(str) + " contacts/month, more than "
        + justified.astype(object) + " justified for segment " + seg[keep].astype(str).to_numpy(dtype=object) + ": " + why
    )
    cols = ["customer_id", "segment", "contacts_per_month", "justified_contacts", "excess", "unsubscribe_rise", "reason"]
    return res.sort_values(["excess", "customer_id"], ascending=[False, True])[cols].reset_index(drop=True)
