"""Shared base: compression, optimiser failure handling, penalty, save/load, parameter draws."""

from __future__ import annotations

import json

import numpy as np
import pytest

from patron.value.models import (
    MODELS,
    BaseModel,
    BetaGeo,
    ConvergenceError,
    GammaGamma,
    NotFittedError,
    compress,
)
from patron.value.models._base import ConvergenceWarning, unique_rows

EXACT_REL_TOL = 1e-9
SAMPLING_TOL_SD = 4.0  # Monte Carlo check: allowed deviation in standard errors of the mean


def test_compress_collapses_identical_rows_and_sums_weights():
    x = np.array([2, 0, 2, 1, 0, 2])
    t = np.array([1.5, 0.0, 1.5, 3.0, 0.0, 2.0])
    (ux, ut), w = compress(x, t, weights=[1, 2, 3, 1, 1, 0])
    # expected by hand: (0,0) weight 3, (1,3) weight 1, (2,1.5) weight 4; (2,2) has weight 0
    np.testing.assert_array_equal(ux, [0, 1, 2])
    np.testing.assert_array_equal(ut, [0.0, 3.0, 1.5])
    np.testing.assert_array_equal(w, [3.0, 1.0, 4.0])


def test_compress_is_order_invariant():
    rng = np.random.default_rng(0)
    x, t = rng.integers(0, 5, 1000), rng.integers(0, 7, 1000) / 7
    perm = rng.permutation(1000)
    a = compress(x, t)
    b = compress(x[perm], t[perm])
    for u, v in zip((*a[0], a[1]), (*b[0], b[1]), strict=True):
        np.testing.assert_array_equal(u, v)


def test_compress_rejects_bad_weights():
    with pytest.raises(ValueError):
        compress([1, 2], weights=[1, -1])


def test_unique_rows_inverse_reconstructs():
    x = np.array([3.0, 1.0, 3.0, 2.0])
    y = np.array([1.0, 1.0, 1.0, 0.0])
    (ux, uy), inv = unique_rows(x, y)
    np.testing.assert_array_equal(ux[inv], x)
    np.testing.assert_array_equal(uy[inv], y)
    assert ux.size == 3


class _Broken(BaseModel):
    name = "_broken_for_tests"
    param_names = ("theta",)

    @staticmethod
    def _negative_log_likelihood(log_params, columns, weights):
        return float("nan"), np.array([float("nan")])

    def fit(self, x):
        cols, w = compress(np.asarray(x, dtype=float))
        return self._fit_compressed(cols, w)


def test_failure_is_reported_and_strict_raises_with_message():
    with pytest.warns(ConvergenceWarning):
        m = _Broken(n_starts=3).fit([1.0, 2.0])
    assert not m.converged_
    assert m.n_starts_used_ == 3
    assert "non-finite" in m.convergence_message_
    with pytest.raises(ConvergenceError) as err:
        _Broken(strict=True, n_starts=2).fit([1.0, 2.0])
    assert "non-finite" in err.value.message


def test_penalizer_shrinks_log_parameters(cdnow_summary):
    d = cdnow_summary
    args = (d["frequency"], d["recency"], d["T"])
    plain = BetaGeo().fit(*args)
    pen = BetaGeo(penalizer=0.1).fit(*args)
    norm = [sum(np.log(v) ** 2 for v in m.params_.values()) for m in (plain, pen)]
    assert norm[1] < norm[0]
    assert pen.log_likelihood_ < plain.log_likelihood_


def test_json_round_trip(tmp_path, cdnow_summary):
    d = cdnow_summary
    m = BetaGeo().fit(d["frequency"], d["recency"], d["T"])
    path = tmp_path / "bg.json"
    m.save(path)
    data = json.loads(path.read_text())
    assert data["model"] == "bgnbd"
    assert len(data["data_fingerprint"]) == 64
    for loaded in (BetaGeo.load(path), BaseModel.load(path), BetaGeo.from_json(m.to_json())):
        assert isinstance(loaded, BetaGeo)
        assert loaded.params_ == m.params_
        assert loaded.std_errors_ == m.std_errors_
        np.testing.assert_array_equal(loaded.covariance_, m.covariance_)
        assert loaded.log_likelihood_ == m.log_likelihood_
        assert loaded.n_customers_ == 2357
        np.testing.assert_array_equal(loaded.conditional_expected_purchases(10, 2, 30.43, 38.86),
                                      m.conditional_expected_purchases(10, 2, 30.43, 38.86))
    with pytest.raises(ValueError):
        GammaGamma.from_json(m.to_json())


def test_fingerprint_depends_on_data_not_row_order(cdnow_summary):
    d = cdnow_summary
    a = BetaGeo().fit(d["frequency"], d["recency"], d["T"])
    s = d.sample(frac=1.0, random_state=1)
    b = BetaGeo().fit(s["frequency"], s["recency"], s["T"])
    assert a.data_fingerprint_ == b.data_fingerprint_
    c = BetaGeo().fit(d["frequency"][1:], d["recency"][1:], d["T"][1:])
    assert c.data_fingerprint_ != a.data_fingerprint_


def test_sample_params_follow_log_normal_approximation(cdnow_summary):
    d = cdnow_summary
    m = BetaGeo().fit(d["frequency"], d["recency"], d["T"])
    n = 20_000
    draws = np.log(m.sample_params(n, random_state=0))
    theta = np.log(list(m.params_.values()))
    log_sd = np.sqrt(np.diag(m.log_covariance()))
    assert np.all(np.abs(draws.mean(axis=0) - theta) < SAMPLING_TOL_SD * log_sd / np.sqrt(n))
    # delta method: sd of log p = se(p) / p
    np.testing.assert_allclose(log_sd, np.array(list(m.std_errors_.values())) / np.exp(theta),
                               rtol=EXACT_REL_TOL)


def test_registry_names():
    assert MODELS["bgnbd"] is BetaGeo
    assert set(MODELS) >= {"bgnbd", "mbgnbd", "gammagamma"}


def test_input_validation():
    with pytest.raises(ValueError):
        BetaGeo().fit([1], [5.0], [4.0])  # recency > T
    with pytest.raises(ValueError):
        BetaGeo().fit([0], [1.0], [4.0])  # x = 0 with recency > 0
    with pytest.raises(ValueError):
        BetaGeo().fit([1.5], [1.0], [4.0])  # non-integer frequency
    with pytest.raises(NotFittedError):
        BetaGeo().expected_purchases(1.0)  # not fitted
