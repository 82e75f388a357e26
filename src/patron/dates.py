"""Days given as arguments, and the default day of an analysis: one parser, one definition.

Every ``as_of``, ``end``, ``start`` (and the like) that patron's functions take goes through
:func:`parse_day`; every analysis that runs "as of the data" without a date takes
:func:`default_as_of`: the day of the **last purchase**.

A *purchase* is a transaction with ``amount >= 0`` (zero-value orders included); a refund
(``amount < 0``) is not one, as in the customer summary (:mod:`patron.value.summary_sql`). So a refund
booked after the last order does not move the default day: every customer's ``T`` and every
"days since" is measured to the last day anyone bought.

A kernel module: it imports only :mod:`patron.errors` and :mod:`patron.constants`.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any, Protocol

from patron.errors import InputError, NoDataError

DayArg = str | date | datetime | None
"""What a day argument may be: ISO text, a date, a datetime (pandas ``Timestamp`` included) or
``None`` (the default)."""

PURCHASE = "amount >= 0"
"""The SQL condition of a purchase row of ``transactions`` (refunds, ``amount < 0``, are not)."""

EXAMPLE_DAY = "1997-09-30"
"""The day shown in the error message of a text that does not parse."""


class _Cursor(Protocol):
    def execute(self, query: str, parameters: Any = ...) -> Any: ...


def parse_day(value: DayArg, name: str = "as_of", *, instant: bool = False) -> date | datetime | None:
    """``value`` as a day (``None`` stays ``None``); with ``instant``, as the last instant included
    when ``value`` carries a time of day.

    Text is ISO 8601: a day (``1997-09-30``, ``19970930``) or a timestamp (``1997-09-30T13:00``,
    ``1997-09-30 13:00:00+02:00``, ``...Z``), as :meth:`datetime.datetime.fromisoformat` reads
    them. The day of a timestamp is its day as written (its offset is not applied);
    with ``instant`` a timestamp with an offset is converted to UTC, the store's time, and returned
    as a naive ``datetime``. A ``datetime`` is treated the same way, a ``date`` is returned as is.

    Raises :class:`~patron.errors.InputError` naming the parameter ``name`` for text that is not a
    day.

    >>> parse_day("1997-09-30")
    datetime.date(1997, 9, 30)
    >>> parse_day("1997-09-30T13:00:00+02:00", "end", instant=True)
    datetime.datetime(1997, 9, 30, 11, 0)
    >>> parse_day("30/09/1997", "end")
    Traceback (most recent call last):
    ...
    patron.errors.InputError: end must be a date like 1997-09-30; got '30/09/1997'
    """
    if value is None:
        return None
    if isinstance(value, datetime):
        stamp, timed = value, True
    elif isinstance(value, date):
        return value
    else:
        text = str(value).strip()
        try:
            stamp = datetime.fromisoformat(text)
        except ValueError:
            raise _not_a_day(value, name) from None
        timed = len(text) > 10
    if instant and timed:
        return stamp.astimezone(UTC).replace(tzinfo=None) if stamp.tzinfo is not None else stamp
    return stamp.date()


def _not_a_day(value: Any, name: str) -> InputError:
    return InputError(f"{name} must be a date like {EXAMPLE_DAY}; got {value!r}", parameters=(name,))


def purchase_span_sql(table: str = "transactions", *, instant: bool = False) -> str:
    """``SELECT`` the first and the last purchase of ``table`` (a table name of patron's own, never
    from input): their days, or with ``instant`` their timestamps."""
    first, last = ("min(occurred_at)", "max(occurred_at)") if instant else (
        "CAST(min(occurred_at) AS DATE)", "CAST(max(occurred_at) AS DATE)")
    return f"SELECT {first}, {last} FROM {table} WHERE {PURCHASE}"


def purchase_span(con: _Cursor, table: str = "transactions", *, instant: bool = False,
                  where: str = "the database") -> tuple[Any, Any]:
    """The day (``instant``: timestamp) of the first and of the last purchase in ``table`` of the
    database open on ``con``. Raises :class:`~patron.errors.NoDataError` naming ``where`` when it
    holds no purchase."""
    first, last = con.execute(purchase_span_sql(table, instant=instant)).fetchall()[0]
    if last is None:
        raise NoDataError(f"no purchases in {where}: every transaction is a refund, or there are none")
    return first, last


def default_as_of(con: _Cursor, table: str = "transactions", *, instant: bool = False,
                  where: str = "the database") -> Any:
    """The default day of an analysis: the day of the last purchase in ``table`` (``instant``:
    its timestamp), see the module docstring. :class:`~patron.errors.NoDataError` when there is
    no purchase."""
    return purchase_span(con, table, instant=instant, where=where)[1]
