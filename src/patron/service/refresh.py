"""Score refresh inside the service: the CLI's ``patron profiles`` on the served database, on
demand (``POST /v1/refresh``) or every ``[service] refresh_every_minutes``.

What a refresh runs. Exactly :func:`patron.relationship.profiles.build_profiles` -- the code behind
``patron profiles`` -- which rebuilds the ``customer_profiles`` table: weekly summary, CLV with its
95% interval (``patron score``'s BG/NBD + Gamma-Gamma, 52 weeks, 10% a year), P(alive), expected
purchases, relationship status and its reason, loyalty, profitability, RFM scores and value tier.
Inside the service :func:`patron.data.store.connect` hands the library a cursor of the served database,
so the library runs unchanged. (``patron score`` writes a file and stores nothing; its numbers are
the profile columns, so nothing more needs to run.)

The as-of date. A refresh scores as of the **day of the last purchase** (the CLI default), capped at
today (UTC) so that a client clock in the future cannot push the date ahead. Why not today: in a
shop that sells every day the two are the same day; on imported or historical data (or after a
quiet spell) "today" would put every customer far past their last purchase, so the models would
fit on empty time and every status would age into ``lost`` -- numbers that differ from what
``patron profiles`` prints for the same file. With this rule a service refresh and the CLI agree.
``POST /v1/refresh?as_of=YYYY-MM-DD`` sets another date explicitly.

Concurrency. One refresh at a time, on a background thread, holding the service's shared lock
for its whole run (an erasure, which takes the exclusive lock, waits for it; events keep flowing:
the writer commits beside it). A request while a refresh runs gets that refresh's status instead of
starting another. Each library step reads its own consistent snapshot; an event committed during
the refresh is scored by the next one.

Callbacks. :data:`on_refresh` is a list of callables ``fn(info: RefreshInfo) -> None`` called
after every successful refresh and after every erasure (``info.trigger == "erasure"``), on the
thread that did the work, after the new data is committed. The dashboard appends a function that
drops its cached figures. A callback that raises is logged and ignored.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal

from patron.dates import default_as_of
from patron.errors import NoDataError, PatronError

if TYPE_CHECKING:  # pragma: no cover
    from patron.service.state import ServiceState

log = logging.getLogger("patron.service.refresh")

Trigger = Literal["api", "schedule", "erasure"]
RunState = Literal["running", "succeeded", "failed"]

SHUTDOWN_WAIT_SECONDS = 300.0
"""Longest the service waits, when stopping, for a running refresh to finish (seconds)."""

on_refresh: list[Callable[[RefreshInfo], None]] = []
"""Callables ``fn(info)`` run after each successful refresh and each erasure (see the module
docstring). Append to it at import time; it is shared by every app in the process."""


@dataclass(frozen=True)
class RefreshInfo:
    """One refresh: id, what started it, its state, UTC start/finish times, duration in seconds,
    customers profiled, the as-of date scored, and the one-line error of a failed run."""

    refresh_id: str
    trigger: Trigger
    state: RunState
    started_at: datetime
    finished_at: datetime | None = None
    seconds: float | None = None
    customers: int | None = None
    as_of: date | None = None
    error: str | None = None
    error_kind: Literal["no_data", "input", "internal"] | None = None
    """Why a run failed: no purchases yet, a problem the user can fix (rules file, date), or a bug."""

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (times as ISO 8601 UTC with ``Z``)."""
        d = asdict(self)
        for k in ("started_at", "finished_at"):
            d[k] = d[k].isoformat() + "Z" if d[k] is not None else None
        d["as_of"] = self.as_of.isoformat() if self.as_of is not None else None
        return d


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def refresh_day(con: Any) -> date:
    """The as-of date of a service refresh: the day of the last purchase
    (:func:`patron.dates.default_as_of`), capped at today UTC. Raises :class:`NoDataError` when
    there is no purchase yet."""
    try:
        last = default_as_of(con)
    except NoDataError:
        raise NoDataError(
            "no purchases yet: send Order Completed events (or ingest transactions) before refreshing scores"
        ) from None
    return min(last, _now().date())


def has_table(con: Any, name: str) -> bool:
    """Whether the main schema of ``con``'s database holds table ``name``, asked of the catalogue
    each time. Not remembered across calls: one process may serve several
    databases (an application embedding two apps, the test suite), and a table one of them holds
    says nothing of the others."""
    return bool(con.execute(
        "SELECT 1 FROM duckdb_tables() WHERE database_name = current_database() AND schema_name = 'main' "
        "AND table_name = ?", [name]
    ).fetchall())


def notify(info: RefreshInfo) -> None:
    """Run every :data:`on_refresh` callback with ``info`` (errors are logged, never raised)."""
    for fn in list(on_refresh):
        try:
            fn(info)
        except Exception:  # a broken listener must not fail the refresh or the erasure
            log.exception("on_refresh callback %r failed", fn)


