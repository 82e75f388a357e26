"""The referral comparison's intervals (:mod:`patron.network.stats`) are the one implementation of
:mod:`patron.value.intervals` (issue 21, "one place per decision"), checked here against references
that do not share its code: SciPy's Welch t test and Newcombe's (1998) published example."""

from __future__ import annotations

import ast
import math
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from patron.network.stats import newcombe, welch

SRC = Path(__file__).resolve().parents[1] / "src" / "patron"

PUBLISHED = 0.00005
"""Newcombe (1998) prints four decimals."""


def test_newcombe_matches_the_published_example():
    # Newcombe 1998, Table II, example (a): 56/70 vs 48/80, method 10: 0.0524 to 0.3339
    est = newcombe(56, 70, 48, 80, level=0.95)
    assert est.value == pytest.approx(0.2)
    assert (est.lower, est.upper) == pytest.approx((0.0524, 0.3339), abs=PUBLISHED)
    assert est.method == "newcombe" and est.level == 0.95


def test_newcombe_of_an_empty_group_is_nan():
    est = newcombe(0, 0, 3, 10, level=0.95)
    assert all(math.isnan(v) for v in (est.value, est.lower, est.upper))


def test_welch_matches_scipy():
    rng = np.random.default_rng(3)
    a, b = rng.gamma(2.0, 30.0, 40), rng.gamma(2.0, 22.0, 65)
    est = welch(np.append(a, np.nan), b, level=0.9)  # a non-finite value is left out
    ref = stats.ttest_ind(a, b, equal_var=False).confidence_interval(0.9)
    assert est.value == pytest.approx(a.mean() - b.mean(), rel=1e-12)
    assert (est.lower, est.upper) == pytest.approx((ref.low, ref.high), rel=1e-9)


def test_welch_needs_two_values_per_group():
    est = welch(np.array([1.0]), np.array([1.0, 2.0, 3.0]), level=0.95)
    assert all(math.isnan(v) for v in (est.value, est.lower, est.upper))
    same = welch(np.array([2.0, 2.0]), np.array([1.0, 1.0, 1.0]), level=0.95)  # no spread: the point itself
    assert (same.value, same.lower, same.upper) == (1.0, 1.0, 1.0)


def test_the_network_stage_has_no_interval_of_its_own():
    """No t or normal quantile, and no Wilson limits, computed in the network stage: it uses
    patron.value.intervals."""
    tree = ast.parse((SRC / "network" / "stats.py").read_text(encoding="utf-8"))
    names = {n.name for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)}
    assert not names & {"wilson", "z_value"}
    imported = {a.name for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) for a in n.names}
    assert {"newcombe_interval", "welch_interval"} <= imported
    assert "scipy" not in {n.module.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
