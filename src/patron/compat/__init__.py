"""Compatibility layers for users of other CLV libraries, thin adapters over patron's own API:

* :mod:`patron.compat.lifetimes`: lifetimes 0.11.3's API (``import patron.compat.lifetimes as
  lifetimes``);
* :mod:`patron.compat.pymc_marketing`: PyMC-Marketing's CLV data conventions (``rfm_summary``,
  ``rfm_train_test_split``, frame-first models), also importable from here.

Neither holds a second implementation of any model: numbers come from :mod:`patron.value.models` and
:func:`patron.summary`. docs/migrating-from-lifetimes.md maps every call.
"""

from __future__ import annotations

from .pymc_marketing import (
    BetaGeoModel,
    GammaGammaModel,
    ModifiedBetaGeoModel,
    ParetoNBDModel,
    clv_summary,
    rfm_summary,
    rfm_train_test_split,
)

__all__ = [
    "BetaGeoModel",
    "GammaGammaModel",
    "ModifiedBetaGeoModel",
    "ParetoNBDModel",
    "clv_summary",
    "rfm_summary",
    "rfm_train_test_split",
]