class Refresher:
    """Runs refreshes for one service: one at a time, in the background, on demand or on a schedule."""

    def __init__(self, state: ServiceState) -> None:
        self.state = state
        self._guard = threading.Lock()
        self._current: RefreshInfo | None = None
        self._done = threading.Event()
        self._thread: threading.Thread | None = None
        self._last: RefreshInfo | None = None
        self._stop = threading.Event()
        self._scheduler: threading.Thread | None = None
        self.next_scheduled_at: datetime | None = None

    # -- on demand -----------------------------------------------------------------------------

    def start(self, trigger: Trigger = "api", *, as_of: date | None = None) -> tuple[RefreshInfo, bool]:
        """Start a refresh unless one runs. Returns ``(info, started)``: the new run, or the
        running one with ``started`` False."""
        with self._guard:
            if self._current is not None:
                return self._current, False
            if self._stop.is_set():
                raise PatronError("the service is stopping: refresh not started")
            info = RefreshInfo(refresh_id=uuid.uuid4().hex[:16], trigger=trigger, state="running", started_at=_now())
            self._current = info
            self._done = threading.Event()
            self._thread = threading.Thread(
                target=self._run, args=(info, as_of, self._done), name=f"patron-refresh-{info.refresh_id}", daemon=True
            )
            self._thread.start()
            return info, True

    def wait(self, refresh_id: str, timeout: float | None = None) -> RefreshInfo | None:
        """Wait until refresh ``refresh_id`` ends (or ``timeout`` seconds) and return its info."""
        with self._guard:
            running = self._current is not None and self._current.refresh_id == refresh_id
            done = self._done
        if running:
            done.wait(timeout)
        return self.status()

    def status(self) -> RefreshInfo | None:
        """The running refresh, else the last finished one, else None."""
        with self._guard:
            return self._current or self._last

    @property
    def last(self) -> RefreshInfo | None:
        """The last finished refresh (None before the first)."""
        return self._last

    def _run(self, info: RefreshInfo, as_of: date | None, done: threading.Event) -> None:
        from patron.relationship.profiles import build_profiles

        t0 = time.perf_counter()
        try:
            writer = self.state.writer
            if writer is not None:  # the day of the last purchase counts every event acknowledged so far
                writer.wait_applied()
            with self.state.lock.shared():
                if self.state.root is None:
                    raise PatronError("the service database is not open")
                cursor = self.state.root.cursor()
                try:
                    day = as_of or refresh_day(cursor)
                finally:
                    cursor.close()
                with self.state.changing():
                    table = build_profiles(self.state.db, as_of=day, config=self.state.config, output="arrow")
            result = replace(info, state="succeeded", customers=table.num_rows, as_of=day)
        except PatronError as exc:
            kind = "no_data" if isinstance(exc, NoDataError) else "input"
            result = replace(info, state="failed", error=str(exc), error_kind=kind)
        except Exception as exc:  # report one line, keep the service alive; the trace goes to the log
            log.exception("refresh %s failed", info.refresh_id)
            first = (str(exc).splitlines() or [type(exc).__name__])[0]
            result = replace(info, state="failed", error=f"refresh failed: {type(exc).__name__}: {first}"[:500],
                             error_kind="internal")
        result = replace(result, finished_at=_now(), seconds=round(time.perf_counter() - t0, 3))
        with self._guard:
            self._last = result
            self._current = None
        done.set()
        if result.state == "succeeded":
            if self.state.snapshots is not None:  # the CLI's copy gets the new profiles
                self.state.snapshots.kick()
            log.info("refresh %s: %d customers as of %s in %.1f s", result.refresh_id, result.customers, result.as_of, result.seconds)
            notify(result)
        else:
            log.warning("refresh %s failed: %s", result.refresh_id, result.error)

    # -- on a schedule -------------------------------------------------------------------------

    def start_schedule(self) -> None:
        """Start the periodic refresh when ``refresh_every_minutes`` > 0 (first run one period
        after start-up, so the service answers at once)."""
        minutes = float(self.state.rules.refresh_every_minutes or 0)
        if minutes <= 0 or self._scheduler is not None:
            return
        self._scheduler = threading.Thread(target=self._tick, args=(minutes * 60.0,), name="patron-refresh-schedule", daemon=True)
        self._scheduler.start()

    def _tick(self, period: float) -> None:
        while True:
            self.next_scheduled_at = _now() + timedelta(seconds=period)
            if self._stop.wait(period):
                return
            try:
                info, _ = self.start("schedule")
                self.wait(info.refresh_id)
            except PatronError:
                return

    def stop(self, timeout: float = SHUTDOWN_WAIT_SECONDS) -> None:
        """Stop the schedule and wait for a running refresh (the database closes after this)."""
        with self._guard:
            self._stop.set()
            thread = self._thread
        if self._scheduler is not None:
            self._scheduler.join(timeout=5)
        if thread is not None:
            thread.join(timeout=timeout)
        self.next_scheduled_at = None


def refresher(state: ServiceState) -> Refresher:
    """The :class:`Refresher` of ``state`` (made on first use; the app's lifespan makes it at
    start-up through :func:`start_refresher`)."""
    if state.refresher is None:
        state.refresher = Refresher(state)
    return state.refresher


def start_refresher(state: ServiceState) -> Refresher:
    """Lifespan hook: make the refresher and start its schedule."""
    r = refresher(state)
    r.start_schedule()
    return r


def stop_refresher(state: ServiceState) -> None:
    """Lifespan hook: stop the schedule and wait for a running refresh."""
    if state.refresher is not None:
        state.refresher.stop()
