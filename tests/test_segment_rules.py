"""The segment rule language: every operator, precedence, quoting, errors, and evaluation in the
engine. Expected members come from hand-made tables (each row's membership worked out by hand in
the comments) or from an independent NumPy evaluation of the same condition."""

from __future__ import annotations

import duckdb
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from patron.errors import InputError
from patron.relationship.segments.rules import RuleError, columns_from_types, compile_rule

TYPES = {"id": "INTEGER", "status": "VARCHAR", "clv": "DOUBLE", "share": "DOUBLE", "flag": "BOOLEAN", "first_purchase": "TIMESTAMP", "T": "DOUBLE"}
COLUMNS = columns_from_types(TYPES)
KNOWN = {"status": ("new", "active", "at_risk", "lapsed", "lost", "O'Brien")}

ROWS = [
    # id, status,     clv,   share, flag,  first_purchase,        T
    (1, "new", 50.0, 0.0, True, "1997-01-01 00:00:00", 10.0),
    (2, "active", 250.0, 0.1, False, "1997-02-01 00:00:00", 20.0),
    (3, "at_risk", 300.0, 0.5, True, "1997-03-01 00:00:00", 30.0),
    (4, "lapsed", 500.0, None, None, "1997-04-01 00:00:00", 40.0),
    (5, "lost", None, 0.9, False, None, 50.0),
    (6, "O'Brien", 200.0, 0.2, True, "1997-05-01 00:00:00", 60.0),
]


@pytest.fixture(scope="module")
def con():
    c = duckdb.connect()
    c.execute("CREATE TABLE t (id INTEGER, status VARCHAR, clv DOUBLE, share DOUBLE, flag BOOLEAN, first_purchase TIMESTAMP, T DOUBLE)")
    c.executemany("INSERT INTO t VALUES (?, ?, ?, ?, ?, ?, ?)", ROWS)
    yield c
    c.close()


def ids(con, rule: str) -> list[int]:
    where = compile_rule(rule, COLUMNS, name="test", known_values=KNOWN)
    return [r[0] for r in con.execute(f"SELECT id FROM t WHERE {where} ORDER BY id").fetchall()]


@pytest.mark.parametrize(
    ("rule", "expected"),
    [
        ("clv = 250", [2]),
        ("clv != 250", [1, 3, 4, 6]),  # row 5 has no clv: unknown is not membership
        ("clv <> 250", [1, 3, 4, 6]),
        ("clv < 250", [1, 6]),
        ("clv <= 250", [1, 2, 6]),
        ("clv > 250", [3, 4]),
        ("clv >= 250", [2, 3, 4]),
        ("clv > 2.5e2", [3, 4]),
        ("clv > -1", [1, 2, 3, 4, 6]),
        ("status in [at_risk, lapsed]", [3, 4]),
        ("status in ['at_risk', \"lapsed\"]", [3, 4]),
        ("status not in [at_risk, lapsed]", [1, 2, 5, 6]),
        ("clv in [50, 500]", [1, 4]),
        ("clv between 200 and 300", [2, 3, 6]),
        ("clv not between 200 and 300", [1, 4]),
        ("share is null", [4]),
        ("clv is not null", [1, 2, 3, 4, 6]),
        ("flag", [1, 3, 6]),
        ("flag = true", [1, 3, 6]),
        ("flag = false", [2, 5]),
        ("not flag", [2, 5]),
        ("clv > 100 and share < 0.3", [2, 6]),
        ("clv < 100 or share > 0.8", [1, 5]),
        ("first_purchase >= '1997-03-01'", [3, 4, 6]),
        ("first_purchase < \"1997-02-15\"", [1, 2]),
        ("status = 'O''Brien'", [6]),
        ("status = \"O'Brien\"", [6]),
        ("clv > T", [1, 2, 3, 4, 6]),  # column against column
        ("t >= 60", [6]),  # column names match case-insensitively when unambiguous
        ("STATUS IN [new] OR CLV > 400", [1, 4]),  # keywords and names in any case
    ],
)
def test_each_operator_selects_the_hand_worked_rows(con, rule, expected):
    assert ids(con, rule) == expected


def test_and_binds_tighter_than_or(con):
    # a or (b and c): row 1 (new) is in by a alone although c (clv > 100) is false for it.
    assert ids(con, "status = 'new' or flag and clv > 100") == [1, 3, 6]
    # (a or b) and c: row 1 is now out.
    assert ids(con, "(status = 'new' or flag) and clv > 100") == [3, 6]


