"""Referral estimates on simulated branching processes with a known truth.

The truth comes from the branching process itself (closed forms written out here, independently
of the code under test): with invitations ``N ~ Poisson(mu)`` per customer and conversion ``p``,
invitations per sharer ``= mu / (1 - e^-mu)``, ``K = p mu / (1 - e^-mu)``, offspring mean
``m = p mu``, and a sharing seed's expected cascade size ``1 + K (1 + m + ... + m^(G-1))``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from patron.data.ingest import ingest
from patron.data.store import connect
from patron.network import campaign_summary, cascades, compare_referred, simulate_referrals

MIN_COVERED = 16
"""Of 20 replicate simulations, at least this many 95% intervals must cover the truth
(P(fewer than 16 of 20) is 0.3% when the intervals are right)."""


def _store(path, referrals, transactions=None):
    """Write simulated frames straight into the contract tables (validated ingest is tested below)."""
    with connect(path) as con:
        con.register("_r", referrals)
        con.execute("INSERT INTO referrals (referral_id, referrer_id, referred_id, campaign_id, occurred_at, kind) "
                    "SELECT CAST(row_number() OVER () AS VARCHAR), referrer_id, referred_id, campaign_id, occurred_at, kind FROM _r")
        if transactions is not None:
            con.register("_t", transactions)
            con.execute("INSERT INTO transactions (customer_id, order_id, occurred_at, amount) "
                        "SELECT customer_id, CAST(row_number() OVER () AS VARCHAR), occurred_at, amount FROM _t")
    return path


def _truth(mu, p, generations, dispersion=None):
    p0 = np.exp(-mu) if dispersion is None else (dispersion / (dispersion + mu)) ** dispersion
    k = p * mu / (1 - p0)
    m = p * mu
    return k, 1 + k * sum(m**j for j in range(generations))


def test_k_and_amplification_cover_the_truth(tmp_path):
    """20 independent replicates, stored as 20 campaigns of one database (people ids kept apart)."""
    k_true, amp_true = _truth(1.5, 0.4, 8)
    frames = []
    for rep in range(20):
        sim = simulate_referrals(n_seeds=800, invitations_mean=1.5, conversion=0.4, generations=8, observation_days=5000,
                                 share_delay_days=3, convert_delay_days=2, campaign_id=f"rep{rep}", seed=100 + rep)
        assert sim.truth["k"] == pytest.approx(k_true) and sim.truth["amplification"] == pytest.approx(amp_true)
        r = sim.referrals
        frames.append(r.assign(referrer_id=f"{rep}:" + r["referrer_id"], referred_id=f"{rep}:" + r["referred_id"]))
    summary = campaign_summary(cascades(_store(str(tmp_path / "reps.duckdb"), pd.concat(frames, ignore_index=True))))
    reps = summary[summary["scope"].str.startswith("rep")]
    assert len(reps) == 20 and (reps["generations"] <= 8).all()
    covered_k = ((reps["k_lower"] <= k_true) & (k_true <= reps["k_upper"])).sum()
    covered_amp = ((reps["amplification_lower"] <= amp_true) & (amp_true <= reps["amplification_upper"])).sum()
    assert covered_k >= MIN_COVERED, covered_k
    assert covered_amp >= MIN_COVERED, covered_amp


def test_negative_binomial_offspring_and_validated_ingest(tmp_path):
    """A larger overdispersed process through the validated ingest: estimates inside their intervals."""
    k_true, amp_true = _truth(2.0, 0.3, 12, dispersion=1.5)
    sim = simulate_referrals(n_seeds=3000, invitations_mean=2.0, dispersion=1.5, conversion=0.3, generations=12,
                             observation_days=5000, share_delay_days=3, convert_delay_days=2, seed=7)
    db = str(tmp_path / "nb.duckdb")
    result = ingest(sim.referrals, kind="referrals", db=db)
    assert result.rejected == 0
    row = campaign_summary(cascades(db)).set_index("scope").loc["sim"]
    assert row.k_lower <= k_true <= row.k_upper
    assert row.amplification_lower <= amp_true <= row.amplification_upper
    assert row.conversion_per_invitation_lower <= 0.3 <= row.conversion_per_invitation_upper
    # intervals narrow enough to mean something: half-width below 10% of the value
    assert (row.k_upper - row.k_lower) / 2 < 0.1 * row.k


@pytest.mark.parametrize("multiplier", [2.0, 0.4])
def test_referred_customers_buying_at_a_known_rate_are_detected(tmp_path, multiplier):
    sim = simulate_referrals(n_seeds=500, invitations_mean=2.0, conversion=0.35, generations=6, n_organic=1500,
                             purchase_rate=0.15, purchase_multiplier=multiplier, observation_days=400,
                             share_delay_days=20, convert_delay_days=5, seed=11)
    db = _store(str(tmp_path / "cmp.duckdb"), sim.referrals, sim.transactions)
    diff = compare_referred(db).differences.set_index("metric")
    sign = np.sign(multiplier - 1.0)
    for metric in ("purchase_rate", "clv"):
        d = diff.loc[metric]
        assert np.sign(d.difference) == sign, (metric, d.to_dict())
        assert (d.lower > 0) if sign > 0 else (d.upper < 0), (metric, d.to_dict())
    # purchase rate ratio: referred / other is the multiplier (sampling error aside)
    pr = diff.loc["purchase_rate"]
    assert pr.referred / pr.other == pytest.approx(multiplier, rel=0.2)


def test_no_difference_gives_an_interval_around_zero(tmp_path):
    sim = simulate_referrals(n_seeds=500, invitations_mean=2.0, conversion=0.35, generations=6, n_organic=1500,
                             purchase_rate=0.15, purchase_multiplier=1.0, observation_days=400,
                             share_delay_days=20, convert_delay_days=5, seed=12)
    db = _store(str(tmp_path / "same.duckdb"), sim.referrals, sim.transactions)
    comparison = compare_referred(db)
    d = comparison.differences.set_index("metric").loc["purchase_rate"]
    assert d.lower < 0 < d.upper
    months = pd.to_datetime(comparison.customers["first_purchase"]).dt.to_period("M")
    assert months.groupby(comparison.customers["referred"]).nunique().nunique() == 1  # same months on both sides
