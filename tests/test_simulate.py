"""The simulator against the truth it draws from (BG/NBD + Gamma-Gamma closed forms).

Expected values come from the papers' formulas, evaluated here independently of patron's model
code: E[X(t)] and P(X(t)=x) from Fader, Hardie & Lee (2005) eqs. 8-9, the Gamma-Gamma mean and
second moment of a transaction value from Fader & Hardie (2013) eqs. 1-2, and the moments of the
Gamma and Beta mixing distributions. Each statistical check allows Z_TOLERANCE standard errors,
the standard error itself from the same closed forms or, for counts, from the sample.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest
from scipy.integrate import quad
from scipy.special import betaln, hyp2f1

from patron.value.simulate import (
    BLOCK_CUSTOMERS,
    CDNOW_BGNBD,
    CDNOW_GAMMA_GAMMA,
    DAYS_PER_WEEK,
    iter_simulated_batches,
    simulate_transactions,
    write_simulated,
)

N_CUSTOMERS = 100_000
"""Customers in the statistical checks: standard errors of about 0.7% of the means."""

Z_TOLERANCE = 4.0
"""Allowed |simulated - expected| in standard errors (two-sided p ~ 6e-5 per check)."""

SEED = 20240101

COHORT_DAYS = 84
OBSERVATION_DAYS = 546
START = np.datetime64("2024-01-01", "us")
END = START + np.timedelta64(OBSERVATION_DAYS, "D")

# A second parameter set with more repeat purchases and a stronger dropout signal.
BUSY = {"r": 1.0, "alpha": 3.0, "a": 0.5, "b": 2.5, "p": 4.0, "q": 5.0, "v": 60.0}
CDNOW = {**CDNOW_BGNBD, **CDNOW_GAMMA_GAMMA}


def expected_repeat_purchases(t, r, alpha, a, b):
    """E[X(t)] for BG/NBD, Fader, Hardie & Lee (2005) eq. 9 (t in weeks)."""
    z = t / (alpha + t)
    return (a + b - 1) / (a - 1) * (1 - (alpha / (alpha + t)) ** r * hyp2f1(r, b, a + b - 1, z))


def probability_repeat_purchases(x, t, r, alpha, a, b):
    """P(X(t) = x) for x in {0, 1}, Fader, Hardie & Lee (2005) eq. 8 written out for small x."""
    stay = (alpha / (alpha + t)) ** r
    if x == 0:
        return stay
    # x = 1: B(a, b+1)/B(a, b) * r * stay * t/(alpha+t) + B(a+1, b)/B(a, b) * (1 - stay).
    first = np.exp(betaln(a, b + 1) - betaln(a, b)) * r * stay * t / (alpha + t)
    return first + np.exp(betaln(a + 1, b) - betaln(a, b)) * (1 - stay)


def customer_numbers(customer_id) -> np.ndarray:
    """The number in ids of the form "c0000001" (fast integer comparisons)."""
    return pc.cast(pc.utf8_slice_codeunits(customer_id, 1), pa.int64()).to_numpy()


@pytest.fixture(scope="module", params=["cdnow", "busy"])
def simulated(request):
    params = CDNOW if request.param == "cdnow" else BUSY
    transactions, truth = simulate_transactions(N_CUSTOMERS, seed=SEED, truth=True, **params)
    return params, transactions, truth


def check_mean(sample_mean, expected, standard_error):
    assert abs(sample_mean - expected) < Z_TOLERANCE * standard_error, (
        f"mean {sample_mean:.6g} vs expected {expected:.6g} (se {standard_error:.3g})"
    )


def test_customer_T_matches_cohort_window(simulated):
    _, _, truth = simulated
    T = truth["T"].to_numpy()
    # T ranges over (observation_days - d) / 7 for first-purchase day d in [0, cohort_days).
    assert T.min() >= (OBSERVATION_DAYS - COHORT_DAYS + 1) / DAYS_PER_WEEK - 1e-12
    assert T.max() <= OBSERVATION_DAYS / DAYS_PER_WEEK + 1e-12
    first = truth["first_purchase"].to_numpy()
    np.testing.assert_allclose((END - first) / np.timedelta64(7, "D"), T, rtol=1e-12)


def test_mixing_distributions_match_their_moments(simulated):
    params, _, truth = simulated
    r, alpha, a, b = (params[k] for k in ("r", "alpha", "a", "b"))
    q, v = params["q"], params["v"]
    n = truth.num_rows
    # Gamma(shape r, rate alpha): mean r/alpha, variance r/alpha^2.
    check_mean(np.mean(truth["lambda"]), r / alpha, np.sqrt(r) / alpha / np.sqrt(n))
    # Beta(a, b): mean a/(a+b), variance ab/((a+b)^2 (a+b+1)).
    sd_p = np.sqrt(a * b / ((a + b) ** 2 * (a + b + 1)))
    check_mean(np.mean(truth["p"]), a / (a + b), sd_p / np.sqrt(n))
    check_mean(np.mean(truth["nu"]), q / v, np.sqrt(q) / v / np.sqrt(n))


def test_mean_repeat_purchases_matches_bgnbd_closed_form(simulated):
    params, transactions, truth = simulated
    bg = {k: params[k] for k in ("r", "alpha", "a", "b")}
    # Orders per customer by counting ids (independent of patron and of row order).
    counts = np.bincount(customer_numbers(transactions["customer_id"]))[1:] - 1
    assert counts.sum() == pc.sum(truth["n_repeat"]).as_py()
    expected = np.mean(expected_repeat_purchases(truth["T"].to_numpy(), **bg))
    check_mean(counts.mean(), expected, counts.std(ddof=1) / np.sqrt(len(counts)))


@pytest.mark.parametrize("x", [0, 1])
def test_repeat_purchase_distribution_matches_bgnbd(simulated, x):
    params, _, truth = simulated
    bg = {k: params[k] for k in ("r", "alpha", "a", "b")}
    observed = np.mean(truth["n_repeat"].to_numpy() == x)
    expected = np.mean(probability_repeat_purchases(x, truth["T"].to_numpy(), **bg))
    check_mean(observed, expected, np.sqrt(expected * (1 - expected) / truth.num_rows))


def probability_alive(T, r, alpha, a, b):
    """P(customer alive at T) = E[(1-p)^N(T)], independently by quadrature over p ~ Beta(a, b).

    Given p, the NBD count N(T) (FHL 2005 eq. 4) has generating function
    E[s^N] = (alpha / (alpha + T (1 - s)))^r; at s = 1 - p it is (alpha / (alpha + p T))^r.
    """
    integral, _ = quad(
        lambda p: (alpha / (alpha + p * T)) ** r, 0.0, 1.0, weight="alg", wvar=(a - 1, b - 1)
    )
    return integral * np.exp(-betaln(a, b))


def test_probability_alive_matches_bgnbd(simulated):
    params, _, truth = simulated
    bg = {k: params[k] for k in ("r", "alpha", "a", "b")}
    T = truth["T"].to_numpy()
    alive = truth["alive"].to_numpy()
    x = truth["n_repeat"].to_numpy()
    assert alive[x == 0].all()  # dropout happens only right after a repeat purchase
    values, counts = np.unique(T, return_counts=True)
    expected = np.dot([probability_alive(t, **bg) for t in values], counts) / len(T)
    check_mean(alive.mean(), expected, np.sqrt(expected * (1 - expected) / len(T)))


def test_mean_spend_matches_gamma_gamma(simulated):
    params, transactions, _ = simulated
    p, q, v = params["p"], params["q"], params["v"]
    # One transaction per customer (the first) so the values are independent across customers.
    ids = customer_numbers(transactions["customer_id"])
    first = np.r_[True, ids[1:] != ids[:-1]]
    z = transactions["amount"].to_numpy()[first]
    assert len(z) == N_CUSTOMERS
    mean = p * v / (q - 1)  # E[z] = p E[1/nu] with E[1/nu] = v / (q - 1)
    second = p * (p + 1) * v**2 / ((q - 1) * (q - 2))  # E[z^2] = p (p+1) E[1/nu^2]
    check_mean(z.mean(), mean, np.sqrt((second - mean**2) / len(z)))
    assert np.all(z >= 0)
    np.testing.assert_array_equal(np.round(z, 2), z)


def test_purchases_lie_between_first_purchase_and_end(simulated):
    _, transactions, truth = simulated
    ids = customer_numbers(transactions["customer_id"])
    times = transactions["occurred_at"].to_numpy()
    # Rows come grouped by customer (ids increase at each change), in time order within each.
    change = np.flatnonzero(ids[1:] != ids[:-1]) + 1
    assert np.all(ids[change] > ids[change - 1])
    same = np.ones(len(ids) - 1, dtype=bool)
    same[change - 1] = False
    assert np.all(times[1:][same] >= times[:-1][same])
    first_rows = np.r_[0, change]
    last_rows = np.r_[change - 1, len(ids) - 1]
    np.testing.assert_array_equal(ids[first_rows], customer_numbers(truth["customer_id"]))
    np.testing.assert_array_equal(times[first_rows], truth["first_purchase"].to_numpy())
    assert np.all(times[last_rows] < END)
    n_orders = np.diff(np.r_[first_rows, len(ids)])
    np.testing.assert_array_equal(n_orders, truth["n_repeat"].to_numpy() + 1)
    orders = pc.cast(pc.utf8_slice_codeunits(transactions["order_id"], 1), pa.int64())
    assert np.all(np.diff(orders.to_numpy()) > 0)  # unique order ids


def test_repeat_times_of_surviving_customers_are_uniform():
    # Given N(T) = n events of a Poisson process on (0, T), their times are uniform on (0, T);
    # survivors kept all N(T) events (dropout is independent of timing), so (t - t0) / T has
    # mean 1/2 and variance 1/12 (exact_times keeps the instant, not the day).
    transactions, truth = simulate_transactions(
        50_000, seed=9, exact_times=True, truth=True, **BUSY
    )
    ids = customer_numbers(transactions["customer_id"])
    row = ids - ids[0]  # customer numbers are consecutive from c0000001
    first = truth["first_purchase"].to_numpy()[row]
    T = truth["T"].to_numpy()[row]
    elapsed = (transactions["occurred_at"].to_numpy() - first) / np.timedelta64(7, "D")
    keep = truth["alive"].to_numpy()[row] & (elapsed > 0)
    u = elapsed[keep] / T[keep]
    assert np.all((u > 0) & (u < 1))
    check_mean(u.mean(), 0.5, np.sqrt(1 / 12 / len(u)))


SMALL = 3 * BLOCK_CUSTOMERS // 2 + 17
"""Customers in the structural checks: more than one random block, not a multiple of it."""


def test_same_seed_same_data_other_seed_other_data():
    first = simulate_transactions(SMALL, seed=7)
    assert first.equals(simulate_transactions(SMALL, seed=7))
    assert not first.equals(simulate_transactions(SMALL, seed=8))


def test_chunk_size_does_not_change_the_data():
    whole, truth = simulate_transactions(SMALL, seed=3, truth=True)
    for chunk in (1, BLOCK_CUSTOMERS, 10 * BLOCK_CUSTOMERS):
        pieces = list(iter_simulated_batches(SMALL, seed=3, truth=True, chunk_customers=chunk))
        assert pa.Table.from_batches([tx for tx, _ in pieces]).equals(whole)
        assert pa.Table.from_batches([t for _, t in pieces]).equals(truth)
    assert len(pieces) == 1  # the last chunk size holds every customer
    assert len(list(iter_simulated_batches(SMALL, seed=3, chunk_customers=1))) == 2


def test_exact_times_fall_within_the_purchase_day():
    daily = simulate_transactions(2_000, seed=5)
    exact = simulate_transactions(2_000, seed=5, exact_times=True)
    day = np.timedelta64(1, "D")
    a = daily["occurred_at"].to_numpy()
    b = exact["occurred_at"].to_numpy()
    assert np.all((b >= a) & (b - a < day))
    assert np.any(b > a)


@pytest.mark.parametrize("suffix", [".parquet", ".csv"])
def test_write_simulated_streams_the_same_table(tmp_path, suffix):
    path = tmp_path / f"tx{suffix}"
    truth_path = tmp_path / f"truth{suffix}"
    seen = []
    written = write_simulated(
        path, SMALL, seed=11, truth_path=truth_path, chunk_customers=1, progress=seen.append
    )
    assert seen == [BLOCK_CUSTOMERS, SMALL]  # customers written after each batch
    expected, truth = simulate_transactions(SMALL, seed=11, truth=True)
    assert (written.n_customers, written.n_transactions) == (SMALL, expected.num_rows)
    if suffix == ".parquet":
        back, back_truth = pq.read_table(path), pq.read_table(truth_path)
    else:
        read = pacsv.ConvertOptions(column_types=expected.schema)
        back = pacsv.read_csv(path, convert_options=read)
        read = pacsv.ConvertOptions(column_types=truth.schema)
        back_truth = pacsv.read_csv(truth_path, convert_options=read)
    assert back.equals(expected)
    assert back_truth.select(["customer_id", "n_repeat"]).equals(
        truth.select(["customer_id", "n_repeat"])
    )


def test_rejects_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="positive"):
        simulate_transactions(10, seed=1, r=-1.0)
    with pytest.raises(ValueError, match="cohort_days"):
        simulate_transactions(10, seed=1, cohort_days=600)
    with pytest.raises(ValueError, match="extension"):
        write_simulated(tmp_path / "tx.json", 10, seed=1)
    assert simulate_transactions(0, seed=1).num_rows == 0
