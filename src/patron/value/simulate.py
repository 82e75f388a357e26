"""Synthetic transaction logs drawn from BG/NBD purchases and Gamma-Gamma spend.

The generative process, per customer (time in weeks; calendar days on output):

* purchase rate ``lambda ~ Gamma(shape=r, rate=alpha)`` (per week) and dropout probability
  ``p ~ Beta(a, b)`` (Fader, Hardie & Lee 2005, "Counting your customers the easy way", sections 2-3);
* the first purchase falls on a day drawn uniformly from the cohort window ``[start, start +
  cohort_days)``, at midnight; the customer is observed until ``end = start + observation_days``
  (exclusive), so ``T = (end - first purchase) / 7`` weeks exactly;
* while alive, repeat purchases arrive as a Poisson process of rate ``lambda``; right after each
  *repeat* purchase the customer drops out with probability ``p`` (never after the first purchase),
  as in the BG/NBD likelihood (FHL 2005, eq. 3): the number of repeat purchases before dropout is
  ``J ~ Geometric(p)`` on {1, 2, ...}, and the customer makes ``X = min(N(T), J)`` repeat purchases,
  the first ``X`` events of the Poisson process;
* spend: ``nu ~ Gamma(shape=q, rate=v)`` per customer and each transaction value (the first purchase
  included) ``z ~ Gamma(shape=p, rate=nu)``, rounded to cents (Fader & Hardie 2013, "The Gamma-Gamma
  model of monetary value", eqs. 1-2), so ``E[z] = p v / (q - 1)``.

Repeat purchase times are the first ``X`` order statistics of ``N(T)`` uniforms on ``(0, T)``, drawn
directly from exponential spacings (``U_(k) = S_k / S_{N+1}`` with ``S_k`` a sum of ``k`` unit
exponentials), so no event after dropout is ever generated. A timestamp is midnight of the purchase
day (``exact_times=False``) or the exact simulated instant (``exact_times=True``); the first purchase
is always at midnight, so no purchase precedes it. Several purchases may share a day.

Randomness is drawn in blocks of :data:`BLOCK_CUSTOMERS` customers, each from its own stream
``SeedSequence(seed, spawn_key=(block,))``: the output depends on ``seed`` and the parameters only,
never on the chunk size used to bound memory.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from patron.data.outputs import atomic_output
from patron.value.models.sampling_covariates import (  # simulators with planted covariate effects (re-exported)
    sample_beta_geo_covariates,
    sample_pareto_nbd_covariates,
    sample_pareto_nbd_dynamic,
)

COVARIATE_SIMULATORS = (sample_beta_geo_covariates, sample_pareto_nbd_covariates, sample_pareto_nbd_dynamic)
"""Summary-level simulators with covariates (:mod:`patron.value.models.sampling_covariates`)."""

DAYS_PER_WEEK = 7.0
"""Days in one week: the model's time unit is the week, timestamps are calendar days."""

MICROSECONDS_PER_DAY = 86_400_000_000
"""Microseconds in one day (the resolution of ``occurred_at``)."""

BLOCK_CUSTOMERS = 1 << 14
"""Customers per independent random stream; the unit of randomness (see module docstring)."""

DEFAULT_CHUNK_CUSTOMERS = 1 << 20
"""Customers generated per record batch by the streaming functions (about 1M)."""

CDNOW_BGNBD = {"r": 0.2426, "alpha": 4.4136, "a": 0.7929, "b": 2.4259}
"""BG/NBD estimates on CDNOW, rates per week (Fader, Hardie & Lee 2005, section 5)."""

CDNOW_GAMMA_GAMMA = {"p": 6.25, "q": 3.74, "v": 15.44}
"""Gamma-Gamma estimates on CDNOW repeat buyers, in dollars (Fader & Hardie 2013, section 3)."""

CUSTOMER_ID_DIGITS = 7
"""Minimum digits of the zero-padded customer number in ``customer_id`` ("c0000001")."""

