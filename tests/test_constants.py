"""One set of constants and value defaults, and one meaning of ``discount_rate`` (annual).

The scans read the source (AST), so a second definition of a constant, or a function that takes a
per-period rate under the name ``discount_rate``, fails here whatever the module it lands in.
"""

from __future__ import annotations

import ast
import math
import warnings
from pathlib import Path

import numpy as np
import pytest

from patron import constants

SRC = Path(__file__).resolve().parents[1] / "src" / "patron"

COMPAT = ("compat",)
"""Packages that keep another library's parameter names and units (lifetimes' and PyMC-Marketing's
``discount_rate`` is monthly, as their users know it)."""

ANNUAL = {("value/scoring.py", "score"), ("value/spark_score.py", "score_spark"),
          ("value/spark_score.py", "equity_interval_spark")}
"""Functions whose ``discount_rate`` is annual (their docstrings say so)."""

DEPRECATED = {("value/models/clv.py", name) for name in ("customer_lifetime_value", "equity_gradients", "clv_intervals")}
"""Functions that still accept the old name of ``discount_rate_per_step`` with a DeprecationWarning."""


def _modules():
    for path in sorted(SRC.rglob("*.py")):
        rel = path.relative_to(SRC).as_posix()
        if not rel.startswith(COMPAT):
            yield rel, ast.parse(path.read_text(encoding="utf-8"))


def test_days_per_year_is_defined_once():
    found = []
    for rel, tree in _modules():
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and node.value == 365.25 and rel != "constants.py":
                found.append(f"{rel}:{node.lineno}")
            if isinstance(node, ast.Assign | ast.AnnAssign):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                if any(isinstance(t, ast.Name) and t.id == "DAYS_PER_YEAR" for t in targets) and rel != "constants.py":
                    found.append(f"{rel}:{node.lineno}")
    assert found == []


def test_only_annual_rates_are_called_discount_rate():
    seen = set()
    for rel, tree in _modules():
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef) and "discount_rate" in [a.arg for a in node.args.args + node.args.kwonlyargs]:
                seen.add((rel, node.name))
    assert seen - DEPRECATED == ANNUAL


def test_the_value_defaults_come_from_one_place():
    from patron.network.rules import ReferralRules
    from patron.relationship.status import HORIZON_WEEKS
    from patron.value.settings import ValueSettings

    value, referrals = ValueSettings(), ReferralRules()
    assert (value.horizon, value.period, value.discount_rate) == (constants.DEFAULT_HORIZON_WEEKS, "W", constants.DEFAULT_DISCOUNT_RATE)
    assert value.horizon_weeks == HORIZON_WEEKS == referrals.clv_horizon_weeks == 52.0
    assert referrals.annual_discount_rate == constants.DEFAULT_DISCOUNT_RATE == 0.10
    assert constants.DAYS_PER_MONTH * 12 == constants.DAYS_PER_YEAR


def test_the_annual_rate_becomes_a_weekly_one():
    """10% a year compounds to 10% over 365.25 days: (1 + d_week)^(365.25 / 7) = 1.1."""
    from patron.value.settings import ValueSettings

    weekly = ValueSettings(discount_rate=0.10, period="W").discount_rate_per_period
    assert (1.0 + weekly) ** (365.25 / 7.0) == pytest.approx(1.10, rel=1e-12)


def test_the_old_name_of_the_rate_per_step_still_works_and_warns(cdnow_models):
    from patron.value.models.clv import customer_lifetime_value

    bg, gg, data = cdnow_models
    new = customer_lifetime_value(bg, gg, *data, horizon=13, discount_rate_per_step=0.002)
    with pytest.warns(DeprecationWarning, match="discount_rate_per_step"):
        old = customer_lifetime_value(bg, gg, *data, horizon=13, discount_rate=0.002)
    np.testing.assert_array_equal(old, new)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        undiscounted = customer_lifetime_value(bg, gg, *data, horizon=13)
    assert math.isclose(float(undiscounted.sum()) / float(new.sum()), 1.0, rel_tol=0.02) and undiscounted.sum() > new.sum()


@pytest.fixture(scope="module")
def cdnow_models():
    from patron.data.datasets import load_cdnow_summary_with_transactions
    from patron.value.models import BetaGeo, GammaGamma

    money = load_cdnow_summary_with_transactions()
    data = tuple(money[c].to_numpy(dtype=float) for c in ("frequency", "recency", "T", "monetary_value"))
    return BetaGeo().fit(*data[:3]), GammaGamma().fit(data[0], data[3]), data
