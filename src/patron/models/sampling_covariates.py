"""Customer summaries drawn with planted covariate effects (known truth for recovery checks).

Static covariates: each customer's parameters follow the parametrization of
:mod:`patron.models.covariates` (alpha_i = alpha exp(-gamma_purchase . x_i), beta_i or a_i, b_i
from gamma_dropout . x_i), then the summary is drawn by the samplers without covariates
(:func:`patron.models.sampling.sample_beta_geo`, :func:`patron.models.sampling_pareto.sample_pareto_nbd`),
which take per-customer parameters. Time-varying covariates: :func:`sample_pareto_nbd_dynamic`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from .covariates import covariate_table
from .sampling import sample_beta_geo
from .sampling_pareto import sample_pareto_nbd

__all__ = ["linear_predictor", "sample_beta_geo_covariates", "sample_pareto_nbd_covariates"]


def linear_predictor(covariates: Any, effects: Mapping[str, float] | None) -> np.ndarray:
    """sum_j effects[j] * covariates[j] per customer (0 when ``effects`` is empty)."""
    table = covariate_table(covariates)
    effects = dict(effects or {})
    if not effects:
        return np.zeros(len(table))
    names = list(effects)
    return table.columns(names) @ np.array([float(effects[k]) for k in names])


def sample_beta_geo_covariates(covariates: Any, *, r: float, alpha: float, a: float, b: float, T: Any,
                               gamma_purchase: Mapping[str, float] | None = None,
                               gamma_dropout: Mapping[str, float] | None = None,
                               random_state: Any = None) -> dict[str, np.ndarray]:
    """BG/NBD customers (one per covariate row) with alpha_i = alpha exp(-gamma_purchase . x_i),
    a_i = a exp(gamma_dropout . x_i), b_i = b exp(gamma_dropout . x_i) (Fader & Hardie 2007,
    note 019; CLVTools' parametrization). Returns ``frequency, recency, T`` arrays."""
    table = covariate_table(covariates)
    scale_d = np.exp(linear_predictor(table, gamma_dropout))
    return sample_beta_geo(len(table), r=r, alpha=alpha * np.exp(-linear_predictor(table, gamma_purchase)),
                           a=a * scale_d, b=b * scale_d, T=T, random_state=random_state)


def sample_pareto_nbd_covariates(covariates: Any, *, r: float, alpha: float, s: float, beta: float, T: Any,
                                 gamma_purchase: Mapping[str, float] | None = None,
                                 gamma_dropout: Mapping[str, float] | None = None,
                                 time_step: float | None = None, random_state: Any = None) -> dict[str, np.ndarray]:
    """Pareto/NBD customers with alpha_i = alpha exp(-gamma_purchase . x_i) and
    beta_i = beta exp(-gamma_dropout . x_i) (Fader & Hardie 2007, note 019, Section 2)."""
    table = covariate_table(covariates)
    return sample_pareto_nbd(len(table), r=r, alpha=alpha * np.exp(-linear_predictor(table, gamma_purchase)), s=s,
                             beta=beta * np.exp(-linear_predictor(table, gamma_dropout)), T=T,
                             time_step=time_step, random_state=random_state)
