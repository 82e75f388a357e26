"""Extras (issue 21): the core installs without the service, report, uplift and Spark stacks, and a
part whose extra is missing says so in one line naming it: the CLI prints it and exits 1, the
Python API raises :class:`~patron.extras.MissingExtraError`, an ``ImportError``.

A missing package is simulated by ``sys.modules[name] = None`` (what Python does for a module that
cannot be imported); the modules that check on import are removed from ``sys.modules`` for the
test so that their check runs again."""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path

import pytest

from patron.cli import main
from patron.extras import EXTRAS, MissingExtraError, require

ROOT = Path(__file__).resolve().parents[1]
MODULE_OF_DISTRIBUTION = {"fastapi": "fastapi", "uvicorn": "uvicorn", "plotly": "plotly",
                          "matplotlib": "matplotlib", "scikit-learn": "sklearn", "pyspark": "pyspark"}
"""Import name of each distribution that an extra brings and patron imports."""


def line(extra: str, feature: str) -> str:
    """The one line a user reads, written out here rather than built by the code under test."""
    return f"{feature} needs the {extra} extra: pip install 'patron[{extra}]'"


def without(monkeypatch: pytest.MonkeyPatch, *modules: str, reload: tuple[str, ...] = ()) -> None:
    """Make ``modules`` unimportable and drop ``reload`` (and their submodules) from sys.modules."""
    for name in modules:
        monkeypatch.setitem(sys.modules, name, None)
    for prefix in reload:
        for name in [m for m in sys.modules if m == prefix or m.startswith(prefix + ".")]:
            monkeypatch.delitem(sys.modules, name)


CLI_CASES = [
    (["serve", "--db", "{db}"], ("fastapi",), "service", "patron serve"),
    (["serve", "--db", "{db}"], ("uvicorn",), "service", "patron serve"),
    (["keys", "list", "--db", "{db}"], ("fastapi",), "service", "patron keys list"),
    (["keys", "create", "--role", "read", "--db", "{db}"], ("fastapi",), "service", "patron keys create"),
    (["report", "--out", "{tmp}/r.html", "--db", "{db}"], ("plotly",), "report", "patron report"),
    (["evaluate", "--end", "2024-06-30", "--holdout-end", "2024-12-31", "--png", "{tmp}/plots", "--db", "{db}"],
     ("matplotlib",), "report", "patron evaluate --png"),
    (["evaluate", "--end", "2024-06-30", "--holdout-end", "2024-12-31", "--out", "{tmp}/e.html", "--db", "{db}"],
     ("plotly",), "report", "patron evaluate"),
    (["contact-effect", "--uplift", "--db", "{db}"], ("sklearn",), "uplift", "patron contact-effect --uplift"),
    (["summary", "--engine", "spark", "--transactions", "{tmp}/t.parquet", "--end", "2024-06-30"],
     ("pyspark",), "spark", "the Spark engine"),
    (["status", "--engine", "spark", "--transactions", "{tmp}/t.parquet", "--as-of", "2024-06-30"],
     ("pyspark",), "spark", "the Spark engine"),
]


