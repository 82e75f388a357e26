"""Simulated referral cascades with a known truth: a Galton-Watson branching process.

Each customer sends ``N`` invitations, ``N ~ Poisson(invitations_mean)`` or, with ``dispersion``
``k``, negative binomial with mean ``invitations_mean`` and variance ``mean + mean^2 / k``; each
invitation converts independently with probability ``conversion``. Seeds start the cascades;
people brought at depth ``generations`` invite no one. Every customer buys at acquisition, then
repeats as a Poisson process with a Gamma-distributed weekly rate, multiplied by
``purchase_multiplier`` for referred customers. Organic customers (not referred) are acquired over
the first ``organic_days``.

The known truth (:attr:`SimulatedReferrals.truth`) follows from the branching process: with
``P0 = P(N = 0)`` and ``m = invitations_mean x conversion``, invitations per sharer
``= invitations_mean / (1 - P0)``, ``K = that x conversion``, and the expected cascade size of a
seed that shares, ``amplification = 1 + K (1 + m + ... + m^(generations - 1))``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from patron.constants import DAYS_PER_WEEK


@dataclass(frozen=True)
class SimulatedReferrals:
    """``referrals`` and ``transactions`` frames in the shape of the contract, and the ``truth``."""

    referrals: pd.DataFrame
    transactions: pd.DataFrame
    truth: dict[str, float]


def branching_truth(invitations_mean: float, conversion: float, generations: int, dispersion: float | None = None) -> dict[str, float]:
    """Invitations per sharer, K, offspring mean and amplification of the branching process."""
    p0 = np.exp(-invitations_mean) if dispersion is None else (dispersion / (dispersion + invitations_mean)) ** dispersion
    per_sharer = invitations_mean / (1.0 - p0)
    k = per_sharer * conversion
    m = invitations_mean * conversion
    return {
        "invitations_per_sharer": float(per_sharer), "conversion_per_invitation": float(conversion), "k": float(k),
        "offspring_mean": float(m), "amplification": float(1.0 + k * sum(m**j for j in range(generations))),
    }


def _ids(prefix: str, first: int, n: int) -> np.ndarray:
    return (prefix + pd.Series(np.arange(first, first + n)).astype(str).str.zfill(7)).to_numpy(dtype=object)


def simulate_referrals(
    *,
    n_seeds: int = 1000,
    invitations_mean: float = 1.5,
    dispersion: float | None = None,
    conversion: float = 0.3,
    generations: int = 20,
    n_organic: int = 0,
    purchase_rate: float = 0.05,
    rate_shape: float = 2.0,
    purchase_multiplier: float = 1.0,
    mean_amount: float = 50.0,
    start: str = "2020-01-01",
    seed_days: float = 60.0,
    organic_days: float = 180.0,
    share_delay_days: float = 10.0,
    convert_delay_days: float = 5.0,
    observation_days: float = 730.0,
    campaign_id: str = "sim",
    seed: int = 0,
) -> SimulatedReferrals:
    """Simulate referral cascades and the purchases of everyone acquired (see the module docstring).

    Rates are per week, delays are means of exponential distributions in days; nothing after
    ``start + observation_days`` is recorded.
    """
    rng = np.random.default_rng(seed)
    ids = _ids("s", 0, n_seeds)
    acquired = rng.uniform(0.0, seed_days, n_seeds)
    referrers, referred, kinds, times = [], [], [], []
    customers, customer_times, is_referred = [ids], [acquired], [np.zeros(n_seeds, bool)]
    counter = 0
    for _ in range(generations):  # one pass per generation
        if len(ids) == 0:
            break
        if dispersion is None:
            n_inv = rng.poisson(invitations_mean, len(ids))
        else:
            n_inv = rng.negative_binomial(dispersion, dispersion / (dispersion + invitations_mean), len(ids))
        parent = np.repeat(np.arange(len(ids)), n_inv)
        invitee = _ids("p", counter, len(parent))
        counter += len(parent)
        invite_t = acquired[parent] + rng.exponential(share_delay_days, len(parent))
        convert_t = invite_t + rng.exponential(convert_delay_days, len(parent))
        converts = (rng.random(len(parent)) < conversion) & (convert_t <= observation_days)
        seen = invite_t <= observation_days
        referrers += [ids[parent[seen]], ids[parent[converts]]]
        referred += [invitee[seen], invitee[converts]]
        kinds += [np.full(seen.sum(), "invited", object), np.full(converts.sum(), "signed_up", object)]
        times += [invite_t[seen], convert_t[converts]]
        ids, acquired = invitee[converts], convert_t[converts]
        customers.append(ids)
        customer_times.append(acquired)
        is_referred.append(np.ones(len(ids), bool))
    organic = rng.uniform(0.0, organic_days, n_organic)
    customers.append(_ids("o", 0, n_organic))
    customer_times.append(organic)
    is_referred.append(np.zeros(n_organic, bool))
    origin = pd.Timestamp(start)
    referrals = pd.DataFrame({
        "referrer_id": np.concatenate(referrers), "referred_id": np.concatenate(referred),
        "kind": np.concatenate(kinds), "campaign_id": campaign_id,
        "occurred_at": origin + pd.to_timedelta(np.concatenate(times), unit="D"),
    })
    transactions = _purchases(
        np.concatenate(customers), np.concatenate(customer_times), np.concatenate(is_referred), rng,
        purchase_rate=purchase_rate, rate_shape=rate_shape, multiplier=purchase_multiplier,
        mean_amount=mean_amount, end=observation_days, origin=origin,
    )
    truth = branching_truth(invitations_mean, conversion, generations, dispersion)
    truth["purchase_multiplier"] = float(purchase_multiplier)
    return SimulatedReferrals(referrals=referrals, transactions=transactions, truth=truth)


def _purchases(
    ids: np.ndarray, acquired: np.ndarray, referred: np.ndarray, rng: np.random.Generator, *, purchase_rate: float,
    rate_shape: float, multiplier: float, mean_amount: float, end: float, origin: pd.Timestamp,
) -> pd.DataFrame:
    """First purchase at acquisition, then Poisson repeat purchases until ``end`` (days)."""
    rate = rng.gamma(rate_shape, purchase_rate / rate_shape, len(ids)) * np.where(referred, multiplier, 1.0)
    n_repeat = rng.poisson(rate * (end - acquired) / DAYS_PER_WEEK)
    owner = np.repeat(np.arange(len(ids)), n_repeat)
    repeat_t = rng.uniform(acquired[owner], end)
    who = np.concatenate([np.arange(len(ids)), owner])
    when = np.concatenate([acquired, repeat_t])
    amount = np.round(rng.gamma(4.0, mean_amount / 4.0, len(who)), 2) + 0.01
    return pd.DataFrame({"customer_id": ids[who], "occurred_at": origin + pd.to_timedelta(when, unit="D"), "amount": amount})
