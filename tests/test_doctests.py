"""The examples in patron's docstrings run, and give what they show (issue 21: doctests in CI).

Every module of ``src/patron`` whose source holds an example (``>>>``) is imported and its
examples run with :mod:`doctest` (``ELLIPSIS``, ``NORMALIZE_WHITESPACE``). An example that is
skipped (``+SKIP``) fails the test: an example that cannot run belongs in prose, not in ``>>>``."""

from __future__ import annotations

import doctest
import importlib
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
MODULES = sorted(
    ".".join(path.relative_to(SRC).with_suffix("").parts).removesuffix(".__init__")
    for path in (SRC / "patron").rglob("*.py") if ">>>" in path.read_text(encoding="utf-8")
)
FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE


def test_examples_are_found() -> None:
    assert len(MODULES) >= 10


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    module = importlib.import_module(name)
    finder = doctest.DocTestFinder(exclude_empty=True)
    runner = doctest.DocTestRunner(optionflags=FLAGS)
    report: list[str] = []
    tests = [t for t in finder.find(module, name) if t.examples]
    assert tests, f"{name} holds '>>>' but doctest found no example"
    skipped = [f"{t.name} line {t.lineno + (e.lineno or 0) + 1}" for t in tests for e in t.examples
               if e.options.get(doctest.SKIP)]
    assert not skipped, f"skipped examples: {skipped}"
    for test in tests:
        runner.run(test, out=report.append)
    result = runner.summarize(verbose=False)
    assert result.failed == 0, "".join(report)
    assert result.attempted > 0
