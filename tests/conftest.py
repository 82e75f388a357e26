"""Shared fixtures: temporary databases and the CDNOW sample as a CSV in the shape users have."""

from __future__ import annotations

from pathlib import Path

import pytest

SHARED_CDNOW = Path(__file__).resolve().parents[2] / "shared" / "data" / "cdnow"


@pytest.fixture
def db(tmp_path: Path) -> str:
    """Path of a fresh database file."""
    return str(tmp_path / "t.duckdb")
