"""The dashboard served at ``/``: customer equity today and over time, status distribution and
migration, CLV distribution, segments, contact effect (overview); a customer lookup showing the
single view (``/customers``); the consent state (``/consent``); bundled assets (``/static/...``).

Every page needs the read role (browsers get a Basic-auth prompt from the 401). Nothing loads from
outside the service: plotly.js is served from the installed ``plotly`` package.

The overview reuses the customer equity report (:mod:`patron.report`): its registered section
builders and figures run on the served database, fed with the ``customer_profiles`` table the last
refresh wrote (so the dashboard shows the same scores as ``GET /v1/customers/{id}`` and the CLI).
Building it takes seconds on a real database, so the HTML is cached per *data version*: the
profile table's date, size and total CLV, plus a counter that every finished refresh increments
(:func:`patron.service.refresh.on_refresh`, when present). A refresh also rebuilds the overview in
the background, so the next page view is fast.
"""

from __future__ import annotations

import html
import logging
import threading
import time
import weakref
from dataclasses import dataclass
from datetime import UTC, datetime

import pandas as pd
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import FileResponse, HTMLResponse, Response

from patron.data.store import table_exists
from patron.errors import NoDataError
from patron.relationship.profiles import PROFILE_TABLE, profile_settings
from patron.service import pages
from patron.service.app import service_state
from patron.service.auth import require
from patron.service.state import ServiceState
from patron.value.models import ConvergenceError
from patron.value.settings import ValueSettings, data_currencies

log = logging.getLogger("patron.service.dashboard")

router = APIRouter(tags=["dashboard"], dependencies=[require("read")], include_in_schema=False)

OVERVIEW_SECTIONS: tuple[tuple[str, str, str], ...] = (
    ("headline", "Headline numbers", "No customer has been scored yet."),
    ("equity", "Customer equity", "Customer equity over time needs purchases on at least two month ends."),
    ("status", "Relationship status", "No customer has a status yet."),
    ("status_backtest", "How right were last quarter's statuses",
     "Statuses cannot be checked yet: it needs buyers a quarter before the last refresh's date."),
    ("model_check", "How well the model forecasts",
     "The model cannot be checked yet: it needs purchases before and during the last quarter before the last refresh's date."),
    ("clv", "Customer lifetime value", "No customer with a purchase has been scored yet."),
    ("segments", "Top segments", "No segment is defined or none has members."),
    ("contact_effect", "Contact effect",
     "No campaign contacts with a random holdout are recorded, so the effect of contacting cannot be measured "
     "yet. Contacts arrive as email/SMS delivery events or through patron ingest --kind contacts."),
    ("referrals", "Word of mouse", "No referrals are recorded."),
    ("triggers", "Triggers", "No trigger has fired: declare [[triggers]] in the rules file (docs/dialogue.md)."),
    ("engagement", "Engagement over time",
     "No interactions are recorded: page, screen and touchpoint events (Product Viewed, Email Opened, Device Heartbeat, ...) "
     "or patron ingest --kind interactions (docs/engagement.md)."),
)
"""Report sections on the overview, in order: (key, title, what the empty state says). Sections
not registered in this installation are left out."""

EXAMPLE_CUSTOMERS = 12
"""Customers (highest CLV) linked from the lookup page."""

CACHE_SECONDS = 3600
"""``Cache-Control`` max-age of the static assets, in seconds."""

STATIC: dict[str, str] = {
    "dashboard.css": "text/css; charset=utf-8",
    "customers.js": "text/javascript; charset=utf-8",
    pages.FIGURES_JS: "text/javascript; charset=utf-8",
    pages.TABLES_JS: "text/javascript; charset=utf-8",
    pages.PLOTLY_JS: "text/javascript; charset=utf-8",
}
"""Assets under ``/static``, with their content types."""

DataVersion = tuple[object, ...]
"""What the overview depends on: (refresh counter, profile date, profile rows, total CLV)."""


@dataclass(frozen=True)
class Overview:
    """The rendered overview page, the data version it was built from, and when/how long."""

    html: str
    version: DataVersion
    built_at: datetime
    seconds: float


def data_version(state: ServiceState, generation: int) -> DataVersion | None:
    """The current data version, or ``None`` when no profiles are stored yet (cheap: one
    aggregate over ``customer_profiles``)."""
    with state.reading() as con:
        if not table_exists(con, PROFILE_TABLE):
            return None
        as_of, rows, total = con.execute(f"SELECT max(as_of), count(*), sum(clv) FROM {PROFILE_TABLE}").fetchone()
    if not rows:
        return None
    return (generation, str(as_of), int(rows), float(total or 0.0))


