"""Per-campaign cascade figures and the viral coefficient K with intervals.

* ``K = (invitations per sharer) x (conversions per invitation) = conversions / sharers``; its
  interval is the normal (CLT) interval of the mean conversions per sharer, sharers being the
  independent units; ``conversion_per_invitation`` is a ratio with a delta-method interval.
* ``amplification = customers in cascades / seeds`` = the mean cascade size, CLT interval over
  cascades (seeds are independent).
* ``viral_cycle_days``: median days from a customer's acquisition (a seed's first purchase) to the
  acquisition of the people they brought.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from patron.network.cascades import Cascades, days_between
from patron.network.stats import mean_from_sums, ratio_from_sums

ANOMALY_REASONS: tuple[str, ...] = ("self_referral", "already_customer", "duplicate_claim", "cycle")
"""Why a referral is reported and not counted as an acquisition."""


def _k_columns(sums: pd.DataFrame, level: float) -> pd.DataFrame:
    """K, invitations per sharer and conversion per invitation (with intervals) from the sums."""
    rows = []
    for r in sums.itertuples(index=False):  # one row per scope (or scope and month), not per customer
        k = mean_from_sums(r.n, r.c, r.cc, level=level)
        ips = mean_from_sums(r.n, r.i, r.ii, level=level)
        cpi = ratio_from_sums(r.n, r.c, r.i, r.cc, r.ii, r.ci, level=level)
        rows.append({
            "sharers": int(r.n), "invitations": int(r.i), "conversions": int(r.c),
            "invitations_per_sharer": ips.value, "conversion_per_invitation": cpi.value,
            "conversion_per_invitation_lower": cpi.lower, "conversion_per_invitation_upper": cpi.upper,
            "k": k.value, "k_lower": k.lower, "k_upper": k.upper,
        })
    return pd.DataFrame(rows, index=sums.index)


def viral_by_month(c: Cascades, *, campaign: str | None = None) -> pd.DataFrame:
    """K per scope and calendar month of the invitation (a conversion is dated by its first touch)."""
    sums = c.sharers_by_month
    if campaign is not None:
        sums = sums[sums["scope"] == campaign]
    sums = sums.reset_index(drop=True)
    return pd.concat([sums[["scope", "month"]], _k_columns(sums, c.rules.level)], axis=1)


def _cycle_days(nodes: pd.DataFrame) -> pd.Series:
    """Median viral cycle time per scope, in days."""
    child = nodes[nodes["depth"] > 0][["scope", "parent_id", "acquired_at"]]
    parents = nodes[["scope", "customer_id", "acquired_at"]].rename(columns={"customer_id": "parent_id", "acquired_at": "parent_acquired"})
    pairs = child.merge(parents, on=["scope", "parent_id"], how="left")
    pairs["days"] = days_between(pairs["acquired_at"], pairs["parent_acquired"])
    return pairs.groupby("scope")["days"].median()


def campaign_summary(c: Cascades, *, campaign: str | None = None) -> pd.DataFrame:
    """One row per scope (``(all)`` and each campaign): seeds, reach, generations, cascade sizes,
    structural virality, time to convert, viral cycle time, K and amplification with intervals,
    and the anomalies reported."""
    level = c.rules.level
    trees, nodes = c.trees, c.nodes
    if campaign is not None:
        trees, nodes = trees[trees["scope"] == campaign], nodes[nodes["scope"] == campaign]
    if trees.empty:
        return pd.DataFrame()
    g = trees.groupby("scope")
    out = pd.DataFrame({
        "seeds": g.size(),
        "reach": g["size"].sum(),
        "generations": g["generations"].max(),
        "mean_cascade_size": g["size"].mean(),
        "max_cascade_size": g["size"].max(),
        "structural_virality": g["structural_virality"].mean(),
        "max_structural_virality": g["structural_virality"].max(),
    })
    out["referred"] = out["reach"] - out["seeds"]
    dist = trees.groupby(["scope", "size"]).size()
    out["size_distribution"] = [{int(k): int(v) for k, v in dist.loc[s].items()} for s in out.index]
    sq = trees.assign(sq=trees["size"].astype(float) ** 2).groupby("scope")["sq"].sum()
    amp = [mean_from_sums(out.at[s, "seeds"], out.at[s, "reach"], sq[s], level=level) for s in out.index]
    out["amplification"] = [a.value for a in amp]
    out["amplification_lower"] = [a.lower for a in amp]
    out["amplification_upper"] = [a.upper for a in amp]
    referred = nodes[nodes["depth"] > 0]
    out["median_days_to_convert"] = days_between(referred["acquired_at"], referred["first_touch"]).groupby(referred["scope"]).median()
    bought = referred[referred["first_purchase"] >= referred["first_touch"]]
    out["median_days_to_first_purchase"] = days_between(bought["first_purchase"], bought["first_touch"]).groupby(bought["scope"]).median()
    out["viral_cycle_days"] = _cycle_days(nodes)
    sums = c.sharers.set_index("scope")
    out = out.join(_k_columns(sums, level), how="left")
    anomalies = c.anomalies.assign(scope=c.anomalies["campaign_id"].fillna("(none)"))
    counts = pd.concat([anomalies, anomalies.assign(scope="(all)")]).groupby(["scope", "reason"]).size()
    for reason in ANOMALY_REASONS:
        per_scope = counts.xs(reason, level="reason") if reason in counts.index.get_level_values("reason") else pd.Series(dtype=float)
        out[reason] = per_scope.reindex(out.index).fillna(0).astype(np.int64)
    out.index.name = "scope"
    order = ["(all)", *sorted(s for s in out.index if s != "(all)")]
    return out.reindex([s for s in order if s in out.index]).reset_index()
