"""The motivation classification against a planted truth: how often does it recover why customers buy?

For each seed, patron.relationship.motivation_simulate draws a base with planted motivations
(discount seekers, values sharers, mixed, other; behaviour in that module's BEHAVIOUR), stores it in
a fresh database, and patron.relationship.motivation classifies every customer as of the last day.
Printed: the accuracy per seed (found = planted; unknown counts as wrong), its mean and range, the
recall of each planted motivation, and the confusion matrix summed over the seeds. Optionally the
same with some signals removed (--without), to show what each source is worth.

Usage: .venv/bin/python benchmarks/motivation_planted.py [--customers 5000] [--seeds 5]
           [--without survey,content,referrals,contacts]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import pandas as pd

from patron.data.store import connect
from patron.relationship.motivation import motivations
from patron.relationship.motivation_simulate import (
    AS_OF,
    accuracy,
    confusion,
    simulate_planted,
    store_planted,
)

DROPS = {"survey": "feedback", "content": "interactions", "referrals": "referrals", "contacts": "contacts"}
"""--without NAME -> the table emptied before the classification."""


def run(customers: int, seed: int, folder: Path, without: list[str]) -> tuple[pd.DataFrame, float]:
    """The confusion matrix of one seed, and the seconds the classification took (the query alone)."""
    base = simulate_planted(customers, seed=seed)
    db = folder / f"planted-{seed}.duckdb"
    store_planted(base, db)
    if without:
        with connect(db) as con:
            for name in without:
                con.execute(f"DELETE FROM {DROPS[name]}")
    began = time.perf_counter()
    found = motivations(db, as_of=AS_OF)
    return confusion(base.truth, found), time.perf_counter() - began


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--customers", type=int, default=5000)
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--without", default="", help="comma-separated: " + ", ".join(DROPS))
    a = ap.parse_args()
    without = [w for w in a.without.split(",") if w]
    unknown = [w for w in without if w not in DROPS]
    if unknown:
        raise SystemExit(f"--without: unknown {unknown[0]!r}; known: {', '.join(DROPS)}")
    total: pd.DataFrame | None = None
    scores = []
    with tempfile.TemporaryDirectory() as tmp:
        for seed in range(a.seeds):
            table, seconds = run(a.customers, seed, Path(tmp), without)
            scores.append(accuracy(table))
            total = table if total is None else total + table
            print(f"seed {seed}: accuracy {scores[-1]:.3f} ({a.customers:,} customers; classification {seconds:.2f} s)")
    assert total is not None
    s = pd.Series(scores)
    print(f"\naccuracy over {a.seeds} seeds{' without ' + ', '.join(without) if without else ''}: "
          f"mean {s.mean():.3f}, min {s.min():.3f}, max {s.max():.3f}")
    recall = {m: total.loc[m, m] / total.loc[m].sum() for m in total.index}
    print("recall by planted motivation: " + ", ".join(f"{m} {v:.3f}" for m, v in recall.items()))
    classified = total.drop(columns="unknown")
    print(f"customers left unknown: {int(total['unknown'].sum()):,} of {int(total.to_numpy().sum()):,}")
    print(f"\nconfusion matrix, summed over the seeds (rows planted, columns found):\n{total.to_string()}")
    precision = {m: total.loc[m, m] / classified[m].sum() for m in total.index if classified[m].sum()}
    print("precision by found motivation: " + ", ".join(f"{m} {v:.3f}" for m, v in precision.items()))


if __name__ == "__main__":
    main()
