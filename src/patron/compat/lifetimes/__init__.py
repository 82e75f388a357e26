"""lifetimes 0.11.3's public API on patron's engine: change ``import lifetimes`` to
``import patron.compat.lifetimes as lifetimes`` (or ``from patron.compat.lifetimes import ...``).

The modules keep lifetimes' layout: :mod:`.fitters` (``BetaGeoFitter``, ``ParetoNBDFitter``,
``ModifiedBetaGeoFitter``, ``BetaGeoBetaBinomFitter``, ``GammaGammaFitter``), :mod:`.utils`,
:mod:`.plotting`, :mod:`.datasets` and :mod:`.generate_data`, with lifetimes' class and method
names, signatures, defaults and return types. The numbers come from patron's models and summary
(exact likelihoods on compressed data, the summary in DuckDB), so they work on current NumPy,
pandas and SciPy. ``__version__`` is the lifetimes API version mirrored. Where lifetimes had a
bug the papers are followed; docs/migrating-from-lifetimes.md lists every difference.
"""

from __future__ import annotations

from .fitters import BaseFitter
from .fitters.beta_geo_beta_binom_fitter import BetaGeoBetaBinomFitter
from .fitters.beta_geo_fitter import BetaGeoFitter
from .fitters.gamma_gamma_fitter import GammaGammaFitter
from .fitters.modified_beta_geo_fitter import ModifiedBetaGeoFitter
from .fitters.pareto_nbd_fitter import ParetoNBDFitter
from .version import __version__

__all__ = (
    "BaseFitter",
    "BetaGeoBetaBinomFitter",
    "BetaGeoFitter",
    "GammaGammaFitter",
    "ModifiedBetaGeoFitter",
    "ParetoNBDFitter",
    "__version__",
)
