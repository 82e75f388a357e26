"""Files and events read values by one rule: the SQL that validated ingest runs (DuckDB dialect)
and the Python the service runs accept the same texts and give the same values.

Two independent implementations of :mod:`patron.data.ingest.plausible`'s patterns: DuckDB's casts,
ICU time zones and RE2 on one side, Python's ``float``, ``datetime``, :mod:`zoneinfo` and ``re`` on
the other. Hypothesis draws texts near the grammar (valid layouts, near misses, random characters)
and each batch is checked in one query.
"""

from __future__ import annotations

import math
from datetime import datetime

import duckdb
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from patron.data.ingest.plausible import (
    Implausible,
    id_problem,
    id_problem_sql,
    number_sql,
    parse_number,
    parse_timestamp,
    timestamp_sql,
)

ZONES = ["Europe/Paris", "America/New_York", "Australia/Lord_Howe", "Asia/Kolkata", "America/St_Johns",
         "Pacific/Kiritimati", "Europe/London", "America/Sao_Paulo", "Mars/Olympus", "Etc/GMT+5"]
"""Zone names with daylight saving (one of 30 minutes), half-hour offsets, +14:00, and unknown."""


@pytest.fixture(scope="module")
def con():
    c = duckdb.connect()
    c.execute("SET TimeZone = 'UTC'")  # what patron.data.store sets; the rule must not depend on it
    yield c
    c.close()


def _sql_values(con: duckdb.DuckDBPyConnection, expr: str, texts: list[str]) -> list:
    """``expr`` over column ``x`` (the texts trimmed, NULL when empty, as ingest stages them)."""
    rows = con.execute(
        f"SELECT {expr} FROM (SELECT i, NULLIF(trim(t), '') AS x FROM unnest(?) WITH ORDINALITY AS u(t, i)) "
        "ORDER BY i", [texts]).fetchall()
    return [r[0] for r in rows]


# --- strategies ---------------------------------------------------------------------------------

digits = st.text("0123456789", min_size=1, max_size=4)
number_texts = st.one_of(
    st.builds(lambda s, a, b, e: f"{s}{a}{b}{e}", st.sampled_from(["", "+", "-"]), digits,
              st.sampled_from(["", ".", ".5", ".25", "."]),
              st.sampled_from(["", "e3", "E-2", "e+400", "e", "e-400"])),
    st.sampled_from(["inf", "-Infinity", "NaN", "nan", "+inf", "-nan", "1_000", "1,000", "0x10", "1.5d", ".", "..5",
                     "1e", " 12 ", "٣", "1 000", "$5", "5%"]),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.text("0123456789.eE+-_, xnaif", max_size=8),
)


def _two(lo: int, hi: int) -> st.SearchStrategy[str]:
    return st.integers(lo, hi).flatmap(lambda n: st.sampled_from([str(n), f"{n:02d}"]))


timestamp_texts = st.one_of(
    st.builds(
        lambda y, mo, d, sep, h, mi, sec, zone: f"{y:04d}-{mo}-{d}" + (f"{sep}{h}:{mi:02d}{sec}{zone}" if sep else ""),
        st.integers(1890, 2110), _two(0, 13), _two(0, 32), st.sampled_from(["", "T", " "]), _two(0, 24),
        st.integers(0, 60), st.sampled_from(["", ":07", ":59", ":60", ":07.5", ":07.123456789", ":07.1234565"]),
        st.one_of(st.sampled_from(["", "Z", "z", " UTC", "UTC", " Z", "+00:00", "-00:00"]),
                  st.builds(lambda sp, s, hh, c, mm: f"{sp}{s}{hh:02d}{c}{mm}", st.sampled_from(["", " "]),
                            st.sampled_from(["+", "-"]), st.integers(0, 26), st.sampled_from([":", ""]),
                            st.sampled_from(["", "00", "30", "45", "59", "60"])),
                  st.sampled_from(ZONES).map(lambda z: " " + z))),
    # near daylight-saving changes of the zones above (the last Sunday of March and October, the
    # first Sunday of April and October), at every quarter hour of the night
    st.builds(lambda day, h, q, z: f"{day} {h:02d}:{q:02d}:00 {z}",
              st.sampled_from(["2024-03-31", "2024-10-27", "2024-04-07", "2024-10-06", "2024-03-10", "2024-11-03",
                               "1996-03-31", "2037-10-25"]),
              st.integers(0, 4), st.sampled_from([0, 15, 30, 45]), st.sampled_from(ZONES)),
    st.sampled_from(["-2024-01-01", "20240331", "20241301", "00000101", "2024-03-31+02:00", "2024-03-31T24:00",
                     "2024-02-30", "yesterday", "0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-05:00",
                     "2024-03-31T14:05:00 CET", "2024-3-5T1:05", "2024-03-15", "2024-03-31 14:05:00 Etc/UTC"]),
)

