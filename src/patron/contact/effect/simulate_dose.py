"""Monthly contact frequencies with a planted dose effect and realistic targeting, for tests of
dose-response (:mod:`patron.contact.effect.dose`) against a known truth.

The world of :func:`simulate_dose_response`:

* **Customers** are acquired at a random month (their first order); each has a latent monthly
  purchase propensity ``lambda ~ Gamma(2, propensity_mean / 2)`` (capped at
  :data:`MAX_PROPENSITY`) and may stop buying for good ("die") at the start of any later month with
  probability ``churn``.
* **Contacts are targeted**, as marketers do: the number a customer gets in a month is
  ``Poisson(mu)``, capped at ``max_contacts``, with ``mu = mean_contacts x season x
  exp(targeting x score)``, where ``score`` rises when the customer bought recently and often
  (:func:`targeting_score`, computed from what was observable at the start of the month) and
  ``season`` is :data:`CONTACT_SEASON` (more campaigns in November and December). So customers
  who buy more are contacted more, and a naive comparison of frequencies confounds the two.
* **Purchases**: in a month after acquisition, a living customer who got ``k`` contacts buys
  (one order) with probability ``clip(lambda x PURCHASE_SEASON[month] + effect[k], 0, 1)``; a
  dead customer never buys. ``effect`` is the planted dose effect: the change in the chance of
  buying in the month with ``k`` contacts rather than none (``effect[0] = 0``; doses beyond its
  end take its last value).
* **Unsubscribes**: a contacted customer unsubscribes in the month with probability
  ``unsubscribe_base + unsubscribe_per_extra x max(0, k - unsubscribe_from)`` and gets no contact
  afterwards (but may still buy).

:func:`targeted_contacts` draws contacts by the same targeting rule for *real* purchase histories:
contacts that cannot have changed what the customers bought (true effect 0, real confounding).

``truth`` gives the **true marginal effect** of the k-th contact: the mean over the customer-months
that dose-response analyses (every month after acquisition, up to and including the unsubscribe
month) of ``P(buy | k contacts) - P(buy | k - 1 contacts)``, computed from each customer-month's
own probabilities (so death and clipping at 0 are counted), and the **planted optimum**: the
smallest ``k`` maximising ``sum_{j<=k} (marginal_j x mean_order_value - cost_per_contact)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from patron.contact.effect.simulate import SECONDS_PER_DAY, _ids, _orders

MAX_PROPENSITY: float = 0.6
"""Cap on a customer's latent monthly purchase probability (before season and contact effects)."""

PURCHASE_SEASON: tuple[float, ...] = (0.9, 0.85, 0.95, 1.0, 1.0, 0.95, 0.9, 0.9, 1.0, 1.05, 1.25, 1.5)
"""Multiplier of the purchase propensity by calendar month, January first (December peak)."""

CONTACT_SEASON: tuple[float, ...] = (0.9, 0.9, 1.0, 1.0, 1.0, 0.9, 0.8, 0.8, 1.0, 1.1, 1.3, 1.4)
"""Multiplier of the mean number of contacts by calendar month (more campaigns before Christmas)."""


def planted_effect(optimum: int, *, gain: float = 0.03, loss: float = 0.015, top: int = 10) -> np.ndarray:
    """A planted dose effect for doses ``0..top``: the chance of buying rises by ``gain`` with each
    contact up to ``optimum`` and falls by ``loss`` with each contact beyond it.

    ``planted_effect(3)``: rises to +9 percentage points at 3 contacts, then falls;
    ``planted_effect(0, loss=0)``: no effect at all; ``planted_effect(0, loss=0.01)``: every
    contact lowers the chance of buying by one point.
    """
    k = np.arange(top + 1, dtype=float)
    return np.where(k <= optimum, gain * k, gain * optimum - loss * (k - optimum))


def targeting_score(recency_months: np.ndarray, buying_months: np.ndarray) -> np.ndarray:
    """How strongly a marketer targets a customer, from what is known at the month start:
    ``recency_months`` since the last purchase month (1 = bought last month) and the number of
    ``buying_months`` so far. 0 for a customer who bought 7+ months ago, once; up to about 1.0."""
    r, f = recency_months, np.minimum(buying_months, 8)
    return 0.45 * (r <= 1) + 0.25 * (r <= 3) + 0.15 * (r <= 6) + 0.05 * (f - 1) - 0.35