def test_not_binds_tighter_than_and_and_parentheses_override(con):
    # (not flag) and clv > 100 -> rows 2 (clv 250), 5 has no clv.
    assert ids(con, "not flag and clv > 100") == [2]
    # not (flag and clv > 100): rows where flag and clv>100 (3, 6) is false; row 4's flag is NULL
    # so the inner is NULL and it is not a member; row 5 flag false -> inner false -> member.
    assert ids(con, "not (flag and clv > 100)") == [1, 2, 5]
    assert ids(con, "not not flag") == [1, 3, 6]
    assert ids(con, "((clv > 100))") == [2, 3, 4, 6]


def test_an_attempted_injection_is_refused_or_stays_a_literal(con):
    with pytest.raises(InputError, match=r"unexpected character ';' at character 13"):
        compile_rule("status = 'x'; DROP TABLE t; --'", COLUMNS, name="evil")
    # With the quote escaped the whole text is one string literal: no rows, the table survives.
    where = compile_rule("status = 'x''; DROP TABLE t; --'", COLUMNS, name="evil")
    assert con.execute(f"SELECT count(*) FROM t WHERE {where}").fetchall() == [(0,)]
    assert con.execute("SELECT count(*) FROM t").fetchall() == [(len(ROWS),)]
    # Identifiers never pass through: an unknown name is an error, not SQL.
    with pytest.raises(InputError, match='unknown column "drop_table" at character 12'):
        compile_rule("clv > 1 or drop_table = 1", COLUMNS)
    with pytest.raises(InputError, match='cannot compare text "x" with a number "1" at character 18'):
        compile_rule('clv > 1 or "x" = 1', COLUMNS)


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        ("clvv > 200", 'segment "vip": unknown column "clvv" at character 1 (did you mean clv?)'),
        ("status in [at_risk] and clvv > 200", 'unknown column "clvv" at character 25 (did you mean clv?)'),
        ("clv in", 'expected "[" to start the list after "in", found the end of the rule at character 7'),
        ("status in [", 'expected a value after "in", found the end of the rule at character 12'),
        ("status in [new,", 'expected a value after ",", found the end of the rule at character 16'),
        ("status in [new lost]", 'expected "," or "]" in the list, found "lost" at character 16'),
        ("clv >", 'expected a value after ">", found the end of the rule at character 6'),
        ("clv > and", 'expected a value after ">", found "and" at character 7'),
        ("clv between 1", 'expected "and" after "between 1", found the end of the rule at character 14'),
        ("clv is nul", 'expected "null" after "is", found "nul" at character 8'),
        ("clv not 5", 'expected "in" or "between" after "not", found "5" at character 9'),
        ("(clv > 1", 'expected ")" to close the "(" at character 1, found the end of the rule at character 9'),
        ("clv > 1)", 'unexpected ")" at character 8'),
        ("clv > 1 clv < 2", 'unexpected "clv" at character 9 (join conditions with "and" or "or")'),
        ("clv", 'expected a comparison (=, <, in [...], between, is null) after column "clv", found the end of the rule at character 4'),
        ("status = at_risk", "unknown column \"at_risk\" at character 10 (to compare with text, quote it: 'at_risk')"),
        ("status in [at_rsk]", 'unknown status "at_rsk" at character 12 (did you mean at_risk?)'),
        ("status = 5", 'cannot compare text column "status" with a number "5" at character 10'),
        ("clv in [a, b]", 'cannot compare number column "clv" with a text value "a" at character 9'),
        ("first_purchase > 'soon'", "\"soon\" is not a date like 1997-06-30 at character 18"),
        ("status = 'at_risk", "unexpected character \"'\" at character 10 (a text value needs a closing quote)"),
        ("clv > 1 & share < 2", "unexpected character '&' at character 9"),
        ("", "the rule is empty"),
        ("and", 'expected a column or value, found "and" at character 1'),
    ],
)
def test_malformed_rules_give_one_line_naming_rule_and_problem(rule, message):
    with pytest.raises(RuleError) as info:
        compile_rule(rule, COLUMNS, name="vip", known_values=KNOWN)
    text = str(info.value)
    assert isinstance(info.value, InputError)
    assert "\n" not in text
    assert text.startswith('segment "vip": ')
    assert message in text, text


def test_errors_name_the_file_when_the_rule_came_from_one():
    with pytest.raises(InputError, match=r'^rules\.toml: segment "vip_at_risk": unknown column "clvv" at character 25 \(did you mean clv\?\)$'):
        compile_rule("status in [at_risk] and clvv > 200", COLUMNS, name="vip_at_risk", source="rules.toml")


# --- evaluated in the engine ------------------------------------------------------------------

N_ROWS = 1_000_000


