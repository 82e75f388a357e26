"""patron: manage customer relationships by what they are worth.

The Python API mirrors the ``patron`` command line::

    import patron
    patron.ingest("orders.csv", kind="transactions", db="shop.duckdb")
    summary = patron.summary("shop.duckdb", period="W", end="2024-12-31")

``import patron`` imports nothing heavy: each public name is imported on first use (PEP 562
module ``__getattr__``), so the ``patron`` command starts at once and a script pays for
DuckDB, PyArrow and pandas only when it calls into them.
"""

from __future__ import annotations

import sys
from importlib import import_module
from types import ModuleType
from typing import TYPE_CHECKING, Any

from patron.errors import InputError, PatronError

if TYPE_CHECKING:  # pragma: no cover - for type checkers and editors only
    from patron.data.ingest import IngestResult, ingest
    from patron.value.summary import summary

__all__ = ["IngestResult", "InputError", "PatronError", "__version__", "ingest", "summary"]

_LAZY: dict[str, tuple[str, str]] = {
    "IngestResult": ("patron.data.ingest", "IngestResult"),
    "ingest": ("patron.data.ingest", "ingest"),
    "summary": ("patron.value.summary", "summary"),
}
"""Public name -> (module, attribute) imported on first access."""


def __getattr__(name: str) -> Any:
    if name == "__version__":  # the version file, not the installed metadata (40 ms to look up)
        from patron._version import __version__ as value
    elif name in _LAZY:
        module, attribute = _LAZY[name]
        value = getattr(import_module(module), attribute)
    else:
        raise AttributeError(f"module 'patron' has no attribute {name!r}")
    globals()[name] = value  # later lookups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


class _Package(ModuleType):
    """``patron`` itself. The functions ``patron.ingest`` and ``patron.summary`` share their names
    with the modules that define them; importing such a module makes the import system set the
    package attribute to the module, which would hide the function. The package keeps the
    function (or leaves the name to :func:`__getattr__`) instead; the module stays reachable
    through ``sys.modules`` and ``from patron.summary import ...`` as before."""

    def __setattr__(self, name: str, value: Any) -> None:
        if name in _LAZY and isinstance(value, ModuleType):
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
