"""Shared fixtures: temporary databases and the CDNOW sample as a CSV in the shape users have."""

from __future__ import annotations

from pathlib import Path

import pytest

SHARED_CDNOW = Path(__file__).resolve().parents[2] / "shared" / "data" / "cdnow"

CHROMIUM = Path("/usr/bin/chromium")
"""Debian's Chromium, installed by scripts/install-chromium.sh (``make browser``)."""


@pytest.fixture(scope="module")
def chromium() -> Path:
    """Debian's Chromium for the browser tests; its absence is a failure (not a skip) that says
    how to install it."""
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: run `make browser` (scripts/install-chromium.sh) to install Debian's chromium")
    return CHROMIUM


@pytest.fixture
def db(tmp_path: Path) -> str:
    """Path of a fresh database file."""
    return str(tmp_path / "t.duckdb")
