"""The segment rule language: a readable rule compiled to one SQL boolean expression.

A rule reads like the sentence a marketer would write::

    status in [at_risk, lapsed] and clv > 200 and discount_order_share < 0.2

and compiles to SQL that the engine evaluates over the ``customer_profiles`` table (never in
pandas). Grammar, loosest binding first::

    rule       := or_expr
    or_expr    := and_expr ("or" and_expr)*
    and_expr   := not_expr ("and" not_expr)*
    not_expr   := "not" not_expr | predicate
    predicate  := "(" rule ")"
                | "within_km" "(" store "," number ")"
                | operand ("=" | "!=" | "<>" | "<" | "<=" | ">" | ">=") operand
                | operand ["not"] "in" "[" value ("," value)* "]"
                | operand ["not"] "between" operand "and" operand
                | operand "is" ["not"] "null"
                | boolean_column
    operand    := column | `any column name` | number | 'quoted string' | "quoted string" | true | false
    value      := operand | bare_word          (a bare word inside a list is a string)
    store      := 'quoted string' | bare_word  (a store_id of the stores table)

A column whose name is not a plain word (spaces, quotes, accents: customer attributes can be
named anything) is written in backticks, a backtick in it doubled: `` `fav colour` = 'red' ``.
``within_km('store-12', 5)`` is true for customers whose location (profile columns ``lat``,
``lon``) is within 5 km (great circle) of the store (:func:`patron.relationship.place.within_km_sql`).

Keywords are case-insensitive. Column names are checked against the table's columns; literals are
quoted and escaped by the compiler, so no text of the rule reaches SQL unchecked. A comparison
with a missing value (SQL ``NULL``) is not true, so such a customer is not a member; ``is null``
asks for missing values explicitly. Errors are :class:`~patron.errors.InputError` with one line
naming the rule and the 1-based character position of the problem.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from patron.data.dialect import DIALECTS, DUCKDB, Dialect
from patron.dates import parse_day
from patron.errors import InputError

if TYPE_CHECKING:
    from patron.relationship.place import Store

KEYWORDS = frozenset({"and", "or", "not", "in", "between", "is", "null", "true", "false"})
"""Reserved words of the rule language (case-insensitive)."""

MAX_DEPTH = 64
"""Deepest nesting of parentheses and ``not`` a rule may have: far beyond any real rule, and well
inside the recursion limits of this parser and of the SQL engines."""

COMPARISONS = ("<=", ">=", "!=", "<>", "=", "<", ">")
"""Comparison operators, longest first for the tokenizer."""

NUMBER_TYPES = ("DOUBLE", "FLOAT", "REAL", "INT", "INTEGER", "BIGINT", "SMALLINT", "TINYINT", "HUGEINT", "DECIMAL", "NUMERIC", "UBIGINT", "UINTEGER")
"""SQL types treated as numbers by the type check."""

_TOKEN = re.compile(
    r"""(?P<ws>\s+)
    |(?P<number>-?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)
    |(?P<string>'(?:[^']|'')*'|"(?:[^"]|"")*")
    |(?P<quoted>`(?:[^`]|``)+`)
    |(?P<op><=|>=|!=|<>|=|<|>)
    |(?P<punct>[()\[\],])
    |(?P<word>[A-Za-z_][A-Za-z0-9_]*)""",
    re.VERBOSE,
)


@dataclass(frozen=True)
class Token:
    """One token: its kind (number, string, op, punct, word, end), text and 1-based position."""

    kind: str
    text: str
    pos: int

    @property
    def keyword(self) -> str | None:
        """The lower-cased keyword this word is, or ``None``."""
        low = self.text.lower()
        return low if self.kind == "word" and low in KEYWORDS else None


@dataclass(frozen=True)
class Column:
    """A column a rule may name: the SQL expression it stands for and its kind (number, text,
    boolean, date)."""

    sql: str
    kind: str


def column_kind(sql_type: str) -> str:
    """The rule language's kind (number, text, boolean, date) of a SQL column type."""
    t = sql_type.upper()
    if t.startswith(NUMBER_TYPES):
        return "number"
    if t.startswith("BOOL"):
        return "boolean"
    if t.startswith(("DATE", "TIMESTAMP")):
        return "date"
    return "text"


def columns_from_types(types: Mapping[str, str], *, dialect: str = "duckdb") -> dict[str, Column]:
    """Rule columns for a table whose columns have these SQL types (name -> type); ``dialect``
    ``spark`` quotes identifiers Spark's way (backticks) and reads Spark's type names."""
    d = DIALECTS[dialect]
    return {name: Column(quote_identifier(name, d), column_kind(SPARK_TYPES.get(t.lower(), t))) for name, t in types.items()}


SPARK_TYPES: dict[str, str] = {"string": "VARCHAR", "long": "BIGINT", "int": "INTEGER", "short": "SMALLINT",
                               "byte": "TINYINT", "float": "FLOAT", "double": "DOUBLE"}
"""Spark type names (``DataFrame.dtypes``) that differ from the SQL names :func:`column_kind` reads."""


SQL_RESERVED = frozenset(
    "all and any as asc between both by case cast check column create cross current date default delete desc distinct do "
    "drop else end except exists false fetch for foreign from full grant group having in inner insert intersect interval "
    "into is join lateral leading left like limit natural new not null of offset on only or order outer over partition "
    "primary references right row rows select session_user some table then time timestamp to trailing true union unique "
    "update user using values when where window with".split()
)
"""Words written as quoted identifiers even when they look plain (reserved in SQL or Spark)."""

_PLAIN = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def quote_identifier(name: str, dialect: Dialect = DUCKDB) -> str:
    """``name`` as a SQL identifier: bare when it is a plain word that no engine reserves (the
    same readable text then works in DuckDB and Spark), else quoted by ``dialect``'s
    :meth:`~patron.data.dialect.Dialect.ident` (the one quoting helper: double quotes in DuckDB,
    backticks in Spark, which reads double quotes as a string)."""
    if _PLAIN.fullmatch(name) and name.lower() not in SQL_RESERVED:
        return name
    return dialect.ident(name)


class RuleError(InputError):
    """A rule that cannot be compiled; the message names the rule, the problem and its position."""


class _Compiler:
    """Recursive-descent parser that emits SQL while it parses (one pass, no tree)."""

    def __init__(self, text: str, columns: Mapping[str, Column], where: str, known_values: Mapping[str, tuple[str, ...]],
                 dialect: str = "duckdb", stores: Mapping[str, Store] | None = None) -> None:
        self.text, self.columns, self.where, self.known = text, columns, where, known_values
        self.dialect, self.stores = dialect, stores or {}
        self.quote = DIALECTS[dialect].literal
        self.lower = {k.lower(): k for k in columns}
        self.tokens = list(self._tokenize())
        self.i = 0
        self.depth = 0

    # -- errors and tokens ------------------------------------------------------------------
    def fail(self, message: str, pos: int | None = None, hint: str = "") -> RuleError:
        at = f" at character {pos}" if pos is not None else ""
        return RuleError(f"{self.where}: {message}{at}{hint}")

    def _tokenize(self) -> Any:
        i = 0
        while i < len(self.text):
            m = _TOKEN.match(self.text, i)
            if m is None:
                ch = self.text[i]
                hint = " (a text value needs a closing quote)" if ch in "'\"" else ""
                raise self.fail(f"unexpected character {ch!r}", i + 1, hint)
            if m.lastgroup != "ws":
                yield Token(m.lastgroup or "", m.group(), i + 1)
            i = m.end()
        yield Token("end", "", len(self.text) + 1)

    @property
    def tok(self) -> Token:
        return self.tokens[self.i]

    def next(self) -> Token:
        t = self.tokens[self.i]
        self.i += 1
        return t

    def describe(self, t: Token) -> str:
        if t.kind == "string":
            return t.text
        return "the end of the rule" if t.kind == "end" else f'"{t.text}"'

    def number(self, t: Token) -> str:
        """The SQL of the number token ``t``; one too large for a double (``1e999``) is an error."""
        sql = _number(t.text)
        if sql in ("inf", "-inf"):
            raise self.fail(f"the number {t.text} is out of range (largest: about 1.8e308)", t.pos)
        return sql

    def expect_keyword(self, word: str, after: str) -> Token:
        t = self.next()
        if t.keyword != word:
            raise self.fail(f'expected "{word}" after "{after}", found {self.describe(t)}', t.pos)
        return t

    # -- grammar ----------------------------------------------------------------------------
    def compile(self) -> str:
        if self.tok.kind == "end":
            raise self.fail("the rule is empty")
        sql = self.or_expr()
        if self.tok.kind != "end":
            t = self.tok
            hint = ' (join conditions with "and" or "or")' if t.kind != "punct" else ""
            raise self.fail(f"unexpected {self.describe(t)}", t.pos, hint)
        return sql

    def or_expr(self) -> str:
        parts = [self.and_expr()]
        while self.tok.keyword == "or":
            self.next()
            parts.append(self.and_expr())
        return parts[0] if len(parts) == 1 else "(" + " OR ".join(parts) + ")"

    def and_expr(self) -> str:
        parts = [self.not_expr()]
        while self.tok.keyword == "and":
            self.next()
            parts.append(self.not_expr())
        return parts[0] if len(parts) == 1 else "(" + " AND ".join(parts) + ")"

    def nest(self, t: Token) -> None:
        """Enter a ``(`` or ``not`` at ``t``; deeper than :data:`MAX_DEPTH` is an error."""
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise self.fail(f"the rule is nested more than {MAX_DEPTH} deep (parentheses and not)", t.pos)

    def not_expr(self) -> str:
        if self.tok.keyword == "not":
            self.nest(self.next())
            inner = self.not_expr()
            self.depth -= 1
            return f"(NOT {inner})"
        return self.predicate()

    def predicate(self) -> str:
        t = self.tok
        if t.kind == "punct" and t.text == "(":
            self.nest(self.next())
            inner = self.or_expr()
            close = self.next()
            if close.text != ")" or close.kind != "punct":
                raise self.fail(f'expected ")" to close the "(" at character {t.pos}, found {self.describe(close)}', close.pos)
            self.depth -= 1
            return inner
        if t.kind == "end":
            raise self.fail("expected a condition, found the end of the rule", t.pos)
        if t.kind == "word" and t.text.lower() == "within_km" and self.tokens[self.i + 1].text == "(":
            return self.within_km()
        left_sql, left_kind, left_tok = self.operand()
        op = self.tok
        if op.kind == "op":
            self.next()
            right_sql, right_kind, right_tok = self.operand(context=left_kind, after=op.text)
            self.check_types(left_kind, left_tok, right_kind, right_tok)
            right_sql = self.coerce(right_sql, right_kind, right_tok, left_kind, left_tok)
            left_sql = self.coerce(left_sql, left_kind, left_tok, right_kind, right_tok)
            sql_op = "<>" if op.text == "!=" else op.text
            return f"({left_sql} {sql_op} {right_sql})"
        negate = ""
        if op.keyword == "not":
            self.next()
            negate = "NOT "
            if self.tok.keyword not in ("in", "between"):
                raise self.fail(f'expected "in" or "between" after "not", found {self.describe(self.tok)}', self.tok.pos)
            op = self.tok
        if op.keyword == "in":
            self.next()
            return f"({left_sql} {negate}IN ({self.value_list(left_kind, left_tok)}))"
        if op.keyword == "between":
            self.next()
            low, lk, lt = self.operand(context=left_kind, after="between")
            self.check_types(left_kind, left_tok, lk, lt)
            self.expect_keyword("and", f"between {lt.text}")
            high, hk, ht = self.operand(context=left_kind, after="and")
            self.check_types(left_kind, left_tok, hk, ht)
            low, high = self.coerce(low, lk, lt, left_kind, left_tok), self.coerce(high, hk, ht, left_kind, left_tok)
            return f"({left_sql} {negate}BETWEEN {low} AND {high})"
        if op.keyword == "is":
            self.next()
            neg = ""
            if self.tok.keyword == "not":
                self.next()
                neg = "NOT "
            null = self.next()
            if null.keyword != "null":
                raise self.fail(f'expected "null" after "is{" not" if neg else ""}", found {self.describe(null)}', null.pos)
            return f"({left_sql} IS {neg}NULL)"
        if left_kind == "boolean":
            return left_sql
        if left_tok.kind == "column":
            raise self.fail(f'expected a comparison (=, <, in [...], between, is null) after column "{left_tok.text}", found {self.describe(op)}', op.pos)
        raise self.fail(f"expected a condition, found {self.describe(left_tok)}", left_tok.pos)

    def operand(self, *, context: str | None = None, after: str | None = None) -> tuple[str, str, Token]:
        """A column, number, quoted string or true/false: (sql, kind, token)."""
        t = self.next()
        if t.kind == "number":
            return self.number(t), "number", t
        if t.kind == "string":
            q = t.text[0]
            return self.quote(t.text[1:-1].replace(q + q, q)), "text", t
        if t.keyword in ("true", "false"):
            return t.keyword.upper(), "boolean", t
        if t.kind == "word" and t.keyword is None:
            return self.column(t, context)
        if t.kind == "quoted":
            return self.column(Token("word", t.text[1:-1].replace("``", "`"), t.pos), context)
        if after is not None:
            raise self.fail(f'expected a value after "{after}", found {self.describe(t)}', t.pos)
        raise self.fail(f"expected a column or value, found {self.describe(t)}", t.pos)

    def column(self, t: Token, context: str | None = None) -> tuple[str, str, Token]:
        name = t.text if t.text in self.columns else self.lower.get(t.text.lower())
        if name is None:
            close = difflib.get_close_matches(t.text, list(self.columns), n=1, cutoff=0.6)
            if context == "text":
                hint = f" (to compare with text, quote it: '{t.text}')"
            elif close:
                hint = f" (did you mean {close[0]}?)"
            else:
                hint = ""
            raise self.fail(f'unknown column "{t.text}"', t.pos, hint)
        col = self.columns[name]
        return col.sql, col.kind, Token("column", name, t.pos)

    def within_km(self) -> str:
        """``within_km(store, km)``: the customer's location within ``km`` of the store."""
        from patron.relationship.place import within_km_sql

        start = self.next()
        self.next()  # "("
        store_tok = self.next()
        if store_tok.kind not in ("string", "word") or store_tok.keyword is not None:
            raise self.fail(f"within_km: expected a store id, found {self.describe(store_tok)}", store_tok.pos)
        store_id = store_tok.text[1:-1].replace(store_tok.text[0] * 2, store_tok.text[0]) if store_tok.kind == "string" else store_tok.text
        comma = self.next()
        if comma.text != ",":
            hint = f" (quote a store id that is not a plain word: '{store_id}{comma.text}')" if store_tok.kind == "word" else ""
            raise self.fail(f'within_km: expected "," after the store, found {self.describe(comma)}', comma.pos, hint)
        km_tok = self.next()
        if km_tok.kind != "number" or float(km_tok.text) < 0:
            raise self.fail(f"within_km: expected a distance in km (a number >= 0), found {self.describe(km_tok)}", km_tok.pos)
        close = self.next()
        if close.text != ")":
            raise self.fail(f'within_km: expected ")", found {self.describe(close)}', close.pos)
        lat, lon = self.lookup("lat"), self.lookup("lon")
        if lat is None or lon is None:
            raise self.fail("within_km needs customer locations (profile columns lat and lon): give customers lat/lon "
                            "or city attributes (docs/place.md)", start.pos)
        store = self.stores.get(store_id)
        if store is None:
            near = difflib.get_close_matches(store_id, list(self.stores), n=1)
            hint = f" (did you mean {near[0]}?)" if near else (f" (stores: {', '.join(list(self.stores)[:10])})" if self.stores else
                                                              " (no stores: patron ingest --kind stores FILE)")
            raise self.fail(f'unknown store "{store_id}"', store_tok.pos, hint)
        cell = self.lookup("h3_cell")
        return within_km_sql(store, float(self.number(km_tok)), lat=lat.sql, lon=lon.sql, cell=cell.sql if cell else None,
                             dialect=self.dialect)

    def lookup(self, name: str) -> Column | None:
        """The column ``name`` (exact, else ignoring case), or None."""
        key = name if name in self.columns else self.lower.get(name.lower())
        return self.columns[key] if key is not None else None

    def value_list(self, kind: str, col: Token) -> str:
        opened = self.next()
        if opened.text != "[" or opened.kind != "punct":
            raise self.fail(f'expected "[" to start the list after "in", found {self.describe(opened)}', opened.pos)
        items: list[str] = []
        while True:
            t = self.next()
            if t.kind == "word" and t.keyword is None:
                sql, vkind = self.quote(t.text), "text"  # a bare word in a list is a string
            elif t.kind == "number":
                sql, vkind = self.number(t), "number"
            elif t.kind == "string":
                sql, vkind = self.quote(t.text[1:-1].replace(t.text[0] * 2, t.text[0])), "text"
            elif t.keyword in ("true", "false"):
                sql, vkind = t.keyword.upper(), "boolean"
            else:
                where = '"in"' if not items else '","'
                raise self.fail(f"expected a value after {where}, found {self.describe(t)}", t.pos)
            self.check_types(kind, col, vkind, t)
            items.append(self.coerce(sql, vkind, t, kind, col))
            sep = self.next()
            if sep.kind == "punct" and sep.text == "]":
                return ", ".join(items)
            if not (sep.kind == "punct" and sep.text == ","):
                raise self.fail(f'expected "," or "]" in the list, found {self.describe(sep)}', sep.pos)

    # -- types ------------------------------------------------------------------------------
    def check_types(self, a: str, at: Token, b: str, bt: Token) -> None:
        """Refuse comparisons that can never be true (text with number, ...) and unknown values
        of columns with a fixed set of values (e.g. a misspelt status)."""
        if not (a == b or {a, b} == {"date", "text"}):
            if "column" not in (at.kind, bt.kind):
                raise self.fail(f"cannot compare {a} {self.describe(at)} with {_article(b)} {self.describe(bt)}", bt.pos)
            col, other = (at, bt) if at.kind == "column" else (bt, at)
            ck, ok_kind = (a, b) if at.kind == "column" else (b, a)
            raise self.fail(f'cannot compare {ck} column "{col.text}" with {_article(ok_kind)} {self.describe(other)}', other.pos)
        for col, val in ((at, bt), (bt, at)):
            allowed = self.known.get(col.text) if col.kind == "column" else None
            if allowed and val.kind in ("string", "word") and val.keyword is None:
                value = val.text[1:-1].replace(val.text[0] * 2, val.text[0]) if val.kind == "string" else val.text
                if value not in allowed:
                    close = difflib.get_close_matches(value, list(allowed), n=1)
                    hint = f" (did you mean {close[0]}?)" if close else f" (one of {', '.join(allowed)})"
                    raise self.fail(f'unknown {col.text} "{value}"', val.pos, hint)

    def coerce(self, sql: str, kind: str, tok: Token, other_kind: str, other: Token) -> str:
        """A text literal compared with a date column becomes a checked date literal."""
        if kind == "text" and other_kind == "date" and tok.kind in ("string", "word"):
            raw = tok.text[1:-1] if tok.kind == "string" else tok.text
            try:
                parse_day(raw, instant=True)
            except InputError:
                raise self.fail(f'"{raw}" is not a date like 1997-06-30', tok.pos) from None
            return f"CAST({self.quote(raw)} AS TIMESTAMP)"
        return sql