ORDER_ID_DIGITS = 10
"""Digits of the zero-padded order number in ``order_id`` ("o0000000001")."""

TRANSACTIONS_SCHEMA = pa.schema(
    [
        ("customer_id", pa.string()),
        ("order_id", pa.string()),
        ("occurred_at", pa.timestamp("us")),
        ("amount", pa.float64()),
    ]
)
"""Columns of a simulated transaction log (the ``transactions`` data contract's required part)."""

TRUTH_SCHEMA = pa.schema(
    [
        ("customer_id", pa.string()),
        ("lambda", pa.float64()),
        ("p", pa.float64()),
        ("nu", pa.float64()),
        ("first_purchase", pa.timestamp("us")),
        ("T", pa.float64()),
        ("n_repeat", pa.int64()),
        ("alive", pa.bool_()),
    ]
)
"""Per-customer truth: purchase rate per week, dropout probability, spend rate ``nu``, first
purchase, ``T`` in weeks, number of repeat purchases (continuous time, before same-day merging)
and whether the customer is still alive at the end of observation."""


@dataclass(frozen=True)
class SimulatedFile:
    """What :func:`write_simulated` wrote."""

    path: Path
    n_customers: int
    n_transactions: int
    truth_path: Path | None = None


def _draw_block(
    rng: np.random.Generator,
    n: int,
    *,
    r: float,
    alpha: float,
    a: float,
    b: float,
    p: float,
    q: float,
    v: float,
    cohort_days: int,
    observation_days: int,
) -> dict[str, np.ndarray]:
    """Draw ``n`` customers; times in days from ``start``, rates per week (see module docstring)."""
    lam = rng.gamma(r, 1.0 / alpha, size=n)
    drop = rng.beta(a, b, size=n)
    nu = rng.gamma(q, 1.0 / v, size=n)
    first_day = rng.integers(0, cohort_days, size=n)
    span_days = (observation_days - first_day).astype(np.float64)
    n_window = rng.poisson(lam * span_days / DAYS_PER_WEEK)
    n_before_drop = rng.geometric(drop)
    n_repeat = np.minimum(n_window, n_before_drop)

    # First n_repeat order statistics of n_window uniforms on (0, 1): U_(k) = S_k / S_{N+1}.
    total = int(n_repeat.sum())
    owner = np.repeat(np.arange(n), n_repeat)
    starts = np.cumsum(n_repeat) - n_repeat
    running = np.concatenate([[0.0], np.cumsum(rng.standard_exponential(total))])
    before = running[starts]
    partial = running[1:] - np.repeat(before, n_repeat)
    last = running[starts + n_repeat] - before
    rest = rng.standard_gamma((n_window - n_repeat + 1).astype(np.float64))
    uniform = partial / np.repeat(last + rest, n_repeat)
    repeat_days = first_day[owner] + uniform * span_days[owner]
    repeat_days = np.minimum(repeat_days, np.nextafter(observation_days, 0.0))

    # Rows grouped by customer, first purchase then repeats in time order.
    n_orders = n_repeat + 1
    row_owner = np.repeat(np.arange(n), n_orders)
    row_start = np.cumsum(n_orders) - n_orders
    days = np.empty(n + total)
    days[row_start] = first_day
    is_repeat = np.ones(n + total, dtype=bool)
    is_repeat[row_start] = False
    days[is_repeat] = repeat_days
    amount = rng.standard_gamma(p, size=n + total) / nu[row_owner]
    return {
        "lambda": lam,
        "p": drop,
        "nu": nu,
        "first_day": first_day,
        "T": span_days / DAYS_PER_WEEK,
        "n_repeat": n_repeat,
        "alive": n_before_drop > n_window,
        "row_owner": row_owner,
        "days": days,
        "amount": np.round(amount, 2),
    }


