"""The motivation classification recovers planted motivations (patron.relationship.motivation_simulate).

The bars come from benchmarks/motivation_planted.py (10 seeds of 3,000 customers: accuracy 0.775 to
0.796, recall discount 0.86, values 0.92, mixed 0.49, other 0.88; docs/motivation.md), with a
margin for the three seeds drawn here. A change that makes the classification worse at telling
discount seekers from values sharers fails this test."""

from __future__ import annotations

import pytest

from patron.relationship.motivation import motivations
from patron.relationship.motivation_simulate import (
    AS_OF,
    accuracy,
    confusion,
    simulate_planted,
    store_planted,
)

CUSTOMERS = 3000
SEEDS = (0, 1, 2)

ACCURACY_BAR = 0.74
"""Every seed: found = planted for at least this share of customers (measured 0.775 at worst)."""

RECALL_BARS = {"discount": 0.80, "values": 0.85, "mixed": 0.40, "other": 0.80}
"""Over the three seeds: share of each planted motivation found (measured 0.86, 0.92, 0.49, 0.88)."""


@pytest.fixture(scope="module")
def tables(tmp_path_factory):
    out = []
    for seed in SEEDS:
        base = simulate_planted(CUSTOMERS, seed=seed)
        db = tmp_path_factory.mktemp(f"planted{seed}") / "m.duckdb"
        store_planted(base, db)
        out.append(confusion(base.truth, motivations(db, as_of=AS_OF)))
    return out


def test_accuracy_on_a_planted_base_stays_above_the_bar(tables):
    for seed, table in zip(SEEDS, tables, strict=True):
        assert accuracy(table) >= ACCURACY_BAR, (seed, accuracy(table), table)


def test_each_planted_motivation_is_recalled(tables):
    total = sum(tables[1:], tables[0])
    for m, bar in RECALL_BARS.items():
        recall = total.loc[m, m] / total.loc[m].sum()
        assert recall >= bar, (m, recall, total)
    # the two motivations the issue names are almost never taken for each other
    assert total.loc["discount", "values"] + total.loc["values", "discount"] <= 0.01 * total.to_numpy().sum()


def test_a_classifier_that_ignores_the_data_fails_the_bar(tables):
    """The bar can fail: calling everyone the most common planted motivation scores far below it."""
    total = sum(tables[1:], tables[0])
    majority = total.sum(axis=1).max() / total.to_numpy().sum()
    assert majority < ACCURACY_BAR
