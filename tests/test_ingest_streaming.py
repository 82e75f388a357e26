"""A file larger than the engine's memory limit streams through ingest without losing a row."""

from __future__ import annotations

import numpy as np
import pytest

import patron

ROWS = 1_000_000
MEMORY_LIMIT_MB = 40


@pytest.mark.slow
def test_file_larger_than_the_memory_limit(tmp_path, db, monkeypatch):
    rng = np.random.default_rng(3)
    ids = rng.integers(0, 100_000, ROWS)
    days = rng.integers(0, 365, ROWS)
    cents = rng.integers(100, 50_000, ROWS)
    dates = (np.datetime64("2024-01-01") + days.astype("timedelta64[D]")).astype(str)
    fields = [np.char.add("customer-", ids.astype(str)), np.char.add("order-", np.arange(ROWS).astype(str)), dates, (cents / 100).astype(str), np.full(ROWS, "web-store")]
    lines = fields[0]
    for f in fields[1:]:
        lines = np.char.add(np.char.add(lines, ","), f)
    path = tmp_path / "big.csv"
    path.write_text("customer_id,order_id,occurred_at,amount,channel\n" + "\n".join(lines.tolist()) + "\n")
    assert path.stat().st_size > MEMORY_LIMIT_MB * 2**20
    monkeypatch.setenv("PATRON_MEMORY_LIMIT", f"{MEMORY_LIMIT_MB}MB")
    monkeypatch.setenv("PATRON_THREADS", "1")
    res = patron.ingest(path, db=db)
    assert (res.accepted, res.rejected) == (ROWS, 0)
    s = patron.summary(db, end="2024-12-31", memory_limit=f"{MEMORY_LIMIT_MB}MB")
    assert int(s["n_orders"].sum()) == ROWS
    assert s["total_spend"].sum() == pytest.approx(cents.sum() / 100, rel=1e-9)
