"""The house by stage (docs/architecture.md): imports run only downward, and the modules of a stage
import each other without cycles; checked by import-linter against ``.importlinter``.

The contracts' own tests: in a copy of the package, one upward import (made inside a function, as
imports that run late count too), one circle between two modules of a stage and one new root module
that no layer names must each break them, named in the output; the unchanged copy keeps them. So the
check can fail, and does where it should.
"""

from __future__ import annotations

import importlib
import os
import pkgutil
import shutil
import subprocess
import sys
from pathlib import Path

import patron

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / ".importlinter"
SRC = ROOT / "src" / "patron"


def lint_imports(src_root: Path | None = None) -> subprocess.CompletedProcess[str]:
    """``lint-imports`` on ``.importlinter`` (no cache), on the package under ``src_root`` if given."""
    env = dict(os.environ)
    if src_root is not None:
        env["PYTHONPATH"] = str(src_root) + os.pathsep + env.get("PYTHONPATH", "")
    return subprocess.run(
        [sys.executable, "-c", "from importlinter.cli import lint_imports_command; lint_imports_command()",
         str(CONFIG), "--no-cache", "--no-logo"],
        cwd=ROOT, env=env, text=True, capture_output=True, timeout=300, check=False,
    )


def test_imports_run_only_downward_and_stages_have_no_cycles():
    res = lint_imports()
    assert res.returncode == 0, res.stdout + res.stderr
    assert "0 broken" in res.stdout, res.stdout


def _copy(tmp_path: Path) -> Path:
    root = tmp_path / "src"
    def skip(folder: str, names: list[str]) -> list[str]:  # the modules only: no caches, no data files
        return [n for n in names if n == "__pycache__" or (Path(folder, n).is_file() and not n.endswith(".py"))]

    shutil.copytree(SRC, root / "patron", ignore=skip)
    return root


def _append(path: Path, text: str) -> None:
    path.write_text(path.read_text(encoding="utf-8") + text, encoding="utf-8")


def test_the_contract_catches_an_upward_import(tmp_path):
    root = _copy(tmp_path)
    kept = lint_imports(root)
    assert kept.returncode == 0, kept.stdout + kept.stderr  # the copy is the package
    _append(root / "patron/data/store.py", "\n\ndef _upward():\n    from patron.relationship.status import STATUSES\n\n    return STATUSES\n")
    res = lint_imports(root)
    assert res.returncode != 0
    assert "patron.data.store -> patron.relationship.status" in res.stdout, res.stdout


def test_the_contract_catches_a_cycle_inside_a_stage(tmp_path):
    root = _copy(tmp_path)
    # profiles reads rfm and tiers; rfm reading segments (which reads profiles) closes a circle
    _append(root / "patron/relationship/rfm.py", "\n\ndef _circle():\n    import patron.relationship.segments\n\n    return patron.relationship.segments\n")
    res = lint_imports(root)
    assert res.returncode != 0
    assert "No cycles are allowed in patron.relationship" in res.stdout, res.stdout


def test_every_module_imports():
    names = [m.name for m in pkgutil.walk_packages(patron.__path__, "patron.") if m.name != "patron.__main__"]
    assert len(names) > 150
    failed = {}
    for name in names:
        try:
            importlib.import_module(name)
        except Exception as exc:  # every failure, reported together
            failed[name] = repr(exc)
    assert failed == {}


def test_the_top_level_api_is_kept():
    from patron import IngestResult, InputError, PatronError, __version__, ingest, summary

    assert callable(ingest) and callable(summary)
    assert issubclass(InputError, PatronError)
    assert IngestResult.__module__ == "patron.data.ingest.load"
    assert isinstance(__version__, str)


def test_a_new_root_module_must_be_given_a_stage(tmp_path):
    root = _copy(tmp_path)
    (root / "patron/helpers.py").write_text('"""A module nobody placed."""\n', encoding="utf-8")
    res = lint_imports(root)
    assert res.returncode != 0
    assert "patron.helpers" in res.stdout, res.stdout