ID_CHARS = st.characters(codec="utf-8", exclude_categories=("Cs",))  # text DuckDB can hold
id_texts = st.one_of(
    st.text(ID_CHARS, min_size=1, max_size=12),
    st.text("ab{}[]\":,1 \u200b\u202e\x00\t\u00ad", min_size=1, max_size=8),
    st.sampled_from(['{"a": 1}', "[1, 2]", "{3F2504E0}", "[guest]", "{}", "[]", "[NaN]", "{'a': 1}"]),
)


# --- properties ---------------------------------------------------------------------------------

@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(number_texts, min_size=1, max_size=40))
def test_numbers_read_alike(con, texts):
    got = _sql_values(con, number_sql("x"), texts)
    for text, sql in zip(texts, got, strict=True):
        py = parse_number(text.strip(" ")) if text.strip(" ") else None
        if py is None or sql is None:
            assert py is None and sql is None, (text, py, sql)
        elif math.isnan(py):
            assert math.isnan(sql), (text, sql)
        else:
            assert py == sql, (text, py, sql)


def _python_time(text: str) -> datetime | None:
    s = text.strip(" ")
    if not s:
        return None
    try:
        return parse_timestamp(s)
    except Implausible:
        return None


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(timestamp_texts, min_size=1, max_size=40))
def test_timestamps_read_alike(con, texts):
    got = _sql_values(con, timestamp_sql("x"), texts)
    for text, sql in zip(texts, got, strict=True):
        py = _python_time(text)
        if py is None:
            # Python's datetime stops at years 1-9999; DuckDB goes on (year 0, 10000): the date
            # rules reject those on both sides, so a DuckDB value out of Python's range is fine.
            assert sql is None or isinstance(sql, str), (text, sql)
        else:
            assert sql == py, (text, py, sql)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(id_texts, min_size=1, max_size=40))
def test_ids_judged_alike(con, texts):
    got = _sql_values(con, f"({id_problem_sql('x')}) IS NULL", texts)
    for text, sql_ok in zip(texts, got, strict=True):
        s = text.strip(" ")
        if not s:
            continue
        assert (id_problem(s) is None) == sql_ok, (text, id_problem(s), sql_ok)


@pytest.mark.parametrize(("text", "expected"), [
    ("2024-03-31T14:05:00 Europe/Paris", datetime(2024, 3, 31, 12, 5)),  # CEST, UTC+2
    ("2024-10-27T02:30:00 Europe/Paris", datetime(2024, 10, 27, 0, 30)),  # twice that night: the first (UTC+2)
    ("2024-03-31T02:30:00 Europe/Paris", datetime(2024, 3, 31, 1, 30)),  # never that night: read at UTC+1
    ("2024-03-31T16:05:00-02:30", datetime(2024, 3, 31, 18, 35)),
    ("2024-03-31 16:05 +14", datetime(2024, 3, 31, 2, 5)),
    ("2024-03-05T01:05:07.123456789Z", datetime(2024, 3, 5, 1, 5, 7, 123456)),  # truncated to microseconds
    ("20240331", datetime(2024, 3, 31)),
])
def test_known_instants(con, text, expected):
    """Hand-computed UTC instants (IANA rules for Paris: CET UTC+1, CEST UTC+2 from the last Sunday
    of March 01:00 UTC to the last Sunday of October 01:00 UTC)."""
    assert parse_timestamp(text) == expected
    assert _sql_values(con, timestamp_sql("x"), [text]) == [expected]
