"""Dose-response between contacts per month and purchases or unsubscribes, and over-contact.

Unit: a **customer-month** after the customer's acquisition month, described as of its start
(:mod:`patron.contact.effect.dose_sql`: complete months only, ending with the month of the first
unsubscribe); its **dose** is the number of contacts sent in it (``0, 1, ..., top+``).

**Like with like.** Marketers send more to customers who buy more, and more in busy months, so a
plain comparison of doses mixes the effect of contact with the choice of whom to contact. The
effect of the k-th contact (``gain``) is therefore the Mantel-Haenszel difference in the share of
months with a purchase between dose ``k`` and dose ``k - 1`` *within strata* of customer-months
that were alike at the month start -- same calendar month, same recency band, same band of
months with a purchase, same segment -- with Sato's interval
(:func:`patron.value.intervals.mantel_haenszel_difference`). ``gain_crude`` is the plain
difference, for comparison. A step is **eligible** when both doses hold at least
``dose_min_customer_months`` customer-months in strata that hold both.

**Justified contacts per month.** The k-th contact **pays** when its step is eligible and the lower
bound of its net value ``gain x value_per_purchase - cost_per_contact`` is above 0:
``value_per_purchase`` is the segment's mean revenue of a month with a purchase (or
``[contact_effect] value_per_response``), ``cost_per_contact`` the mean ``[costs]`` cost of the
contacts it was sent. The **paying dose** is the largest ``k`` such that contacts ``1 .. k`` all pay
(0 when the first does not). The **unsubscribe dose** is the first eligible dose ``k >= 2`` from
which on every eligible dose has an unsubscribe rate significantly above that of the contacted
doses below ``k`` (Mantel-Haenszel within the same strata); None when there is none. The
**justified dose** is the paying dose, or the dose before the unsubscribe dose when that is lower;
``justified_contacts`` is its number (infinite when it is the open top dose). Doses above it are
**beyond justified**.

**What it means.** The data are observational: contacts were not assigned at random. Within a
stratum the comparison still assumes that whatever made a customer receive more contacts than an
alike customer is unrelated to whether they would have bought; targeting on anything the strata do
not hold (a browsing signal, an abandoned basket) breaks that. Read ``justified_contacts`` as the
most contacts a month that the history supports, and confirm it with a holdout
(:mod:`patron.contact.effect.lift`). It is not a causal optimum for a customer, nor evidence that
fewer contacts would cost nothing.
"""

from __future__ import annotations

import os

import numpy as np
import pandas as pd

from patron.config import section
from patron.contact.effect.dose_sql import (
    Segments,
    dose_cells_sql,
    dose_labels,
    recent_contacts_sql,
)
from patron.contact.effect.lift import Config
from patron.contact.effect.rules import ContactEffectRules, rules
from patron.data.store import reader, table_exists
from patron.errors import NoDataError
from patron.relationship.profitability import CostRules
from patron.relationship.tiers import TierRules
from patron.value.intervals import (
    mantel_haenszel_difference,
    newcombe_interval,
    wilson_interval,
    z_value,
)

ALL = "all"
"""The segment that covers every customer-month."""

CAVEAT = ("Observational: contact frequencies were not assigned at random. Doses are compared within "
          "customer-months alike at the month start (calendar month, recency, months with a purchase, segment); "
          "targeting on anything else can still bias the estimate. Confirm the justified frequency with a holdout.")
"""What the estimates can and cannot mean, printed with them."""

STRATUM: tuple[str, ...] = ("month", "recency_band", "frequency_band")
"""Columns of the dose cells that, with the segment, define a stratum."""


def _need(con: object, db: object) -> None:
    for name in ("contacts", "transactions"):
        if not table_exists(con, name):  # type: ignore[arg-type]
            raise NoDataError(f"database {db} holds no {name}: ingest them first (patron ingest FILE --kind {name})")


def _settings(config: Config) -> tuple[ContactEffectRules, TierRules, CostRules]:
    return rules(config), section("tiers", TierRules, config), section("costs", CostRules, config)