@pytest.mark.parametrize(("args", "missing", "extra", "feature"), CLI_CASES, ids=[" ".join(c[0][:2]) + f" without {c[1][0]}" for c in CLI_CASES])
def test_cli_names_the_missing_extra_in_one_line(args: list[str], missing: tuple[str, ...], extra: str, feature: str,
                                                 tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    without(monkeypatch, *missing, reload=("patron.data.engines.spark", "patron.service", "patron.report", "patron.value.plots"))
    argv = [a.format(db=tmp_path / "shop.duckdb", tmp=tmp_path) for a in args]
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 1
    assert err.splitlines() == [f"patron: error: {line(extra, feature)}"]


@pytest.mark.parametrize(("module", "missing", "extra", "feature"), [
    ("patron.service.app", "fastapi", "service", "patron.service.create_app"),
    ("patron.report", "plotly", "report", "patron.report"),
    ("patron.value.plots", "matplotlib", "report", "patron.value.plots"),
    ("patron.data.engines.spark", "pyspark", "spark", "the Spark engine"),
    ("patron.relationship.spark_status", "pyspark", "spark", "the Spark engine"),
    ("patron.data.ingest.spark", "pyspark", "spark", "the Spark engine"),
    ("patron.value.spark_score", "pyspark", "spark", "the Spark engine"),
])
def test_python_api_raises_an_import_error_naming_the_extra(module: str, missing: str, extra: str, feature: str,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib

    without(monkeypatch, missing, reload=(module, "patron.data.engines.spark"))
    with pytest.raises(ImportError) as caught:
        importlib.import_module(module)
    assert isinstance(caught.value, MissingExtraError)
    assert str(caught.value) == line(extra, feature)


def test_create_app_names_the_service_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    without(monkeypatch, "fastapi", reload=("patron.service",))
    with pytest.raises(MissingExtraError, match=re.escape(line("service", "patron.service.create_app"))):
        from patron.service import create_app  # noqa: F401


def test_what_answers_without_http_imports_without_the_service_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    """The rules' models, the single view, the contact check and page links (patron customer,
    patron contact-check, the identity rules of a customers file ingest) need no FastAPI."""
    import importlib

    without(monkeypatch, "fastapi", "starlette", "uvicorn", reload=("patron.service", "patron.people.identity.files"))
    for module in ("patron.service.settings", "patron.service.profile_view", "patron.service.contact_check",
                   "patron.service.links", "patron.people.identity.files"):
        importlib.import_module(module)
    from patron.service import ServiceRules

    assert ServiceRules().identity_traits is not None


def test_uplift_model_names_the_uplift_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    import numpy as np

    from patron.contact.effect import UpliftModel

    without(monkeypatch, "sklearn")
    x, treated, y = np.zeros((4, 1)), np.array([1, 1, 0, 0]), np.array([0, 1, 0, 1])
    with pytest.raises(ImportError, match=re.escape(line("uplift", "patron.contact.effect.UpliftModel"))):
        UpliftModel().fit(x, treated, y)


def test_lifetimes_plotting_names_the_report_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    from patron.compat.lifetimes import plotting

    without(monkeypatch, "matplotlib", "matplotlib.pyplot")
    with pytest.raises(ImportError, match=re.escape(line("report", "patron.compat.lifetimes.plotting"))):
        plotting._pyplot()


def test_contact_effect_and_referrals_import_without_their_extras(monkeypatch: pytest.MonkeyPatch) -> None:
    """The packages' measurements (lift, dose-response, cascades) are core: only figures and
    uplift models need an extra, checked when they are used."""
    import importlib

    without(monkeypatch, "sklearn", "plotly", reload=("patron.contact.effect", "patron.network", "patron.relationship.backtest", "patron.report"))
    for module in ("patron.contact.effect", "patron.network", "patron.relationship.backtest"):
        importlib.import_module(module)
    # a report section says which extra the report needs, whatever it imports first
    with pytest.raises(MissingExtraError, match=re.escape(line("report", "patron.report"))):
        importlib.import_module("patron.report.backtest_section")
    from patron.contact.effect.figures import lift_figure

    with pytest.raises(MissingExtraError, match=re.escape(line("report", "contact-effect figures"))):
        lift_figure(None)  # type: ignore[arg-type]


def test_an_error_inside_an_installed_package_is_not_called_a_missing_extra(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "half_installed_xyz.py").write_text("import its_missing_dependency_xyz\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ModuleNotFoundError) as caught:
        require("service", "a feature", modules=("half_installed_xyz",))
    assert not isinstance(caught.value, MissingExtraError)
    assert caught.value.name == "its_missing_dependency_xyz"


def test_unknown_extra_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="extra must be one of"):
        require("nonesuch", "a feature")


def _requirements(specs: list[str]) -> set[str]:
    return {re.split(r"[<>=!~;\[ ]", spec, maxsplit=1)[0].lower() for spec in specs}


def test_extras_agree_with_pyproject() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    core = _requirements(project["dependencies"])
    for extra, modules in EXTRAS.items():
        declared = {MODULE_OF_DISTRIBUTION[d] for d in _requirements(extras[extra]) if d in MODULE_OF_DISTRIBUTION}
        assert set(modules) == declared, extra
        assert not core & set(_requirements(extras[extra])), f"{extra}'s packages are in the core"
    assert extras["all"] == [f"patron[{','.join(EXTRAS)}]"]
    assert "patron[all]" in extras["test"]
    assert core == {"duckdb", "pyarrow", "numpy", "scipy", "threadpoolctl", "pandas", "typer", "rich",
                    "pydantic", "pydantic-settings",
                    "h3"}  # place (H3 cells of customers and stores): a small C library, no other dependency


EXTRA_MODULES = ("fastapi", "uvicorn", "plotly", "matplotlib", "sklearn", "pyspark")
"""Every package an extra brings that patron imports (:data:`EXTRAS`)."""


def test_the_core_commands_run_without_any_extra(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    """``pip install patron`` (core) runs ingest, summary, fit and score (issue 21; the summary
    once printed its overview through the report package, which needs Plotly)."""
    assert set(EXTRA_MODULES) == {m for modules in EXTRAS.values() for m in modules}
    without(monkeypatch, *EXTRA_MODULES, reload=("patron.report", "patron.value.plots", "patron.service",
                                                 "patron.data.engines.spark"))
    from patron.data.datasets import data_path

    monkeypatch.chdir(tmp_path)
    columns = "master_customer_id,customer_id,date,number_of_cds,amount"
    steps = [
        ["ingest", str(data_path("CDNOW_sample.txt")), "--db", "c.duckdb", "--columns", columns, "--map", "occurred_at=date",
         "--date-format", "%Y%m%d", "--json"],
        ["summary", "--db", "c.duckdb", "--end", "1997-09-30", "--json"],
        ["fit", "bgnbd", "--db", "c.duckdb", "--end", "1997-09-30", "--json"],
        ["score", "--db", "c.duckdb", "--end", "1997-09-30", "--out", "scores.csv", "--json"],
    ]
    for argv in steps:
        assert main(argv) == 0, (argv, capsys.readouterr().err)
    out = capsys.readouterr().out.splitlines()
    assert '"customers": 2357' in out[1] and '"n_customers": 2357' in out[2]
    assert (tmp_path / "scores.csv").read_text().count("\n") == 2357 + 1
