"""Shared fixtures for model tests (models-A and models-B may both use them)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

CDNOW_DIR = Path("/work/shared/data/cdnow")
_PACKAGED = Path(__file__).resolve().parents[2] / "src" / "patron" / "datasets" / "data"


def _cdnow_file(name: str) -> Path:
    for folder in (_PACKAGED, CDNOW_DIR):
        if (folder / name).exists():
            return folder / name
    pytest.skip(f"CDNOW file {name} not available")


@pytest.fixture(scope="session")
def cdnow_summary() -> pd.DataFrame:
    """CDNOW calibration summary, 2,357 customers, weeks: frequency, recency, T (FHL 2005 data)."""
    df = pd.read_csv(_cdnow_file("cdnow_customers_summary.csv"))
    return df.rename(columns={"ID": "customer_id"})


@pytest.fixture(scope="session")
def cdnow_spend() -> pd.DataFrame:
    """CDNOW summary with zbar, renamed to customer_id, frequency, recency, T, monetary_value."""
    df = pd.read_csv(_cdnow_file("cdnow_customers_summary_with_transactions.csv"))
    return df.rename(columns={"ID": "customer_id", "x": "frequency", "t_x": "recency",
                              "zbar": "monetary_value"})


class NumDiff:
    """Finite-difference helpers, independent of the models' analytic derivatives."""

    @staticmethod
    def gradient(f, theta, rel_step=1e-6):
        return central_gradient(f, theta, rel_step)

    @staticmethod
    def hessian(f, x, rel_step=1e-3):
        return central_hessian(f, x, rel_step)


@pytest.fixture(scope="session")
def numdiff() -> NumDiff:
    """Central-difference gradient / Hessian of a scalar function (``numdiff.gradient(f, x)``)."""
    return NumDiff()


def central_gradient(f, theta: np.ndarray, rel_step: float = 1e-6) -> np.ndarray:
    """Central finite-difference gradient of a scalar function (independent of analytic code)."""
    g = np.empty_like(theta)
    for j in range(theta.size):
        h = rel_step * max(1.0, abs(theta[j]))
        up, down = theta.copy(), theta.copy()
        up[j] += h
        down[j] -= h
        g[j] = (f(up) - f(down)) / (2 * h)
    return g


def central_hessian(f, x: np.ndarray, rel_step: float = 1e-3) -> np.ndarray:
    """Hessian of a scalar function by central second differences of the function itself."""
    k = x.size
    h = rel_step * np.abs(x)
    hess = np.empty((k, k))
    for i in range(k):
        for j in range(k):
            ei, ej = np.zeros(k), np.zeros(k)
            ei[i], ej[j] = h[i], h[j]
            hess[i, j] = (f(x + ei + ej) - f(x + ei - ej) - f(x - ei + ej)
                          + f(x - ei - ej)) / (4 * h[i] * h[j])
    return hess
