"""Dose-response against a planted truth: does "justified contacts per month" find the planted optimum?

For each scenario, simulated customers (patron.contact.effect.simulate_dose: targeting sends more
contacts to customers who bought recently and often, and more in November and December) are
written to a database and analysed by patron.contact.effect.dose_response, once per seed. The
table gives, per scenario, the planted optimum (from the simulation's own purchase probabilities)
and how many seeds recover it, with the adjusted estimate (patron's) and with the same rule on
unadjusted comparisons (every customer-month of a segment in one stratum), to show what the
adjustment for targeting is worth.

Usage: .venv/bin/python benchmarks/dose_planted.py [--customers 20000] [--seeds 20] [--scenario NAME ...]
"""

from __future__ import annotations

import argparse
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

from patron.contact.effect.dose import ALL, dose_cells, dose_table
from patron.contact.effect.simulate_dose import planted_effect, simulate_dose_response
from patron.data.store import connect

SCENARIOS: dict[str, dict[str, Any]] = {
    "rises to 3, then falls": {"effect": planted_effect(3)},
    "rises to 1, then falls": {"effect": planted_effect(1)},
    "rises to 5, then falls": {"effect": planted_effect(5)},
    "flat (no effect)": {"effect": planted_effect(0, loss=0.0)},
    "harmful (-1 point a contact)": {"effect": planted_effect(0, loss=0.01)},
    "diminishing: +4, +2, +1, +0.5, then -1": {"effect": [0, 0.04, 0.06, 0.07, 0.075, 0.065, 0.055, 0.045]},
    "costly mail (0.60): +3, +3, +1, then -1": {"effect": [0, 0.03, 0.06, 0.07, 0.06, 0.05], "channel": "mail", "cost_per_contact": 0.60},
    "rises to 3, no targeting": {"effect": planted_effect(3), "targeting": 0.0},
}
"""Scenario name -> arguments of simulate_dose_response."""


def run(kwargs: dict[str, Any], customers: int, seed: int, folder: Path) -> tuple[int, float, float]:
    """Planted optimum, justified contacts (adjusted), justified contacts (unadjusted)."""
    contacts, orders, truth = simulate_dose_response(customers, seed=seed, **kwargs)
    db = str(folder / f"s{seed}.duckdb")
    with connect(db) as con:
        con.register("c_in", contacts)
        con.register("t_in", orders)
        con.execute("INSERT INTO contacts BY NAME SELECT * FROM c_in")
        con.execute("INSERT INTO transactions BY NAME SELECT * FROM t_in")
    cells = dose_cells(db)
    adjusted = dose_table(cells)
    crude = dose_table(cells.assign(month="all", recency_band="all", frequency_band="all"))
    Path(db).unlink()

    def found(t: Any) -> float:
        return float(t.loc[t["segment"] == ALL, "justified_contacts"].iloc[0])

    return truth["optimum"], found(adjusted), found(crude)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--customers", type=int, default=20000)
    ap.add_argument("--seeds", type=int, default=20)
    ap.add_argument("--scenario", action="append", choices=list(SCENARIOS))
    args = ap.parse_args()
    print(f"{args.customers:,} customers, 24 months, seeds 0..{args.seeds - 1}; justified contacts per month of segment 'all'")
    print("| scenario | planted optimum | recovered (adjusted) | found (adjusted) | recovered (unadjusted) | found (unadjusted) |")
    print("|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory(prefix="patron-dose-") as tmp:
        for name in args.scenario or list(SCENARIOS):
            rows = [run(SCENARIOS[name], args.customers, seed, Path(tmp)) for seed in range(args.seeds)]
            planted = Counter(r[0] for r in rows)
            k = planted.most_common(1)[0][0]
            adj, raw = Counter(r[1] for r in rows), Counter(r[2] for r in rows)

            def fmt(c: Counter[float]) -> str:
                return ", ".join(f"{v:g}: {n}" for v, n in sorted(c.items()))

            ok_adj = sum(r[1] == r[0] for r in rows)
            ok_raw = sum(r[2] == r[0] for r in rows)
            print(f"| {name} | {k}{'' if len(planted) == 1 else ' (' + fmt(Counter(float(v) for v in planted.elements())) + ')'} "
                  f"| {ok_adj}/{len(rows)} | {fmt(adj)} | {ok_raw}/{len(rows)} | {fmt(raw)} |", flush=True)


if __name__ == "__main__":
    main()
