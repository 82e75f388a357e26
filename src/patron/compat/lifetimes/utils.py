"""lifetimes' ``utils``: customer summaries from transactions, alive paths, tracking and CLV,
computed by patron's engine (:func:`patron.summary`, :func:`patron.value.evaluation.purchases_by_period`,
:func:`patron.value.models.clv.customer_lifetime_value`).

``freq`` is a lifetimes (pandas) period: ``"D"``, ``"W"`` (weeks Monday to Sunday), ``"M"``
(calendar months) or ``"h"`` (hours); purchases in one period count once and durations are in
that period (divided by ``freq_multiplier``). ``observation_period_end`` and
``calibration_period_end`` include the whole period that holds them, as in lifetimes.

Differences from lifetimes 0.11.3 (all listed in docs/migrating-from-lifetimes.md): negative
amounts are refunds, never purchases (lifetimes counted a day with only a refund as a repeat
purchase); ``monetary_value_holdout`` is the mean per purchase period, like every other monetary
value (lifetimes averaged raw holdout rows); results come back sorted by customer id with the
ids' own dtype.
"""

from __future__ import annotations

from datetime import date, datetime, time
from typing import Any

import numpy as np
import pandas as pd

from patron.errors import PatronError
from patron.value.models import ConvergenceError as _NativeConvergenceError

__all__ = [
    "calculate_alive_path",
    "calibration_and_holdout_data",
    "expected_cumulative_transactions",
    "summary_data_from_transaction_data",
]

GRAINS: dict[str, str] = {"D": "D", "W": "W", "M": "M", "H": "H"}
"""lifetimes ``freq`` (upper-cased) -> patron's summary grain and unit."""

PANDAS_FREQ: dict[str, str] = {"D": "D", "W": "W", "M": "M", "H": "h"}
"""patron's grain -> the pandas period alias."""

PERIODS_PER_MONTH: dict[str, float] = {"W": 4.345, "M": 1.0, "D": 30.0, "H": 30.0 * 24.0}
"""Periods of ``freq`` in one month in lifetimes' CLV (its figures: 4.345 weeks, 30 days, 720
hours), kept so that ``time`` months give lifetimes' horizon."""


class ConvergenceError(_NativeConvergenceError, ValueError):
    """The model did not converge (a ``ValueError`` as in lifetimes, and patron's
    :class:`patron.value.models.ConvergenceError`)."""


def _grain(freq: str) -> str:
    key = str(freq).upper()
    if key not in GRAINS:
        raise ValueError(f"freq must be one of D, W, M, h (lifetimes' periods that patron summarises); got {freq!r}")
    return GRAINS[key]


def _period_last_instant(stamp: Any, grain: str, datetime_format: str | None = None) -> date | datetime:
    """The end patron's summary takes for a lifetimes end: the whole period holding ``stamp``
    (a date for D, W, M; the hour's last microsecond for H)."""
    if datetime_format is not None and isinstance(stamp, int | float | np.integer | np.floating):
        stamp = str(int(stamp))
    ts = pd.Timestamp(pd.to_datetime(stamp, format=datetime_format))
    if ts.tzinfo is not None:
        ts = ts.tz_localize(None)
    period = ts.to_period(PANDAS_FREQ[grain])
    last = (period + 1).to_timestamp() - pd.Timedelta(microseconds=1)
    return last.to_pydatetime() if grain == "H" else last.date()


def _transactions(transactions: pd.DataFrame, customer_id_col: str, datetime_col: str,
                  monetary_value_col: str | None, datetime_format: str | None) -> pd.DataFrame:
    """The columns patron's summary reads: ``customer_id``, ``occurred_at`` (naive timestamps,
    wall-clock time kept) and ``amount``."""
    when = transactions[datetime_col]
    if datetime_format is not None and pd.api.types.is_numeric_dtype(when):
        when = when.astype(str)  # 19970101 with "%Y%m%d": text, as pandas will stop reading numbers so
    if datetime_format is not None or not pd.api.types.is_datetime64_any_dtype(when):
        when = pd.to_datetime(when, format=datetime_format)
    if getattr(when.dt, "tz", None) is not None:
        when = when.dt.tz_localize(None)
    out = {"customer_id": transactions[customer_id_col].reset_index(drop=True),
           "occurred_at": when.reset_index(drop=True)}
    if monetary_value_col:
        out["amount"] = pd.to_numeric(transactions[monetary_value_col]).astype(np.float64).reset_index(drop=True)
    frame = pd.DataFrame(out)
    return frame


def _summarise(frame: pd.DataFrame, grain: str, end: Any, holdout_end: Any = None) -> pd.DataFrame:
    import patron

    try:
        return patron.summary(frame, period=grain, grain=grain, end=end, holdout_end=holdout_end)
    except PatronError as exc:
        raise ValueError(str(exc)) from None


