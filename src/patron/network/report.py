"""One call for everything ``patron referrals`` shows: per-campaign cascades and K, K by month,
referred vs other customers, referral value, offer limits and the anomalies reported."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Any

import pandas as pd

from patron.errors import InputError, PatronError
from patron.network.cascades import Cascades, cascades
from patron.network.compare import Comparison, compare_referred
from patron.network.viral import campaign_summary, viral_by_month


@dataclass(frozen=True)
class ReferralReport:
    """``campaigns`` (one row per scope), ``months`` (K by month), ``comparison`` (or ``None``
    when it could not be made, with the reason in ``note``), ``offers`` (limit checks per
    acquisition) and the ``cascades`` themselves."""

    campaigns: pd.DataFrame
    months: pd.DataFrame
    comparison: Comparison | None
    offers: pd.DataFrame
    cascades: Cascades
    note: str = ""

    def to_dict(self, *, top: int = 10) -> dict[str, Any]:
        """Plain data for ``--json`` (NaN as ``None``; the ``top`` referrers by referral value)."""
        def records(frame: pd.DataFrame) -> list[dict[str, Any]]:
            rows = frame.astype(object).where(frame.notna(), None).to_dict(orient="records")
            return [{k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in r.items()} for r in rows]

        offers = self.offers
        offer_counts = (
            offers.groupby("offer_id")[["within_window", "within_quota", "invitation_ok", "inside_limits"]].sum().reset_index()
            if not offers.empty else pd.DataFrame()
        )
        return {
            "campaigns": records(self.campaigns),
            "months": records(self.months),
            "comparison": records(self.comparison.differences) if self.comparison is not None else None,
            "top_referrers": records(self.comparison.referral_value.head(top)) if self.comparison is not None else None,
            "offers": records(offer_counts),
            "anomalies": records(self.cascades.anomalies.groupby("reason").size().rename("count").reset_index()),
            "note": self.note or None,
        }


def referral_report(
    db: str | os.PathLike[str] | None = None, *, campaign: str | None = None, config: Any = None, compare: bool = True
) -> ReferralReport:
    """Cascades, K and amplification per campaign (``campaign``: only that one, besides ``(all)``
    when not given), K by month, and, with ``compare``, referred vs other customers."""
    c = cascades(db, config=config)
    if campaign is not None and campaign not in set(c.trees["scope"]):
        known = ", ".join(sorted(set(c.trees["scope"]) - {"(all)"})) or "none"
        raise InputError(f"campaign {campaign!r} has no referrals; campaigns are: {known}", parameters=("campaign",))
    comparison, note = None, ""
    if compare:
        try:
            comparison = compare_referred(db, cascade=c)
            note = comparison.note
        except PatronError as exc:
            note = f"referred vs other customers not compared: {exc}"
    offers = c.offers if campaign is None else c.offers[c.offers["offer_id"] == campaign]
    return ReferralReport(
        campaigns=campaign_summary(c, campaign=campaign), months=viral_by_month(c, campaign=campaign),
        comparison=comparison, offers=offers, cascades=c, note=note,
    )
