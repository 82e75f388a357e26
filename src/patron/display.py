"""How numbers and categories are shown to people: one place for every figure and table.

Pure functions without patron imports (a kernel module), so that every stage that draws -- the
report, the contact effect, the referral figures, the dashboard -- says money, shares, counts,
booleans and category orders the same way:

- **Money** carries the reporting currency (``[value] currency``, else the transactions' own;
  :meth:`patron.value.settings.ValueSettings.label`): a symbol for the currencies of
  :data:`CURRENCY_SYMBOLS` (``$1,234``), the ISO code otherwise (``CHF 1,234``); nothing when no
  currency is known (:data:`NO_CURRENCY`). Amounts are never converted.
- **Shares and lifts**: shares are fractions in [0, 1] printed as percentages; a *difference* of two
  shares (a lift) is printed in percentage points (``+1.5 pp``), in tables as in charts.
- **Booleans** print as ``yes`` / ``no`` (never Python's ``True``).
- **Category orders** that mean something: :func:`ordered` puts known categories in their order
  (tiers most valuable first, statuses from new to lost, RFM cells as their grid) and others after.
- **Log axes** get ticks at 1-2-5 steps of each decade (:func:`log_ticks`), labelled as plain
  numbers.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

CURRENCY_SYMBOLS: dict[str, str] = {
    "USD": "$", "EUR": "€", "GBP": "£", "JPY": "¥", "INR": "₹", "KRW": "₩", "ILS": "₪", "NGN": "₦",
    "PHP": "₱", "VND": "₫", "UAH": "₴", "TRY": "₺",
}
"""Currencies shown by their symbol; any other ISO 4217 code is shown as the code itself (a symbol
such as ``kr`` or ``$`` alone would be ambiguous between several currencies)."""

NO_CURRENCY: frozenset[str] = frozenset({"", "currency not set"})
"""Labels meaning no currency is known (amounts are then shown as bare numbers)."""

PP = "pp"
"""Unit of a difference of two percentages (percentage points)."""

LOG_STEPS: tuple[float, ...] = (1.0, 2.0, 5.0)
"""Ticks within each decade of a log axis."""


def currency_unit(currency: str | None) -> str:
    """The unit shown for ``currency`` (an ISO code or a settings label): its symbol
    (:data:`CURRENCY_SYMBOLS`), else the code; ``""`` when no currency is known.

    >>> currency_unit("USD"), currency_unit("chf"), currency_unit("currency not set")
    ('$', 'CHF', '')
    """
    code = (currency or "").strip()
    if code in NO_CURRENCY:
        return ""
    code = code.upper()
    return CURRENCY_SYMBOLS.get(code, code)


def money(value: float, currency: str | None = None, *, decimals: int | None = None, sign: bool = False) -> str:
    """``value`` (an amount in ``currency``) as text: ``$1,234``, ``-$12.50``, ``CHF 1,234``.

    ``decimals`` default: none from 1,000 up, 2 below. ``sign`` prints ``+`` for positive values
    (changes). Not a finite number: ``n/a``.

    >>> money(1234.5, "USD"), money(-12.5, "EUR"), money(99, "CHF", sign=True), money(3.0)
    ('$1,234', '-€12.50', '+CHF 99.00', '3.00')
    """
    if value is None or not math.isfinite(float(value)):
        return "n/a"
    v = float(value)
    places = decimals if decimals is not None else (0 if abs(v) >= 1000 else 2)
    digits = f"{abs(v):,.{places}f}"
    unit = currency_unit(currency)
    body = digits if not unit else (f"{unit}{digits}" if len(unit) == 1 else f"{unit} {digits}")
    prefix = "-" if v < 0 and float(digits.replace(",", "")) != 0 else ("+" if sign and v > 0 else "")
    return prefix + body


def money_title(what: str, currency: str | None) -> str:
    """An axis title or column header for an amount: ``"total CLV ($)"``, ``"CLV (CHF)"``;
    ``what`` alone when no currency is known.

    >>> money_title("total CLV", "USD"), money_title("CLV", "")
    ('total CLV ($)', 'CLV')
    """
    unit = currency_unit(currency)
    return f"{what} ({unit})" if unit else what


def plotly_money_axis(currency: str | None) -> dict[str, Any]:
    """Plotly axis settings that print the currency on every tick (``tickprefix`` for a symbol,
    ``ticksuffix`` for a code) with thousands separators."""
    unit = currency_unit(currency)
    if not unit:
        return {"tickformat": ",~r"}
    return {"tickprefix": unit, "tickformat": ",~r"} if len(unit) == 1 else {"ticksuffix": f" {unit}", "tickformat": ",~r"}


def hover_money(field: str, currency: str | None, *, fmt: str = ",.2f") -> str:
    """A Plotly hover-template fragment printing ``%{field}`` as money in ``currency``
    (``$%{y:,.2f}``, ``%{y:,.2f} CHF``)."""
    unit = currency_unit(currency)
    core = f"%{{{field}:{fmt}}}"
    if not unit:
        return core
    return f"{unit}{core}" if len(unit) == 1 else f"{core} {unit}"


def percent(share: float, *, decimals: int = 1) -> str:
    """A share in [0, 1] as a percentage: ``0.125 -> "12.5%"``; ``n/a`` when not finite."""
    if share is None or not math.isfinite(float(share)):
        return "n/a"
    return f"{float(share) * 100:.{decimals}f}%"


def points(difference: float, *, decimals: int = 1) -> str:
    """A difference of two shares (a lift, fractions) in percentage points: ``0.015 -> "+1.5 pp"``;
    empty when not finite.

    >>> points(0.015), points(-0.2), points(float("nan"))
    ('+1.5 pp', '-20.0 pp', '')
    """
    if difference is None or not math.isfinite(float(difference)):
        return ""
    return f"{float(difference) * 100:+.{decimals}f} {PP}"


def yes_no(value: Any) -> str:
    """A boolean as a word: ``yes`` / ``no``; empty for a missing value.

    >>> yes_no(True), yes_no(False), yes_no(None)
    ('yes', 'no', '')
    """
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return "yes" if bool(value) else "no"


def ordered(values: Iterable[Any], order: Sequence[str]) -> list[str]:
    """The distinct ``values`` (as text) in a meaningful order: those named in ``order`` first, in
    that order, then the others in their order of first appearance.

    >>> ordered(["gold", "bronze", "platinum", "other", "gold"], ["platinum", "gold", "silver", "bronze"])
    ['platinum', 'gold', 'bronze', 'other']
    """
    seen = list(dict.fromkeys(str(v) for v in values))
    present = set(seen)
    known = [o for o in order if o in present]
    rest = [v for v in seen if v not in set(order)]
    return known + rest


def log_ticks(low: float, high: float) -> list[float]:
    """Ticks of a log axis from ``low`` to ``high`` (both > 0): 1, 2, 5 times each power of 10
    within the range (only powers of 10 when the range spans more than 4 decades), ascending.

    >>> log_ticks(1, 120)
    [1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0]
    """
    if not (low > 0 and high >= low and math.isfinite(high)):
        return []
    first, last = math.floor(math.log10(low)), math.ceil(math.log10(high))
    steps = LOG_STEPS if last - first <= 4 else (1.0,)
    ticks = [s * 10.0 ** d for d in range(first, last + 1) for s in steps]
    eps = 1e-9
    return [float(f"{t:.12g}") for t in ticks if low * (1 - eps) <= t <= high * (1 + eps)]


CRUSH_FACTOR = 3.0
"""An axis is clipped to its estimates when their intervals would make it more than this many
times longer than the estimates need (the estimates would fill a third of it or less)."""

CLIP_PAD = 0.15
"""Margin added on each side of a clipped axis (share of the estimates' range)."""


def clip_range(values: Any, lower: Any, upper: Any, *, min_half_range: float = 1.0,
               include_zero: bool = True) -> list[float] | None:
    """An axis range around the estimates ``values`` (and 0 when ``include_zero``), padded by
    :data:`CLIP_PAD`, when the intervals ``lower``..``upper`` would stretch the axis more than
    :data:`CRUSH_FACTOR` times that range; ``None`` when they fit (draw the axis as usual).
    ``min_half_range``: margin when every estimate is the same value.

    >>> clip_range([1.0, 2.0], [0.0, 1.0], [2.0, 3.0]) is None
    True
    >>> clip_range([1.0, 2.0], [-40.0, 1.0], [2.0, 60.0])
    [-0.3, 2.3]
    """
    import numpy as np

    v, lo_, hi_ = (np.asarray(a, dtype=float).ravel() for a in (values, lower, upper))
    v = v[np.isfinite(v)]
    ends = np.concatenate([lo_[np.isfinite(lo_)], hi_[np.isfinite(hi_)]])
    if not v.size or not ends.size:
        return None
    lo, hi = float(v.min()), float(v.max())
    if include_zero:
        lo, hi = min(lo, 0.0), max(hi, 0.0)
    pad = (hi - lo) * CLIP_PAD or min_half_range
    lo, hi = lo - pad, hi + pad
    full = max(hi, float(ends.max())) - min(lo, float(ends.min()))
    return [round(lo, 12), round(hi, 12)] if full > CRUSH_FACTOR * (hi - lo) else None


def tick_text(values: Sequence[float]) -> list[str]:
    """Tick labels for :func:`log_ticks`: whole numbers with thousands separators, small values
    with the decimals they need (``0.05``)."""
    out = []
    for v in values:
        out.append(f"{v:,.0f}" if v >= 1 else f"{v:.{max(0, -math.floor(math.log10(v)))}f}")
    return out
