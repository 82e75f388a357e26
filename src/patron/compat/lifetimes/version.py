"""The lifetimes release whose API :mod:`patron.compat.lifetimes` mirrors."""

from __future__ import annotations

__version__ = "0.11.3"
