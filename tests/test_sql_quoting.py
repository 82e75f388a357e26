"""No name or value is written into SQL text except through the dialect's quoting
(:meth:`patron.data.dialect.Dialect.ident` and :meth:`~patron.data.dialect.Dialect.literal`).

The scan reads every module of ``src/patron`` (``ast``) and looks at the f-strings that build SQL
(their text holds an SQL keyword). Three rules:

1. **No hand quoting.** An interpolation written between quote characters (``'{x}'``, ``"{x}"``,
   ```{x}```) is a literal or identifier quoted by hand, without escaping: issue 18's CSV header
   injection was ``f'NULL::VARCHAR AS "{c}"'``, its JSON key injection ``'$."{k}"'``.
2. **No hand escaping.** ``.replace("'", "''")`` and its kin appear only in ``data/dialect.py``.
3. **Names read from files are quoted.** In the modules that handle input columns (validated
   ingest on DuckDB and Spark), every interpolated value whose name says it is a name (``name``,
   ``key``, ``column``, ``label``, ...) is quoted, or is a name declared by the data contract
   (``contract.*``, ``col.*``), or a constant of the module.

:data:`ALLOWED` lists the few interpolations the rules cannot tell are safe, each with its reason.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "patron"

SQL_WORDS = re.compile(
    r"\b(SELECT|INSERT|UPDATE|DELETE|CREATE|DROP|COPY|ATTACH|ALTER|DESCRIBE|FROM|WHERE|JOIN|"
    r"GROUP BY|ORDER BY|PARTITION BY|SET|AS|USING|VALUES)\b"
)
"""Text that makes an f-string SQL (upper case, as patron writes SQL)."""

NAME_LIKE = re.compile(
    r"(^|_)(names?|columns?|cols?|c|tables?|keys?|k|fields?|idents?|labels?|alias|headers?|"
    r"path|file|views?|schema|target|source|attrs?)$",
    re.IGNORECASE,
)
"""Variable names that hold a name (rule 3)."""

QUOTERS = frozenset({"ident", "literal", "quote_identifier", "date_literal", "stage_ident", "json_pointer"})
"""Functions whose result is quoted SQL (the dialect's, and thin wrappers that call it)."""

SAFE_CALLS = frozenset({"int", "float", "len", "round", "isoformat", "strftime"})
"""Calls whose result is a number or a date's digits: nothing to quote."""

INPUT_NAME_MODULES = ("data/ingest/", "data/ingest/spark.py")
"""Modules that handle the names of input columns (rule 3)."""

CONTRACT_ROOTS = frozenset({"contract", "col"})
"""Roots of names declared by the data contract (:mod:`patron.data.schema`), not read from input."""

ALLOWED: dict[tuple[str, str], str] = {
    ("data/dialect.py", "unit"): "a fixed word ('week', 'month') chosen from a dict in the same function",
    ("data/dialect.py", "unit.upper()"): "the same fixed word, upper case for Spark",
    ("relationship/cohorts.py", "unit"): "a fixed word ('quarter'/'QUARTER') chosen in the same function",
    ("data/ingest/checks.py", "key"): "contract.key, passed in by load and spark_ingest (a contract name)",
    ("data/ingest/spark.py", "key"): "contract.key (a contract name)",
}
"""``(module, interpolated expression)`` -> why it is safe without the quoting helper."""


def _modules() -> list[Path]:
    return sorted(SRC.rglob("*.py"))


def _text(node: ast.AST) -> str:
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else "\0"


def _called(node: ast.AST) -> str:
    if isinstance(node, ast.Call):
        f = node.func
        return f.attr if isinstance(f, ast.Attribute) else getattr(f, "id", "")
    return ""


def _root(node: ast.AST) -> str:
    while isinstance(node, ast.Attribute | ast.Subscript | ast.Call):
        node = node.func if isinstance(node, ast.Call) else node.value
    return node.id if isinstance(node, ast.Name) else ""


def _last(node: ast.AST) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    if isinstance(node, ast.Subscript):
        return _last(node.value)
    return ""


def _quoted_text(node: ast.AST, quoters: set[str]) -> bool:
    """True for text made only of quoted parts: a quoter's result, an f-string whose every
    interpolation is one (or a number), or ``sep.join`` of such parts."""
    if _called(node) in quoters or _called(node) in SAFE_CALLS:
        return True
    if isinstance(node, ast.JoinedStr):
        return all(_quoted_text(v.value, quoters) for v in node.values if isinstance(v, ast.FormattedValue))
    if isinstance(node, ast.Constant):
        return True
    if isinstance(node, ast.BinOp):  # arithmetic on positions, never text glued to quotes
        return not any(isinstance(n, ast.Constant) and isinstance(n.value, str) for n in ast.walk(node))
    if _called(node) == "join" and len(node.args) == 1 and isinstance(node.args[0], ast.GeneratorExp | ast.ListComp):
        return _quoted_text(node.args[0].elt, quoters)
    return False


def _constants(node: ast.AST) -> bool:
    """A tuple or list of string constants written in the code."""
    return isinstance(node, ast.Tuple | ast.List) and all(isinstance(e, ast.Constant) for e in node.elts)


def _trusted_names(tree: ast.AST) -> dict[ast.AST, tuple[set[str], set[str]]]:
    """Per function: the local names bound to a quoter (``q = DUCKDB.ident``), and the names bound
    to quoted text (``k = q(key)``, ``cols = ", ".join(q(c) for c in ...)``) or looping over a
    tuple or list of string constants (written in the loop or bound to a name first).
    A nested function sees its enclosing functions' names."""
    out: dict[ast.AST, tuple[set[str], set[str]]] = {}

    def scan(fn: ast.AST, quoters: set[str], trusted: set[str]) -> None:
        quoters, trusted = set(quoters), set(trusted)
        constant_lists: set[str] = set()
        body = [n for n in ast.walk(fn) if n is not fn]
        for node in body:
            if isinstance(node, ast.Assign):
                pairs = []
                for target in node.targets:
                    if isinstance(target, ast.Tuple) and isinstance(node.value, ast.Tuple):
                        pairs += list(zip(target.elts, node.value.elts, strict=False))
                    else:
                        pairs.append((target, node.value))
                for target, value in pairs:
                    if isinstance(target, ast.Name) and isinstance(value, ast.Attribute) and value.attr in QUOTERS:
                        quoters.add(target.id)
                    elif isinstance(target, ast.Name) and _quoted_text(value, quoters):
                        trusted.add(target.id)
                    if isinstance(target, ast.Name) and _constants(value):
                        constant_lists.add(target.id)
            elif isinstance(node, ast.For | ast.comprehension) and isinstance(node.target, ast.Name):
                it = node.iter
                if _constants(it) or (isinstance(it, ast.Name) and it.id in constant_lists):
                    trusted.add(node.target.id)
        out[fn] = (quoters, trusted)
        for node in body:
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node not in out:
                scan(node, quoters, trusted)

    scan(tree, set(QUOTERS), set())
    return out


def findings(source: str, module: str) -> list[str]:
    """What the three rules find in ``source`` (the text of ``src/patron/<module>``)."""
    tree = ast.parse(source)
    trusted_by_fn = _trusted_names(tree)
    out: list[str] = []
    scopes: list[tuple[ast.AST, ast.AST]] = []  # (f-string, innermost function)

    def visit(node: ast.AST, fn: ast.AST) -> None:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            fn = node
        if isinstance(node, ast.JoinedStr):
            scopes.append((node, fn))
        for child in ast.iter_child_nodes(node):
            visit(child, fn)

    visit(tree, tree)
    for fstring, fn in scopes:
        parts = fstring.values
        if not SQL_WORDS.search("".join(_text(p) for p in parts)):
            continue
        quoters, trusted = trusted_by_fn.get(fn, (set(QUOTERS), set()))
        for i, part in enumerate(parts):
            if not isinstance(part, ast.FormattedValue):
                continue
            expr = part.value
            shown = ast.unparse(expr)
            if (module, shown) in ALLOWED:
                continue
            if _quoted_text(expr, quoters) or (isinstance(expr, ast.Name) and expr.id in trusted) or _last(expr).isupper():
                continue
            before = _text(parts[i - 1]) if i else ""
            after = _text(parts[i + 1]) if i + 1 < len(parts) else ""
            if before[-1:] in ("'", '"', "`") and after[:1] == before[-1:]:
                out.append(f"{module}:{part.lineno}: {{{shown}}} is quoted by hand: use dialect.ident/literal")
                continue
            name = _last(expr)
            if (
                module.startswith(INPUT_NAME_MODULES)
                and NAME_LIKE.search(name or "")
                and _root(expr) not in CONTRACT_ROOTS
            ):
                out.append(f"{module}:{part.lineno}: {{{shown}}} is a name written into SQL unquoted: use dialect.ident/literal")
    if module != "data/dialect.py":
        for node in ast.walk(tree):
            if _called(node) == "replace" and len(node.args) == 2:
                a, b = (ast.unparse(x) for x in node.args)
                if (a, b) in {("\"'\"", "\"''\""), ("'\"'", "'\"\"'"), ("'`'", "'``'"), ("chr(39)", "chr(39) * 2")}:
                    out.append(f"{module}:{node.lineno}: hand escaping {ast.unparse(node)}: use dialect.ident/literal")
    return out


def test_no_sql_is_built_from_names_without_the_dialects_quoting():
    problems = [f for path in _modules() for f in findings(path.read_text(), path.relative_to(SRC).as_posix())]
    assert not problems, "\n".join(problems)


def test_every_allowed_interpolation_still_exists():
    """An allow-list entry whose code is gone is removed (the list stays small and true)."""
    texts = {path.relative_to(SRC).as_posix(): path.read_text() for path in _modules()}
    stale = [f"{m}: {{{e}}}" for m, e in ALLOWED if "{" + e + "}" not in texts.get(m, "") and "{" + e + "!r}" not in texts.get(m, "")]
    assert not stale, stale


@pytest.mark.parametrize(
    ("module", "code"),
    [
        # issue 18: the empty stage of a CSV whose header had a payload
        ("data/ingest/readers.py", "def f(columns):\n    return ', '.join(f'NULL::VARCHAR AS \"{c}\"' for c in columns)\n"),
        # issue 18: JSON Lines keys spliced into JSON paths and aliases
        ("data/ingest/readers.py", "def f(keys):\n    return [f\"json_extract_string(_line, '$.\\\"{k}\\\"') AS x\" for k in keys]\n"),
        ("data/ingest/load.py", "def f(con, staged):\n    for name in staged.columns:\n        con.execute(f'SELECT {name} FROM _stage')\n"),
        ("data/store.py", "def f(con, limit):\n    con.execute(f\"SET memory_limit = '{limit}'\")\n"),
        ("people/rights/erase.py", "def f(con, p):\n    con.execute(f\"ATTACH '{p.replace(chr(39), chr(39) * 2)}' AS x\")\n"),
        ("network/sql.py", "def f(kinds):\n    return ', '.join(\"'\" + k.replace(\"'\", \"''\") + \"'\" for k in kinds)\n"),
    ],
)
def test_the_scan_finds_the_patterns_of_issue_18(module, code):
    assert findings(code, module)


@pytest.mark.parametrize(
    ("module", "code"),
    [
        ("data/ingest/readers.py", "def f(n):\n    return ', '.join(f'v[{i + 1}] AS {stage_ident(i)}' for i in range(n))\n"),
        ("data/ingest/load.py", "def f(con, contract, key):\n    q = DUCKDB.ident\n    k = q(key)\n    con.execute(f'SELECT {k} FROM {q(contract.name)} WHERE x = {DUCKDB.literal(key)}')\n"),
        ("data/ingest/load.py", "def f(con):\n    for t in ('_a', '_b'):\n        con.execute(f'DROP TABLE IF EXISTS {t}')\n"),
    ],
)
def test_the_scan_accepts_quoted_names(module, code):
    assert findings(code, module) == []


def test_segment_names_are_quoted_by_the_dialect():
    """The rule language's identifiers delegate to Dialect.ident: bare when plain and unreserved
    (readable SQL, the same in both engines), else the engine's own quoting."""
    from patron.data.dialect import DUCKDB, SPARK
    from patron.relationship.segments.rules import columns_from_types, quote_identifier

    assert quote_identifier("clv") == quote_identifier("clv", SPARK) == "clv"
    for name in ('my "col"', "select", "a`b", "o'brien"):
        assert quote_identifier(name) == DUCKDB.ident(name)
        assert quote_identifier(name, SPARK) == SPARK.ident(name)
    assert columns_from_types({"a`b": "string"}, dialect="spark")["a`b"].sql == "`a``b`"


def test_a_channel_name_from_the_rules_file_is_a_literal_whatever_it_holds():
    """contact_cost_sql dropped a channel whose name held an apostrophe (costed as 'other')."""
    import duckdb

    from patron.data.dialect import DUCKDB, SPARK
    from patron.relationship.profitability import CostRules, contact_cost_sql

    rules = CostRules(other=0.5, channels={"O'Brien post": 1.25, "fax": 0.75})
    for channel, cost in (("o'brien post", 1.25), ("FAX", 0.75), ("pigeon", 0.5)):
        assert duckdb.sql(f"SELECT {contact_cost_sql(rules, DUCKDB.literal(channel))}").fetchall() == [(cost,)]
    assert SPARK.literal("o'brien post") in contact_cost_sql(rules, "channel", SPARK)