def _padded_ids(prefix: str, numbers: np.ndarray, digits: int) -> pa.Array:
    """Strings ``prefix`` + ``numbers`` zero-padded to ``digits``, built as one byte matrix."""
    head = np.frombuffer(prefix.encode("ascii"), dtype=np.uint8)
    width = len(head) + digits
    chars = np.empty((len(numbers), width), dtype=np.uint8)
    chars[:, : len(head)] = head
    rest = np.asarray(numbers, dtype=np.int64).copy()
    for position in range(width - 1, len(head) - 1, -1):  # one pass per digit
        chars[:, position] = ord("0") + rest % 10
        rest //= 10
    offsets = np.arange(len(numbers) + 1, dtype=np.int64) * width
    text = pa.LargeStringArray.from_buffers(
        len(numbers), pa.py_buffer(offsets), pa.py_buffer(chars.ravel())
    )
    return text.cast(pa.string())


def _check(n_customers: int, params: dict[str, float], cohort_days: int, observation_days: int):
    if int(n_customers) != n_customers or n_customers < 0:
        raise ValueError(f"n_customers must be a non-negative integer, got {n_customers!r}")
    bad = [name for name, value in params.items() if not (np.isfinite(value) and value > 0)]
    if bad:
        raise ValueError(f"parameters must be positive and finite: {', '.join(bad)}")
    if params["q"] <= 1:
        raise ValueError("q must exceed 1 for the mean transaction value to exist")
    if not 1 <= cohort_days <= observation_days:
        raise ValueError("need 1 <= cohort_days <= observation_days")


