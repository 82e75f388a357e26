"""One place chooses the engine (issue 21, "one place per decision"): :func:`patron.data.engines.resolve_engine`.

Every function and command that takes ``engine`` resolves it there, so an unknown name is refused
the same way everywhere (in Python: ``engine must be one of duckdb, spark; got 'foo'``; on the
command line the flag is a choice, and a wrong ``$PATRON_ENGINE`` is one line naming it), and the
default comes from the setting on every command. The checks every Spark run makes before a
session starts are written once (:func:`~patron.data.engines.require_spark_inputs`) and read as
the running command's flags.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pandas as pd
import pytest
import typer.main

import patron
from patron.cli import app, main
from patron.data.engines import ENGINES, Engine, require_spark_inputs, resolve_engine
from patron.errors import InputError
from patron.settings import Settings

SRC = Path(__file__).resolve().parents[1] / "src" / "patron"

ENGINE_COMMANDS: dict[str, list[str]] = {
    "ingest": ["ingest", "t.csv"],
    "summary": ["summary"],
    "fit": ["fit", "bgnbd"],
    "score": ["score", "--out", "s.parquet"],
    "status": ["status"],
}
"""Each command that takes ``--engine``, with the arguments it needs to reach the engine choice."""

SPARK_NEEDS: dict[str, str] = {
    "ingest": "--out is needed on the Spark engine",
    "summary": "--transactions is needed on the Spark engine",
    "fit": "--transactions is needed on the Spark engine",
    "score": "--transactions is needed on the Spark engine",
    "status": "--transactions is needed on the Spark engine",
}
"""What each command says on Spark without its Spark inputs (there is no database on Spark)."""


def test_the_engine_commands_are_all_listed():
    found = {name for name, command in typer.main.get_command(app).commands.items()
             if any("--engine" in getattr(p, "opts", ()) for p in command.params)}
    assert found == set(ENGINE_COMMANDS)


@pytest.mark.parametrize(("given", "expected"), [
    ("duckdb", Engine.DUCKDB), ("spark", Engine.SPARK), ("SPARK", Engine.SPARK), (" DuckDB ", Engine.DUCKDB),
    (Engine.SPARK, Engine.SPARK),
])
def test_names_in_any_case_resolve(given, expected):
    assert resolve_engine(given) is expected


def test_the_default_is_the_setting(monkeypatch):
    monkeypatch.delenv("PATRON_ENGINE", raising=False)
    assert resolve_engine(None) is Engine.DUCKDB
    assert resolve_engine("") is Engine.DUCKDB
    monkeypatch.setenv("PATRON_ENGINE", "spark")
    assert resolve_engine(None) is Engine.SPARK
    assert resolve_engine("duckdb") is Engine.DUCKDB  # a name given wins over the setting


def test_the_setting_and_the_enum_name_the_same_engines():
    assert set(Settings.model_fields["engine"].annotation.__args__) == set(ENGINES) == {"duckdb", "spark"}


@pytest.mark.parametrize(("given", "hint"), [("sprak", " (did you mean spark?)"), ("duck", " (did you mean duckdb?)"),
                                             ("foo", ""), ("postgres", "")])
def test_an_unknown_engine_is_refused_naming_the_parameter_and_the_choices(given, hint):
    with pytest.raises(InputError) as caught:
        resolve_engine(given)
    assert str(caught.value) == f"engine must be one of duckdb, spark; got {given!r}{hint}"
    assert caught.value.parameters == ("engine",)


def test_the_library_summary_refuses_an_unknown_engine(tmp_path):
    frame = pd.DataFrame({"customer_id": ["a", "a"], "occurred_at": ["2024-01-01", "2024-02-01"], "amount": [1.0, 2.0]})
    with pytest.raises(InputError, match=r"^engine must be one of duckdb, spark; got 'foo'$"):
        patron.summary(frame, engine="foo")
    # the same frame on DuckDB, named in any case: one customer with one repeat purchase
    assert patron.summary(frame, engine="DuckDB", end="2024-03-01")["frequency"].tolist() == [1.0]


@pytest.mark.parametrize("command", sorted(ENGINE_COMMANDS))
def test_a_wrong_engine_setting_is_one_line_on_every_engine_command(command, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PATRON_ENGINE", "foo")
    code = main([*ENGINE_COMMANDS[command], "--db", str(tmp_path / "none.duckdb")])
    err = capsys.readouterr().err
    assert code == 2
    assert err == "patron: error: PATRON_ENGINE='foo': Input should be 'duckdb' or 'spark'\n"
    assert not (tmp_path / "none.duckdb").exists()


@pytest.mark.parametrize("command", sorted(ENGINE_COMMANDS))
def test_the_engine_setting_chooses_spark_on_every_engine_command(command, tmp_path, monkeypatch, capsys):
    """``PATRON_ENGINE=spark`` with no Spark inputs: each command took the Spark branch (it asks
    for what Spark needs, by its flag), and none ran DuckDB on a database."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PATRON_ENGINE", "spark")
    argv = [*ENGINE_COMMANDS[command]] + (["--end", "1998-01-01"] if command in ("summary", "fit", "score") else [])
    argv += ["--as-of", "1998-01-01"] if command == "status" else []
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and err.startswith(f"patron: error: {SPARK_NEEDS[command]}"), err
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize(("argv", "expected"), [
    (["summary", "--engine", "spark", "--transactions", "t.parquet"],
     "patron: error: --end is needed on the Spark engine: the last day of the calibration period\n"),
    (["fit", "bgnbd", "--engine", "spark", "--transactions", "t.parquet"],
     "patron: error: --end is needed on the Spark engine: the last day of the calibration period\n"),
    (["score", "--out", "s", "--engine", "spark", "--transactions", "t.parquet"],
     "patron: error: --end is needed on the Spark engine: the last day of the calibration period\n"),
    (["status", "--engine", "spark", "--transactions", "t.parquet"],
     "patron: error: --as-of is needed on the Spark engine: the day of the assessment\n"),
    (["score", "--out", "s", "--engine", "spark", "--transactions", "t.parquet", "--end", "1998-01-01",
      "--interval-method", "bootstrap"],
     "patron: error: --interval-method must be delta on the Spark engine (intervals by the delta method only); "
     "got 'bootstrap'\n"),
])
def test_spark_inputs_are_checked_once_and_named_by_flag(argv, expected, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    assert capsys.readouterr().err == expected


@pytest.mark.parametrize(("transactions", "day", "day_name", "parameter"), [
    (None, "2024-01-01", "end", "transactions"), ("  ", "2024-01-01", "end", "transactions"),
    ("t.parquet", None, "end", "end"), ("t.parquet", "", "as_of", "as_of"),
])
def test_spark_inputs_name_their_parameter(transactions, day, day_name, parameter):
    with pytest.raises(InputError) as caught:
        require_spark_inputs(transactions, day, day_name=day_name)
    assert caught.value.parameters == (parameter,)
    assert str(caught.value).startswith(f"{parameter} is needed on the Spark engine")
    require_spark_inputs("t.parquet", "2024-01-01")  # both given: no error


def test_no_engine_is_chosen_from_a_string_outside_resolve_engine():
    """No module compares an engine name itself or lower-cases ``engine``: the choice is made in
    :func:`resolve_engine` only (a dialect's name, ``Dialect.name``, is another thing)."""
    found = []
    for path in sorted(SRC.rglob("*.py")):
        rel = path.relative_to(SRC).as_posix()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Compare) and isinstance(node.left, ast.Name) and node.left.id == "engine":
                if any(isinstance(c, ast.Constant) and isinstance(c.value, str) for c in node.comparators):
                    found.append(f"{rel}:{node.lineno}")
            if (isinstance(node, ast.Attribute) and node.attr == "engine" and isinstance(node.value, ast.Call)
                    and getattr(node.value.func, "id", None) == "get_settings" and rel != "data/engines/__init__.py"):
                found.append(f"{rel}:{node.lineno}")
    assert found == []
