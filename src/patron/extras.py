"""Optional parts of patron and the packages each needs (the extras of ``pip install``).

``pip install patron`` installs the core: ingest, the store, summaries, models, values, status,
segments and the CLI (DuckDB, PyArrow, NumPy/SciPy, pandas, Typer/Rich, Pydantic). The rest are
extras, installed by name::

    pip install 'patron[service]'    # patron serve: FastAPI, uvicorn, Plotly for the dashboard
    pip install 'patron[report]'     # HTML reports (Plotly) and PNG plots (Matplotlib)
    pip install 'patron[uplift]'     # uplift models (scikit-learn)
    pip install 'patron[spark]'      # the Spark engine (PySpark)
    pip install 'patron[all]'        # all of them

Code that needs an extra calls :func:`require` before importing it; without the extra the user
reads one line naming it (the CLI prints it and exits 1; the Python API raises
:class:`MissingExtraError`, an :class:`ImportError`).
"""

from __future__ import annotations

from importlib import import_module
from types import ModuleType

from patron.errors import PatronError

EXTRAS: dict[str, tuple[str, ...]] = {
    "service": ("fastapi", "uvicorn", "plotly"),
    "report": ("plotly", "matplotlib"),
    "uplift": ("sklearn",),
    "spark": ("pyspark",),
}
"""Extra -> the top-level modules it installs that patron imports (kept in step with
``[project.optional-dependencies]`` of pyproject.toml; a test checks the two agree)."""


class MissingExtraError(PatronError, ImportError):
    """A part of patron was used whose extra is not installed. Its message is one line:
    ``patron serve needs the service extra: pip install 'patron[service]'``."""

    exit_code = 1

    def __init__(self, feature: str, extra: str) -> None:
        super().__init__(f"{feature} needs the {extra} extra: pip install 'patron[{extra}]'")
        self.feature = feature
        self.extra = extra


def require(extra: str, feature: str, *, modules: tuple[str, ...] | None = None) -> None:
    """Check that ``extra`` is installed before ``feature`` (what the user asked for, e.g.
    ``"patron serve"``) uses it: import each of its modules (``modules``, default all of
    :data:`EXTRAS` ``[extra]``) and raise :class:`MissingExtraError` if one is missing.

    An error raised inside a package that is installed (a broken install) propagates as it is.

    >>> require("service", "patron serve", modules=("no_such_module_xyz",))
    Traceback (most recent call last):
    ...
    patron.extras.MissingExtraError: patron serve needs the service extra: pip install 'patron[service]'
    """
    if extra not in EXTRAS:
        raise ValueError(f"extra must be one of {sorted(EXTRAS)}; got {extra!r}")
    for name in modules if modules is not None else EXTRAS[extra]:
        try:
            import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name is not None and (name == exc.name or name.startswith(exc.name + ".")):
                raise MissingExtraError(feature, extra) from None
            raise


def graph_objects(feature: str) -> ModuleType:
    """``plotly.graph_objects`` for ``feature`` (Plotly comes with the report and service extras;
    :class:`MissingExtraError` naming the report extra when it is missing)."""
    require("report", feature, modules=("plotly",))
    return import_module("plotly.graph_objects")
