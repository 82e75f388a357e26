"""patron.display: currency, percentage points, booleans, category order and log ticks, each
checked against answers written out by hand."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from patron.display import (
    currency_unit,
    hover_money,
    log_ticks,
    money,
    money_title,
    ordered,
    plotly_money_axis,
    points,
    tick_text,
    yes_no,
)


@pytest.mark.parametrize(("code", "unit"), [("USD", "$"), ("eur", "€"), ("GBP", "£"), ("CHF", "CHF"), ("SEK", "SEK"),
                                            ("currency not set", ""), ("", ""), (None, "")])
def test_currency_unit_is_a_symbol_for_unambiguous_codes_else_the_code(code, unit):
    assert currency_unit(code) == unit


@pytest.mark.parametrize(("value", "currency", "text"), [
    (1234.5, "USD", "$1,234"), (999.994, "USD", "$999.99"), (-12.5, "EUR", "-€12.50"), (1_000_000, "CHF", "CHF 1,000,000"),
    (0.001, "USD", "$0.00"), (-0.001, "USD", "$0.00"), (42.0, "currency not set", "42.00"), (math.nan, "USD", "n/a"),
])
def test_money_text(value, currency, text):
    assert money(value, currency) == text


def test_money_sign_and_titles():
    assert money(250, "USD", sign=True) == "+$250.00"
    assert money(-250, "USD", sign=True) == "-$250.00"
    assert money_title("CLV", "GBP") == "CLV (£)"
    assert money_title("CLV", "currency not set") == "CLV"
    assert plotly_money_axis("USD")["tickprefix"] == "$"
    assert plotly_money_axis("CHF")["ticksuffix"] == " CHF"
    assert hover_money("y", "USD") == "$%{y:,.2f}"
    assert hover_money("x", "CHF", fmt=",.0f") == "%{x:,.0f} CHF"


def test_points_are_percentage_points_of_fraction_differences():
    assert points(0.05) == "+5.0 pp"  # the issue's `0.05` lift is five points
    assert points(-0.0123, decimals=2) == "-1.23 pp"
    assert points(None) == "" and points(math.inf) == ""


def test_booleans_are_words():
    assert [yes_no(v) for v in (True, False, 1, 0, None, math.nan)] == ["yes", "no", "yes", "no", "", ""]


def test_ordered_puts_known_categories_in_their_order_and_keeps_the_rest():
    tiers = ["platinum", "gold", "silver", "bronze"]
    by_equity = ["gold", "silver", "platinum", "bronze"]  # the order (sorted by equity)
    assert ordered(by_equity, tiers) == tiers
    assert ordered(["x", "bronze", "y", "x"], tiers) == ["bronze", "x", "y"]
    assert ordered([], tiers) == []


def test_log_ticks_are_one_two_five_steps_within_the_range():
    assert log_ticks(2, 100) == [2.0, 5.0, 10.0, 20.0, 50.0, 100.0]
    assert log_ticks(0.03, 0.6) == [0.05, 0.1, 0.2, 0.5]
    assert log_ticks(1, 1e6) == [1.0, 10.0, 100.0, 1000.0, 10000.0, 100000.0, 1000000.0]  # > 4 decades: powers of 10
    assert log_ticks(0, 10) == [] and log_ticks(5, 1) == []
    assert tick_text([2.0, 5.0, 1000.0, 0.05]) == ["2", "5", "1,000", "0.05"]


@given(st.floats(1e-3, 1e5), st.floats(1.01, 1e4))
def test_log_ticks_increase_and_stay_inside(low, factor):
    high = low * factor
    ticks = log_ticks(low, high)
    assert ticks == sorted(set(ticks))
    assert all(low * (1 - 1e-9) <= t <= high * (1 + 1e-9) for t in ticks)
    mantissas = {round(t / 10 ** math.floor(math.log10(t) + 1e-12), 6) for t in ticks}
    assert mantissas <= {1.0, 2.0, 5.0}
