"""Named constants, each with its unit. Nothing here is tunable at run time; settings live in
:mod:`patron.settings`."""

from __future__ import annotations

from datetime import date

DAYS_PER_WEEK: float = 7.0
"""Days in one week (period unit ``W``)."""

DAYS_PER_MONTH: float = 365.25 / 12.0
"""Mean days in one Gregorian month (30.4375), used to express day spans in months (unit ``M``)
when purchases are grouped by day or week."""

PERIOD_UNITS: dict[str, float] = {"D": 1.0, "W": DAYS_PER_WEEK, "M": DAYS_PER_MONTH}
"""Length of each period unit in days."""

HOURS_PER_DAY: float = 24.0
"""Hours in one day (summary grain and unit ``H``)."""

SUMMARY_PERIODS: dict[str, float] = {**PERIOD_UNITS, "H": 1.0 / HOURS_PER_DAY}
"""Grains and units of the customer summary (:mod:`patron.sql.summary`) and their length in
days: the period units, and hours for data with times of day (lifetimes' ``freq="h"``)."""

DEFAULT_DB: str = "patron.duckdb"
"""Database file used when none is given (relative to the working directory)."""

DEFAULT_FUTURE_TOLERANCE_HOURS: float = 24.0
"""A timestamp later than *now* plus this many hours is rejected at ingest (clock skew allowance)."""

DEFAULT_DATE_FLOOR: date = date(1900, 1, 1)
"""A timestamp before this date is rejected at ingest and by the service (``PATRON_DATE_FLOOR``).
Earlier dates are typing errors (``0024`` for ``2024``), placeholders (``0001-01-01``) or a sign
read as a year (``-2024-01-01``)."""
