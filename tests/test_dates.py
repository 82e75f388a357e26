"""One parser of day arguments and one default day (the last purchase) for every analysis.

The history below ends with a refund booked a month after the last order: every analysis run
without a date must take the last *order's* day (2024-03-10), as docs/status.md, docs/summary.md
and docs/loyalty.md define it, never the refund's (2024-04-20).
"""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path

import pandas as pd
import pytest

from patron.data.ingest import ingest
from patron.data.store import reader
from patron.dates import default_as_of, parse_day, purchase_span
from patron.errors import InputError, NoDataError

LAST_PURCHASE = date(2024, 3, 10)
"""Day of the last order of :data:`HISTORY` (by construction)."""

HISTORY = [
    ("a", "2024-01-05", 10.0),
    ("a", "2024-02-01", 20.0),
    ("a", "2024-03-10", 15.0),
    ("b", "2024-01-20", 30.0),
    ("b", "2024-02-15", 12.0),
    ("c", "2024-02-01", 8.0),
    ("c", "2024-02-20", 9.0),
    ("a", "2024-04-20", -15.0),  # refund of a's last order, after everyone's last order
]


@pytest.fixture
def db(tmp_path: Path) -> str:
    path = str(tmp_path / "d.duckdb")
    ingest(pd.DataFrame(HISTORY, columns=["customer_id", "occurred_at", "amount"]), kind="transactions", db=path)
    return path


@pytest.mark.parametrize(("text", "expected"), [
    ("1997-09-30", date(1997, 9, 30)),
    (" 1997-09-30 ", date(1997, 9, 30)),
    ("19970930", date(1997, 9, 30)),
    ("1997-09-30T23:59:59", date(1997, 9, 30)),
    ("1997-09-30 23:00:00-05:00", date(1997, 9, 30)),  # the day as written
    (datetime(1997, 9, 30, 13, 5), date(1997, 9, 30)),
    (pd.Timestamp("1997-09-30 13:05"), date(1997, 9, 30)),
    (date(1997, 9, 30), date(1997, 9, 30)),
    (None, None),
])
def test_parse_day_reads_iso_days_and_timestamps(text, expected):
    assert parse_day(text) == expected


def test_an_instant_keeps_its_time_in_utc():
    assert parse_day("2015-02-07 13:30", "end", instant=True) == datetime(2015, 2, 7, 13, 30)
    assert parse_day("2015-02-07T13:30:00+02:00", "end", instant=True) == datetime(2015, 2, 7, 11, 30)
    assert parse_day("2015-02-07T13:30:00Z", "end", instant=True) == datetime(2015, 2, 7, 13, 30)
    assert parse_day("2015-02-07", "end", instant=True) == date(2015, 2, 7)  # a day is the whole day


@pytest.mark.parametrize("text", ["June 30", "2024-06-31", "30/06/2024", "2024-06-30x", "", "1997-09-30T25:00", "1997-09-30 00:00:00 UTC"])
def test_a_bad_day_names_the_parameter_not_a_flag(text):
    with pytest.raises(InputError) as err:
        parse_day(text, "holdout_end")
    assert str(err.value) == f"holdout_end must be a date like 1997-09-30; got {text!r}"


def test_the_default_day_is_the_last_purchase_not_a_later_refund(db):
    with reader(db) as con:
        assert default_as_of(con) == LAST_PURCHASE
        assert purchase_span(con) == (date(2024, 1, 5), LAST_PURCHASE)
        assert default_as_of(con, instant=True) == datetime(2024, 3, 10)


def test_refunds_only_is_no_purchase(tmp_path):
    path = str(tmp_path / "r.duckdb")
    ingest(pd.DataFrame([("a", "2024-01-05", -3.0)], columns=["customer_id", "occurred_at", "amount"]),
           kind="transactions", db=path)
    with reader(path) as con, pytest.raises(NoDataError, match="no purchases in the database"):
        default_as_of(con)


@pytest.mark.filterwarnings("ignore:GammaGamma did not converge")  # three customers: the fit is not the point
def test_every_analysis_defaults_to_the_last_purchase(db):
    """Run without a date, each analysis states (or computes with) the last order's day."""
    from patron.relationship.cohorts import cohorts
    from patron.relationship.loyalty import loyalty
    from patron.relationship.profitability import profitability
    from patron.relationship.segments.equity import equity_over_time
    from patron.relationship.status import relationship_status
    from patron.relationship.status_history import as_of_dates
    from patron.report.build import resolve_as_of
    from patron.value.summary import summary

    assert (relationship_status(db, params={"r": 0.5, "alpha": 5.0, "a": 0.5, "b": 2.0})["as_of"] == LAST_PURCHASE).all()
    assert resolve_as_of(db) == LAST_PURCHASE
    assert as_of_dates(db)[-1] == LAST_PURCHASE
    assert pd.Timestamp(equity_over_time(db)["as_of"].iloc[-1]) == pd.Timestamp(LAST_PURCHASE)
    pd.testing.assert_frame_equal(summary(db), summary(db, end=LAST_PURCHASE))
    pd.testing.assert_frame_equal(summary(db, grain="H", period="H"), summary(db, grain="H", period="H", end="2024-03-10 00:00"))
    pd.testing.assert_frame_equal(loyalty(db), loyalty(db, as_of=LAST_PURCHASE))
    pd.testing.assert_frame_equal(cohorts(db), cohorts(db, as_of=LAST_PURCHASE))  # no April period
    pd.testing.assert_frame_equal(profitability(db), profitability(db, as_of=LAST_PURCHASE))
