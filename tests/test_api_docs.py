"""The API reference (docs/api/*.md, built by ``make docs``) covers patron: every module it names
exists, and every public top-level module and package of patron appears in it (itself or one of its
modules), so a new stage cannot go undocumented."""

from __future__ import annotations

import importlib
import pkgutil
import re
from pathlib import Path

import patron

DOCS = Path(__file__).resolve().parents[1] / "docs" / "api"
NOT_IN_REFERENCE = {"patron.cli", "patron.__main__"}
"""The command line is documented by ``patron --help`` (tests/test_cli_help.py)."""


def documented() -> list[str]:
    return [m for page in sorted(DOCS.glob("*.md")) for m in re.findall(r"^::: (\S+)$", page.read_text(), flags=re.M)]


def test_every_named_module_imports() -> None:
    names = documented()
    assert len(names) > 50
    for name in names:
        importlib.import_module(name)


def test_every_top_level_module_is_documented() -> None:
    names = documented()
    top = {f"patron.{m.name}" for m in pkgutil.iter_modules(patron.__path__) if not m.name.startswith("_")}
    missing = [t for t in sorted(top - NOT_IN_REFERENCE) if not any(n == t or n.startswith(t + ".") for n in names)]
    assert missing == []


def test_mkdocs_builds_the_pages() -> None:
    config = (DOCS.parents[1] / "mkdocs.yml").read_text()
    for page in sorted(DOCS.glob("*.md")):
        assert f"api/{page.name}" in config, page.name
    assert "highlightjs: false" in config  # nothing fetched from a CDN when the site is opened
