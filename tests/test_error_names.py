"""Library errors name parameters; the CLI writes the running command's flag for them.

A Python user of ``patron.relationship.cohorts(db, freq="X")`` reads ``freq must be one of ...``; the same
mistake on the command line reads ``--freq must be one of ...``.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pandas as pd
import pytest

from patron.cli import command_flags, flag_message, main
from patron.errors import InputError

SRC = Path(__file__).resolve().parents[1] / "src" / "patron"

COMMAND_HINT = re.compile(r"patron [a-z-]+ [^;)]*--[a-z]")
"""A remedy that names a command to run (``run patron ingest FILE --kind transactions first``):
a command line by design, not a parameter named by its flag."""

SPARK_SUBMIT = {("data/engines/spark.py", "patron does not download jars; remove --packages from PYSPARK_SUBMIT_ARGS, ")}
"""A flag of ``spark-submit`` in ``$PYSPARK_SUBMIT_ARGS``, not one of patron's."""


def _raised_texts():
    for path in sorted(SRC.rglob("*.py")):
        rel = path.relative_to(SRC).as_posix()
        if rel.startswith("cli/"):
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Raise) and node.exc is not None:
                parts = [n.value for n in ast.walk(node.exc) if isinstance(n, ast.Constant) and isinstance(n.value, str)]
                yield rel, "".join(parts)


def test_no_library_error_names_a_cli_flag():
    flagged = {(rel, text) for rel, text in _raised_texts()
               if re.search(r"(^|[\s(])--[a-z]", text) and not COMMAND_HINT.search(text)}
    assert flagged <= SPARK_SUBMIT, sorted(flagged - SPARK_SUBMIT)


@pytest.mark.parametrize(("argv", "message", "parameters", "expected"), [
    (["score", "--interval-method", "x"], "interval_method must be delta or bootstrap; got 'x'", ("interval_method",),
     "--interval-method must be delta or bootstrap; got 'x'"),
    (["migration", "--from", "2024-13-01"], "from_date must be a date like 1997-09-30; got '2024-13-01'", ("from_date",),
     "--from must be a date like 1997-09-30; got '2024-13-01'"),
    (["report", "--out", "r.txt"], "out must end in .html; got r.txt", ("out",), "--out must end in .html; got r.txt"),
    (["summary", "--holdout-end", "1997-12-31"], "holdout_end needs end, the last day of the calibration period",
     ("holdout_end", "end"), "--holdout-end needs --end, the last day of the calibration period"),
    # a parameter the command has no flag for keeps its name; a name inside a path is not a mention
    (["version"], "freq must be one of M, Q, Y; got 'X'", ("freq",), "freq must be one of M, Q, Y; got 'X'"),
    (["ingest", "/data/mapping/o.csv"], "/data/mapping/o.csv: missing column; use mapping occurred_at=COLUMN", ("mapping",),
     "/data/mapping/o.csv: missing column; use --map occurred_at=COLUMN"),
    (["cohorts"], "no parameter named here", (), "no parameter named here"),
])
def test_the_cli_writes_the_commands_flags(argv, message, parameters, expected):
    assert flag_message(InputError(message, parameters=parameters), argv) == expected


def test_command_flags_follow_groups_and_stop_at_unknown_words():
    assert command_flags(["backtest", "status", "--horizon", "6M"])["horizon"] == "--horizon"
    assert command_flags(["--csv-raw", "cohorts", "--db", "x.duckdb"])["freq"] == "--freq"
    assert command_flags(["no-such-command"]) == {}


def test_the_same_mistake_in_python_and_on_the_command_line(tmp_path, capsys):
    from patron.data.ingest import ingest
    from patron.relationship.cohorts import cohorts

    db = str(tmp_path / "c.duckdb")
    ingest(pd.DataFrame({"customer_id": ["a"], "occurred_at": ["2024-01-05"], "amount": [3.0]}), kind="transactions", db=db)
    with pytest.raises(InputError) as err:
        cohorts(db, freq="X")
    assert str(err.value) == "freq must be one of M, Q, W; got 'X'"
    assert main(["cohorts", "--db", db, "--freq", "X"]) == 2
    assert capsys.readouterr().err.strip() == "patron: error: --freq must be one of M, Q, W; got 'X'"
    with pytest.raises(InputError, match=r"^kind must be one of "):
        ingest(pd.DataFrame({"customer_id": ["a"]}), kind="orders", db=db)