def dose_cells(db: str | os.PathLike[str] | None = None, *, config: Config = None) -> pd.DataFrame:
    """The per segment, stratum and dose counts behind :func:`dose_response` (SQL,
    :func:`patron.contact.effect.dose_sql.dose_cells_sql`)."""
    r, tiers, costs = _settings(config)
    with reader(db) as con:
        _need(con, db)
        cells = con.execute(dose_cells_sql(top=r.dose_top, segments=r.dose_segments, tiers=tiers, costs=costs)).df()
    if cells.empty:
        raise NoDataError(f"database {db}: no customer-month after a customer's first purchase month to relate contacts to")
    return cells


COUNTS: tuple[str, ...] = ("customer_months", "buying_months", "unsubscribes", "purchases", "purchases_sq", "revenue",
                           "contacts", "contact_cost")
"""Columns of the dose cells summed per stratum and dose."""


def _grids(cells: pd.DataFrame, top: int) -> dict[str, np.ndarray]:
    """Each of :data:`COUNTS` as an array [stratum, dose] (0 where a stratum has no such dose)."""
    sums = cells.groupby(["stratum", "dose"], sort=True)[list(COUNTS)].sum().unstack("dose", fill_value=0)
    return {c: sums[c].reindex(columns=range(top + 1), fill_value=0).to_numpy(dtype=float) for c in COUNTS}


def _leading(mask: np.ndarray) -> int:
    """Number of leading True values."""
    return int(np.argmin(np.r_[mask, False]))


def _unsubscribe_dose(n: np.ndarray, u: np.ndarray, dose_ok: np.ndarray, level: float) -> int:
    """First eligible dose ``k >= 2`` from which on every eligible dose has an unsubscribe rate
    significantly above that of the eligible contacted doses below ``k`` (same strata); -1 if none."""
    top = n.shape[1] - 1
    for k in range(2, top + 1):
        below = dose_ok & (np.arange(top + 1) >= 1) & (np.arange(top + 1) < k)
        above = np.flatnonzero(dose_ok & (np.arange(top + 1) >= k))
        if not dose_ok[k] or not below.any():
            continue
        n0, u0 = n[:, below].sum(axis=1), u[:, below].sum(axis=1)
        _, lo, _, _ = mantel_haenszel_difference(u[:, above].T, n[:, above].T, u0[None, :], n0[None, :], level=level)
        if (lo > 0).all():
            return k
    return -1


