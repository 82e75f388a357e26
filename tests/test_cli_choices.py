"""Options that take one of a fixed set of values (issue 21): ``--help`` lists the set, a value
outside it is one line in the library's wording (``patron: error: --freq must be one of M, Q, W;
got 'X'``) with exit 2 before the command runs, any case is accepted as
before, and each set is the one the library accepts."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, get_args

import pytest
import typer.main

from patron.cli import app, main
from patron.cli import choices as C

CHOICE_FLAGS = ("--period", "--grain", "--model", "--engine", "--kind", "--interval-method", "--learner",
                "--base", "--freq", "--value", "--role", "--log-level", "--mode", "--channel")
"""Flags that take a fixed set of values wherever a command has them."""


def _walk(command: Any, path: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], Any]]:
    found = [(path, command)]
    for name, sub in sorted(getattr(command, "commands", {}).items()):
        found += _walk(sub, (*path, name))
    return found


CASES = [(path, flag) for path, command in _walk(typer.main.get_command(app)) for param in command.params
         for flag in getattr(param, "opts", ()) if flag in CHOICE_FLAGS]


def test_the_walk_finds_the_options() -> None:
    flags = {flag for _, flag in CASES}
    assert flags == set(CHOICE_FLAGS)
    assert len(CASES) > 25


@pytest.mark.parametrize(("path", "flag"), CASES, ids=[f"{' '.join(p)} {f}" for p, f in CASES])
def test_a_value_outside_the_set_is_a_one_line_usage_error(path: tuple[str, ...], flag: str, tmp_path: Path,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    code = main([*path, flag, "no-such-value", "--db", str(tmp_path / "none.duckdb")] if flag != "--db" else [*path, flag])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1, err  # one line, as every patron error, in the library's wording
    assert re.fullmatch(rf"patron: error: {re.escape(flag)} must be one of [^;]+; got 'no-such-value'\n", err), err
    assert not (tmp_path / "none.duckdb").exists()


@pytest.mark.parametrize(("path", "flag"), CASES, ids=[f"{' '.join(p)} {f}" for p, f in CASES])
def test_help_lists_the_values(path: tuple[str, ...], flag: str, capsys: pytest.CaptureFixture[str],
                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "200")
    assert main([*path, "--help"]) == 0
    shown = capsys.readouterr().out
    metavars = re.findall(rf"^\s+{re.escape(flag)} <([^>]*)>", shown, flags=re.M)
    assert len(metavars) == 1 and "|" in metavars[0], shown  # --flag <a|b|...>


def test_fit_model_argument_is_a_choice(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["fit", "no-such-model"]) == 2
    assert capsys.readouterr().err == ("patron: error: model must be one of bgnbd, pareto, mbgnbd, bgbb, sbg, "
                                       "gammagamma; got 'no-such-model'\n")


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> str:
    import pandas as pd

    import patron

    db = str(tmp_path_factory.mktemp("choices") / "shop.duckdb")
    orders = pd.DataFrame({"customer_id": ["a", "a", "b", "c", "c", "c"],
                           "occurred_at": pd.to_datetime(["2024-01-02", "2024-02-10", "2024-01-05", "2024-01-03", "2024-03-01", "2024-04-01"]),
                           "amount": [10.0, 20.0, 5.0, 7.0, 8.0, 9.0]})
    patron.ingest(orders, kind="transactions", db=db)
    return db


def test_any_case_is_accepted_and_means_the_same(shop: str, capsys: pytest.CaptureFixture[str]) -> None:
    """``--period w --grain d --engine DUCKDB`` was accepted before (the library upper- or
    lower-cases them) and still is, with the same result as the canonical spelling."""
    import json

    outputs = []
    for period, grain, engine in (("W", "D", "duckdb"), ("w", "d", "DuckDB")):
        assert main(["summary", "--db", shop, "--period", period, "--grain", grain, "--engine", engine, "--json"]) == 0
        outputs.append(json.loads(capsys.readouterr().out))
    assert outputs[0] == outputs[1]


def test_the_sets_are_the_librarys() -> None:
    import uvicorn.config

    from patron.constants import PERIOD_UNITS, SUMMARY_PERIODS
    from patron.contact.effect.learners import BASES, LEARNERS
    from patron.data.engines import ENGINES
    from patron.data.schema import CONSENT_CHANNELS, CONTRACTS
    from patron.people.rights.rules import Mode
    from patron.relationship.cohorts import COHORT_COLUMNS
    from patron.relationship.cohorts import FREQUENCIES as COHORT_FREQUENCIES
    from patron.relationship.segments.equity import FREQUENCIES as EQUITY_FREQUENCIES
    from patron.service.auth import ROLES
    from patron.value.models import MODELS
    from patron.value.models.clv import METHODS
    from patron.value.scoring import TRANSACTION_MODELS

    def values(enum: Any) -> set[str]:
        return {m.value for m in enum}

    assert values(C.Period) == set(PERIOD_UNITS)
    assert values(C.SummaryUnit) == set(SUMMARY_PERIODS)
    assert values(C.Kind) == set(CONTRACTS)
    assert values(C.Engine) == set(ENGINES)
    assert values(C.TransactionModel) == set(TRANSACTION_MODELS)
    assert values(C.Model) == set(MODELS)
    assert values(C.IntervalMethod) == set(METHODS)
    assert values(C.Learner) == set(LEARNERS)
    assert values(C.UpliftBase) == set(BASES)
    assert values(C.CohortFrequency) == set(COHORT_FREQUENCIES)
    assert values(C.CohortValue) <= set(COHORT_COLUMNS)
    assert values(C.EquityFrequency) == set(EQUITY_FREQUENCIES)
    assert values(C.Role) == set(ROLES)
    assert values(C.LogLevel) == set(uvicorn.config.LOG_LEVELS)
    assert values(C.ErasureMode) == set(get_args(Mode))
    assert values(C.Channel) == set(CONSENT_CHANNELS) - {"any"}


@pytest.mark.parametrize(("argv", "expected"), [
    (["--period", "w", "--grain", "d"], {"period": "W", "grain": "D"}),
    (["--period", "M", "--grain", "h"], {"period": "M", "grain": "H"}),
])
def test_a_command_receives_its_choices_as_plain_strings(argv: list[str], expected: dict[str, str], shop: str,
                                                         monkeypatch: pytest.MonkeyPatch,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    """Whatever Typer hands a command (0.28: the enumeration's member, 0.29: the option callback's
    value), the command passes the library the canonical spelling as a ``str`` of its own type, so
    that nothing prints ``<SummaryUnit.W: 'W'>``."""
    import patron.value.summary
    from patron.errors import InputError

    seen: dict[str, Any] = {}

    def fake_summary(source: Any, **kwargs: Any) -> Any:
        seen.update(kwargs)
        raise InputError(f"stop: {kwargs['period']!r} {kwargs['grain']!r}")

    monkeypatch.setattr(patron.value.summary, "summary", fake_summary)
    assert main(["summary", "--db", shop, *argv]) == 2
    assert {k: seen[k] for k in expected} == expected
    assert {k: type(seen[k]) for k in expected} == dict.fromkeys(expected, str)
    assert capsys.readouterr().err == f"patron: error: stop: {expected['period']!r} {expected['grain']!r}\n"


def test_plain_keeps_containers_and_other_values() -> None:
    assert C.plain([C.Period("W"), "x", None]) == ["W", "x", None]
    assert type(C.plain((C.Channel("sms"),))) is tuple and type(C.plain((C.Channel("sms"),))[0]) is str
    assert C.plain(3) == 3 and C.plain(None) is None
