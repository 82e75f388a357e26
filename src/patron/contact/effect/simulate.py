"""Simulated contact data with a known truth, for tests and demonstrations.

* :func:`simulate_experiment` — one campaign with a random holdout; response probability
  ``base_rate`` (+ the segment's lift when treated). Segments differ in their purchase history
  before the send (segment ``A`` buys often, others rarely), so an uplift model can tell them apart.

:func:`patron.contact.effect.simulate_dose.simulate_dose_response` draws monthly contact frequencies
with a planted dose effect.

It returns ``(contacts, transactions, truth)``: DataFrames in the shape of the data contract
(``contacts``, ``transactions``) and a dict of the true effects.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

SECONDS_PER_DAY: float = 86_400.0
"""Seconds in one day."""

EXTRA_PURCHASES_MEAN: float = 0.5
"""A responder makes ``1 + Poisson(0.5)`` purchases in the window (1.5 on average)."""


def _ids(prefix: str, n: int) -> np.ndarray:
    """``prefix0, prefix1, ...`` (vectorised)."""
    return np.char.add(prefix, np.arange(n).astype(str)).astype(object)


def _orders(customer_ids: np.ndarray, times: pd.DatetimeIndex | np.ndarray, amounts: np.ndarray, prefix: str) -> pd.DataFrame:
    return pd.DataFrame({
        "customer_id": customer_ids.astype(str),
        "order_id": _ids(prefix, len(customer_ids)),
        "occurred_at": pd.to_datetime(times),
        "amount": np.round(amounts, 2),
    })


def simulate_experiment(
    n_customers: int,
    *,
    base_rate: float = 0.10,
    true_lift: float = 0.05,
    heterogeneity: Mapping[str, float] | None = None,
    holdout_fraction: float = 0.2,
    seed: int = 0,
    campaign_id: str = "sim",
    send_at: str = "2024-03-01 09:00",
    window_days: int = 30,
    mean_order_value: float = 50.0,
    id_prefix: str = "",
) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, Any]]:
    """One campaign sent to ``n_customers`` customers, a ``holdout_fraction`` of them held out.

    Each customer's chance of buying within ``window_days`` after ``send_at`` is ``base_rate``, plus
    the lift of their segment when treated. ``heterogeneity`` maps segment name to lift (absolute,
    in probability: ``{"A": 0.10, "B": 0.0}``); segments are drawn with equal probability. Without
    it every customer's lift is ``true_lift``. A responder makes ``1 + Poisson(0.5)`` purchases
    spread over the window, each worth Gamma(shape 4, mean ``mean_order_value``).

    ``id_prefix`` starts every customer, order and contact id (several simulations can then share
    one database).

    History before the send (for uplift features): the first segment (``A``) makes Poisson(6)
    purchases over the previous year, the others Poisson(1); everyone got Poisson(3) contacts.

    Returns ``(contacts, transactions, truth)``; ``truth`` holds ``response_lift`` (the population
    average effect on the response rate), ``purchases_lift`` and ``revenue_lift`` (per treated
    customer), ``segment_lift`` (dict), ``segments`` (DataFrame customer_id, segment, treated) and
    ``base_rate``.
    """
    rng = np.random.default_rng(seed)
    lifts = dict(heterogeneity) if heterogeneity else {"all": float(true_lift)}
    names = list(lifts)
    seg_idx = rng.integers(0, len(names), n_customers)
    lift = np.array([lifts[k] for k in names])[seg_idx]
    treated = rng.random(n_customers) >= holdout_fraction
    ids = np.char.add(f"{id_prefix}c", np.char.zfill(np.arange(n_customers).astype(str), 6)).astype(object)
    send = pd.Timestamp(send_at)

    p = np.clip(base_rate + lift * treated, 0.0, 1.0)
    responded = rng.random(n_customers) < p
    n_buy = np.where(responded, 1 + rng.poisson(EXTRA_PURCHASES_MEAN, n_customers), 0)
    who = np.repeat(np.arange(n_customers), n_buy)
    offset = rng.uniform(60.0, window_days * SECONDS_PER_DAY - 60.0, len(who))
    amount = rng.gamma(4.0, mean_order_value / 4.0, len(who))
    after = _orders(ids[who], send + pd.to_timedelta(offset, unit="s"), amount, f"{id_prefix}w")

    n_hist = rng.poisson(np.where(seg_idx == 0, 6.0, 1.0))
    hw = np.repeat(np.arange(n_customers), n_hist)
    h_off = rng.uniform(1.0, 365.0 * SECONDS_PER_DAY, len(hw))
    before = _orders(ids[hw], send - pd.to_timedelta(h_off, unit="s"), rng.gamma(4.0, mean_order_value / 4.0, len(hw)), f"{id_prefix}h")
    transactions = pd.concat([before, after], ignore_index=True)

    n_prior = rng.poisson(3.0, n_customers)
    pw = np.repeat(np.arange(n_customers), n_prior)
    prior = pd.DataFrame({
        "customer_id": ids[pw], "occurred_at": send - pd.to_timedelta(rng.uniform(1.0, 180.0, len(pw)) * SECONDS_PER_DAY, unit="s"),
        "channel": "email", "campaign_id": "earlier", "kind": "sent", "in_holdout": False,
    })
    sends = pd.DataFrame({
        "customer_id": ids, "occurred_at": send, "channel": "email", "campaign_id": campaign_id,
        "kind": "sent", "in_holdout": ~treated,
    })
    contacts = pd.concat([prior, sends], ignore_index=True)
    contacts.insert(0, "contact_id", _ids(f"{id_prefix}k", len(contacts)))

    mean_purchases = 1.0 + EXTRA_PURCHASES_MEAN
    share = np.array([np.mean(seg_idx == i) for i in range(len(names))])
    ate = float(np.sum(share * np.array([lifts[k] for k in names]))) if heterogeneity else float(true_lift)
    truth = {
        "response_lift": ate,
        "purchases_lift": ate * mean_purchases,
        "revenue_lift": ate * mean_purchases * mean_order_value,
        "segment_lift": lifts,
        "base_rate": base_rate,
        "segments": pd.DataFrame({"customer_id": ids, "segment": np.array(names)[seg_idx], "treated": treated}),
        "campaign_id": campaign_id,
    }
    return contacts, transactions, truth
