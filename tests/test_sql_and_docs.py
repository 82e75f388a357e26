"""Generated SQL is pinned by snapshots; the docs name every table, column, command and setting."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from patron.cli import app
from patron.data.dialect import DIALECTS
from patron.data.schema import CONTRACTS
from patron.settings import Settings
from patron.value.summary_sql import SummarySpec, summary_sql

ROOT = Path(__file__).resolve().parents[1]
SNAPSHOTS = Path(__file__).parent / "snapshots"


@pytest.mark.parametrize("dialect", sorted(DIALECTS))
def test_summary_sql_snapshot(dialect):
    """If this fails after an intended change, regenerate the snapshot and review the diff."""
    spec = SummarySpec(end=date(1997, 9, 30), holdout_end=date(1998, 6, 30), unit="W", grain="D")
    assert summary_sql(spec, DIALECTS[dialect]) + "\n" == (SNAPSHOTS / f"summary_{dialect}.sql").read_text()


def test_dialects_differ_only_in_date_functions():
    spec = SummarySpec(end=date(1997, 9, 30), unit="W", grain="W")
    duck, spark = (summary_sql(spec, DIALECTS[d]) for d in ("duckdb", "spark"))
    assert "date_diff('day'" in duck and "datediff(" in spark
    assert duck.count("GROUP BY") == spark.count("GROUP BY")


def test_data_contract_doc_names_every_column():
    text = (ROOT / "docs" / "data-contract.md").read_text()
    for contract in CONTRACTS.values():
        assert f"## {contract.name}" in text
        for col in contract.columns:
            assert f"| {col.name} |" in text, (contract.name, col.name)


def test_readme_documents_commands_and_settings():
    readme = (ROOT / "README.md").read_text()
    assert "make demo" in readme and "make test" in readme
    for name in Settings.model_fields:
        assert f"PATRON_{name.upper()}" in readme, name
    for command in app.registered_commands:
        name = command.name or command.callback.__name__
        if name != "version":
            assert f"patron {name}" in readme, name
