"""Durability under SIGKILL: a 2xx means committed, and retries never duplicate.

Two load generators (``benchmarks/loadgen.py``, separate processes: one sending ``/v1/batch``, one
sending single events to ``/v1/track``, ``/v1/identify`` and ``/v1/page``) send a fixed set of
events. When a random fraction of the batch events has been acknowledged (``random.uniform``, seed
printed; set ``PATRON_DURABILITY_SEED`` to replay), the server is killed with SIGKILL, restarted
on the same database and port after a random pause, and the generators keep resending every
unacknowledged request with the same messageIds, as the Segment SDKs retry. Afterwards:

* every event acknowledged with a 2xx is in ``events``, exactly once (by ``messageId``);
* every event sent is there (the generators retried until acknowledged) and nothing else;
* every ``Order Completed`` event sent (messageId ``lg-<run>-o<n>``, ``properties.order_id``
  ``o-<messageId>``, known from the generator's own list, not from the server) is exactly one row
  of ``transactions``, and no order row is repeated.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest

from tests.service_support import Service, create_keys, free_port

LOADGEN = Path(__file__).resolve().parents[1] / "benchmarks" / "loadgen.py"

BATCH_EVENTS = 12_000
"""Events sent through /v1/batch, in batches of :data:`BATCH_SIZE` (at the service's 10,000 events/s
the last 20% of them take about 0.2 s: the margin a late kill needs to land before the generator ends)."""

BATCH_SIZE = 50
SINGLE_EVENTS = 600
"""Events sent one per request to their own endpoint."""

GIVE_UP_S = 120.0
"""Seconds the generators keep retrying before giving up (the test then fails: events pending).
Generous: on a loaded 2-core machine a restart (imports, opening the database) can take 30 s."""

START_TIMEOUT_S = 90.0
"""Seconds a (re)start may take before the test fails."""


SEED = int(os.environ.get("PATRON_DURABILITY_SEED", random.SystemRandom().randrange(2**31)))
"""Base seed of the kill times and of the generated events (printed; set the variable to replay)."""

KILL_WINDOWS = ((0.05, 0.45), (0.5, 0.8))
"""Per case, the range of the fraction of batch events acknowledged when the kill comes: an early
and a late kill, so the two cases never kill at about the same moment."""


def _loadgen(svc: Service, out: Path, name: str, *, endpoint: str, events: int, connections: int,
             batch_size: int, seed: int) -> subprocess.Popen[str]:
    cmd = [sys.executable, str(LOADGEN), "--url", svc.url, "--key", svc.keys["write"],
           "--endpoint", endpoint, "--events", str(events), "--batch-size", str(batch_size),
           "--connections", str(connections), "--seed", str(seed), "--users", "500",
           "--give-up", str(GIVE_UP_S), "--timeout", "5", "--quiet",
           "--acked", str(out / f"{name}.acked"), "--sent", str(out / f"{name}.sent")]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _lines(path: Path) -> list[str]:
    return path.read_text().split() if path.exists() else []


def _acked_count(path: Path) -> int:
    try:
        with path.open("rb") as f:
            return f.read().count(b"\n")
    except FileNotFoundError:
        return 0


WORKERS = (0, 2)
"""Per case, ``patron serve --workers``: one process, and two acceptor processes in front of the
owner (the SIGKILL goes to the owner; its acceptors die with it)."""


@pytest.mark.slow
@pytest.mark.parametrize("case", [0, 1])
def test_sigkill_loses_no_acknowledged_event_and_retries_do_not_duplicate(tmp_path: Path, case: int) -> None:
    seed = SEED + case
    rng = random.Random(seed)
    kill_fraction = rng.uniform(*KILL_WINDOWS[case])
    jitter_s = rng.uniform(0.0, 0.05)
    pause_s = rng.uniform(0.1, 1.0)
    print(f"durability seed {seed} (PATRON_DURABILITY_SEED={SEED}): kill after {kill_fraction:.1%} "
          f"of batch events acknowledged + {jitter_s * 1000:.0f} ms, restart after {pause_s:.2f} s")

    db = tmp_path / "durable.duckdb"
    command = (sys.executable, "-m", "patron", "serve", "--workers", str(WORKERS[case]))
    svc = Service(db=db, port=free_port(), keys=create_keys(db), log=tmp_path / "serve.log", command=command)
    svc.start(timeout=START_TIMEOUT_S)
    gens = {
        "batch": _loadgen(svc, tmp_path, "batch", endpoint="batch", events=BATCH_EVENTS,
                          connections=2, batch_size=BATCH_SIZE, seed=seed * 2 + 1),
        "single": _loadgen(svc, tmp_path, "single", endpoint="single", events=SINGLE_EVENTS,
                           connections=4, batch_size=1, seed=seed * 2 + 2),
    }
    try:
        threshold = int(kill_fraction * BATCH_EVENTS)
        deadline = time.monotonic() + 60
        while _acked_count(tmp_path / "batch.acked") < threshold:
            assert time.monotonic() < deadline, "the load generator made no progress before the kill"
            assert gens["batch"].poll() is None, gens["batch"].communicate()
            time.sleep(0.005)
        time.sleep(jitter_s)
        acked_before_kill = _acked_count(tmp_path / "batch.acked")
        svc.kill()
        time.sleep(pause_s)
        restart = time.monotonic()
        svc.start(timeout=START_TIMEOUT_S)
        restart_s = time.monotonic() - restart
        summaries = {}
        for name, proc in gens.items():
            out, err = proc.communicate(timeout=GIVE_UP_S + 30)
            assert proc.returncode == 0, err
            summaries[name] = json.loads(out.strip().splitlines()[-1])
    finally:
        for proc in gens.values():
            if proc.poll() is None:
                proc.kill()
        svc.stop()

    print(f"acknowledged before the kill: {acked_before_kill:,} batch events; restart took {restart_s:.1f} s; "
          f"generators: {json.dumps({k: v['statuses'] for k, v in summaries.items()})}")
    # The kill happened mid-run: both generators saw failed requests and none left events behind.
    assert acked_before_kill < BATCH_EVENTS, "the batch generator finished before the kill"
    for name, s in summaries.items():
        assert s["pending"] == 0, f"{name}: {s['pending']} requests never acknowledged"
        assert set(s["statuses"]) <= {"200"} | {k for k in s["statuses"] if k.startswith("conn:")} | {"503"}, s
    assert any(k.startswith("conn:") for k in summaries["batch"]["statuses"]), \
        "the batch generator never saw the server go away"

    sent = _lines(tmp_path / "batch.sent") + _lines(tmp_path / "single.sent")
    acked = _lines(tmp_path / "batch.acked") + _lines(tmp_path / "single.acked")
    assert len(sent) == BATCH_EVENTS + SINGLE_EVENTS == len(set(sent))
    assert set(acked) == set(sent), "every event was acknowledged in the end"
    orders = sorted("o-" + m for m in sent if m.split("-")[-1].startswith("o"))
    assert orders, "the generated mix holds Order Completed events"

    con = duckdb.connect(str(db), read_only=True)
    try:
        stored = con.execute("SELECT message_id, count(*) FROM events GROUP BY message_id").fetchall()
        counts = dict(stored)
        assert [m for m in set(acked) if m not in counts] == [], "acknowledged events lost"
        assert {m: n for m, n in counts.items() if n > 1} == {}, "events stored twice"
        assert set(counts) == set(sent), "events stored that were never sent"
        tx = dict(con.execute("SELECT order_id, count(*) FROM transactions GROUP BY order_id").fetchall())
    finally:
        con.close()
    assert [o for o in orders if o not in tx] == [], "orders of acknowledged events missing"
    assert {o: n for o, n in tx.items() if n > 1} == {}, "transactions stored twice"
    assert sorted(tx) == orders
