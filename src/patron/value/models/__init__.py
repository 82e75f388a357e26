"""Buy-till-you-die models and spend models, fitted by maximum likelihood.

``MODELS`` maps CLI names to classes; all share :class:`patron.value.models._base.BaseModel`.
"""

from ._base import BaseModel, ConvergenceError, ConvergenceWarning, NotFittedError, compress
from ._estimator import PENALIZER_KINDS
from .beta_geo import BetaGeo
from .beta_geo_beta_binom import BetaGeoBetaBinom
from .gamma_gamma import GammaGamma
from .modified_beta_geo import ModifiedBetaGeo
from .pareto_nbd import ParetoNBD
from .shifted_beta_geo import ShiftedBetaGeo

__all__ = [
    "MODELS",
    "PENALIZER_KINDS",
    "BaseModel",
    "BetaGeo",
    "BetaGeoBetaBinom",
    "ConvergenceError",
    "ConvergenceWarning",
    "GammaGamma",
    "ModifiedBetaGeo",
    "NotFittedError",
    "ParetoNBD",
    "ShiftedBetaGeo",
    "compress",
]

MODELS: dict[str, type[BaseModel]] = {
    BetaGeo.name: BetaGeo,
    ModifiedBetaGeo.name: ModifiedBetaGeo,
    GammaGamma.name: GammaGamma,
    ParetoNBD.name: ParetoNBD,
    BetaGeoBetaBinom.name: BetaGeoBetaBinom,
    ShiftedBetaGeo.name: ShiftedBetaGeo,
}