def _lifetimes_columns(s: pd.DataFrame, customer_id_col: str, *, freq_multiplier: float, monetary: bool,
                       include_first_transaction: bool, suffix: str = "") -> pd.DataFrame:
    repeat = s["frequency"].to_numpy(dtype=np.float64)
    out = pd.DataFrame(index=pd.Index(s["customer_id"], name=customer_id_col))
    out["frequency" + suffix] = repeat + 1.0 if include_first_transaction else repeat
    out["recency" + suffix] = s["recency"].to_numpy(dtype=np.float64) / freq_multiplier
    out["T" + suffix] = s["T"].to_numpy(dtype=np.float64) / freq_multiplier
    if monetary:
        if include_first_transaction:  # the mean over every purchase period, first included
            value = (s["total_spend"] + s["refunded"]).to_numpy(dtype=np.float64) / (repeat + 1.0)
        else:
            value = s["monetary_value"].to_numpy(dtype=np.float64)
        out["monetary_value" + suffix] = value
    return out


def summary_data_from_transaction_data(transactions: pd.DataFrame, customer_id_col: str, datetime_col: str,
                                       monetary_value_col: str | None = None, datetime_format: str | None = None,
                                       observation_period_end: Any = None, freq: str = "D",
                                       freq_multiplier: float = 1, include_first_transaction: bool = False
                                       ) -> pd.DataFrame:
    """One row per customer, indexed by ``customer_id_col``: ``frequency`` (repeat purchase
    periods; all of them with ``include_first_transaction``), ``recency`` and ``T`` (in ``freq``
    divided by ``freq_multiplier``), and with ``monetary_value_col`` the mean value of the
    repeat purchase periods (``monetary_value``)."""
    grain = _grain(freq)
    frame = _transactions(transactions, customer_id_col, datetime_col, monetary_value_col, datetime_format)
    end_at = observation_period_end if observation_period_end is not None else frame["occurred_at"].max()
    end = _period_last_instant(end_at, grain, datetime_format)
    s = _summarise(frame, grain, end)
    return _lifetimes_columns(s, customer_id_col, freq_multiplier=freq_multiplier, monetary=bool(monetary_value_col),
                              include_first_transaction=include_first_transaction)


def calibration_and_holdout_data(transactions: pd.DataFrame, customer_id_col: str, datetime_col: str,
                                 calibration_period_end: Any, observation_period_end: Any = None, freq: str = "D",
                                 freq_multiplier: float = 1, datetime_format: str | None = None,
                                 monetary_value_col: str | None = None, include_first_transaction: bool = False
                                 ) -> pd.DataFrame:
    """The calibration summary (columns suffixed ``_cal``) of customers with a purchase by
    ``calibration_period_end``, with what they did after it up to ``observation_period_end``:
    ``frequency_holdout`` (purchase periods), ``monetary_value_holdout`` (their mean value) and
    ``duration_holdout`` (the holdout's length in ``freq`` / ``freq_multiplier``)."""
    grain = _grain(freq)
    frame = _transactions(transactions, customer_id_col, datetime_col, monetary_value_col, datetime_format)
    end_at = observation_period_end if observation_period_end is not None else frame["occurred_at"].max()
    cal_end = _period_last_instant(calibration_period_end, grain, datetime_format)
    hold_end = _period_last_instant(end_at, grain, datetime_format)
    cal_stop = pd.Timestamp(cal_end if isinstance(cal_end, datetime) else datetime.combine(cal_end, time.max))
    hold_stop = pd.Timestamp(hold_end if isinstance(hold_end, datetime) else datetime.combine(hold_end, time.max))
    when = frame["occurred_at"]
    if not ((when > cal_stop) & (when <= hold_stop)).any():
        raise ValueError("There is no data available in the holdout period: check observation_period_end and "
                         "calibration_period_end against the dates of the transactions")
    s = _summarise(frame, grain, cal_end, hold_end)
    out = _lifetimes_columns(s, customer_id_col, freq_multiplier=freq_multiplier, monetary=bool(monetary_value_col),
                             include_first_transaction=include_first_transaction, suffix="_cal")
    out["frequency_holdout"] = s["frequency_holdout"].to_numpy(dtype=np.float64)
    if monetary_value_col:
        out["monetary_value_holdout"] = s["monetary_value_holdout"].to_numpy(dtype=np.float64)
    out["duration_holdout"] = s["duration_holdout"].to_numpy(dtype=np.float64) / freq_multiplier
    return out


def calculate_alive_path(model: Any, transactions: pd.DataFrame, datetime_col: str, t: int,
                         freq: str = "D") -> pd.Series:
    """P(alive) of one customer (``transactions`` holds their orders) at the end of each period
    0, 1, ..., ``t`` since their first purchase: the model's ``conditional_probability_alive`` of
    the history known then (periods with a purchase count once)."""
    grain = _grain(freq)
    when = pd.to_datetime(transactions[datetime_col])
    ordinals = pd.PeriodIndex(when, freq=PANDAS_FREQ[grain]).asi8
    offsets = ordinals - ordinals.min()
    n = max(int(t) + 1, int(offsets.max()) + 1)
    age = np.arange(n, dtype=np.float64)
    bought = np.zeros(n, dtype=bool)
    bought[offsets] = True
    frequency = np.cumsum(bought) - 1.0
    recency = np.maximum.accumulate(np.where(bought, age, 0.0))
    alive = model.conditional_probability_alive(frequency, recency, age)
    return pd.Series(np.asarray(alive, dtype=np.float64))


