"""``ModifiedBetaGeoFitter`` (MBG/NBD, Batislam, Denizel & Filiztekin 2007) over
:class:`patron.value.models.ModifiedBetaGeo`."""

from __future__ import annotations

from typing import Any

from patron.value.models import ModifiedBetaGeo

from .beta_geo_fitter import BetaGeoFitter


class ModifiedBetaGeoFitter(BetaGeoFitter):
    """MBG/NBD model: as BG/NBD, and a customer may also drop out right after the first
    purchase (Batislam et al. 2007; Wagner & Hoppe 2008's erratum)."""

    _native = ModifiedBetaGeo

    def __init__(self, penalizer_coef: float = 0.0):
        super().__init__(penalizer_coef)

    @staticmethod
    def _generator() -> Any:
        from ..generate_data import modified_beta_geometric_nbd_model

        return modified_beta_geometric_nbd_model
