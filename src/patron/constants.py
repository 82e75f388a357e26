"""Named constants, each with its unit. Nothing here is tunable at run time; settings live in
:mod:`patron.settings`."""

from __future__ import annotations

from datetime import date

DAYS_PER_WEEK: float = 7.0
"""Days in one week (period unit ``W``)."""

DAYS_PER_YEAR: float = 365.25
"""Mean days in one year (Julian year; the Gregorian mean is 365.2425): turns an annual discount
rate into a per-period one and counts purchases per year."""

DAYS_PER_MONTH: float = DAYS_PER_YEAR / 12.0
"""Mean days in one month (30.4375), used to express day spans in months (unit ``M``) when
purchases are grouped by day or week."""

PERIOD_UNITS: dict[str, float] = {"D": 1.0, "W": DAYS_PER_WEEK, "M": DAYS_PER_MONTH}
"""Length of each period unit in days."""

HOURS_PER_DAY: float = 24.0
"""Hours in one day (summary grain and unit ``H``)."""

SUMMARY_PERIODS: dict[str, float] = {**PERIOD_UNITS, "H": 1.0 / HOURS_PER_DAY}
"""Grains and units of the customer summary (:mod:`patron.value.summary_sql`) and their length in
days: the period units, and hours for data with times of day (lifetimes' ``freq="h"``)."""

DEFAULT_DB: str = "patron.duckdb"
"""Database file used when none is given (relative to the working directory)."""

DEFAULT_FUTURE_TOLERANCE_HOURS: float = 24.0
"""A timestamp later than *now* plus this many hours is rejected at ingest (clock skew allowance)."""

DEFAULT_DATE_FLOOR: date = date(1900, 1, 1)
"""A timestamp before this date is rejected at ingest and by the service (``PATRON_DATE_FLOOR``).
Earlier dates are typing errors (``0024`` for ``2024``), placeholders (``0001-01-01``) or a sign
read as a year (``-2024-01-01``)."""

DEFAULT_HORIZON_WEEKS: float = 52.0
"""Default horizon of customer value and of expected purchases, in weeks (the ``[value]``
``horizon`` in its default weekly ``period``, status's ``expected_purchases``, the referral
comparison's CLV)."""

DEFAULT_DISCOUNT_RATE: float = 0.10
"""Default **annual** discount rate of customer value (0.10 = 10% a year): the ``[value]``
``discount_rate`` and the referral comparison's ``annual_discount_rate``. Models take a rate per
period or step; :attr:`patron.value.settings.ValueSettings.discount_rate_per_period` converts."""
