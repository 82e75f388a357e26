"""The registry of report sections, and the context every section builder receives.

A section builder is a function ``(db, context) -> Section | None``: it reads what it needs
(through the Python API, cached in the context so that sections share work), builds its figures
with :mod:`patron.report.figures`, and returns a :class:`~patron.report.html.Section`, or ``None``
when it has nothing to show (e.g. no contacts ingested). Sections appear in the report in the
order of their ``order`` number, then by key.

Adding a section::

    from patron.report import Section, register_section

    @register_section("contact_effect", order=80, title="Contact effect")
    def contact_effect_section(db, ctx):
        table = ctx.memo("contact_effect", lambda: contact_effect(db, as_of=ctx.as_of))
        if table.empty:
            return None
        return Section("contact_effect", "Contact effect", figures=[my_figure(table)])

in a module of the report named in :data:`SECTION_MODULES` (e.g.
``patron/report/contact_effect_section.py``): :func:`load_section_modules` imports each of those
that exists before a report is built. Sections live in the report, which imports the stages it
shows; a stage never imports the report (docs/architecture.md). A module elsewhere (a user's) can
be registered by importing it before calling :func:`patron.report.build_report`.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
from types import ModuleType
from typing import Any, TypeVar

import pandas as pd

from patron.report.html import Section
from patron.value.settings import ValueSettings, db_currencies, value_settings

T = TypeVar("T")

ConfigArg = str | os.PathLike[str] | dict[str, Any] | None
"""A rules file path, an already parsed rules dict, or ``None`` (``$PATRON_CONFIG`` / defaults)."""


@dataclass
class ReportContext:
    """What every section builder gets besides the database: the as-of date, the rules file, a
    cache shared between sections, and notes for the report's closing section.

    ``as_of`` is the report date (a day; default the day of the last purchase). ``settings``
    are the value settings every CLV of the report is computed with (default: the ``[value]``
    section of ``config``; the dashboard gives those the stored profiles were built with).
    """

    db: str
    as_of: date
    config: ConfigArg = None
    cache: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    settings: ValueSettings | None = None

    def value(self) -> ValueSettings:
        """The value settings of this report (resolved once)."""
        if self.settings is None:
            self.settings = value_settings(self.config)
        return self.settings

    def value_line(self) -> str:
        """The settings line stated beside the report's values (``CLV: 52 weeks, 10%/year, ...``),
        with the currency of the data when the settings name none."""
        return self.memo("value_line", lambda: self.value().line(db_currencies(self.db)))

    def currency(self) -> str:
        """The currency every amount of this report is stated in: ``[value] currency``, else the
        transactions' only currency, else :data:`patron.value.settings.CURRENCY_NOT_SET` (shown by
        :mod:`patron.display` as a symbol, a code, or nothing)."""
        return self.memo("currency", lambda: self.value().label(db_currencies(self.db)))

    def memo(self, key: str, compute: Callable[[], T]) -> T:
        """``compute()`` once per report, under ``key``; later calls return the cached value."""
        if key not in self.cache:
            self.cache[key] = compute()
        return self.cache[key]

    def profiles(self) -> pd.DataFrame:
        """The customer profile table as of :attr:`as_of` as a DataFrame (built once, and written
        to the ``customer_profiles`` table so that segment and equity queries see it). On a large
        base prefer :meth:`store_profiles` and SQL over the stored table (:meth:`profile_rows`):
        this holds every customer in memory."""
        from patron.relationship.profiles import build_profiles, read_profiles

        if "profiles_stored" in self.cache:
            return self.memo("profiles", lambda: read_profiles(self.db))
        if "profiles" not in self.cache:
            self._note_rebuilt()
        return self.memo("profiles", lambda: build_profiles(self.db, as_of=self.as_of, config=self.config, write=True,
                                                            settings=self.value()))

    def _note_rebuilt(self) -> None:
        reason = self.cache.get("profiles_rebuilt_because")
        self.notes.append(f"The customer profiles were built for this report as of {self.as_of.isoformat()} and stored"
                          + (f" ({reason})." if reason else "."))

    def reuse_current_profiles(self) -> bool:
        """Take the stored ``customer_profiles`` as this report's when they are current: built by
        ``patron profiles`` (or an earlier report) as of :attr:`as_of` from the database as it is
        now, with this report's rules and value settings
        (:func:`patron.relationship.profile_fingerprint.profiles_current`). Says in the notes
        which it did; returns whether they are reused (otherwise :meth:`store_profiles` rebuilds
        them when a section first needs them)."""
        from patron.data.store import reader
        from patron.relationship.profile_fingerprint import profiles_current, stored_fingerprint
        from patron.relationship.profiles import settings_json

        with reader(self.db) as con:
            stored = stored_fingerprint(con) is not None
            current = stored and profiles_current(con, as_of=self.as_of, config=self.config, settings_json=settings_json(self.value()))
        if current:
            self.cache["profiles_stored"] = None
            self.notes.append(f"The customer profiles stored in the database (as of {self.as_of.isoformat()}) are current: built from "
                              "the same transactions and other tables, rules file and value settings; this report reuses them "
                              "instead of rebuilding them.")
        else:
            self.cache["profiles_rebuilt_because"] = (
                "the stored profiles were built from other data, rules, value settings or another as-of date" if stored
                else "the database held no profiles stored with their fingerprint (run patron profiles first to reuse them)")
        return current

    def order_lists(self) -> Any:
        """Every customer's orders up to :attr:`as_of` as lists, read once per report
        (:func:`patron.value.summary_sql.order_lists_sql`): the summaries as of earlier days that
        several sections need are finished from it (:meth:`summary_at`) instead of one query each."""
        from patron.data.store import reader
        from patron.value.summary_sql import SummarySpec, order_lists_sql

        def read() -> Any:
            with reader(self.db) as con:
                return con.sql(order_lists_sql(SummarySpec(end=self.as_of))).to_arrow_table()

        return self.memo("order_lists", read)

    def free_order_lists(self) -> None:
        """Drop :meth:`order_lists` (and what was derived from them for :meth:`summary_at`) from
        the cache; a later call reads them again."""
        for key in ("order_lists", "order_first_purchase"):
            self.cache.pop(key, None)

    def summary_at(self, day: date, unit: str = "W", holdout_end: date | None = None) -> pd.DataFrame:
        """The customer summary as of ``day`` (on or before :attr:`as_of`; durations in ``unit``;
        holdout columns up to ``holdout_end``, at most :attr:`as_of`): the rows and values of
        :func:`patron.value.summary.summary`, in the order of :meth:`order_lists` rather than by id,
        finished from that one read, plus :data:`patron.relationship.status.ROW_COLUMN` (each
        customer's row in it). :class:`~patron.errors.NoDataError` without purchases."""
        import numpy as np

        from patron.errors import NoDataError
        from patron.relationship.status import ROW_COLUMN
        from patron.value.summary_arrays import end_micros, finish_summary, first_purchase_micros
        from patron.value.summary_sql import SummarySpec

        lists = self.order_lists()
        frame = finish_summary(lists, SummarySpec(end=day, unit=unit, holdout_end=holdout_end)).to_pandas()
        if not len(frame):
            raise NoDataError(f"no purchases on or before {day}")
        bought = self.memo("order_first_purchase", lambda: first_purchase_micros(lists))
        rows = np.flatnonzero(bought <= end_micros(day))
        if len(rows) == len(frame):  # always (same definition); without it the status assessment joins on ids
            frame[ROW_COLUMN] = rows
        return frame

    def store_profiles(self) -> None:
        """Build the customer profiles as of :attr:`as_of` into the ``customer_profiles`` table
        once, reading nothing of them into Python (the profiles a running service stored, when
        :meth:`profiles` holds those)."""
        from patron.relationship.profiles import build_profiles

        if "profiles" not in self.cache and "profiles_stored" not in self.cache:
            self._note_rebuilt()
        if "profiles" not in self.cache:
            self.memo("profiles_stored", lambda: build_profiles(self.db, as_of=self.as_of, config=self.config, write=True,
                                                                settings=self.value(), output=None))

    @contextmanager
    def profile_rows(self) -> Iterator[Any]:
        """A DuckDB connection on which the relation ``customer_profiles`` holds this report's
        profiles (built once, :meth:`store_profiles`): the stored table, or the frame
        :meth:`profiles` holds (a running service's), so that sections aggregate them in SQL."""
        import duckdb

        from patron.data.store import reader

        self.store_profiles()
        if "profiles" in self.cache:
            con = duckdb.connect()
            try:
                con.register("customer_profiles", self.cache["profiles"])
                yield con
            finally:
                con.close()
            return
        with reader(self.db) as con:
            yield con


ORDER_LIST_SECTIONS: frozenset[str] = frozenset({"headline", "equity", "status", "status_backtest", "model_check", "cohorts"})
"""The built-in sections that read :meth:`ReportContext.order_lists` (the equity movement, the status
assessments, the model check's summary and tracking, the cohorts when the lists are read already): once the last of them in a report has run, the lists
(about 1 GB at 10M customers) are freed (:meth:`ReportContext.free_order_lists`). A later section
that asks for them again reads them again: slower, never wrong."""


SectionBuilder = Callable[[str, ReportContext], Section | None]
"""``(db, context) -> Section | None``."""


@dataclass(frozen=True)
class _Entry:
    key: str
    builder: SectionBuilder
    order: float
    title: str


_REGISTRY: dict[str, _Entry] = {}

SECTION_MODULES: tuple[str, ...] = (
    "patron.report.backtest_section",
    "patron.report.evaluation_section",
    "patron.report.contact_effect_section",
    "patron.report.referrals_section",
    "patron.report.covariate_section",
    "patron.report.dialogue_section",
    "patron.report.engagement_section",
    "patron.report.place_section",
    "patron.report.motivation_section",
)
"""Modules that register extra report sections when imported; those not installed are skipped."""


def load_section_modules(modules: tuple[str, ...] = SECTION_MODULES) -> list[str]:
    """Import each module of ``modules`` that exists (registering its sections); returns the
    names of those imported."""
    return [name for name in modules if optional_module(name) is not None]


def register_section(key: str, builder: SectionBuilder | None = None, *, order: float = 100.0,
                     title: str | None = None, replace: bool = False) -> Any:
    """Register ``builder`` as the report section ``key`` (usable as a decorator).

    ``order`` places the section (built-in sections use 10 to 70; the closing notes 1000);
    ``title`` names it in messages. Registering a key twice is an error unless ``replace=True``.
    """

    def add(fn: SectionBuilder) -> SectionBuilder:
        if key in _REGISTRY and not replace:
            raise ValueError(f"report section {key!r} is already registered")
        _REGISTRY[key] = _Entry(key, fn, float(order), title or key.replace("_", " "))
        return fn

    return add if builder is None else add(builder)


def unregister_section(key: str) -> None:
    """Remove section ``key`` from the registry (no error when absent)."""
    _REGISTRY.pop(key, None)


def registered_sections() -> list[str]:
    """Keys of the registered sections, in report order."""
    return [e.key for e in sorted(_REGISTRY.values(), key=lambda e: (e.order, e.key))]


def section_builder(key: str) -> SectionBuilder:
    """The builder registered as ``key``."""
    return _REGISTRY[key].builder


def section_title(key: str) -> str:
    """The title registered for ``key``."""
    return _REGISTRY[key].title


def optional_module(name: str) -> ModuleType | None:
    """Module ``name`` if it is part of this installation, else ``None`` (a section that needs a
    part of patron that is not installed is left out, with a note). Errors raised while importing
    an existing module propagate."""
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name is not None and (name == exc.name or name.startswith(exc.name + ".")):
            return None
        raise
