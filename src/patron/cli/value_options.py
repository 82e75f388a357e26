"""The value flags, declared once for every command that states a customer value.

``@value_flags`` (under ``@app.command()``) gives a command the flags ``--model``,
``--horizon``, ``--period``, ``--discount-rate``, ``--margin``, ``--cost-per-customer``,
``--cost-per-order``, ``--currency``, ``--covariates`` and ``--dynamic-covariates``, each defaulting to the ``[value]`` section of the rules
file (the command's ``--config``, else ``$PATRON_CONFIG`` / ``./patron.toml``), and hands the
command one :class:`~patron.value.settings.ValueSettings` as its ``value`` argument. A flag
overrides the rules file for that command only. :func:`print_value_lines` prints the settings
line (and any spend-basis note) beside the values a command states.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Annotated, Any

import typer

from patron.cli.choices import Period, TransactionModel, choice
from patron.constants import DEFAULT_DISCOUNT_RATE, DEFAULT_HORIZON_WEEKS

if TYPE_CHECKING:
    from patron.value.settings import ValueSettings

VALUE_FLAGS: dict[str, Any] = {
    "model": Annotated[TransactionModel | None, typer.Option("--model", help="Transaction model: bgnbd, pareto or mbgnbd [default: [value] model, bgnbd].", **choice())],
    "period": Annotated[Period | None, typer.Option("--period", help="Time unit of the summary and of --horizon: D, W or M [default: [value] period, W].", **choice())],
    "horizon": Annotated[float | None, typer.Option("--horizon", help=f"Horizon of CLV, in --period units [default: [value] horizon, {DEFAULT_HORIZON_WEEKS:g}].")],
    "discount_rate": Annotated[float | None, typer.Option("--discount-rate", help=f"Annual discount rate, e.g. 0.1 for 10% [default: [value] discount_rate, {DEFAULT_DISCOUNT_RATE:g}].")],
    "margin": Annotated[float | None, typer.Option("--margin", help="Share of spend that is margin, (0-1] [default: [value] margin, 1].")],
    "cost_per_customer": Annotated[float | None, typer.Option("--cost-per-customer", help="Cost to serve one customer over the horizon, in currency [default: [value] cost_per_customer, 0].")],
    "cost_per_order": Annotated[float | None, typer.Option("--cost-per-order", help="Cost to serve one order, in currency [default: [value] cost_per_order, 0].")],
    "currency": Annotated[str | None, typer.Option("--currency", help="ISO 4217 code the values are reported in (a label, nothing is converted) [default: [value] currency, else the transactions' own].")],
    "covariates": Annotated[str | None, typer.Option("--covariates", help="Comma-separated customer covariates of the transaction model (summary columns or customer attributes; bgnbd or pareto) [default: [value] covariates, none].")],
    "dynamic_covariates": Annotated[str | None, typer.Option("--dynamic-covariates", help="CSV/Parquet of time-varying covariates (customer_id, period_start, covariates...): value with the time-varying Pareto/NBD along each customer's path [default: [value] dynamic_covariates, none].")],
}
"""Flag of each value setting (the names of :class:`~patron.value.settings.ValueSettings`)."""


def value_flags(command: Callable[..., None]) -> Callable[..., None]:
    """Give ``command`` the :data:`VALUE_FLAGS` in place of its ``value`` parameter, which then
    receives the resolved :class:`~patron.value.settings.ValueSettings` (rules file of the
    command's ``config`` parameter, overridden by the flags given)."""
    signature = inspect.signature(command)  # the annotations as written: ``value``'s is not resolved,
    # so that a command module need not import Pydantic models before the command runs
    kept = [p.replace(annotation=_resolve(p.annotation, command)) for p in signature.parameters.values() if p.name != "value"]
    added = [inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=None, annotation=hint)
             for name, hint in VALUE_FLAGS.items() if name not in signature.parameters]

    @functools.wraps(command)
    def run(**kwargs: Any) -> None:
        from patron.value.settings import value_settings

        flags = {name: kwargs.pop(name) for name in VALUE_FLAGS if name in kwargs}
        command(**kwargs, value=value_settings(kwargs.get("config"), **flags))

    run.__signature__ = signature.replace(parameters=[  # type: ignore[attr-defined]
        *(p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in kept), *added])
    run.__annotations__ = {p.name: p.annotation for p in (*kept, *added)}
    return run


def _resolve(annotation: Any, command: Callable[..., None]) -> Any:
    """The annotation ``annotation`` of ``command`` evaluated in the command's module (a string
    under ``from __future__ import annotations``), as ``inspect.signature(eval_str=True)`` does."""
    if not isinstance(annotation, str):
        return annotation
    return eval(annotation, command.__globals__)  # the module's own source, as typing.get_type_hints


def default_value() -> ValueSettings:
    """The ``[value]`` defaults, for a command called without the :func:`value_flags` wrapper."""
    from patron.value.settings import ValueSettings

    return ValueSettings()


def period_name(period: str) -> str:
    """Plural name of a period code (``W`` -> ``weeks``), :data:`patron.value.settings.PERIOD_NAMES`."""
    from patron.value.settings import PERIOD_NAMES

    return PERIOD_NAMES[period]


def print_value_lines(lines: Iterable[str | None]) -> None:
    """Print the settings line and notes beside a command's values (stdout, no markup)."""
    from rich.markup import escape

    from patron.cli.app import out

    for line in lines:
        if line:
            out.print(escape(line), highlight=False, soft_wrap=True)
