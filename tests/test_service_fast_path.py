"""The event fast path skips FastAPI's per-request telemetry probe (patron.service.fast_path.ServiceApp),
and only when no OpenTelemetry provider is configured at start-up."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import duckdb
import pytest
from fastapi.testclient import TestClient

from patron.service import create_app
from patron.service.auth import create_key


def _track(i: int) -> dict[str, Any]:
    return {"type": "track", "event": "Product Viewed", "userId": f"u{i}", "messageId": f"fp-{i}",
            "timestamp": "2024-03-01T10:00:00Z", "properties": {"product_id": "sku-1"}}


def _probes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, *, traced: bool) -> tuple[int, int, int]:
    """(probes during 5 event POSTs, probes during 5 GET /health, events stored) with the telemetry
    probe answering ``traced``."""
    db = tmp_path / "fp.duckdb"
    key = create_key(db, "write", name="fp")
    app = create_app(db)
    calls = {"n": 0}

    def enabled() -> bool:
        calls["n"] += 1
        return traced

    monkeypatch.setattr(app._native_telemetry, "enabled", enabled)  # type: ignore[attr-defined]
    with TestClient(app, raise_server_exceptions=False) as c:
        before = calls["n"]
        for i in range(5):
            r = c.post("/v1/track", content=json.dumps(_track(i)), auth=(key, ""),
                       headers={"Content-Type": "application/json"})
            assert r.status_code == 200, r.text
        events = calls["n"] - before
        before = calls["n"]
        for _ in range(5):
            assert c.get("/health").status_code == 200
        health = calls["n"] - before
    with duckdb.connect(str(db), read_only=True) as con:
        stored = con.execute("SELECT count(*) FROM events WHERE message_id LIKE 'fp-%'").fetchone()[0]
    return events, health, stored


def test_event_posts_skip_the_per_request_telemetry_probe(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    events, health, stored = _probes(tmp_path, monkeypatch, traced=False)
    assert events == 0  # asked once at start-up, not per event
    assert health == 5  # other requests: FastAPI as usual
    assert stored == 5


def test_with_telemetry_configured_at_start_every_request_is_probed(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    events, health, stored = _probes(tmp_path, monkeypatch, traced=True)
    assert events >= 5 and health >= 5
    assert stored == 5
