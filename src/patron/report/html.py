"""Assemble report sections into one self-contained HTML document.

The page inlines the plotly.js bundle once, each figure as a ``<div>`` with its own small
script, and the tables script (``tables.js``: sort, filter and CSV download of every table); it
has no external scripts, style sheets, fonts or images, so it opens without a network.
"""

from __future__ import annotations

import html
import json
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.offline import get_plotlyjs

from patron.display import yes_no

PLOT_CONFIG: dict[str, object] = {"displaylogo": False, "responsive": True}
"""Plotly config of every figure: no plotly logo (a link out) in the mode bar; resize with the page."""

CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;color:#1f2937;
  max-width:1100px;margin:0 auto;padding:1.5em 1.5em 4em;background:#fafafa}
h1{font-size:1.7em;margin-bottom:.1em}h2{font-size:1.3em;margin-top:2em;border-bottom:1px solid #e5e7eb;padding-bottom:.2em}
.subtitle{color:#6b7280;margin-top:0}.intro,.note{color:#374151;max-width:60em}.note{font-size:.9em;color:#6b7280}
.metrics{display:flex;flex-wrap:wrap;gap:1em;margin:1em 0}
.metric{background:#fff;border:1px solid #e5e7eb;border-radius:8px;padding:.8em 1.1em;min-width:12em}
.metric .label{font-size:.85em;color:#6b7280}.metric .value{font-size:1.6em;font-weight:600}
.metric .detail{font-size:.8em;color:#6b7280}.metric .definition{font-size:.75em;color:#6b7280;font-style:italic;max-width:22em}
.figure{background:#fff;border:1px solid #e5e7eb;border-radius:8px;margin:1em 0;padding:.3em}
table.data{border-collapse:collapse;background:#fff;font-size:.9em;margin:1em 0}
table.data th,table.data td{border:1px solid #e5e7eb;padding:3px 9px;vertical-align:top}
table.data th{background:#f3f4f6}table.data .num{text-align:right;white-space:nowrap}table.data .text{text-align:left}
nav ul{columns:2;padding-left:1.2em}.table{overflow-x:auto;max-width:100%}
.table-tools{display:flex;flex-wrap:wrap;align-items:center;gap:.6em;margin:.6em 0 -.4em;font-size:.85em}
.table-tools input{padding:.25em .5em;border:1px solid #cbd5e1;border-radius:6px;font:inherit;min-width:14em}
.table-tools .table-count{color:#6b7280}
.table-tools button{padding:.25em .8em;border:1px solid #2563eb;border-radius:6px;background:#fff;color:#2563eb;font:inherit;cursor:pointer}
table.data th.sortable{cursor:pointer;user-select:none}
table.data th[aria-sort=ascending]::after{content:" \\25B2";font-size:.7em}
table.data th[aria-sort=descending]::after{content:" \\25BC";font-size:.7em}
"""
"""Style sheet of the page (inline; system fonts only)."""


TABLES_JS = Path(__file__).resolve().with_name("tables.js")
"""The script that makes every table sortable, filterable and downloadable as CSV (inlined in the
report; served as ``/static/tables.js`` by the dashboard)."""


@cache
def tables_script() -> str:
    """Text of :data:`TABLES_JS`."""
    return TABLES_JS.read_text(encoding="utf-8")


PERCENT_COLUMNS: frozenset[str] = frozenset({"equity_share", "share", "retention", "return_rate"})
"""Table columns holding shares (0-1), printed as percentages."""


@dataclass(frozen=True)
class Metric:
    """A headline number: ``label``, its formatted ``value``, an optional ``detail`` line and its
    one-line ``definition`` (what is counted, in which unit), shown in small text below the number
    and as the card's hover title."""

    label: str
    value: str
    detail: str = ""
    definition: str = ""


@dataclass
class Section:
    """One part of the report: a heading, an optional intro paragraph, headline metrics, figures
    (each with a caption used as its accessible name), tables and closing notes, in that order."""

    key: str
    title: str
    intro: str = ""
    metrics: list[Metric] = field(default_factory=list)
    figures: list[go.Figure] = field(default_factory=list)
    tables: list[tuple[str, pd.DataFrame]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def figure_html(fig: go.Figure, div_id: str) -> str:
    """A figure as a ``<div>`` plus inline script (no plotly.js bundle; the page carries it)."""
    height = fig.layout.height or 420
    body = fig.to_html(full_html=False, include_plotlyjs=False, include_mathjax=False, div_id=div_id,
                       config=PLOT_CONFIG, default_height=f"{int(height)}px", default_width="100%")
    return f'<div class="figure">{body}</div>'


def _is_boolean(column: pd.Series) -> bool:
    """Whether ``column`` holds booleans (a bool dtype, or objects that are all bools or missing)."""
    if pd.api.types.is_bool_dtype(column):
        return True
    present = column.dropna() if column.dtype == object else ()
    return len(present) > 0 and all(isinstance(x, bool | np.bool_) for x in present)


def _cells(column: pd.Series, float_format: str, percent: bool = False) -> tuple[list[str], bool]:
    """A column's cells as escaped text, and whether it is numeric (right-aligned). Numbers that
    are all whole print without decimals, shares (``percent``) as percentages; missing values
    print empty; booleans print as ``yes`` / ``no`` (:func:`patron.display.yes_no`)."""
    if _is_boolean(column):
        return [yes_no(x) for x in column], False
    if pd.api.types.is_numeric_dtype(column):
        v = column.to_numpy(dtype=float, na_value=np.nan)
        finite = v[np.isfinite(v)]
        fmt = "{:.1%}" if percent else "{:,.0f}" if np.all(finite == np.round(finite)) else float_format
        return [fmt.format(x) if np.isfinite(x) else "" for x in v], True
    return [html.escape("" if pd.isna(x) else str(x)) for x in column], False


_JSON_IN_HTML = str.maketrans({"<": "\\u003c", ">": "\\u003e", "&": "\\u0026"})
"""Characters escaped in JSON put inside an HTML element (no ``</script>`` can occur)."""


def _json_value(value: object) -> object:
    if hasattr(value, "isoformat"):
        return value.isoformat()  # type: ignore[union-attr]
    if hasattr(value, "item"):
        return value.item()  # type: ignore[union-attr]
    return str(value)


def table_data(frame: pd.DataFrame) -> str:
    """The table's data, unformatted, as a JSON data block (``<script type="application/json"
    class="table-data">``, which browsers never run): ``{"columns": [...], "rows": [[...], ...]}``,
    rows in the table's order, missing values ``null``. ``tables.js`` sorts on these values
    (numbers as numbers) and writes them to the CSV a reader downloads."""
    values = frame.astype(object).where(frame.notna(), None).to_numpy().tolist()
    rows = [[None if isinstance(v, float) and not np.isfinite(v) else v for v in row] for row in values]
    text = json.dumps({"columns": [str(c) for c in frame.columns], "rows": rows}, default=_json_value, allow_nan=False)
    return f'<script type="application/json" class="table-data">{text.translate(_JSON_IN_HTML)}</script>'


def table_html(frame: pd.DataFrame, *, float_format: str = "{:,.2f}", percent: Collection[str] = PERCENT_COLUMNS) -> str:
    """A small DataFrame (a report table, tens of rows) as an HTML table: escaped text, numbers
    formatted and right-aligned (columns named in ``percent`` as percentages), headers with ``_``
    shown as spaces; followed by the unformatted data (:func:`table_data`) for ``tables.js``."""
    columns = [_cells(frame[c], float_format, str(c) in percent) for c in frame.columns]
    head = "".join(f'<th class="{"num" if numeric else "text"}">{html.escape(str(c).replace("_", " "))}</th>'
                   for c, (_, numeric) in zip(frame.columns, columns, strict=True))
    rows = "".join(
        "<tr>" + "".join(f'<td class="{"num" if numeric else "text"}">{cells[i]}</td>' for cells, numeric in columns) + "</tr>"
        for i in range(len(frame))
    )
    return (f'<div class="table"><table class="data"><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>'
            f"{table_data(frame)}</div>")


FigureRenderer = Callable[[go.Figure, str], str]
"""Draws one figure as HTML given its element id (:func:`figure_html` for the report file)."""


def _title(text: str) -> str:
    return f' title="{html.escape(text, quote=True)}"' if text else ""


def section_html(section: Section, *, figure: FigureRenderer = figure_html) -> str:
    """One section as HTML; each figure drawn by ``figure`` (the dashboard draws them without
    inline scripts, for its Content-Security-Policy)."""
    parts = [f'<section id="{html.escape(section.key)}"><h2>{html.escape(section.title)}</h2>']
    if section.intro:
        parts.append(f'<p class="intro">{html.escape(section.intro)}</p>')
    if section.metrics:
        cards = "".join(
            f'<div class="metric"{_title(m.definition)}><div class="label">{html.escape(m.label)}</div>'
            f'<div class="value">{html.escape(m.value)}</div>'
            + (f'<div class="detail">{html.escape(m.detail)}</div>' if m.detail else "")
            + (f'<div class="definition">{html.escape(m.definition)}</div>' if m.definition else "") + "</div>"
            for m in section.metrics
        )
        parts.append(f'<div class="metrics">{cards}</div>')
    for i, fig in enumerate(section.figures):
        parts.append(figure(fig, f"{section.key}-fig-{i}"))
    for caption, frame in section.tables:
        parts.append(f"<h3>{html.escape(caption)}</h3>" + table_html(frame))
    parts.extend(f'<p class="note">{html.escape(n)}</p>' for n in section.notes)
    parts.append("</section>")
    return "\n".join(parts)


def render_page(title: str, sections: Sequence[Section], *, subtitle: str = "") -> str:
    """The whole report: one HTML document with the plotly.js bundle inlined once."""
    toc = "".join(f'<li><a href="#{html.escape(s.key)}">{html.escape(s.title)}</a></li>' for s in sections)
    head = (
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
        f"<title>{html.escape(title)}</title><style>{CSS}</style>"
        f'<script type="text/javascript">{get_plotlyjs()}</script></head><body>'
    )
    body = [f"<header><h1>{html.escape(title)}</h1>"]
    if subtitle:
        body.append(f'<p class="subtitle">{html.escape(subtitle)}</p>')
    body.append(f"<nav><ul>{toc}</ul></nav></header><main>")
    body.extend(section_html(s) for s in sections)
    body.append(f"</main><script>{tables_script()}</script></body></html>\n")
    return head + "\n".join(body)
