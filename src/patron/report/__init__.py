"""The customer equity report: one self-contained HTML file with plots.

``build_report(db)`` returns the HTML text; ``write_report(db, out)`` writes it. The page inlines
plotly.js once and needs no network to view. Its sections come from a registry
(:func:`register_section`); see :mod:`patron.report.registry` for adding one.
"""

from __future__ import annotations

from patron.extras import require

require("report", "patron.report", modules=("plotly",))  # the report draws with Plotly only

from patron.report.build import build_report, resolve_as_of, write_report  # noqa: E402
from patron.report.html import Metric, Section, render_page  # noqa: E402
from patron.report.registry import (  # noqa: E402
    ReportContext,
    SectionBuilder,
    register_section,
    registered_sections,
    unregister_section,
)

__all__ = [
    "Metric",
    "ReportContext",
    "Section",
    "SectionBuilder",
    "build_report",
    "register_section",
    "registered_sections",
    "render_page",
    "resolve_as_of",
    "unregister_section",
    "write_report",
]
