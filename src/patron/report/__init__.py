"""The customer equity report: one self-contained HTML file with plots.

``build_report(db)`` returns the HTML text; ``write_report(db, out)`` writes it. The page inlines
plotly.js once and needs no network to view. Its sections come from a registry
(:func:`register_section`); see :mod:`patron.report.registry` for adding one.
"""

from __future__ import annotations

from patron.report.build import build_report, resolve_as_of, write_report
from patron.report.html import Metric, Section, render_page
from patron.report.registry import (
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
