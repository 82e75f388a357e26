"""The fixed sets of values CLI options accept, as enumerations, so that ``--help`` lists them and
a wrong value is Click's one-line error (``Invalid value for '--period': 'X' is not one of 'D',
'W', 'M'.``, exit 2) before a command runs.

Spellings are matched without regard to case (``--period w``, ``--engine SPARK``), as the library
accepted them before; the command receives the canonical spelling as a plain ``str``
(:func:`plain_arguments`, applied to every command by :func:`patron.cli.app.typer_app`), whatever
Typer hands it (Typer 0.28 converts a choice to the enumeration's member after every callback).
Each set is the library's own where importing it is cheap; a test checks the others against the
library (``tests/test_cli_choices.py``).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from enum import StrEnum
from typing import Any, TypeVar

from patron.constants import PERIOD_UNITS, SUMMARY_PERIODS
from patron.data.engines import Engine as _LibraryEngine
from patron.data.schema import CONTRACTS


def _choices(name: str, values: Any) -> type[StrEnum]:
    return StrEnum(name, {str(v): str(v) for v in values})  # type: ignore[return-value]


Period = _choices("Period", PERIOD_UNITS)
"""Units of the value settings' ``period`` and of ``--horizon``: D, W, M."""
SummaryUnit = _choices("SummaryUnit", SUMMARY_PERIODS)
"""Units of a summary's recency and T and of its purchase grain: D, W, M, H."""
Kind = _choices("Kind", CONTRACTS)
"""Kinds of input ``patron ingest`` stores (the data contracts)."""
Engine = _LibraryEngine
"""Engines that run patron's SQL: the library's own :class:`patron.data.engines.Engine`."""
TransactionModel = _choices("TransactionModel", ("bgnbd", "pareto", "mbgnbd"))
"""Models that predict purchases (:data:`patron.value.scoring.TRANSACTION_MODELS`)."""
Model = _choices("Model", ("bgnbd", "pareto", "mbgnbd", "bgbb", "sbg", "gammagamma"))
"""Every model ``patron fit`` fits (:data:`patron.value.models.MODELS`)."""
IntervalMethod = _choices("IntervalMethod", ("delta", "bootstrap"))
"""Methods of CLV intervals (:data:`patron.value.models.clv.METHODS`)."""
Learner = _choices("Learner", ("t", "x"))
"""Uplift meta-learners (:data:`patron.contact.effect.learners.LEARNERS`)."""
UpliftBase = _choices("UpliftBase", ("gbm", "logistic"))
"""Uplift base models (:data:`patron.contact.effect.learners.BASES`)."""
CohortFrequency = _choices("CohortFrequency", ("M", "Q", "W"))
"""Cohort and period lengths (:data:`patron.relationship.cohorts.FREQUENCIES`)."""
CohortValue = _choices("CohortValue", ("retention", "cumulative_revenue_per_customer"))
"""Cell values of the cohort table."""
EquityFrequency = _choices("EquityFrequency", ("M", "Q", "Y"))
"""Period ends of equity over time (:data:`patron.relationship.segments.equity.FREQUENCIES`)."""
Role = _choices("Role", ("write", "read", "admin"))
"""Roles of the service's API keys (:data:`patron.service.auth.ROLES`)."""
LogLevel = _choices("LogLevel", ("critical", "error", "warning", "info", "debug", "trace"))
"""uvicorn's log levels."""
ErasureMode = _choices("ErasureMode", ("pseudonymize", "delete"))
"""What an erasure does with the person's transactions (:data:`patron.people.rights.rules.Mode`)."""
Channel = _choices("Channel", ("email", "sms", "push", "mail", "phone", "in_app"))
"""Channels a contact check speaks of (:data:`patron.data.schema.CONSENT_CHANNELS` but ``any``)."""


F = TypeVar("F", bound=Callable[..., Any])


def plain(value: Any) -> Any:
    """A choice's canonical spelling as a plain ``str`` (a member of one of the enumerations above,
    or of the library's :class:`~patron.data.engines.Engine`); in a list or tuple, each item; any
    other value as it is."""
    if isinstance(value, list | tuple):
        return type(value)(plain(v) for v in value)
    return value.value if isinstance(value, StrEnum) else value


def plain_arguments(command: F) -> F:
    """``command`` called with its choices as plain ``str`` (:func:`plain`): what Typer registers,
    so that a command prints ``'bootstrap'``, never ``<IntervalMethod.bootstrap: 'bootstrap'>``,
    and passes the library a ``str`` on every Typer version. The signature Typer reads is
    ``command``'s own (``functools.wraps``)."""

    @functools.wraps(command)
    def run(*args: Any, **kwargs: Any) -> Any:
        return command(*(plain(a) for a in args), **{k: plain(v) for k, v in kwargs.items()})

    return run  # type: ignore[return-value]


def choice() -> dict[str, Any]:
    """Keyword arguments of ``typer.Option``/``typer.Argument`` for an option annotated with one
    of the enumerations above: any case accepted (the command receives the canonical spelling as
    a ``str``: :func:`plain_arguments`)."""
    return {"case_sensitive": False}
