"""Quiet hours, vectorized: local wall-clock time of day per customer and the delay to the end
of the quiet hours that contain it.

Quiet hours are a half-open arc ``[start, end)`` of the local day in hours (0-24). When
``start > end`` the arc wraps past midnight (21 to 8 is 21:00-07:59:59). ``start == end`` means no
quiet hours. A customer may have two arcs (the policy's and their own); a time is quiet when it
falls in either (the union). A quiet send time moves to the end of the quiet period containing it;
the move is repeated on the actual local time (so a daylight-saving jump never lands inside the
arc). If the arcs cover the whole day the customer has no sendable time.
"""

from __future__ import annotations

from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
import pandas as pd

US_PER_HOUR = 3_600_000_000
"""Microseconds per hour."""
US_PER_DAY = 24 * US_PER_HOUR
"""Microseconds per day."""
MAX_MOVES = 8
"""Moves tried before a customer is judged to be in quiet hours all day."""


def valid_zone(name: str) -> bool:
    """Whether ``name`` is an IANA time zone known to this system."""
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, TypeError):
        return False
    return True


def local_time_of_day_us(utc: pd.Series, zones: pd.Series) -> np.ndarray:
    """Wall-clock time of day, in microseconds since local midnight, of naive-UTC ``utc`` in the
    time zones ``zones`` (valid IANA names). One conversion per distinct zone, none per customer."""
    out = np.zeros(len(utc), dtype=np.int64)
    utc = pd.Series(pd.to_datetime(utc).to_numpy(), index=range(len(utc)))
    zones = pd.Series(zones.to_numpy(), index=range(len(zones)))
    for zone, idx in zones.groupby(zones).indices.items():
        local = utc.iloc[idx].dt.tz_localize("UTC").dt.tz_convert(ZoneInfo(str(zone)))
        out[idx] = (
            local.dt.hour.to_numpy(np.int64) * US_PER_HOUR
            + local.dt.minute.to_numpy(np.int64) * 60_000_000
            + local.dt.second.to_numpy(np.int64) * 1_000_000
            + local.dt.microsecond.to_numpy(np.int64)
        )
    return out


def shift_wall_clock(utc: pd.Series, zones: pd.Series, delay_us: np.ndarray) -> pd.Series:
    """Naive-UTC times moved forward by ``delay_us`` of local **wall-clock** time (so 00:30 plus
    7.5 hours is 08:00 local even across a daylight-saving change). A local time that does not
    exist is moved forward past the gap; an ambiguous one takes its first occurrence."""
    out = pd.Series(pd.to_datetime(utc).to_numpy(), index=range(len(utc)))
    zones = pd.Series(zones.to_numpy(), index=range(len(zones)))
    moving = np.flatnonzero(delay_us > 0)
    if moving.size == 0:
        return out
    sub = zones.iloc[moving]
    for zone, idx in sub.groupby(sub).indices.items():
        rows = moving[idx]
        tz = ZoneInfo(str(zone))
        wall = out.iloc[rows].dt.tz_localize("UTC").dt.tz_convert(tz).dt.tz_localize(None)
        wall = wall + pd.to_timedelta(delay_us[rows], unit="us")
        local = wall.dt.tz_localize(tz, ambiguous=np.ones(len(rows), dtype=bool), nonexistent="shift_forward")
        out.iloc[rows] = local.dt.tz_convert("UTC").dt.tz_localize(None).to_numpy()
    return out


def arc_us(hours: np.ndarray) -> np.ndarray:
    """Hours of day (float, NaN for none) as microseconds (float, NaN kept), clipped to 0-24."""
    return np.round(np.clip(np.asarray(hours, dtype=float), 0.0, 24.0) * US_PER_HOUR)


def remaining_us(tod: np.ndarray, start: np.ndarray, end: np.ndarray) -> np.ndarray:
    """Microseconds from ``tod`` to the end of the arc ``[start, end)`` when ``tod`` is inside it,
    else 0. ``start``/``end`` in microseconds (NaN: no arc)."""
    tod = tod.astype(float)
    s, e = np.where(start == US_PER_DAY, 0.0, start), np.where(end == US_PER_DAY, 0.0, end)
    present = ~(np.isnan(s) | np.isnan(e)) & (s != e)
    s0, e0 = np.nan_to_num(s), np.nan_to_num(e)
    inside = np.where(s0 < e0, (tod >= s0) & (tod < e0), (tod >= s0) | (tod < e0)) & present
    return np.where(inside, np.mod(e0 - tod, US_PER_DAY), 0.0).astype(np.int64)


def move_out_of_quiet(
    utc: pd.Series,
    zones: pd.Series,
    arcs: list[tuple[np.ndarray, np.ndarray]],
) -> tuple[pd.Series, np.ndarray]:
    """Move each naive-UTC time out of the union of its quiet ``arcs`` (each a pair of start/end
    arrays in hours, NaN for none). Returns the moved times and a mask of customers who are in
    quiet hours all day (their time is left unchanged)."""
    original = pd.Series(pd.to_datetime(utc).to_numpy(), index=range(len(utc)))
    times = original.copy()
    us_arcs = [(arc_us(s), arc_us(e)) for s, e in arcs]
    stuck = np.zeros(len(times), dtype=bool)
    for _ in range(MAX_MOVES):
        tod = local_time_of_day_us(times, zones)
        delay = np.zeros(len(times), dtype=np.int64)
        for s, e in us_arcs:
            delay = np.maximum(delay, remaining_us(tod, s, e))
        stuck = delay > 0
        if not stuck.any():
            break
        times = shift_wall_clock(times, zones, delay)
    times[stuck] = original[stuck]
    return times.set_axis(utc.index), stuck