def _has_rows(state: ServiceState, table: str) -> bool:
    with state.reading() as con:
        return table_exists(con, table) and con.execute(f"SELECT count(*) FROM {table}").fetchone()[0] > 0


def build_overview(state: ServiceState, version: DataVersion | None) -> str:
    """The overview page from the stored profiles: each section of :data:`OVERVIEW_SECTIONS` built
    by its report builder (a section that fails shows an empty state and a logged note)."""
    from patron.report import sections as _builtin  # noqa: F401  (registers the built-in sections)
    from patron.report.registry import (
        ReportContext,
        load_section_modules,
        registered_sections,
        section_builder,
    )

    if version is None:
        return pages.page("Dashboard", _no_scores(state), path="/", db=state.db,
                          subtitle="customer equity, status, value and contact effect")
    with state.reading() as con:
        profiles = con.execute(f"SELECT * FROM {PROFILE_TABLE} ORDER BY customer_id").df()
        load_section_modules()
        as_of = pd.Timestamp(profiles["as_of"].max()).date()
        # the settings the stored profiles were built with, so the page states what it shows
        ctx = ReportContext(db=state.db, as_of=as_of, config=state.config, settings=profile_settings(con))
        ctx.cache["profiles"] = profiles  # the refresh's profiles: no rebuild, nothing written
        known = set(registered_sections())
        blocks = []
        for key, title, missing in OVERVIEW_SECTIONS:
            if key not in known:
                continue
            started = time.perf_counter()
            try:
                section = section_builder(key)(state.db, ctx)
            except (NoDataError, ConvergenceError) as exc:
                section, missing = None, f"{missing} ({exc})"
            except Exception:  # one broken part must not take the dashboard down
                log.exception("dashboard section %s failed", key)
                section, missing = None, "This part could not be built; the service log says why."
            ctx.timings[key] = time.perf_counter() - started
            blocks.append(pages.section_block(key, title, section, missing))
        blocks.append(members_block(con, state))
    notes = "".join(f'<p class="note">{html.escape(n)}</p>' for n in ctx.notes)
    body = "\n".join(blocks) + (f'<section id="notes"><h2>Notes</h2>{notes}</section>' if notes else "")
    subtitle = (f"as of {as_of.isoformat()} · {len(profiles):,} profiles from the last refresh · "
                f"built {datetime.now().strftime('%Y-%m-%d %H:%M:%S')} in {sum(ctx.timings.values()):.1f} s")
    return pages.page("Dashboard", body, path="/", subtitle=subtitle, db=state.db, plotly=True)


def members_block(con: object, state: ServiceState) -> str:
    """The "Segment members" part of the overview: each segment in force with its size and a link
    to download its members as CSV (``GET /v1/segments/{name}/members?format=csv``: the same read
    key, every member streamed) or to read the first page as JSON. A segment whose rule cannot
    be compiled is left out (and logged)."""
    from urllib.parse import quote

    from patron.config import section
    from patron.relationship.rfm import RfmRules
    from patron.relationship.segments import (
        KNOWN_VALUES,
        definitions,
        profile_columns,
        segment_table_sql,
    )
    from patron.relationship.segments.rules import compile_rule

    cols = profile_columns(con, bins=section("rfm", RfmRules, state.config).bins)  # type: ignore[arg-type]
    compiled: dict[str, tuple[str, str]] = {}
    for name, (text, source) in definitions(config=state.config).items():
        try:
            compiled[name] = (text, compile_rule(text, cols, name=name, source=source, known_values=KNOWN_VALUES))
        except Exception as exc:  # a broken rule must not take the overview down
            log.warning("segment %s left out of the member list: %s", name, exc)
    if not compiled:
        return ""
    try:
        sizes = dict(con.execute(f"SELECT segment, customers FROM ({segment_table_sql(compiled)})").fetchall())  # type: ignore[attr-defined]
    except Exception:
        log.exception("segment sizes for the member list failed")
        return ""
    rows = []
    for name, (text, _) in compiled.items():
        path = f"/v1/segments/{quote(name, safe='')}/members"
        n = int(sizes.get(name, 0))
        rows.append(
            f'<tr><td class="text">{html.escape(name)}</td><td class="text">{html.escape(text)}</td>'
            f'<td class="num" data-v="{n}">{n:,}</td>'
            f'<td class="text" data-v="{html.escape(path)}?format=csv"><a class="members-csv" data-segment="{html.escape(name)}" '
            f'href="{html.escape(path)}?format=csv" download="{html.escape(name)}-members.csv">CSV</a> · '
            f'<a class="members-page" href="/segments?name={html.escape(quote(name, safe=""))}">pages</a> · '
            f'<a class="members-json" href="{html.escape(path)}">JSON</a></td></tr>')
    head = ("<tr>" + "".join(f'<th class="{c}" data-col="{k}">{t}</th>' for k, t, c in (
        ("segment", "segment", "text"), ("rule", "rule", "text"), ("customers", "customers", "num"),
        ("members", "members", "text"))) + "</tr>")
    return ('<section id="segment-members"><h2>Segment members</h2>'
            '<p class="intro">Every member of a segment, with their status, value tier, CLV and its interval, P(alive), '
            "orders and spend: CSV downloads the whole list (by customer id), pages shows it here a page at a time, "
            "JSON is the API's page "
            "(GET /v1/segments/{name}/members, the same read key as this page).</p>"
            f'<div class="table"><table class="data" data-name="segment-members"><thead>{head}</thead>'
            f"<tbody>{''.join(rows)}</tbody></table></div></section>")