def _month_times(rng: np.random.Generator, starts: pd.DatetimeIndex, month: np.ndarray) -> pd.DatetimeIndex:
    """Uniform instants within each given month (whole month, to the second)."""
    days = starts.days_in_month.to_numpy()[month]
    offset = rng.uniform(0.0, days * SECONDS_PER_DAY - 1.0)
    return starts[month] + pd.to_timedelta(offset, unit="s")


def simulate_dose_response(
    n_customers: int,
    *,
    effect: Sequence[float] | np.ndarray | None = None,
    months: int = 24,
    start: str = "2023-01-01",
    targeting: float = 2.0,
    mean_contacts: float = 3.0,
    max_contacts: int = 12,
    propensity_mean: float = 0.12,
    churn: float = 0.03,
    unsubscribe_base: float = 0.002,
    unsubscribe_per_extra: float = 0.0,
    unsubscribe_from: int = 0,
    mean_order_value: float = 50.0,
    channel: str = "email",
    cost_per_contact: float = 0.002,
    seed: int = 0,
) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, Any]]:
    """Simulate ``months`` calendar months from ``start`` (see the module docstring).

    ``effect`` (default ``planted_effect(3)``) is the change in the monthly chance of buying with
    ``k`` contacts, ``k = 0, 1, ...``; ``targeting`` scales the confounding (0: contacts at random; 2,
    the default: the most targeted customers get about 11 times the contacts of the least);
    contacts go out on ``channel``, whose cost ``cost_per_contact`` (currency; 0.002 is patron's
    default ``[costs] email``, 0.60 its ``mail``) enters only the planted optimum. Order values are
    Gamma(4, ``mean_order_value / 4``).

    Returns ``(contacts, transactions, truth)``; ``truth`` holds ``effect``, ``marginal`` (true
    marginal effect of contact ``k`` at index ``k``; index 0 is 0), ``optimum`` (the planted
    optimum), ``customer_months`` analysed, ``mean_order_value`` and ``cost_per_contact``.
    """
    rng = np.random.default_rng(seed)
    eff = np.asarray(planted_effect(3) if effect is None else effect, dtype=float)
    if eff.ndim != 1 or len(eff) == 0 or eff[0] != 0.0:
        raise ValueError("effect must be a sequence starting with 0 (no contact, no effect)")
    eff = np.concatenate([eff, np.full(max(0, max_contacts + 1 - len(eff)), eff[-1])])[: max_contacts + 1]
    starts = pd.date_range(start, periods=months, freq="MS")
    cal = starts.month.to_numpy() - 1
    n = n_customers
    acquired = rng.integers(0, max(1, months - 2), n)
    lam = np.minimum(rng.gamma(2.0, propensity_mean / 2.0, n), MAX_PROPENSITY)
    alive = np.ones(n, dtype=bool)
    subscribed = np.ones(n, dtype=bool)
    last_buy = acquired.copy()
    buying = np.ones(n, dtype=np.int64)
    dose = np.zeros((n, months), dtype=np.int64)
    buys = np.zeros((n, months), dtype=bool)
    unsub_at = np.full(n, -1)
    buys[np.arange(n), acquired] = True
    p_sum = np.zeros(max_contacts + 1)
    analysed = 0
    for m in range(months):
        new, later = acquired == m, acquired < m
        active = later & subscribed  # the customer-months dose-response analyses
        alive &= ~(later & (rng.random(n) < churn))
        score = targeting_score(m - last_buy, buying)
        mu = mean_contacts * CONTACT_SEASON[cal[m]] * np.exp(targeting * score)
        k = np.minimum(rng.poisson(mu), max_contacts) * (new | active)
        dose[:, m] = k
        p_all = alive[later, None] * np.clip(lam[later, None] * PURCHASE_SEASON[cal[m]] + eff[None, :], 0.0, 1.0)
        p_sum += p_all[subscribed[later]].sum(axis=0)
        analysed += int(active.sum())
        p = np.zeros(n)
        p[later] = p_all[np.arange(p_all.shape[0]), k[later]]
        b = later & (rng.random(n) < p)
        buys[:, m] |= b
        last_buy = np.where(b, m, last_buy)
        buying += b
        p_unsub = unsubscribe_base + unsubscribe_per_extra * np.maximum(0, k - unsubscribe_from)
        quits = subscribed & (k > 0) & (rng.random(n) < p_unsub)
        unsub_at = np.where(quits, m, unsub_at)
        subscribed &= ~quits

    ids = np.char.add("d", np.char.zfill(np.arange(n).astype(str), 6)).astype(object)
    cust, month = np.nonzero(dose)
    reps = dose[cust, month]
    cc, mm = np.repeat(cust, reps), np.repeat(month, reps)
    sent = pd.DataFrame({
        "customer_id": ids[cc], "occurred_at": _month_times(rng, starts, mm), "channel": channel,
        "campaign_id": np.array([f"m{i:02d}" for i in range(months)], dtype=object)[mm], "kind": "sent", "in_holdout": False,
    })
    uc = np.flatnonzero(unsub_at >= 0)
    um = unsub_at[uc]
    last_day = starts[um] + pd.to_timedelta(starts.days_in_month.to_numpy()[um] * SECONDS_PER_DAY - 1.0, unit="s")
    unsubs = pd.DataFrame({"customer_id": ids[uc], "occurred_at": last_day, "channel": channel, "campaign_id": None,
                           "kind": "unsubscribed", "in_holdout": False})
    contacts = pd.concat([sent, unsubs], ignore_index=True)
    contacts.insert(0, "contact_id", _ids("s", len(contacts)))
    bc, bm = np.nonzero(buys)
    transactions = _orders(ids[bc], _month_times(rng, starts, bm), rng.gamma(4.0, mean_order_value / 4.0, len(bc)), "o")

    mean_p = p_sum / max(analysed, 1)
    marginal = np.r_[0.0, np.diff(mean_p)]
    net = np.cumsum(marginal * mean_order_value - cost_per_contact * (np.arange(len(marginal)) > 0))
    truth = {
        "effect": eff, "marginal": marginal, "optimum": int(np.argmax(net >= net.max() - 1e-12)),
        "customer_months": analysed, "mean_order_value": mean_order_value, "cost_per_contact": cost_per_contact,
    }
    return contacts, transactions, truth


