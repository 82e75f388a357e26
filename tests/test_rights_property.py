"""Property: on random databases, erasing one customer removes every trace of their id (file bytes
and text columns), leaves every other customer's rows as they were, and changes the totals by
exactly the person's share (nothing in ``pseudonymize`` mode, their revenue in ``delete`` mode).
The expected figures are computed from the generated rows in Python, not by patron."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from patron.data.store import connect
from patron.people.rights import erase_customer
from tests.test_rights_data import bytes_hits, text_hits

MONEY_TOL = 1e-6
"""Tolerance on sums of money (addition order differs between Python and SQL)."""

ids = st.text(alphabet="zqxjkvw", min_size=6, max_size=9).map(lambda s: "p-" + s)
"""Customer ids from letters that never occur in pseudonyms (hex digits) or table names."""


@st.composite
def bases(draw: st.DrawFn) -> tuple[list[str], list[tuple[str, float]], list[tuple[str, str | None]], int, str]:
    people = draw(st.lists(ids, min_size=2, max_size=6, unique=True))
    orders = draw(st.lists(st.tuples(st.sampled_from(people), st.floats(-50, 500, allow_nan=False).map(lambda x: round(x, 2))), max_size=25))
    referrals = draw(st.lists(st.tuples(st.sampled_from(people), st.one_of(st.none(), st.sampled_from(people))), max_size=8))
    victim = draw(st.integers(0, len(people) - 1))
    mode = draw(st.sampled_from(["pseudonymize", "delete"]))
    return people, orders, referrals, victim, mode


def _per_customer(db: str) -> dict[str, tuple[int, float]]:
    with connect(db, read_only=True) as con:
        rows = con.execute("SELECT customer_id, count(*), sum(amount) FROM transactions GROUP BY customer_id").fetchall()
    return {c: (n, s) for c, n, s in rows}


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(bases())
def test_erasure_removes_exactly_the_person(base: tuple) -> None:
    people, orders, referrals, victim_i, mode = base
    victim = people[victim_i]
    assume(not any(victim in p for p in people if p != victim))  # no other id contains the victim's
    with tempfile.TemporaryDirectory() as tmp:
        db = str(Path(tmp) / "p.duckdb")
        with connect(db) as con:  # executemany refuses an empty list, hence the guards
            con.executemany("INSERT INTO customers (customer_id, attributes) VALUES (?, ?)", [(p, '{"tier": "x"}') for p in people])
            if orders:
                con.executemany(
                    "INSERT INTO transactions (customer_id, order_id, occurred_at, amount) VALUES (?, ?, TIMESTAMP '2024-01-01', ?)",
                    [(c, f"o{i}", a) for i, (c, a) in enumerate(orders)],
                )
            if referrals:
                con.executemany(
                    "INSERT INTO referrals (referral_id, referrer_id, referred_id, occurred_at, kind) "
                    "VALUES (?, ?, ?, TIMESTAMP '2024-01-01', 'invited')",
                    [(f"r{i}", a, b) for i, (a, b) in enumerate(referrals)],
                )
        before = _per_customer(db)
        erase_customer(db, victim, transactions=mode)

        assert bytes_hits(db, victim) == [] and text_hits(db, victim) == []
        after = _per_customer(db)
        mine = [a for c, a in orders if c == victim]
        for person in people:
            if person != victim and person in before:
                assert after[person][0] == before[person][0]
                assert after[person][1] == pytest.approx(before[person][1], abs=MONEY_TOL)
        total_before = sum(a for _, a in orders)
        total_after = sum(s for _, s in after.values())
        n_after = sum(n for n, _ in after.values())
        if mode == "pseudonymize":
            assert n_after == len(orders) and total_after == pytest.approx(total_before, abs=MONEY_TOL)
            assert len(after) == len(before)  # the person's orders under one pseudonym
        else:
            assert n_after == len(orders) - len(mine)
            assert total_after == pytest.approx(total_before - sum(mine), abs=MONEY_TOL)
        with connect(db, read_only=True) as con:
            kept = con.execute("SELECT count(*) FROM referrals").fetchall()[0][0]
            customers = con.execute("SELECT count(*) FROM customers").fetchall()[0][0]
        assert kept == sum(1 for a, b in referrals if victim not in (a, b))
        assert customers == len(people) - 1
