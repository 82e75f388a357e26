"""Build the report: resolve the report date, run every registered section, assemble the page."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from datetime import date, datetime
from pathlib import Path

from patron.data.outputs import atomic_output, check_output
from patron.dates import parse_day
from patron.errors import InputError, NoDataError
from patron.relationship.profiles import served_profiles
from patron.report import sections as _builtin  # noqa: F401  (registers the built-in sections)
from patron.report.html import Section, render_page
from patron.report.registry import (
    ORDER_LIST_SECTIONS,
    ConfigArg,
    ReportContext,
    load_section_modules,
    registered_sections,
    section_builder,
    section_title,
)
from patron.settings import get_settings
from patron.value.models import ConvergenceError
from patron.value.settings import ValueSettings

DEFAULT_TITLE = "Customer equity report"
"""Title of the report when none is given."""


def resolve_as_of(db: str | os.PathLike[str], as_of: str | date | datetime | None = None) -> date:
    """The report date: ``as_of`` as a day, or the day of the last purchase in ``db`` (the same
    default as the profiles it shows: :func:`patron.relationship.status.last_purchase_day`).

    Raises :class:`NoDataError` when ``db`` holds no transactions and :class:`InputError` for a
    date that does not parse.
    """
    from patron.relationship.status import last_purchase_day

    return parse_day(as_of, "as_of") or last_purchase_day(db)


def build_report(
    db: str | os.PathLike[str] | None,
    *,
    as_of: str | date | datetime | None = None,
    config: ConfigArg = None,
    title: str | None = None,
    sections: Sequence[str] | None = None,
    on_section: Callable[[str], None] | None = None,
    settings: ValueSettings | None = None,
) -> str:
    """The customer equity report for ``db`` as one self-contained HTML document.

    ``db``: database file (default ``patron.duckdb`` or ``$PATRON_DB``). ``as_of``: report date
    (default: day of the last purchase). ``config``: rules file (path or dict). ``sections``:
    keys of the sections to include, in report order (default: every registered section; see
    :func:`patron.report.registered_sections`). ``on_section`` is called with each section's
    title before it is built (progress display). ``settings``: the value settings of every CLV in
    the report (default: the ``[value]`` section of ``config``).

    A section whose data are missing (:class:`~patron.errors.NoDataError`) or whose model does not
    converge is left out with a note in the closing section; an :class:`~patron.errors.InputError`
    (a bad rules file, a bad date) stops the report. Writes the ``customer_profiles`` table as of
    ``as_of`` into ``db`` as a side effect.
    """
    db = str(db if db is not None else get_settings().db)
    ctx = ReportContext(db=db, as_of=date.min, config=config, settings=settings)
    served = served_profiles(db, as_of=parse_day(as_of, "as_of"), settings=ctx.value())
    if served is not None:  # beside a running service: its last refresh's profiles, as the dashboard
        ctx.cache["profiles"], day = served
        ctx.notes.append(f"The database is held by a running patron serve: this report shows the profiles of its last "
                         f"score refresh, as of {day.isoformat()}, read from its snapshot.")
    else:
        day = resolve_as_of(db, as_of)
    ctx.as_of = day
    if served is None:
        ctx.reuse_current_profiles()
    load_section_modules()
    keys = registered_sections()
    if sections is not None:
        unknown = [k for k in sections if k not in keys]
        if unknown:
            raise InputError(f"unknown report section {unknown[0]!r}; known: {', '.join(keys)}")
        keys = [k for k in keys if k in set(sections)]
    built: list[Section] = []
    last_list_user = max((i for i, k in enumerate(keys) if k in ORDER_LIST_SECTIONS), default=-1)
    for i, key in enumerate(keys):
        if on_section is not None:
            on_section(section_title(key))
        started = time.perf_counter()
        try:
            section = section_builder(key)(db, ctx)
        except (NoDataError, ConvergenceError) as exc:  # no data for this part: say so, go on
            ctx.notes.append(f"The {section_title(key)} section is left out: {exc}")
            section = None
        ctx.timings[key] = time.perf_counter() - started
        if i >= last_list_user:  # no later section reads the order lists: free them (memory at 10M)
            ctx.free_order_lists()
        if section is not None:
            built.append(section)
    subtitle = f"{Path(db).name} · as of {day.isoformat()} · built {datetime.now().strftime('%Y-%m-%d %H:%M')}"
    return render_page(title or DEFAULT_TITLE, built, subtitle=subtitle)


def write_report(db: str | os.PathLike[str] | None, out: str | os.PathLike[str], **kw: object) -> Path:
    """Build the report (keyword arguments as :func:`build_report`) and write it to ``out``
    (UTF-8, folders created); returns the path."""
    path = Path(out)
    if path.suffix.lower() not in (".html", ".htm"):
        raise InputError(f"out must end in .html; got {path}", parameters=("out",))
    check_output(path, parents=True)  # refused before the work, not after
    text = build_report(db, **kw)  # type: ignore[arg-type]
    with atomic_output(path, parents=True) as target:
        target.write_text(text, encoding="utf-8")
    return path