def _no_scores(state: ServiceState) -> str:
    if not _has_rows(state, "transactions"):
        return pages.empty_state(
            "No purchases yet",
            "Send Order Completed track events to /v1/track or /v1/batch (or ingest transactions with the CLI "
            "before serving); then refresh the scores with POST /v1/refresh. Customer equity, status, CLV, "
            "segments and the contact effect appear here.", key="no-data")
    return pages.empty_state(
        "Scores not computed yet",
        "Purchases are stored but no refresh has scored them: POST /v1/refresh with the admin key, or set "
        "[service] refresh_every_minutes. This page shows the scores of the last refresh.", key="no-scores")


class DashboardCache:
    """The overview HTML of the current data version; one build at a time."""

    def __init__(self, state: ServiceState) -> None:
        self.state = state
        self.generation = 0
        self._overview: Overview | None = None
        self._build = threading.Lock()
        self._count = threading.Lock()
        _LIVE.add(self)

    def invalidate(self, *, warm: bool = True) -> None:
        """Forget the overview (a refresh or an erasure finished); rebuild it in the background
        when ``warm`` and the database holds scores."""
        with self._count:
            self.generation += 1
        if warm:
            threading.Thread(target=self._warm, name="dashboard-warm", daemon=True).start()

    def _warm(self) -> None:
        try:
            self.overview()
        except Exception:  # best effort: the next page view builds it again and reports
            log.exception("rebuilding the dashboard after a refresh failed")

    def overview(self) -> Overview:
        """The overview for the current data version (built now if the cached one is stale)."""
        version = data_version(self.state, self.generation)
        cached = self._overview
        if cached is not None and cached.version == version:
            return cached
        if version is None:  # no scores yet: the empty state is cheap and must follow new data
            return Overview(build_overview(self.state, None), (), datetime.now(), 0.0)
        with self._build:
            version = data_version(self.state, self.generation)
            cached = self._overview
            if cached is not None and cached.version == version:
                return cached
            started = time.perf_counter()
            text = build_overview(self.state, version)
            self._overview = Overview(text, version, datetime.now(), time.perf_counter() - started)
            log.info("dashboard overview built in %.2f s", self._overview.seconds)
            return self._overview


_CACHE_LOCK = threading.Lock()

_LIVE: weakref.WeakSet[DashboardCache] = weakref.WeakSet()
"""Every live cache in this process (one per app), for the refresh callback."""


def _refreshed(info: object) -> None:
    """:data:`patron.service.refresh.on_refresh` callback: drop every cached overview; rebuild
    those of the database that changed in the background."""
    for cache in list(_LIVE):
        cache.invalidate(warm=True)


def _hook_refresh() -> None:
    """Register :func:`_refreshed` with the service's refresh callbacks (once per process)."""
    try:
        from patron.service import refresh
    except ImportError:  # a service without refreshes: the data version alone decides
        return
    hooks = getattr(refresh, "on_refresh", None)
    if isinstance(hooks, list) and _refreshed not in hooks:
        hooks.append(_refreshed)


_hook_refresh()


def dashboard_cache(request: Request) -> DashboardCache:
    """Dependency: the app's :class:`DashboardCache` (created on first use, and hooked to the
    end of every refresh when the service has that hook)."""
    app_state = request.app.state
    cache = getattr(app_state, "dashboard", None)
    if cache is None:
        with _CACHE_LOCK:
            cache = getattr(app_state, "dashboard", None)
            if cache is None:
                cache = DashboardCache(service_state(request))
                app_state.dashboard = cache
    return cache