def test_a_rule_runs_in_the_engine_on_a_million_rows_and_matches_a_hand_count():
    """Values are generated by the engine from the row number; NumPy recomputes them from the same
    formulas and counts the rule's rows independently."""
    con = duckdb.connect()
    con.execute(
        f"""CREATE TABLE big AS SELECT i AS id,
            CASE i % 5 WHEN 0 THEN 'new' WHEN 1 THEN 'active' WHEN 2 THEN 'at_risk' WHEN 3 THEN 'lapsed' ELSE 'lost' END AS status,
            CAST((i * 37) % 1000 AS DOUBLE) AS clv,
            CAST((i * 11) % 100 AS DOUBLE) / 100 AS share
        FROM range({N_ROWS}) r(i)"""
    )
    cols = columns_from_types({"id": "BIGINT", "status": "VARCHAR", "clv": "DOUBLE", "share": "DOUBLE"})
    rule = "status in [at_risk, lapsed] and clv > 200 and share < 0.2 or status = 'new' and clv between 990 and 999"
    where = compile_rule(rule, cols, name="vip")
    got = con.execute(f"SELECT count(*) FROM big WHERE {where}").fetchall()[0][0]

    i = np.arange(N_ROWS)
    kind, clv, share = i % 5, (i * 37) % 1000, ((i * 11) % 100) / 100
    expected = int(np.sum((np.isin(kind, [2, 3]) & (clv > 200) & (share < 0.2)) | ((kind == 0) & (clv >= 990) & (clv <= 999))))
    assert got == expected
    assert 0 < expected < N_ROWS

    plan = "\n".join(str(r[1]) for r in con.execute(f"EXPLAIN SELECT id FROM big WHERE {where}").fetchall())
    assert "FILTER" in plan.upper() or "Filters:" in plan  # the rule is a filter in the engine's plan
    con.close()


# --- property: the compiled SQL agrees with a direct evaluation of the same expression ---------

NUM_COLS = ("a", "b", "c")
PROP_TYPES = {c: "DOUBLE" for c in NUM_COLS}
PROP_DATA = [(x, y, z) for x in (0.0, 1.0, 2.0) for y in (0.0, 1.0, 2.0) for z in (0.0, 1.0, 2.0)]
OPS = {"=": np.equal, "!=": np.not_equal, "<": np.less, "<=": np.less_equal, ">": np.greater, ">=": np.greater_equal}


def leaf():
    return st.tuples(st.sampled_from(NUM_COLS), st.sampled_from(sorted(OPS)), st.sampled_from([0, 1, 2]))


trees = st.recursive(
    leaf(),
    lambda sub: st.one_of(st.tuples(st.just("not"), sub), st.tuples(st.sampled_from(["and", "or"]), sub, sub)),
    max_leaves=6,
)


def render(node, parent: str = "or") -> str:
    """Text of a tree, with parentheses only where precedence needs them (so precedence is tested)."""
    if node[0] == "not":
        return f"not {render(node[1], 'not')}"
    if node[0] in ("and", "or"):
        text = f"{render(node[1], node[0])} {node[0]} {render(node[2], node[0])}"
        rank = {"or": 0, "and": 1, "not": 2}
        return f"({text})" if rank[parent] > rank[node[0]] else text
    col, op, val = node
    return f"{col} {op} {val}"


def truth(node, data: np.ndarray) -> np.ndarray:
    if node[0] == "not":
        return ~truth(node[1], data)
    if node[0] == "and":
        return truth(node[1], data) & truth(node[2], data)
    if node[0] == "or":
        return truth(node[1], data) | truth(node[2], data)
    col, op, val = node
    return OPS[op](data[:, NUM_COLS.index(col)], val)


_PROP_CON: list[duckdb.DuckDBPyConnection] = []


def prop_con() -> duckdb.DuckDBPyConnection:
    """One connection for every example (opening one per example is slow)."""
    if not _PROP_CON:
        con = duckdb.connect()
        con.execute("CREATE TABLE p (k INTEGER, a DOUBLE, b DOUBLE, c DOUBLE)")
        con.executemany("INSERT INTO p VALUES (?, ?, ?, ?)", [(k, *row) for k, row in enumerate(PROP_DATA)])
        _PROP_CON.append(con)
    return _PROP_CON[0]


@settings(max_examples=60, deadline=None)
@given(trees)
def test_compiled_rules_agree_with_direct_evaluation(tree):
    where = compile_rule(render(tree), columns_from_types(PROP_TYPES))
    got = [r[0] for r in prop_con().execute(f"SELECT k FROM p WHERE {where} ORDER BY k").fetchall()]
    expected = np.flatnonzero(truth(tree, np.array(PROP_DATA))).tolist()
    assert got == expected, render(tree)
