"""``import patron`` and ``import patron.cli`` import no heavy library (issue 21: the ``patron``
command starts at once), and every public name of ``patron`` still resolves.

Each check runs in a fresh interpreter (``sys.modules`` of the test process already holds
everything) and reads ``sys.modules`` afterwards: a functional check, not a timing."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

HEAVY = ("pandas", "duckdb", "pyarrow", "numpy", "scipy", "fastapi", "uvicorn", "plotly", "matplotlib",
         "sklearn", "pyspark", "pydantic", "pydantic_settings")
"""Libraries a start-up must not import (Pydantic too: the settings are read when a command runs)."""



def imported_after(code: str) -> set[str]:
    """Top-level names of the modules imported by running ``code`` in a fresh interpreter."""
    probe = f"{code}\nimport json, sys\nprint(json.dumps(sorted({{m.split('.')[0] for m in sys.modules}})))"
    done = subprocess.run([sys.executable, "-c", probe], check=True, capture_output=True, text=True)
    return set(json.loads(done.stdout.splitlines()[-1]))


@pytest.mark.parametrize("code", ["import patron", "import patron.cli", "from patron.cli import app, main"])
def test_start_up_imports_nothing_heavy(code: str) -> None:
    assert imported_after(code) & set(HEAVY) == set()


@pytest.mark.parametrize("argv", [["version"], ["--version"], ["--help"], ["summary", "--help"], ["fit", "-h"]])
def test_parsing_a_command_line_imports_nothing_heavy(argv: list[str]) -> None:
    """Not even Pydantic: Typer 0.29 builds a Pydantic adapter for every parameter it parses (about
    0.2 s of CPU for ``patron version``), so ``pyproject.toml`` keeps Typer below 0.29."""
    code = f"from patron.cli import main\nmain({argv!r})"
    assert imported_after(code) & set(HEAVY) == set()


def test_every_public_name_resolves() -> None:
    code = ("import patron\nfor name in patron.__all__:\n    assert getattr(patron, name) is not None, name\n"
            "exec(f'from patron import {\", \".join(patron.__all__)}')\n"
            "import patron.data.ingest, patron.value.summary\n"  # the modules of the same names do not hide the functions
            "assert callable(patron.ingest) and callable(patron.summary)\n"
            "from patron.value.summary import summary\nassert patron.summary is summary\n"
            "from patron.data.ingest import IngestResult, ingest\nassert patron.ingest is ingest and patron.IngestResult is IngestResult\n"
            "assert patron.__version__ and set(patron.__all__) <= set(dir(patron))")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_public_names_are_the_documented_ones() -> None:
    import patron

    assert set(patron.__all__) == {"IngestResult", "InputError", "PatronError", "__version__", "ingest", "summary"}
    with pytest.raises(AttributeError):
        patron.no_such_name  # noqa: B018


def test_version_is_the_installed_one() -> None:
    """``patron.__version__`` comes from ``patron/_version.py`` (cheap), which pyproject.toml reads:
    the installed metadata says the same."""
    from importlib.metadata import version

    import patron

    assert patron.__version__ == version("patron")


def test_a_command_builds_only_itself() -> None:
    """``patron summary ...`` hands Typer an app holding ``summary`` alone (Typer builds every
    command it holds on each run); anything else gets the whole app."""
    import typer.main

    from patron.cli import _app_for, app

    def names(typer_app: object) -> set[str]:
        return set(typer.main.get_command(typer_app).commands)  # type: ignore[arg-type]

    everything = names(app)
    assert len(everything) > 25
    assert names(_app_for(["summary", "--db", "x"])) == {"summary"}
    assert names(_app_for(["keys", "list"])) == {"keys"}
    assert names(_app_for(["contact-effect", "-h"])) == {"contact-effect"}
    for argv in ([], ["-h"], ["--csv-raw", "summary"], ["sumary"]):
        assert names(_app_for(argv)) == everything, argv
