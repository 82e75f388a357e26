"""Row grouping (factorize, compress, unique_rows) against numpy's sort-based np.unique."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from patron.value.models import _rows
from patron.value.models._rows import compress, factorize, group_rows, unique_rows, wdot

EXACT_REL_TOL = 1e-12


def _reference_compress(cols, w):
    """Independent: np.unique over the stacked rows (sorts rows lexicographically)."""
    stacked = np.column_stack(cols)
    uniq, inv = np.unique(stacked, axis=0, return_inverse=True)
    return [uniq[:, j] for j in range(uniq.shape[1])], np.bincount(inv.ravel(), weights=w)


@pytest.mark.parametrize("kind", ["small_int_floats", "ints", "day_fractions", "continuous"])
def test_factorize_matches_np_unique(kind):
    rng = np.random.default_rng(1)
    values = {
        "small_int_floats": rng.integers(0, 50, 5000).astype(float),
        "ints": rng.integers(-3, 9, 5000),
        "day_fractions": rng.integers(0, 546, 5000) / 7.0,
        "continuous": rng.gamma(2.0, 10.0, 5000),
    }[kind]
    uniq, codes = factorize(values)
    ref = np.unique(values)
    np.testing.assert_array_equal(uniq, ref)
    np.testing.assert_array_equal(uniq[codes], values)
    assert uniq.dtype == values.dtype


def test_factorize_large_integers_and_negative_zero_use_hashing():
    values = np.array([2.0**40, 3.0, -0.0, 0.0, 2.0**40])
    uniq, codes = factorize(values)
    np.testing.assert_array_equal(uniq, [0.0, 3.0, 2.0**40])
    np.testing.assert_array_equal(uniq[codes], values)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 4), st.sampled_from([0.0, 1 / 7, 2 / 7, 0.5, 3.25]),
                          st.floats(0.1, 3.0), st.integers(0, 3)), min_size=1, max_size=60))
def test_compress_matches_reference(rows):
    x, t, T, w = (np.array(c, dtype=float) for c in zip(*rows, strict=True))
    if w.sum() == 0:
        w[0] = 1.0
    keep = w > 0
    (ux, ut, uT), sw = compress(x, t, T, weights=w)
    ref_cols, ref_w = _reference_compress([x[keep], t[keep], T[keep]], w[keep])
    for got, ref in zip((ux, ut, uT), ref_cols, strict=True):
        np.testing.assert_array_equal(got, ref)
    np.testing.assert_allclose(sw, ref_w, rtol=EXACT_REL_TOL)


def test_rekeying_when_the_combined_key_would_overflow(monkeypatch):
    # force the re-densifying branch (key range beyond KEY_LIMIT) and the hashed-key branch
    monkeypatch.setattr(_rows, "KEY_LIMIT", 50)
    monkeypatch.setattr(_rows, "DIRECT_KEY_FACTOR", 0)
    rng = np.random.default_rng(2)
    cols = [rng.integers(0, 9, 3000).astype(float), rng.normal(size=3000).round(1),
            rng.integers(0, 12, 3000).astype(float)]
    (a, b, c), inv = unique_rows(*cols)
    ref, _ = _reference_compress(cols, np.ones(3000))
    for got, want in zip((a, b, c), ref, strict=True):
        np.testing.assert_array_equal(got, want)
    for got, col in zip((a, b, c), cols, strict=True):
        np.testing.assert_array_equal(got[inv], col)


def test_group_rows_representatives_belong_to_their_group():
    x = np.array([3.0, 1.0, 3.0, 2.0, 1.0])
    rep, inv = group_rows(x)
    np.testing.assert_array_equal(inv[rep], np.arange(rep.size))
    np.testing.assert_array_equal(x[rep], [1.0, 2.0, 3.0])


def test_wdot_equals_sum_of_products_including_broadcasting():
    rng = np.random.default_rng(3)
    a, b = rng.normal(size=1000), rng.normal(size=1000)
    assert wdot(a, b) == pytest.approx(float(np.sum(a * b)), rel=EXACT_REL_TOL)
    m = rng.normal(size=(5, 1000))
    assert wdot(a[None, :], m) == pytest.approx(float(np.sum(a * m)), rel=EXACT_REL_TOL)


def test_grid_fast_path_falls_back_when_one_value_is_off_the_grid():
    # every value k/7 except one, away from the sampled positions: the exact check must catch it
    values = np.arange(10_000) % 300 / 7.0
    values[4321] = np.nextafter(values[4321], 1.0)
    uniq, codes = factorize(values)
    np.testing.assert_array_equal(uniq, np.unique(values))
    np.testing.assert_array_equal(uniq[codes], values)