def targeted_contacts(
    transactions: pd.DataFrame,
    *,
    targeting: float = 2.0,
    mean_contacts: float = 3.0,
    max_contacts: int = 12,
    channel: str = "email",
    seed: int = 0,
) -> pd.DataFrame:
    """Contacts drawn for the customers of ``transactions`` (``customer_id, occurred_at, amount``)
    by the targeting of :func:`simulate_dose_response`, from each customer's real history at the
    start of every calendar month from their first order to the last month of the data.

    The purchases happened whatever these contacts say, so the true effect of every contact is 0,
    while the confounding is real: customers who bought recently and often get more contacts.
    Returns a ``contacts`` table (kind ``sent``, one campaign per month ``m<YYYY-MM>``).
    """
    rng = np.random.default_rng(seed)
    orders = transactions[transactions["amount"] >= 0]
    when = pd.to_datetime(orders["occurred_at"])
    first_month = when.min().to_period("M")
    month = ((when.dt.year - first_month.year) * 12 + when.dt.month - first_month.month).to_numpy()
    ids, who = np.unique(orders["customer_id"].astype(str).to_numpy(), return_inverse=True)
    months = int(month.max()) + 1
    bought = np.zeros((len(ids), months), dtype=bool)
    bought[who, month] = True
    first = bought.argmax(axis=1)
    last_buy, buying = first.copy(), np.zeros(len(ids), dtype=np.int64)
    starts = pd.date_range(first_month.start_time, periods=months, freq="MS")
    dose = np.zeros((len(ids), months), dtype=np.int64)
    for m in range(months):
        score = targeting_score(m - last_buy, np.maximum(buying, 1))
        mu = mean_contacts * CONTACT_SEASON[starts[m].month - 1] * np.exp(targeting * score)
        dose[:, m] = np.minimum(rng.poisson(mu), max_contacts) * (first <= m)
        buying += bought[:, m]
        last_buy = np.where(bought[:, m], m, last_buy)
    cust, mon = np.nonzero(dose)
    reps = dose[cust, mon]
    cc, mm = np.repeat(cust, reps), np.repeat(mon, reps)
    labels = np.array([f"m{t:%Y-%m}" for t in starts], dtype=object)
    out = pd.DataFrame({"customer_id": ids[cc].astype(object), "occurred_at": _month_times(rng, starts, mm), "channel": channel,
                        "campaign_id": labels[mm], "kind": "sent", "in_holdout": False})
    out.insert(0, "contact_id", _ids("t", len(out)))
    return out
