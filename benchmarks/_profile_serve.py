"""``patron serve`` under cProfile on every thread (the event loop, the writer, the thread pool),
for ``bench_service.py --profile``; and :func:`report`, which groups the profile by stage.

cProfile profiles one thread; ``threading.setprofile`` installs a hook that starts one profiler
in each new thread, so the writer thread and FastAPI's worker threads are measured too. The stats
are written to ``--out`` when the server stops (SIGTERM). Times are self time (``tottime``), in
seconds, summed over threads; waiting (locks, ``select``, queue gets) is reported apart.

    .venv/bin/python benchmarks/_profile_serve.py --db x.duckdb --port 8000 --out x.pstats
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import signal
import sys
import threading
from collections import defaultdict
from pathlib import Path

STAGES: tuple[tuple[str, str], ...] = (
    ("patron/service/auth.py", "auth (key check)"),
    ("patron/service/body.py", "body (read, gunzip, JSON)"),
    ("patron/service/segment_spec.py", "validation (Segment models)"),
    ("pydantic", "validation (Segment models)"),
    ("patron/service/mapping.py", "mapping (event -> rows)"),
    ("patron/people/identity", "identity resolution"),
    ("patron/service/writer.py", "writer (Python)"),
    ("patron/service/commit.py", "writer (Python)"),
    ("patron/service/known.py", "writer (Python)"),
    ("patron/service/items.py", "writer (Python)"),
    ("patron/service/events_api.py", "events_api (handlers)"),
    ("patron/service/event_tables.py", "writer (Python)"),
    ("fastapi", "FastAPI routing/dependencies"),
    ("starlette", "Starlette"),
    ("anyio", "thread hand-off (anyio)"),
    ("uvicorn", "uvicorn/HTTP"),
    ("httptools", "uvicorn/HTTP"),
    ("json/", "JSON (stdlib)"),
    ("pyarrow", "Arrow (writer inserts)"),
    ("asyncio/runners.py", "(event loop, mostly idle)"),
    ("asyncio/base_events.py", "(event loop, mostly idle)"),
    ("asyncio", "asyncio"),
)
"""(path fragment, stage) in order of precedence, matched against a function's file name."""

IDLE = ("acquire", "wait", "select", "poll", "sleep", "get' of '_queue", "run_forever",
        "run_until_complete", "epoll", "'_thread.lock'")
"""Fragments of names of built-ins that wait rather than work."""


SQL_CALLERS: frozenset[str] = frozenset({"_insert", "_run_with", "_transaction", "_present", "_stored_orders",
                                          "_write_customers"})
"""Patron functions that call DuckDB. cProfile does not see DuckDB's methods (pybind11 functions, not
built-ins), so the time spent in SQL shows as the caller's self time; these callers' self time is
counted as DuckDB's (their own Python is small: building an Arrow table, a loop over a few rows)."""


def stage_of(filename: str, name: str) -> str:
    """The stage a function belongs to (built-ins by their own name: SQL is ``duckdb``)."""
    if name in SQL_CALLERS and "/patron/" in filename:
        return "DuckDB (SQL execution, commits)"
    if filename == "~":
        if "duckdb" in name.lower():
            return "DuckDB (SQL execution, commits)"
        if any(k in name for k in IDLE):
            return "(waiting)"
        return "other built-ins: " + name.split(" of ")[-1][:50]
    for fragment, stage in STAGES:
        if fragment in filename:
            return stage
    return "other Python"


def report(path: Path, *, top: int = 25) -> None:
    """Print self time by stage and the slowest patron functions (cumulative) from ``path``."""
    stats = pstats.Stats(str(path))
    by_stage: dict[str, float] = defaultdict(float)
    for (filename, _line, name), (_cc, _nc, tt, _ct, _callers) in stats.stats.items():  # type: ignore[attr-defined]
        by_stage[stage_of(filename, name)] += tt
    busy = sum(v for k, v in by_stage.items() if not k.startswith("("))
    print(f"  self time by stage (s, all threads; {busy:.1f} s busy):")
    for stage, t in sorted(by_stage.items(), key=lambda kv: -kv[1]):
        if t >= 0.005 * busy:
            share = "" if stage.startswith("(") else f" {100 * t / busy:5.1f}%"
            print(f"    {t:8.2f}{share}  {stage}")
    print(f"  patron functions by cumulative time (top {top}):")
    rows = [(ct, nc, f"{Path(fn).name}:{line} {name}")
            for (fn, line, name), (_cc, nc, _tt, ct, _c) in stats.stats.items()  # type: ignore[attr-defined]
            if "/patron/" in fn]
    for ct, nc, label in sorted(rows, reverse=True)[:top]:
        print(f"    {ct:8.2f} s {nc:>9,} calls  {label}")


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--db", required=True)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--config", default=None, help="Rules file (as patron serve --config)")
    args = p.parse_args()

    import uvicorn

    from patron.service import create_app

    profiles: list[cProfile.Profile] = []
    lock = threading.Lock()

    def start_thread_profiler(*_: object) -> None:
        threading.setprofile(None)  # type: ignore[arg-type]
        sys.setprofile(None)
        prof = cProfile.Profile()
        with lock:
            profiles.append(prof)
        prof.enable()

    threading.setprofile(start_thread_profiler)
    main_prof = cProfile.Profile()
    profiles.append(main_prof)
    app = create_app(args.db, config=args.config)
    # uvicorn re-raises the SIGTERM it caught after its graceful shutdown; with the default
    # handler that would end the process before the stats are written.
    signal.signal(signal.SIGTERM, lambda *_: None)
    main_prof.enable()
    try:
        uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning", access_log=False)
    finally:
        main_prof.disable()
        with lock:
            stats = pstats.Stats(main_prof)
            for prof in profiles[1:]:
                try:
                    stats.add(prof)
                except (TypeError, ValueError):  # a profiler that never collected anything
                    pass
        stats.dump_stats(args.out)


if __name__ == "__main__":
    main()
