"""Simulated contact data with a known truth, for tests and demonstrations.

* :func:`simulate_experiment` — one campaign with a random holdout; response probability
  ``base_rate`` (+ the segment's lift when treated). Segments differ in their purchase history
  before the send (segment ``A`` buys often, others rarely), so an uplift model can tell them apart.
* :func:`simulate_dose_response` — customers receive a random number of contacts each month; the
  chance of buying in the month rises with contacts up to ``saturation`` and is flat after it,
  while the chance of unsubscribing grows with every contact beyond ``saturation``.

Both return ``(contacts, transactions, truth)``: DataFrames in the shape of the data contract
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


def simulate_dose_response(
    n_customers: int,
    *,
    months: int = 12,
    base_rate: float = 0.05,
    max_gain: float = 0.10,
    saturation: int = 3,
    max_contacts: int = 12,
    unsubscribe_base: float = 0.002,
    unsubscribe_per_extra: float = 0.004,
    start: str = "2024-01-01",
    seed: int = 0,
) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, Any]]:
    """Contacts drawn uniformly from ``0..max_contacts`` per customer per month (a randomised
    dose), for ``months`` calendar months from ``start``.

    In a month with ``n`` contacts the customer buys (once) with probability
    ``base_rate + max_gain * min(n, saturation) / saturation`` — flat beyond ``saturation`` — and
    unsubscribes with probability ``unsubscribe_base + unsubscribe_per_extra * max(0, n - saturation)``;
    after unsubscribing they get no more contacts. ``truth`` holds ``saturation`` and the
    parameters.
    """
    rng = np.random.default_rng(seed)
    month_starts = pd.date_range(start, periods=months, freq="MS")
    n = rng.integers(0, max_contacts + 1, (n_customers, months))
    p_buy = base_rate + max_gain * np.minimum(n, saturation) / saturation
    p_unsub = unsubscribe_base + unsubscribe_per_extra * np.maximum(0, n - saturation)
    unsub = rng.random((n_customers, months)) < p_unsub
    first_unsub = np.where(unsub.any(axis=1), unsub.argmax(axis=1), months)
    active = np.arange(months)[None, :] <= first_unsub[:, None]  # the unsubscribe month still counts
    n = np.where(active, n, 0)
    buys = (rng.random((n_customers, months)) < p_buy) & active
    ids = np.char.add("d", np.char.zfill(np.arange(n_customers).astype(str), 6)).astype(object)

    cust, month = np.nonzero(n)
    reps = n[cust, month]
    cc, mm = np.repeat(cust, reps), np.repeat(month, reps)
    day = rng.uniform(0.0, 27.0 * SECONDS_PER_DAY, len(cc))
    sent = pd.DataFrame({
        "customer_id": ids[cc], "occurred_at": month_starts[mm] + pd.to_timedelta(day, unit="s"),
        "channel": "email", "campaign_id": np.array([f"m{m:02d}" for m in range(months)])[mm], "kind": "sent", "in_holdout": False,
    })
    uc = np.nonzero(first_unsub < months)[0]
    um = first_unsub[uc]
    unsubs = pd.DataFrame({
        "customer_id": ids[uc], "occurred_at": month_starts[um] + pd.Timedelta(days=27, hours=12),
        "channel": "email", "campaign_id": None, "kind": "unsubscribed", "in_holdout": False,
    })
    contacts = pd.concat([sent, unsubs], ignore_index=True)
    contacts.insert(0, "contact_id", _ids("s", len(contacts)))
    bc, bm = np.nonzero(buys)
    t = month_starts[bm] + pd.to_timedelta(rng.uniform(0.0, 27.0 * SECONDS_PER_DAY, len(bc)), unit="s")
    transactions = _orders(ids[bc], t, rng.gamma(4.0, 12.5, len(bc)), "o")
    truth = {
        "saturation": saturation, "base_rate": base_rate, "max_gain": max_gain,
        "unsubscribe_base": unsubscribe_base, "unsubscribe_per_extra": unsubscribe_per_extra,
    }
    return contacts, transactions, truth
