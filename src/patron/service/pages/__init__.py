"""HTML of the dashboard pages: the page shell (``layout.html``), empty states and the bodies of
the overview, customer lookup and consent pages, plus the bundled assets (style sheet, lookup
script, plotly.js from the installed ``plotly`` package).

Everything here is pure: functions take data already read and return HTML text. Every piece of
text that comes from data is escaped with :func:`html.escape`; report sections are drawn by
:func:`patron.report.html.section_html` (which escapes its text the same way).

No inline script (the service's Content-Security-Policy allows scripts from ``/static`` only,
:mod:`patron.service.browser`): a figure is an empty ``<div>`` and its JSON in a ``<script
type="application/json">`` data block, which browsers never run; ``/static/figures.js`` draws
every figure of the page with the bundled ``/static/plotly.min.js``.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from functools import cache
from importlib.resources import files
from pathlib import Path
from string import Template

import pandas as pd
import plotly.graph_objects as go
from plotly.io.json import to_json_plotly

from patron import __version__
from patron.display import money
from patron.report.html import CSS as REPORT_CSS
from patron.report.html import PLOT_CONFIG, Section, section_html, table_html, tables_script

HERE = Path(__file__).resolve().parent
"""Folder of the page templates and assets."""

PAGES: tuple[tuple[str, str], ...] = (("/", "Overview"), ("/customers", "Customers"), ("/segments", "Segments"),
                                      ("/consent", "Consent"))
"""Dashboard pages in navigation order: (path, name)."""

PLOTLY_JS = "plotly.min.js"
"""File name of the plotly.js bundle, served from the installed ``plotly`` package."""

FIGURES_JS = "figures.js"
"""The script that draws a page's figures from their JSON data blocks."""

TABLES_JS = "tables.js"
"""The report's tables script (:data:`patron.report.html.TABLES_JS`): every table of every page
sortable, filterable and downloadable as CSV."""


def plotly_js_path() -> Path:
    """Path of the plotly.js bundle shipped inside the installed ``plotly`` Python package (so the
    dashboard uses the same plotly.js version as the figures' JSON, and needs no network)."""
    return Path(str(files("plotly") / "package_data" / PLOTLY_JS))


@cache
def stylesheet() -> str:
    """The dashboard's style sheet: the report's (so report sections look the same) plus
    ``dashboard.css``."""
    return REPORT_CSS + "\n" + (HERE / "dashboard.css").read_text(encoding="utf-8")


@cache
def script(name: str) -> str:
    """Text of the page script ``name`` (``customers.js``; ``tables.js`` is the report's)."""
    if name == TABLES_JS:
        return tables_script()
    return (HERE / name).read_text(encoding="utf-8")


@cache
def _layout() -> Template:
    return Template((HERE / "layout.html").read_text(encoding="utf-8"))


def page(title: str, body: str, *, path: str, subtitle: str = "", db: str = "", plotly: bool = False,
         scripts: Sequence[str] = ()) -> str:
    """A whole page: ``body`` (HTML, already safe) inside the shell with the navigation (``path``
    marks the current page). ``plotly`` loads the bundled plotly.js in the head and
    ``figures.js``, which draws the page's figures, at the end; ``tables.js`` (sort, filter, CSV
    of every table) follows on every page, then ``scripts``, further ``/static`` scripts."""
    current = ' class="current" aria-current="page"'
    nav = "".join(f'<a href="{href}"{current if href == path else ""}>{html.escape(name)}</a>' for href, name in PAGES)
    head = f'<script src="/static/{PLOTLY_JS}"></script>' if plotly else ""
    tail = "".join(f'<script src="/static/{html.escape(s)}"></script>'
                   for s in ([FIGURES_JS] if plotly else []) + [TABLES_JS] + list(scripts))
    return _layout().substitute(
        title=html.escape(title), subtitle=html.escape(subtitle), nav=nav, head=head, body=body + tail,
        version=html.escape(__version__), db=html.escape(Path(db).name) if db else "the service database",
    )


def empty_state(title: str, message: str, *, key: str = "empty") -> str:
    """A friendly box saying why there is nothing to show yet and what to do."""
    return (f'<div class="empty" id="{html.escape(key)}"><strong>{html.escape(title)}</strong>'
            f"{html.escape(message)}</div>")


_JSON_IN_HTML = str.maketrans({"<": "\\u003c", ">": "\\u003e", "&": "\\u0026"})
"""Characters escaped in JSON put inside an HTML element: no ``</script>`` or ``<!--`` can occur
(they only ever appear inside JSON strings, where the escapes mean the same characters)."""


def figure_block(fig: go.Figure, div_id: str) -> str:
    """A figure without inline script: an empty ``<div>`` (its height in ``data-height``) and the
    figure's JSON (``data``, ``layout``, ``config``) in a data block that ``figures.js`` draws."""
    height = int(fig.layout.height or 420)
    spec = to_json_plotly({**fig.to_plotly_json(), "config": PLOT_CONFIG})
    eid = html.escape(div_id)
    return (f'<div class="figure"><div id="{eid}" class="plotly-graph-div" data-height="{height}"></div>'
            f'<script type="application/json" class="figure-data" data-for="{eid}">'
            f"{spec.translate(_JSON_IN_HTML)}</script></div>")


def section_block(key: str, title: str, section: Section | None, missing: str) -> str:
    """A report section as HTML (figures as :func:`figure_block`), or its heading with an empty
    state (``missing``) when the section has nothing to show."""
    if section is not None:
        return section_html(section, figure=figure_block)
    return (f'<section id="{html.escape(key)}"><h2>{html.escape(title)}</h2>'
            + empty_state("Nothing to show yet", missing, key=f"{key}-empty") + "</section>")