def _segment_table(cells: pd.DataFrame, *, top: int, level: float, min_months: int, value_per_purchase: float | None) -> pd.DataFrame:
    """One segment's rows (one per dose) from its cells, which carry a ``stratum`` key."""
    grid = _grids(cells, top)
    n, x, u = grid["customer_months"], grid["buying_months"], grid["unsubscribes"]
    purchases, sq, revenue, contacts, cost = (grid[c] for c in ("purchases", "purchases_sq", "revenue", "contacts", "contact_cost"))
    tn, tx, tu = n.sum(axis=0), x.sum(axis=0), u.sum(axis=0)
    labels = dose_labels(top)
    t = pd.DataFrame({"dose_bin": labels, "bin_order": np.arange(top + 1), "customer_months": tn.astype(np.int64),
                      "buying_months": tx.astype(np.int64), "unsubscribes": tu.astype(np.int64)})
    t["purchase_rate"], t["purchase_rate_lower"], t["purchase_rate_upper"] = wilson_interval(tx, tn, level=level)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = purchases.sum(axis=0) / tn
        var = (sq.sum(axis=0) - tn * mean**2) / (tn - 1.0)
        half = z_value(level) * np.sqrt(np.maximum(var, 0.0) / tn)
        t["contacts_mean"] = contacts.sum(axis=0) / tn
    t["purchases_mean"], t["purchases_lower"], t["purchases_upper"] = mean, mean - half, mean + half
    t["unsubscribe_rate"], t["unsubscribe_rate_lower"], t["unsubscribe_rate_upper"] = wilson_interval(tu, tn, level=level)

    g, lo, hi, _ = mantel_haenszel_difference(x[:, 1:].T, n[:, 1:].T, x[:, :-1].T, n[:, :-1].T, level=level)
    shared1 = (n[:, 1:] * (n[:, :-1] > 0)).sum(axis=0)
    shared0 = (n[:, :-1] * (n[:, 1:] > 0)).sum(axis=0)
    step_ok = (shared1 >= min_months) & (shared0 >= min_months)
    t["gain"], t["gain_lower"], t["gain_upper"] = np.r_[np.nan, g], np.r_[np.nan, lo], np.r_[np.nan, hi]
    crude = newcombe_interval(tx[1:], tn[1:], tx[:-1], tn[:-1], level=level)
    t["gain_crude"], t["gain_crude_lower"], t["gain_crude_upper"] = (np.r_[np.nan, a] for a in crude)
    t["eligible"] = np.r_[tn[0] >= min_months, step_ok]

    buying = tx.sum()
    v = float(value_per_purchase) if value_per_purchase is not None else (float(revenue.sum() / buying) if buying else 0.0)
    c = float(cost.sum() / contacts.sum()) if contacts.sum() > 0 else 0.0
    t["value_per_purchase"], t["cost_per_contact"] = v, c
    t["net_value"], t["net_value_lower"], t["net_value_upper"] = t["gain"] * v - c, t["gain_lower"] * v - c, t["gain_upper"] * v - c
    pays = (t["eligible"] & (t["net_value_lower"] > 0)).to_numpy(copy=True)
    pays[0] = False
    t["pays"] = pays
    paying = _leading(pays[1:])
    base = t["purchase_rate"].iloc[0]
    t["purchase_rate_adjusted"] = base + np.r_[0.0, np.cumsum(g)]

    dose_ok = tn >= min_months
    k = _unsubscribe_dose(n, u, dose_ok, level)
    justified = paying if k < 0 else min(paying, k - 1)
    t["paying_bin"] = labels[paying]
    t["unsubscribe_bin"] = labels[k] if k >= 0 else None
    t["justified_bin"] = labels[justified]
    t["justified_contacts"] = float("inf") if justified == top else float(justified)
    t["beyond_justified"] = (t["bin_order"] > justified) & (t["customer_months"] > 0)
    t["unsubscribe_rise"] = (t["bin_order"] >= k) & dose_ok if k >= 0 else False
    return t


def dose_table(cells: pd.DataFrame, *, top: int = 10, level: float = 0.95, min_customer_months: int = 30,
               value_per_purchase: float | None = None) -> pd.DataFrame:
    """Dose-response per segment (and ``all``) from the cells of :func:`dose_cells` (pure function).

    One row per segment and dose (``dose_bin`` label, ``bin_order`` = contacts, the top one open):
    counts; ``purchase_rate`` (share of customer-months with a purchase, Wilson interval),
    ``purchases_mean`` (normal interval), ``unsubscribe_rate`` (Wilson), ``contacts_mean``;
    ``gain`` (adjusted effect of this dose's contact on the purchase rate, vs one contact fewer) with
    its interval, ``gain_crude`` (unadjusted, Newcombe), ``eligible``, ``value_per_purchase``,
    ``cost_per_contact``, ``net_value`` (with interval), ``pays``, ``purchase_rate_adjusted`` (the
    rate at 0 contacts plus the adjusted gains: a curve to read the effects from, not an observed
    rate); per segment ``paying_bin``, ``unsubscribe_bin``, ``justified_bin``,
    ``justified_contacts``; per dose ``beyond_justified`` and ``unsubscribe_rise``. Definitions in
    the module docstring.
    """
    cells = cells.assign(dose=cells["dose"].astype(int))
    key = cells[STRATUM[0]].astype(str)
    for column in STRATUM[1:]:
        key = key + "|" + cells[column].astype(str)
    out = []
    for segment, part in [(ALL, cells.assign(stratum=cells["segment"].astype(str) + "|" + key)),
                          *((s, g.assign(stratum=key[g.index])) for s, g in cells.groupby("segment", sort=True))]:
        t = _segment_table(part, top=top, level=level, min_months=min_customer_months, value_per_purchase=value_per_purchase)
        t.insert(0, "segment", str(segment))
        out.append(t)
    return pd.concat(out, ignore_index=True)


