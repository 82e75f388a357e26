"""lifetimes' ``generate_data``: simulated customers from BG/NBD, MBG/NBD, Pareto/NBD and BG/BB
with known parameters, drawn by patron's vectorised samplers (:mod:`patron.value.models.sampling`,
:mod:`patron.value.models.sampling_pareto`, :mod:`patron.value.models.sampling_bgbb`).

The draws follow NumPy's global random state (``np.random.seed`` makes them repeat), as in
lifetimes, through one seed taken from it per call; with the same seed,
:func:`beta_geometric_nbd_model` and :func:`beta_geometric_nbd_model_transactional_data` draw
the same customers (the summary of the transactions at a grain finer than any two purchases
gives back ``frequency`` and ``recency``).

Differences from lifetimes 0.11.3, where it departed from the models' definitions (see
docs/migrating-from-lifetimes.md): ``frequency`` is the number of repeat purchases the model
generated (lifetimes counted the distinct whole time units holding one, so two purchases in one
unit counted once while ``recency`` stayed exact), and in
:func:`beta_geometric_nbd_model_transactional_data` a customer's first purchase is at the start
of their ``T`` periods (lifetimes placed it one period earlier), so the transactions summarise
back to the customer's ``T``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from patron.value.models.sampling import (
    sample_beta_geo_transactions,
)
from patron.value.models.sampling_bgbb import sample_bgbb
from patron.value.models.sampling_pareto import sample_pareto_nbd

__all__ = [
    "beta_geometric_beta_binom_model",
    "beta_geometric_nbd_model",
    "beta_geometric_nbd_model_transactional_data",
    "modified_beta_geometric_nbd_model",
    "pareto_nbd_model",
]


def _seed() -> int:
    """A seed for patron's generator, drawn from NumPy's global random state."""
    return int(np.random.randint(0, 2**31 - 1))  # noqa: NPY002 - the global state is the API here


def _lengths(T: Any, size: int) -> np.ndarray:
    if isinstance(T, int | float):
        return np.full(int(size), float(T))
    return np.asarray(T, dtype=np.float64)[: int(size)]


def _frame(draws: dict[str, np.ndarray], latent: tuple[str, str]) -> pd.DataFrame:
    df = pd.DataFrame({"frequency": draws["frequency"], "recency": draws["recency"], "T": draws["T"],
                       latent[0]: draws[latent[0]], latent[1]: draws[latent[1]],
                       "alive": draws["alive"].astype(np.float64)})
    df.index = pd.Index(np.arange(len(df), dtype=np.float64), name="customer_id")
    return df


def beta_geometric_nbd_model(T: Any, r: float, alpha: float, a: float, b: float, size: int = 1) -> pd.DataFrame:
    """``size`` customers from BG/NBD observed for ``T`` (scalar or one per customer):
    ``frequency``, ``recency``, ``T``, the drawn ``lambda`` and ``p``, ``alive`` (1.0 when not
    dropped out by T), indexed by ``customer_id``."""
    T_ = _lengths(T, size)
    draws = sample_beta_geo_transactions(T_.size, r=r, alpha=alpha, a=a, b=b, T=T_, random_state=_seed())
    return _frame(draws, ("lambda", "p"))


def modified_beta_geometric_nbd_model(T: Any, r: float, alpha: float, a: float, b: float,
                                      size: int = 1) -> pd.DataFrame:
    """As :func:`beta_geometric_nbd_model`, from MBG/NBD (dropout also possible right after the
    first purchase)."""
    T_ = _lengths(T, size)
    draws = sample_beta_geo_transactions(T_.size, r=r, alpha=alpha, a=a, b=b, T=T_, shift=1,
                                         random_state=_seed())
    return _frame(draws, ("lambda", "p"))


def pareto_nbd_model(T: Any, r: float, alpha: float, s: float, beta: float, size: int = 1) -> pd.DataFrame:
    """``size`` customers from Pareto/NBD: ``frequency``, ``recency``, ``T``, the drawn
    ``lambda`` and ``mu``, ``alive`` (1.0 when alive at T), indexed by ``customer_id``."""
    T_ = _lengths(T, size)
    draws = sample_pareto_nbd(T_.size, r=r, alpha=alpha, s=s, beta=beta, T=T_, random_state=_seed())
    return _frame(draws, ("lambda", "mu"))


def beta_geometric_beta_binom_model(N: Any, alpha: float, beta: float, gamma: float, delta: float,
                                    size: int = 1) -> pd.DataFrame:
    """``size`` customers from BG/BB over ``N`` opportunities (scalar or one per customer):
    ``frequency``, ``recency`` (opportunity of the last transaction, 0 if none), ``n_periods``,
    the drawn ``p`` and ``theta``, ``alive`` (alive at opportunity N + 1, as FHS's P(alive)
    predictions), ``customer_id``."""
    N_ = _lengths(N, size).astype(np.int64)
    rng = np.random.default_rng(_seed())
    out = pd.DataFrame(index=np.arange(N_.size), columns=["frequency", "recency", "n_periods", "p", "theta",
                                                         "alive", "customer_id"], dtype=np.float64)
    for n in np.unique(N_):
        rows = np.flatnonzero(N_ == n)
        d = sample_bgbb(rows.size, alpha=alpha, beta=beta, gamma=gamma, delta=delta, n_periods=int(n),
                        random_state=rng)
        out.iloc[rows, :5] = np.column_stack([d["frequency"], d["recency"], d["n_periods"], d["p"], d["theta"]])
        out.iloc[rows, 5] = (d["lifetime"] >= n + 1).astype(np.float64)
    out["customer_id"] = np.arange(N_.size, dtype=np.float64)
    return out


def beta_geometric_nbd_model_transactional_data(T: Any, r: float, alpha: float, a: float, b: float,
                                                observation_period_end: Any = "2019-1-1", freq: str = "D",
                                                size: int = 1) -> pd.DataFrame:
    """Transactions (``customer_id``, ``date``) of ``size`` BG/NBD customers whose ``T`` periods
    of ``freq`` end at ``observation_period_end``: a first purchase at the start, then the
    repeat purchases the model generates."""
    T_ = _lengths(T, size)
    draws = sample_beta_geo_transactions(T_.size, r=r, alpha=alpha, a=a, b=b, T=T_, random_state=_seed())
    end = pd.Timestamp(observation_period_end).as_unit("ns").value
    unit = pd.Timedelta(1, unit="h" if str(freq).upper() == "H" else str(freq)).value  # nanoseconds
    first = end - np.round(T_ * unit).astype(np.int64)
    repeat = first[draws["customer"]] + np.round(draws["time"] * unit).astype(np.int64)
    customers = np.concatenate([np.arange(T_.size), draws["customer"]])
    stamps = np.concatenate([first, repeat])
    order = np.lexsort((stamps, customers))
    return pd.DataFrame({"customer_id": customers[order], "date": pd.to_datetime(stamps[order], unit="ns")})