def _number(text: str) -> str:
    value = float(text)
    return str(int(value)) if value.is_integer() and abs(value) < 2**53 and "e" not in text.lower() else repr(value)


def _article(kind: str) -> str:
    return {"number": "a number", "text": "a text value", "boolean": "true/false", "date": "a date"}.get(kind, kind)


def rule_label(name: str, source: str | None = None) -> str:
    """How errors name a rule: ``segment "name"``, prefixed by its file when there is one."""
    return (f"{source}: " if source else "") + f'segment "{name}"'


def compile_rule(
    text: str,
    columns: Mapping[str, Column],
    *,
    name: str = "rule",
    source: str | None = None,
    known_values: Mapping[str, tuple[str, ...]] | None = None,
    dialect: str = "duckdb",
    stores: Mapping[str, Store] | None = None,
) -> str:
    """The SQL boolean expression of rule ``text`` over ``columns`` (see the module docstring),
    for DuckDB or (``dialect="spark"``) Spark SQL: the two differ only in how text is quoted.

    The result is wrapped in ``COALESCE(..., FALSE)`` so that a customer is a member exactly when
    the rule is true (missing values make a comparison unknown, which is not membership).
    ``known_values`` lists the allowed text values of some columns (e.g. ``status``) so that a
    misspelt value is an error rather than an empty segment. ``stores`` (store id ->
    :class:`~patron.relationship.place.Store`) are the stores ``within_km`` may name. Raises :class:`RuleError` (an
    :class:`InputError`) naming ``name`` (and ``source``) and the position of the problem.
    """
    if not isinstance(text, str):
        raise RuleError(f"{rule_label(name, source)}: the rule must be text, got {type(text).__name__}")
    try:
        sql = _Compiler(text, columns, rule_label(name, source), known_values or {}, dialect, stores).compile()
    except RecursionError:  # MAX_DEPTH keeps well inside the limit; a smaller limit set by a host program
        raise RuleError(f"{rule_label(name, source)}: the rule is nested too deeply") from None
    return f"COALESCE({sql}, FALSE)"