def expected_cumulative_transactions(model: Any, transactions: pd.DataFrame, datetime_col: str,
                                     customer_id_col: str, t: int, datetime_format: str | None = None,
                                     freq: str = "D", freq_multiplier: int = 1, set_index_date: bool = False
                                     ) -> pd.DataFrame:
    """Actual and predicted cumulative repeat purchases of the whole base per period since the
    first transaction (FHL 2005's tracking plot; Fader, Hardie & Lee's MATLAB note, p. 8): at the
    end of each ``freq_multiplier`` periods, ``actual`` sums the repeat purchase periods so far,
    ``predicted`` sums, over customers acquired before, the model's E[X(time since acquisition)]."""
    grain = _grain(freq)
    frame = _transactions(transactions, customer_id_col, datetime_col, None, datetime_format)
    start = frame["occurred_at"].min()
    start_p = start.to_period(PANDAS_FREQ[grain])
    from patron.value.evaluation import purchases_by_period

    counts = purchases_by_period(frame, grain=grain, start=start, end=(start_p + int(t)).to_timestamp())
    firsts = counts["first_purchases"].to_numpy(dtype=np.float64)
    repeats = counts["repeat_purchases"].to_numpy(dtype=np.float64)
    mult = int(freq_multiplier)
    ends = np.arange(1, int(t) // mult + 1) * mult  # periods at which the totals are taken
    acquired = np.flatnonzero(firsts)
    elapsed = (ends[:, None] - acquired[None, :]).astype(np.float64)
    known = elapsed > 0
    expected = np.zeros(elapsed.shape)
    if known.any():
        expected[known] = np.asarray(model.expected_number_of_purchases_up_to_time(elapsed[known] / mult),
                                     dtype=np.float64)
    predicted = expected @ firsts[acquired]
    actual = np.cumsum(repeats)[ends - 1]
    if set_index_date:
        index: Any = pd.period_range(start_p, periods=int(t) + 1, freq=PANDAS_FREQ[grain])[mult - 1: -1: mult]
    else:
        index = range(0, int(t) // mult)
    return pd.DataFrame({"actual": actual, "predicted": predicted}, index=index)


def _customer_lifetime_value(transaction_prediction_model: Any, frequency: Any, recency: Any, T: Any,
                             monetary_value: Any, time: int = 12, discount_rate: float = 0.01,
                             freq: str = "D") -> pd.Series:
    """Discounted CLV over ``time`` months: sum over months k of monetary value x expected
    purchases in month k / (1 + discount_rate)^k, months of :data:`PERIODS_PER_MONTH` periods of
    ``freq`` (the unit of T); computed by :func:`patron.value.models.clv.customer_lifetime_value`."""
    from patron.value.models.clv import customer_lifetime_value

    factor = PERIODS_PER_MONTH[str(freq).upper()]
    native = getattr(transaction_prediction_model, "_model", transaction_prediction_model)
    values = customer_lifetime_value(native, None, np.asarray(frequency, dtype=np.float64),
                                     np.asarray(recency, dtype=np.float64), np.asarray(T, dtype=np.float64),
                                     np.asarray(monetary_value, dtype=np.float64), horizon=time * factor,
                                     step=factor, discount_rate_per_step=discount_rate)
    index = frequency.index if isinstance(frequency, pd.Series) else pd.RangeIndex(len(values))
    return pd.Series(values, index=index, name="clv")


def _scale_time(age: Any) -> float:
    """1 / max(age): lifetimes' scale of time (the largest T becomes 1)."""
    return 1.0 / np.asarray(age).max()


def _check_inputs(frequency: Any, recency: Any = None, T: Any = None, monetary_value: Any = None) -> None:
    """``ValueError`` for recency > T, recency != 0 with frequency 0, negative recency, empty
    vectors, non-integer frequencies or monetary values <= 0 (lifetimes' checks)."""
    frequency = np.asarray(frequency)
    if recency is not None:
        recency = np.asarray(recency)
        if T is not None and np.any(recency > np.asarray(T)):
            raise ValueError("recency is larger than T for some customers")
        if np.any(recency[frequency == 0] != 0):
            raise ValueError("recency must be 0 for customers with frequency 0")
        if np.any(recency < 0):
            raise ValueError("recency is negative for some customers (last purchase before the first)")
        if any(np.asarray(v).shape[0] == 0 for v in (recency, frequency, T)):
            raise ValueError("frequency, recency and T must not be empty")
    if np.sum((frequency - frequency.astype(int)) ** 2) != 0:
        raise ValueError("frequency must hold whole numbers")
    if monetary_value is not None and np.any(np.asarray(monetary_value) <= 0):
        raise ValueError("monetary_value must be positive (fit the spend model on repeat customers only)")