def dose_response(db: str | os.PathLike[str] | None = None, *, config: Config = None) -> pd.DataFrame:
    """Dose-response and the justified contacts per month, per segment (see :func:`dose_table`
    for the columns and the module docstring for the definitions and what they can mean)."""
    r = rules(config)
    return dose_table(dose_cells(db, config=config), top=r.dose_top, level=r.level,
                      min_customer_months=r.dose_min_customer_months, value_per_purchase=r.value_per_response)


def over_contacted_segments(curves: pd.DataFrame) -> pd.DataFrame:
    """Per segment, from :func:`dose_response`: paying, unsubscribe and justified doses, justified
    contacts per month, customer-months beyond it (count and share), whether unsubscribes rise,
    and ``over_contacted`` (some customer-months beyond the justified dose)."""
    g = curves.assign(months_beyond=curves["customer_months"].where(curves["beyond_justified"], 0))
    agg = g.groupby("segment", sort=True).agg(
        paying_bin=("paying_bin", "first"), unsubscribe_bin=("unsubscribe_bin", "first"),
        justified_bin=("justified_bin", "first"), justified_contacts=("justified_contacts", "first"),
        value_per_purchase=("value_per_purchase", "first"), cost_per_contact=("cost_per_contact", "first"),
        customer_months=("customer_months", "sum"), months_beyond=("months_beyond", "sum"),
        unsubscribe_rise=("unsubscribe_rise", "any"),
    ).reset_index()
    agg["share_beyond"] = agg["months_beyond"] / agg["customer_months"]
    agg["over_contacted"] = agg["months_beyond"] > 0
    return agg


def over_contacted(db: str | os.PathLike[str] | None = None, *, level: str = "customer", config: Config = None) -> pd.DataFrame:
    """Over-contacted customers (``level="customer"``) or segments (``level="segment"``).

    Customers: ``customer_id, segment`` (as of the start of their latest analysed month),
    ``contacts_per_month`` (mean over the latest ``dose_recent_months`` complete months),
    ``justified_contacts`` (of the segment), ``excess`` (contacts per month above it),
    ``unsubscribe_rise`` (the segment's unsubscribes rise with contact) and ``reason``; only
    customers whose contacts per month exceed the justified number, most excessive first.
    """
    if level not in ("customer", "segment"):
        raise ValueError(f"level must be customer or segment; got {level!r}")
    r, tiers, _ = _settings(config)
    segments = over_contacted_segments(dose_response(db, config=config))
    if level == "segment":
        return segments
    seg_kind: Segments = r.dose_segments
    with reader(db) as con:
        recent = con.execute(recent_contacts_sql(recent_months=r.dose_recent_months, top=r.dose_top, segments=seg_kind, tiers=tiers)).df()
    table = segments.set_index("segment")
    seg = recent["segment"].where(recent["segment"].isin(table.index), ALL)
    row = table.reindex(seg)
    recent["justified_contacts"] = row["justified_contacts"].to_numpy(dtype=float)
    recent["unsubscribe_rise"] = row["unsubscribe_rise"].fillna(False).to_numpy(dtype=bool)
    recent["excess"] = recent["contacts_per_month"] - recent["justified_contacts"]
    keep = (recent["excess"] > 0).to_numpy()
    res = recent[keep].copy()
    sub = row[keep].reset_index(drop=True)
    unsub_limits = (sub["unsubscribe_bin"].notna() & (sub["justified_bin"] != sub["paying_bin"])).to_numpy()
    justified = res["justified_contacts"].map("{:g}".format).to_numpy()
    why = np.where(
        unsub_limits,
        "unsubscribes rise from " + sub["unsubscribe_bin"].fillna("").astype(str).to_numpy(dtype=object) + " contacts a month",
        "no contact beyond " + justified.astype(object) + " a month was shown to pay for itself",
    )
    res["reason"] = (
        "receives " + res["contacts_per_month"].round(1).astype(str) + " contacts/month, more than "
        + justified.astype(object) + " justified for segment " + seg[keep].astype(str).to_numpy(dtype=object) + ": " + why
    )
    cols = ["customer_id", "segment", "contacts_per_month", "justified_contacts", "excess", "unsubscribe_rise", "reason"]
    return res.sort_values(["excess", "customer_id"], ascending=[False, True])[cols].reset_index(drop=True)
