"""``GET /v1/stores``: the stores' catchments from the last refresh's profiles (read role).

Per store of the ``stores`` table: its place and time zone, the customers within ``km``
(great circle, default 5) and their customer equity (sum of CLV in the profiles' currency, as
``GET /v1/equity``), and the customers whose nearest store it is
(:func:`patron.relationship.catchment.catchments`; docs/place.md)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field

from patron.service.auth import require
from patron.service.state import ServiceState

router = APIRouter()

MAX_KM = 20_037.5
"""Largest radius accepted: half the Earth's circumference, km."""


class Catchments(BaseModel):
    """The stores' catchments."""

    km: float = Field(description="Catchment radius, great-circle km.")
    stores: list[dict[str, Any]] = Field(description=(
        "Per store: store_id, name, region, time_zone, lat, lon, customers_within and equity_within (within km), "
        "customers_nearest, equity_nearest and mean_km_nearest (customers whose nearest store it is); "
        "most equity within first."))


@router.get("/v1/stores", tags=["place"], response_model=Catchments, dependencies=[require("read")],
            responses={404: {"description": "No stores, no scores yet, or no customer locations."}},
            summary="The stores' catchments: customers and equity within km, and by nearest store (read)")
def stores(request: Request,
           km: Annotated[float, Query(ge=0, le=MAX_KM, allow_inf_nan=False, description="Radius, great-circle km.")] = 5.0) -> Any:
    from patron.errors import NoDataError
    from patron.people.rights.export import jsonable
    from patron.relationship.catchment import catchments_on
    from patron.relationship.profiles import PROFILE_TABLE
    from patron.service.refresh import has_table

    state: ServiceState = request.app.state.patron
    with state.reading() as con:
        if not has_table(con, PROFILE_TABLE):
            raise NoDataError("no scores yet, so no catchments: refresh them with POST /v1/refresh")
        table = catchments_on(con, km)
    return {"km": km, "stores": [{k: jsonable(v) for k, v in row.items()} for row in table.to_dict(orient="records")]}