def customers_body(examples: pd.DataFrame, currency: str | None = None) -> str:
    """The lookup form, where the single view is drawn, and links to a few customers (the
    highest CLVs: columns ``customer_id, clv, status``, in ``currency``) to start from."""
    form = (
        '<form class="lookup" id="lookup" role="search">'
        '<label for="customer-id" class="visually-hidden">Customer</label>'
        '<input id="customer-id" name="id" placeholder="customer id, user id, anonymous id or email" '
        'autocomplete="off" required>'
        '<button type="submit">Look up</button></form>'
        '<p class="intro">Any identifier of a person finds their single view: identities, traits, status and why, '
        "CLV with its interval, P(alive), segments, consents, recent orders and contacts.</p>"
        '<p class="message" id="message" role="status"></p><div id="view"></div>'
    )
    if examples.empty:
        return form + empty_state("No scored customers yet",
                                  "Once purchases are ingested and scores refreshed, the customers with the highest "
                                  "CLV are listed here.", key="examples-empty")
    items = "".join(
        f'<li><a href="/customers?id={html.escape(_query(str(r.customer_id)))}">{html.escape(str(r.customer_id))}</a>'
        f' <span class="note">CLV {html.escape(money(float(r.clv), currency))} · {html.escape(str(r.status))}</span></li>'
        for r in examples.itertuples()
    )
    return form + f'<h2>Highest CLV</h2><ul class="examples" id="examples">{items}</ul>'


def _query(value: str) -> str:
    from urllib.parse import quote

    return quote(value, safe="")


def members_body(data: dict, *, cursor: str | None) -> str:
    """One page of a segment's members (:func:`patron.service.segments_api.member_page`): the
    rule, which members are shown, the table (sortable, filterable, its CSV is the page), a link to
    the next page and to the first, and one to download every member as CSV."""
    from urllib.parse import urlencode

    name = str(data["segment"])
    quoted = _query(name)
    members = pd.DataFrame(data["members"], columns=data.get("columns") or None)
    links = [f'<a class="members-all" href="/v1/segments/{html.escape(quoted)}/members?format=csv" '
             f'download="{html.escape(name)}-members.csv">Download all {int(data["total"]):,} members as CSV</a>']
    if cursor:
        links.append(f'<a class="members-first" href="/segments?{html.escape(urlencode({"name": name, "limit": data["limit"]}))}">'
                     "First page</a>")
    if data.get("next_cursor"):
        query = urlencode({"name": name, "limit": data["limit"], "cursor": data["next_cursor"]})
        links.append(f'<a class="members-next" rel="next" href="/segments?{html.escape(query)}">Next page</a>')
    shown = (f"{len(members):,} members on this page, by customer id" if len(members) else "No member on this page.")
    return (f'<p class="intro" id="members-rule">Rule: <code>{html.escape(str(data["rule"]))}</code></p>'
            f'<p class="note" id="members-shown">{shown}</p>'
            f'<p class="members-links">{" · ".join(links)}</p>'
            f'<section id="members"><h2>Members</h2>{table_html(members) if len(members) else ""}</section>')


def consent_people(state: pd.DataFrame) -> pd.Series:
    """People in each consent state (``granted``, ``denied``, ...): distinct customers with at
    least one purpose and channel in it, from :func:`patron.contact.consent.consent_state` (one row
    per customer, purpose and channel; a record for channel "any" becomes one row per channel)."""
    if state.empty:
        return pd.Series(dtype="int64")
    return state.groupby("reason")["customer_id"].nunique()


def consent_body(counts: pd.DataFrame, people: pd.Series | None = None) -> str:
    """Consent state as of now: customers by purpose and channel (columns of
    :func:`patron.contact.consent.consent_counts`), with totals.

    The headline counts *people* (``people``: distinct customers with at least one purpose and
    channel in each state, indexed by state) and, below each, the *people x channels* it sums over
    (one customer denying "any" channel counts once per channel), labelled as such."""
    if counts.empty:
        return empty_state("No consent records yet",
                           "Consent changes arrive as track events named in [service] consent_event (default "
                           "\u201cConsent Updated\u201d) or through patron consent ingest; their state per purpose and "
                           "channel appears here.", key="consent-empty")
    states = [c for c in ("granted", "denied", "revoked", "expired") if c in counts.columns]
    frame = counts.copy()
    frame["customers"] = frame[states].sum(axis=1)
    frame["granted_share"] = frame["granted"] / frame["customers"].where(frame["customers"] > 0)
    totals = frame[states].sum()
    definition = ("People with at least one purpose and channel in this state as of now; below, the people x purpose x "
                  "channel pairs in it (one person counts once per channel).")

    def card(state: str) -> str:
        pairs = f"{int(totals[state]):,} people × purpose × channel"
        if people is None:
            value, label = f"{int(totals[state]):,}", f"{state} (people × purpose × channel)"
            detail = ""
        else:
            value, label, detail = f"{int(people.get(state, 0)):,}", f"people {state}", pairs
        return (f'<div class="metric" title="{html.escape(definition, quote=True)}"><div class="label">{html.escape(label)}</div>'
                f'<div class="value">{value}</div>' + (f'<div class="detail">{html.escape(detail)}</div>' if detail else "")
                + f'<div class="definition">{html.escape(definition)}</div></div>')

    cards = "".join(card(s) for s in states)
    return (f'<div class="metrics" id="consent-totals">{cards}</div>'
            '<p class="intro">Each customer counts once per purpose and channel, under the state their deciding '
            "ledger record gives as of now (latest record wins; a more restrictive record wins a tie; expired "
            "grants count as expired). See docs/consent.md.</p>"
            f'<section id="consent"><h2>Consent by purpose and channel</h2>'
            f"{table_html(frame, percent={'granted_share'})}</section>")