@router.get("/", response_class=HTMLResponse, summary="Dashboard overview")
def overview_page(cache: DashboardCache = Depends(dashboard_cache)) -> HTMLResponse:  # noqa: B008
    """Customer equity now and over time, status distribution and migration, CLV distribution,
    segments and contact effect, from the last refresh's profiles (cached per data version)."""
    return HTMLResponse(cache.overview().html)


@router.get("/customers", response_class=HTMLResponse, summary="Customer lookup")
def customers_page(request: Request) -> HTMLResponse:
    """A lookup form; the page's script fetches ``GET /v1/customers/{id}`` and draws the single
    view. Lists the customers with the highest CLV to start from."""
    state = service_state(request)
    with state.reading() as con:
        if table_exists(con, PROFILE_TABLE):
            examples = con.execute(
                f"SELECT customer_id, clv, status FROM {PROFILE_TABLE} WHERE clv IS NOT NULL "
                f"ORDER BY clv DESC, customer_id LIMIT {EXAMPLE_CUSTOMERS}").df()
        else:
            examples = pd.DataFrame(columns=["customer_id", "clv", "status"])
        currency = (profile_settings(con) or ValueSettings()).label(data_currencies(con))
    body = pages.customers_body(examples, currency)
    return HTMLResponse(pages.page("Customers", body, path="/customers", db=state.db,
                                   subtitle="the single view of one person", scripts=["customers.js"]))


MEMBERS_PER_PAGE = 100
"""Members on one page of the dashboard's segment member list (``/segments?name=...``)."""


@router.get("/segments", response_class=HTMLResponse, summary="Segment members")
def segments_page(request: Request, name: str | None = Query(None, max_length=200),
                  cursor: str | None = Query(None, max_length=2048),
                  limit: int = Query(MEMBERS_PER_PAGE, ge=1, le=1000)) -> HTMLResponse:
    """Without ``name``: every segment with its size and links. With ``name``: one page of the
    segment's members (``GET /v1/segments/{name}/members``, the same read key), a link to the next
    page and one to download every member as CSV."""
    from patron.errors import PatronError
    from patron.service.segments_api import decode_cursor, member_page

    state = service_state(request)
    if not name:
        with state.reading() as con:
            block = members_block(con, state) if table_exists(con, PROFILE_TABLE) else ""
        body = block or pages.empty_state("No segment members yet",
                                          "Once scores are refreshed (POST /v1/refresh), each segment's members are "
                                          "listed here.", key="members-empty")
        return HTMLResponse(pages.page("Segments", body, path="/segments", db=state.db,
                                       subtitle="who is in each segment"))
    try:
        data = member_page(state, name, decode_cursor(cursor) if cursor else None, limit)
    except PatronError as exc:
        code = 404 if isinstance(exc, NoDataError) else 400
        body = pages.empty_state("No such member list", str(exc), key="members-error")
        return HTMLResponse(pages.page("Segments", body, path="/segments", db=state.db, subtitle=name),
                            status_code=code)
    body = pages.members_body(data, cursor=cursor)
    return HTMLResponse(pages.page(f"Segment {name}", body, path="/segments", db=state.db,
                                   subtitle=f"{data['total']:,} members · as of {data['as_of']}"))


@router.get("/consent", response_class=HTMLResponse, summary="Consent state")
def consent_page(request: Request) -> HTMLResponse:
    """Customers by consent state per purpose and channel, as of now (the consent ledger's rules)."""
    from patron.contact.consent import consent_counts, consent_state

    state = service_state(request)
    now = datetime.now(UTC).replace(microsecond=0, tzinfo=None)  # the ledger stores naive UTC
    with state.reading() as con:
        present = table_exists(con, "consents") and con.execute("SELECT count(*) FROM consents").fetchone()[0] > 0
        counts = consent_counts(state.db, as_of=now) if present else pd.DataFrame()
        people = pages.consent_people(consent_state(state.db, as_of=now)) if present else None
    return HTMLResponse(pages.page("Consent", pages.consent_body(counts, people), path="/consent", db=state.db,
                                   subtitle=f"as of {now.isoformat(sep=' ')} UTC"))


@router.get("/static/{name}", summary="Dashboard assets")
def static_asset(name: str) -> Response:
    """The style sheet, the lookup and figure scripts and the plotly.js bundle (nothing else is served)."""
    media = STATIC.get(name)
    if media is None:
        return Response(status_code=404, content='{"error": "no such asset"}', media_type="application/json")
    headers = {"Cache-Control": f"max-age={CACHE_SECONDS}"}
    if name == pages.PLOTLY_JS:
        return FileResponse(pages.plotly_js_path(), media_type=media, headers=headers)
    text = pages.stylesheet() if name == "dashboard.css" else pages.script(name)
    return Response(content=text, media_type=media, headers=headers)
