"""Segment rules the compiler or the engine cannot take (issue 18): deep nesting, numbers beyond a
double, literals only the engine refuses. Each is the documented one-line rule error naming the
file and segment, exit 2, through the real command line."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from patron.relationship.segments.rules import (
    MAX_DEPTH,
    RuleError,
    columns_from_types,
    compile_rule,
)
from tests.test_cli import one_line_error, run


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("rules")
    rows = "".join(f"c{i},2024-0{1 + i % 6}-1{i % 9},{10 + i}\nc{i},2024-0{4 + i % 6}-2{i % 9},{5 + i}\n" for i in range(12))
    (folder / "o.csv").write_text("customer_id,occurred_at,amount\n" + rows)
    assert run("ingest", "o.csv", "--db", "o.duckdb", cwd=folder).returncode == 0
    assert run("profiles", "--db", "o.duckdb", cwd=folder).returncode == 0
    return folder


RULES = {
    "parens": ("(" * 5000 + "clv > 1" + ")" * 5000, f"nested more than {MAX_DEPTH} deep"),
    "nots": ("not " * 5000 + "clv > 1", f"nested more than {MAX_DEPTH} deep"),
    "huge": ("clv > 1e999", "the number 1e999 is out of range"),
    "huge_in_list": ("n_orders in [1, -1e999]", "the number -1e999 is out of range"),
    # refused by the compiler (patron.dates.parse_day), with the position, before the database sees them
    "bad_timestamp": ("first_purchase > '2024-01-01xyz'", '"2024-01-01xyz" is not a date like 1997-06-30 at character 18'),
    "bad_hour": ("first_purchase > '1997-01-01T25:00'", '"1997-01-01T25:00" is not a date like 1997-06-30 at character 18'),
}


@pytest.mark.parametrize("case", RULES)
def test_rule_beyond_the_language_is_one_line(folder, case):
    text, problem = RULES[case]
    (folder / f"{case}.toml").write_text(f'[segments]\n{case} = "{text}"\n')
    proc = run("segments", "--db", "o.duckdb", "--rules", f"{case}.toml", cwd=folder)
    one_line_error(proc, f'{case}.toml: segment "{case}"', problem)
    assert proc.returncode == 2


def test_nesting_up_to_the_limit_compiles_and_evaluates(folder):
    """MAX_DEPTH levels are a rule like any other (here it selects the same customers as clv > 0)."""
    half = MAX_DEPTH // 2  # even: the nots cancel
    text = "not " * half + "(" * half + "clv > 0" + ")" * half
    (folder / "ok.toml").write_text(f'[segments]\nok = "{text}"\nplain = "clv > 0"\n')
    proc = run("segments", "--db", "o.duckdb", "--rules", "ok.toml", "--json", cwd=folder)
    assert proc.returncode == 0, proc.stderr
    sizes = {s["segment"]: s["customers"] for s in json.loads(proc.stdout)["segments"]}
    assert sizes["ok"] == sizes["plain"] > 0


def test_a_small_recursion_limit_is_still_a_rule_error():
    """A host program with a low recursion limit gets the rule error, not a RecursionError."""
    cols = columns_from_types({"clv": "DOUBLE"})
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(120)
    try:
        with pytest.raises(RuleError, match='segment "r": the rule is nested too deeply'):
            compile_rule("(" * 60 + "clv > 1" + ")" * 60, cols, name="r")
    finally:
        sys.setrecursionlimit(limit)