def _customers_per_batch(chunk_customers: int) -> int:
    """``chunk_customers`` rounded up to a whole number of random blocks (at least one)."""
    return max(1, -(-int(chunk_customers) // BLOCK_CUSTOMERS)) * BLOCK_CUSTOMERS


def iter_simulated_batches(
    n_customers: int,
    *,
    seed: int,
    r: float = CDNOW_BGNBD["r"],
    alpha: float = CDNOW_BGNBD["alpha"],
    a: float = CDNOW_BGNBD["a"],
    b: float = CDNOW_BGNBD["b"],
    p: float = CDNOW_GAMMA_GAMMA["p"],
    q: float = CDNOW_GAMMA_GAMMA["q"],
    v: float = CDNOW_GAMMA_GAMMA["v"],
    start: str = "2024-01-01",
    cohort_days: int = 84,
    observation_days: int = 546,
    exact_times: bool = False,
    truth: bool = False,
    chunk_customers: int = DEFAULT_CHUNK_CUSTOMERS,
) -> Iterator[pa.RecordBatch] | Iterator[tuple[pa.RecordBatch, pa.RecordBatch]]:
    """Yield a simulated transaction log as Arrow record batches of whole customers.

    Parameters are those of :func:`simulate_transactions`. ``chunk_customers`` bounds memory: each
    batch holds that many customers (rounded up to a multiple of :data:`BLOCK_CUSTOMERS`; the
    output does not depend on it). With ``truth=True`` each item is ``(transactions, truth)``.
    """
    params = {"r": r, "alpha": alpha, "a": a, "b": b, "p": p, "q": q, "v": v}
    _check(n_customers, params, cohort_days, observation_days)
    blocks_per_chunk = _customers_per_batch(chunk_customers) // BLOCK_CUSTOMERS
    start_us = np.datetime64(start, "D").astype("datetime64[us]").astype(np.int64)
    width = max(CUSTOMER_ID_DIGITS, len(str(n_customers)))
    n_blocks = -(-int(n_customers) // BLOCK_CUSTOMERS)
    orders_so_far = 0
    for chunk_first in range(0, n_blocks, blocks_per_chunk):
        parts = []
        for block in range(chunk_first, min(chunk_first + blocks_per_chunk, n_blocks)):
            rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(block,)))
            size = min(BLOCK_CUSTOMERS, n_customers - block * BLOCK_CUSTOMERS)
            parts.append(
                _draw_block(
                    rng,
                    size,
                    **params,
                    cohort_days=cohort_days,
                    observation_days=observation_days,
                )
            )
        first_customer = chunk_first * BLOCK_CUSTOMERS
        draws = {key: np.concatenate([part[key] for part in parts]) for key in parts[0]}
        sizes = np.array([len(part["lambda"]) for part in parts])
        block_offsets = np.repeat(np.cumsum(sizes) - sizes, [len(part["days"]) for part in parts])
        row_owner = draws["row_owner"] + block_offsets
        n_rows = len(row_owner)

        customer_ids = _padded_ids("c", np.arange(len(draws["lambda"])) + first_customer + 1, width)
        days = draws["days"] if exact_times else np.floor(draws["days"])
        micros = start_us + np.round(days * MICROSECONDS_PER_DAY).astype(np.int64)
        order_numbers = np.arange(orders_so_far + 1, orders_so_far + n_rows + 1)
        orders_so_far += n_rows
        transactions = pa.record_batch(
            [
                customer_ids.take(pa.array(row_owner)),
                _padded_ids("o", order_numbers, ORDER_ID_DIGITS),
                pa.array(micros, pa.timestamp("us")),
                pa.array(draws["amount"], pa.float64()),
            ],
            schema=TRANSACTIONS_SCHEMA,
        )
        if not truth:
            yield transactions
            continue
        first_us = start_us + draws["first_day"].astype(np.int64) * MICROSECONDS_PER_DAY
        yield (
            transactions,
            pa.record_batch(
                [
                    customer_ids,
                    pa.array(draws["lambda"]),
                    pa.array(draws["p"]),
                    pa.array(draws["nu"]),
                    pa.array(first_us, pa.timestamp("us")),
                    pa.array(draws["T"]),
                    pa.array(draws["n_repeat"], pa.int64()),
                    pa.array(draws["alive"]),
                ],
                schema=TRUTH_SCHEMA,
            ),
        )


def simulate_transactions(
    n_customers: int,
    *,
    seed: int,
    r: float = CDNOW_BGNBD["r"],
    alpha: float = CDNOW_BGNBD["alpha"],
    a: float = CDNOW_BGNBD["a"],
    b: float = CDNOW_BGNBD["b"],
    p: float = CDNOW_GAMMA_GAMMA["p"],
    q: float = CDNOW_GAMMA_GAMMA["q"],
    v: float = CDNOW_GAMMA_GAMMA["v"],
    start: str = "2024-01-01",
    cohort_days: int = 84,
    observation_days: int = 546,
    exact_times: bool = False,
    truth: bool = False,
    chunk_customers: int = DEFAULT_CHUNK_CUSTOMERS,
) -> pa.Table | tuple[pa.Table, pa.Table]:
    """Simulate a customer base's transaction log from BG/NBD + Gamma-Gamma.

    Parameters
    ----------
    n_customers : int
        Number of customers (each makes at least the first purchase).
    seed : int
        Seed of the random streams; same seed and parameters give the same table.
    r, alpha : float
        BG/NBD purchase-rate heterogeneity, ``lambda ~ Gamma(shape=r, rate=alpha)``, per week.
    a, b : float
        BG/NBD dropout heterogeneity, ``p ~ Beta(a, b)``.
    p, q, v : float
        Gamma-Gamma spend: ``nu ~ Gamma(shape=q, rate=v)``, ``z ~ Gamma(shape=p, rate=nu)``.
        Defaults are the CDNOW estimates (:data:`CDNOW_BGNBD`, :data:`CDNOW_GAMMA_GAMMA`).
    start : str
        ISO date of the first day of the cohort window.
    cohort_days : int
        Days over which first purchases are spread uniformly.
    observation_days : int
        Days from ``start`` to the end of observation (exclusive); the summary's natural end date
        is ``start + observation_days`` (with lifetimes' day-grain definitions ``T`` then equals
        the simulated ``T`` exactly).
    exact_times : bool
        Keep the simulated instant of repeat purchases instead of midnight of their day.
    truth : bool
        Also return the per-customer truth (:data:`TRUTH_SCHEMA`).
    chunk_customers : int
        Customers per internal batch; bounds memory, does not change the result.

    Returns
    -------
    pyarrow.Table or (pyarrow.Table, pyarrow.Table)
        Transactions (:data:`TRANSACTIONS_SCHEMA`), grouped by customer in time order; with
        ``truth=True`` also the truth table, one row per customer.

    Examples
    --------
    >>> tx = simulate_transactions(1000, seed=1)
    >>> tx.column_names
    ['customer_id', 'order_id', 'occurred_at', 'amount']
    >>> tx.num_rows >= 1000
    True
    """
    batches = list(
        iter_simulated_batches(
            n_customers,
            seed=seed,
            r=r,
            alpha=alpha,
            a=a,
            b=b,
            p=p,
            q=q,
            v=v,
            start=start,
            cohort_days=cohort_days,
            observation_days=observation_days,
            exact_times=exact_times,
            truth=truth,
            chunk_customers=chunk_customers,
        )
    )
    if not truth:
        return pa.Table.from_batches(batches, schema=TRANSACTIONS_SCHEMA)
    return (
        pa.Table.from_batches([pair[0] for pair in batches], schema=TRANSACTIONS_SCHEMA),
        pa.Table.from_batches([pair[1] for pair in batches], schema=TRUTH_SCHEMA),
    )


class _Sink:
    """Streaming writer for one CSV or Parquet file, chosen by extension."""

    def __init__(self, path: Path, schema: pa.Schema):
        suffix = path.suffix.lower()
        if suffix == ".parquet":
            self._writer = pq.ParquetWriter(path, schema)
        elif suffix == ".csv":
            self._writer = pacsv.CSVWriter(path, schema)
        else:
            raise ValueError(f"unsupported output extension {suffix!r}: use .csv or .parquet")

    def write(self, batch: pa.RecordBatch) -> None:
        self._writer.write_batch(batch)

    def close(self) -> None:
        self._writer.close()


def write_simulated(
    path: str | Path,
    n_customers: int,
    *,
    seed: int,
    truth_path: str | Path | None = None,
    progress: Callable[[int], None] | None = None,
    **options,
) -> SimulatedFile:
    """Stream a simulated transaction log to ``path`` (``.csv`` or ``.parquet``).

    ``options`` are the keyword arguments of :func:`iter_simulated_batches` (parameters, dates,
    ``exact_times``, ``chunk_customers``). Memory stays bounded by one chunk of customers, so any
    number of customers fits. With ``truth_path`` the per-customer truth is written there too.
    ``progress``, if given, is called with the number of customers written after each batch
    (for a progress bar). Returns the paths and the number of customers and transactions written.
    """
    path = Path(path)
    truth_file = Path(truth_path) if truth_path is not None else None
    batches = iter_simulated_batches(
        n_customers, seed=seed, truth=truth_file is not None, **options
    )
    n_rows = 0
    batches_done = 0
    per_batch = _customers_per_batch(options.get("chunk_customers", DEFAULT_CHUNK_CUSTOMERS))
    with ExitStack() as outputs:  # each file renamed into place only when complete
        sink = _Sink(outputs.enter_context(atomic_output(path)), TRANSACTIONS_SCHEMA)
        truth_sink = _Sink(outputs.enter_context(atomic_output(truth_file)), TRUTH_SCHEMA) if truth_file is not None else None
        try:
            for item in batches:
                transactions, truth_batch = item if truth_sink is not None else (item, None)
                sink.write(transactions)
                n_rows += transactions.num_rows
                if truth_sink is not None:
                    truth_sink.write(truth_batch)
                if progress is not None:
                    batches_done += 1
                    progress(min(batches_done * per_batch, int(n_customers)))
        finally:
            sink.close()
            if truth_sink is not None:
                truth_sink.close()
    return SimulatedFile(path, int(n_customers), n_rows, truth_file)
