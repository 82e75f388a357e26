"""The rules file: one TOML file (``patron.toml``) holding every business rule a user may tune.

Environment settings (:mod:`patron.settings`) say *where* and *how big*; the rules file says *what
counts as what*: status thresholds, RFM bins, value tiers, named segments, contact costs, the contact
policy. Each part of patron declares its own section as a Pydantic model with defaults, so an
absent file or section means the documented defaults.

The file is found, in order: the ``config`` argument, ``$PATRON_CONFIG``, ``./patron.toml``.
A section that does not validate is an :class:`~patron.errors.InputError` naming the file, the
section and key, and the problem.

Example::

    [status]
    new_days = 90
    lost_probability = 0.15
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from patron.errors import InputError
from patron.scope import note_file

DEFAULT_CONFIG = "patron.toml"
"""Rules file read from the working directory when no other is named."""

M = TypeVar("M", bound=BaseModel)


def config_path(config: str | os.PathLike[str] | None = None) -> Path | None:
    """The rules file in use: ``config``, else ``$PATRON_CONFIG``, else ``./patron.toml`` if it
    exists, else ``None`` (defaults everywhere). A named file that does not exist is an error."""
    named = config if config is not None else os.environ.get("PATRON_CONFIG")
    if named:
        path = Path(named)
        if not path.is_file():
            raise InputError(f"rules file {path} does not exist")
        return path
    default = Path(DEFAULT_CONFIG)
    return default if default.is_file() else None


def load_config(config: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """The parsed rules file as a dict of sections (empty when there is no file)."""
    path = config_path(config)
    if path is None:
        return {}
    note_file(path)  # an output of the command may not overwrite it
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"{path}: not valid TOML: {exc}") from None


def section(name: str, model: type[M], config: str | os.PathLike[str] | dict[str, Any] | None = None) -> M:
    """Section ``name`` of the rules file validated as ``model`` (defaults when absent).

    ``config`` may be a path, an already parsed dict (tests, the Python API), or ``None``.
    """
    data = config if isinstance(config, dict) else load_config(config)
    where = str(config_path(None if isinstance(config, dict) else config) or "rules")
    raw = data.get(name, {})
    if not isinstance(raw, dict):
        raise InputError(f"{where}: [{name}] must be a table of settings")
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        key = ".".join(str(p) for p in first["loc"]) or "(section)"
        raise InputError(f"{where}: [{name}] {key}: {first['msg']}") from None
