"""The report's "Place" section (registered on import; see :mod:`patron.report.registry`): where
customer equity is, as an offline hexagon map, equity and status by region, and the stores'
catchments. Left out when no customer has a location or a region (docs/place.md).

The map draws the H3 cells of the profiles (``h3_cell``, resolution
:data:`patron.relationship.place.H3_RESOLUTION`) rolled up to :data:`MAP_RESOLUTION` as filled
hexagons on longitude/latitude axes (Plotly scatter polygons): no tile server, no geography
download, so it works offline. Only aggregates reach the page (customers and equity per hexagon,
at most :data:`MAX_HEXAGONS`), never a customer."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from patron.data.store import reader
from patron.display import hover_money, money, money_title
from patron.errors import PatronError
from patron.relationship.profiles import PROFILE_TABLE
from patron.report import Metric, Section, register_section

MAP_RESOLUTIONS: tuple[tuple[float, int], ...] = ((60.0, 2), (15.0, 3), (4.0, 4), (1.0, 5), (0.0, 6))
"""H3 resolution of the map's hexagons by the span of the located customers (the larger of the
latitude and longitude spans, degrees, first bound it reaches): a continent or the world in
resolution 2 (hexagon edges of about 160 km), a country in 3 (60 km), a region in 4 (26 km), a
city in 5 or 6 (10 or 4 km)."""

MAX_HEXAGONS = 3000
"""Most hexagons drawn (those of most equity); the rest are counted in a note."""

COLOR_CLASSES = ("#dbeafe", "#93c5fd", "#60a5fa", "#3b82f6", "#1d4ed8", "#1e3a8a")
"""Fill colours of the equity classes (quantiles of equity per hexagon), lightest = least."""

CATCHMENT_KM = 5.0
"""Radius of the catchment table, km."""


def map_resolution(lat_span: float, lon_span: float) -> int:
    """The hexagon resolution of a map of this extent (:data:`MAP_RESOLUTIONS`)."""
    span = max(lat_span, lon_span)
    return next(res for bound, res in MAP_RESOLUTIONS if span >= bound)


def hexagon_equity(con: object) -> pd.DataFrame:
    """Customers and equity per map hexagon (:func:`map_resolution` of the located customers'
    extent): grouped by the profiles' cells in SQL, then each distinct cell mapped to its parent
    (h3, once per distinct cell)."""
    import h3

    cells = con.execute(f"""SELECT h3_cell, count(*) AS customers, COALESCE(sum(clv), 0.0) AS equity,

        FROM {PROFILE_TABLE} WHERE h3_cell IS NOT NULL GROUP BY h3_cell""").df()  # type: ignore[attr-defined]
    if cells.empty:
        return cells.assign(hexagon=pd.Series(dtype=str))
    spans = con.execute(f"SELECT max(lat) - min(lat), max(lon) - min(lon) FROM {PROFILE_TABLE} WHERE h3_cell IS NOT NULL").fetchone()  # type: ignore[attr-defined]
    res = map_resolution(float(spans[0] or 0), float(spans[1] or 0))
    parents = {c: h3.cell_to_parent(c, res) for c in cells["h3_cell"].unique()}
    cells["hexagon"] = cells["h3_cell"].map(parents)
    return cells.groupby("hexagon", as_index=False)[["customers", "equity"]].sum().sort_values("equity", ascending=False)


def _ring(cell: str) -> tuple[list[float], list[float]]:
    """The closed boundary of ``cell`` as (lons, lats), unwrapped across the antimeridian."""
    import h3

    pts = h3.cell_to_boundary(cell)
    lats = [p[0] for p in pts] + [pts[0][0]]
    lons = [p[1] for p in pts] + [pts[0][1]]
    if max(lons) - min(lons) > 180:
        lons = [x + 360 if x < 0 else x for x in lons]
    return lons, lats


def map_figure(hexes: pd.DataFrame, stores: pd.DataFrame, *, currency: str | None = None) -> go.Figure:
    """Equity per hexagon as filled hexagons (one trace per equity class), hover at each centre,
    and the stores as markers, on longitude/latitude axes with the aspect of the mean latitude."""
    import h3

    fig = go.Figure()
    hexes = hexes.head(MAX_HEXAGONS).reset_index(drop=True)
    eq = hexes["equity"].to_numpy(float)
    n_classes = min(len(COLOR_CLASSES), max(1, len(hexes)))
    edges = np.unique(np.quantile(eq, np.linspace(0, 1, n_classes + 1))) if len(eq) else np.array([0.0])
    klass = np.clip(np.searchsorted(edges, eq, side="right") - 1, 0, max(0, len(edges) - 2))
    palette = COLOR_CLASSES[-max(1, len(edges) - 1):] if len(edges) > 1 else COLOR_CLASSES[-1:]
    for k in range(len(palette)):
        xs: list[float | None] = []
        ys: list[float | None] = []
        for cell in hexes.loc[klass == k, "hexagon"]:
            lo, la = _ring(cell)
            xs += [*lo, None]
            ys += [*la, None]
        if not xs:
            continue
        low, high = edges[k], edges[min(k + 1, len(edges) - 1)]
        fig.add_trace(go.Scatter(x=xs, y=ys, mode="lines", fill="toself", fillcolor=palette[k],
                                 line={"color": "white", "width": 0.5}, hoverinfo="skip",
                                 name=f"{money(low, currency)} to {money(high, currency)}"))
    centres = [h3.cell_to_latlng(c) for c in hexes["hexagon"]]
    fig.add_trace(go.Scatter(
        x=[c[1] for c in centres], y=[c[0] for c in centres], mode="markers", marker={"size": 4, "color": "rgba(0,0,0,0)"},
        customdata=np.column_stack([hexes["customers"].to_numpy(), eq]) if len(hexes) else None,
        hovertemplate=f"%{{customdata[0]:,}} customers<br>equity {hover_money('customdata[1]', currency, fmt=',.0f')}<extra></extra>",
        showlegend=False, name="hexagon"))
    if len(stores):
        fig.add_trace(go.Scatter(x=stores["lon"], y=stores["lat"], mode="markers+text", text=stores["store_id"].astype(str),
                                 textposition="top center", marker={"symbol": "star", "size": 12, "color": "#dc2626"},
                                 name="stores", hovertemplate="%{text}<extra>store</extra>"))
    lat_mid = float(np.mean([c[0] for c in centres])) if centres else 0.0
    fig.update_layout(title={"text": f"Where customer equity is ({money_title('equity per hexagon', currency)})", "x": 0.01},
                      height=520, plot_bgcolor="white", paper_bgcolor="white", legend={"title": {"text": "equity"}},
                      margin={"l": 60, "r": 20, "t": 60, "b": 50})
    fig.update_xaxes(title="longitude", gridcolor="#ebf0f8", zeroline=False)
    fig.update_yaxes(title="latitude", gridcolor="#ebf0f8", zeroline=False, scaleanchor="x",
                     scaleratio=1 / max(0.2, math.cos(math.radians(lat_mid))))
    return fig


REGION_TABLE = {
    "region": "region", "customers": "customers", "equity": "equity", "equity_share": "equity share (%)",
    "mean_clv": "mean CLV", "active": "active", "cooling": "cooling", "at_risk": "at risk", "lapsed": "lapsed",
    "lost": "lost", "return_rate": "return rate (%)",
}
"""Columns of the region table (from :func:`patron.relationship.segments.breakdown.breakdown_by`)."""


def _store_profiles(ctx: object) -> None:
    """The report's profiles written to the ``customer_profiles`` table once, read into Python
    only by a context that cannot store them without (the SQL below reads the table)."""
    store = getattr(ctx, "store_profiles", None)
    (store if store is not None else ctx.profiles)()  # type: ignore[attr-defined]


@register_section("place", order=66, title="Place")
def place_section(db: str, ctx: object) -> Section | None:
    """The hexagon map, equity and status by region, and the stores' catchments; ``None`` when no
    customer has a location or a region."""
    from patron.relationship.catchment import catchments
    from patron.relationship.place import read_stores, stores_frame
    from patron.relationship.segments.breakdown import breakdown_by

    try:
        _store_profiles(ctx)
    except PatronError:
        return None
    with reader(db) as con:
        names = {d[0] for d in con.execute(f"SELECT * FROM {PROFILE_TABLE} LIMIT 0").description}
        if not {"lat", "region", "h3_cell"} <= names:
            return None
        located, total, regions = con.execute(
            f"SELECT count(lat), count(*), count(DISTINCT region) FROM {PROFILE_TABLE}").fetchone()
        if not located and not regions:
            return None
        hexes = hexagon_equity(con)
        stores = stores_frame(read_stores(con))
    currency = ctx.currency() if hasattr(ctx, "currency") else None
    sec = Section("place", "Place", intro=(
        "Where customers and customer equity are: customer locations (lat/lon, or the city geocoded offline "
        "from the bundled GeoNames table, or the last location of their events) indexed with H3, equity and "
        "status by region, and the stores' catchments. The map draws no tiles and needs no network. See docs/place.md."))
    sec.metrics.append(Metric("located customers", f"{located:,}", f"of {total:,}",
                              "Customers with a location (own lat/lon, a geocoded city, or an event location)."))
    sec.metrics.append(Metric("regions", f"{regions:,}", "", "Distinct values of region (the region attribute, else the country of the city)."))
    if len(hexes):
        sec.figures.append(map_figure(hexes, stores, currency=currency))
        if len(hexes) > MAX_HEXAGONS:
            sec.notes.append(f"The map draws the {MAX_HEXAGONS:,} hexagons of most equity of {len(hexes):,}.")
    if regions:
        by_region = breakdown_by(db, "region", config=getattr(ctx, "config", None), as_of=getattr(ctx, "as_of", None),
                                 settings=ctx.value() if hasattr(ctx, "value") else None)
        cols = [c for c in REGION_TABLE if c in by_region.columns]
        table = by_region[cols].head(30).copy()
        table["region"] = table["region"].where(table["region"].notna(), "(none)")
        for c in ("equity_share", "return_rate"):
            table[c] = table[c].astype(float) * 100
        table = table.rename(columns=REGION_TABLE)
        table = table.rename(columns={"equity": money_title("equity", currency), "mean CLV": money_title("mean CLV", currency)})
        sec.tables.append(("Customer equity and status by region (largest 30)", table))
    if len(stores) and located:
        c = catchments(db, km=CATCHMENT_KM, config=getattr(ctx, "config", None), as_of=getattr(ctx, "as_of", None),
                       settings=ctx.value() if hasattr(ctx, "value") else None)
        shown = c[["store_id", "name", "customers_within", "equity_within", "customers_nearest", "equity_nearest", "mean_km_nearest"]]
        sec.tables.append((f"Stores' catchments: customers and equity within {CATCHMENT_KM:g} km, and by nearest store",
                           shown.rename(columns={
                               "store_id": "store", "customers_within": f"customers within {CATCHMENT_KM:g} km",
                               "equity_within": money_title(f"equity within {CATCHMENT_KM:g} km", currency),
                               "customers_nearest": "nearest-store customers",
                               "equity_nearest": money_title("nearest-store equity", currency),
                               "mean_km_nearest": "mean km to it"})))
    return sec


MAX_ATTRIBUTE_TABLES = 6
"""Most attributes given a table in the "Customer attributes" section."""

MAX_ATTRIBUTE_VALUES = 12
"""Attributes with more distinct values than this (ids, free text, numbers) get no table."""

ATTRIBUTE_TABLE = {
    "customers": "customers", "equity": "equity", "equity_share": "equity share (%)", "mean_clv": "mean CLV",
    "active": "active", "at_risk": "at risk", "lapsed": "lapsed", "lost": "lost", "return_rate": "return rate (%)",
    "discount_dependent_share": "discount dependent (%)",
}
"""Columns of each attribute's table (from :func:`patron.relationship.segments.breakdown.breakdown_by`)."""


@register_section("attributes", order=67, title="Customer attributes")
def attributes_section(db: str, ctx: object) -> Section | None:
    """Equity, status and loyalty by each customer attribute with few values (a category such as
    an acquisition channel, a true/false flag): one table per attribute, at most
    :data:`MAX_ATTRIBUTE_TABLES`. ``None`` when the customers have no such attribute."""
    from patron.data.dialect import DUCKDB
    from patron.relationship.attributes import attribute_keys
    from patron.relationship.place import PLACE_COLUMNS
    from patron.relationship.profiles import PROFILE_COLUMNS
    from patron.relationship.segments.breakdown import breakdown_by

    try:
        _store_profiles(ctx)
    except PatronError:
        return None
    with reader(db) as con:
        have = {d[0]: d[1] for d in con.execute(f"SELECT * FROM {PROFILE_TABLE} LIMIT 0").description}
        keys = [k for k, _ in attribute_keys(con) if k in have and k not in PROFILE_COLUMNS and k not in PLACE_COLUMNS]
        if not keys:
            return None
        counts = con.execute("SELECT " + ", ".join(f"count(DISTINCT {DUCKDB.ident(k)})" for k in keys)
                             + f" FROM {PROFILE_TABLE}").fetchone()
    chosen = [k for k, n in zip(keys, counts, strict=True) if 2 <= n <= MAX_ATTRIBUTE_VALUES][:MAX_ATTRIBUTE_TABLES]
    if not chosen:
        return None
    currency = ctx.currency() if hasattr(ctx, "currency") else None
    sec = Section("attributes", "Customer attributes", intro=(
        "Customer equity, status and loyalty by each customer attribute with at most "
        f"{MAX_ATTRIBUTE_VALUES} values (columns of the customers file and identify traits, typed as declared in "
        "[attributes] or inferred). Every attribute is a profile column: segment rules, patron equity --by, "
        "status --by and loyalty --by name it. See docs/place.md."))
    for key in chosen:
        table = breakdown_by(db, key, config=getattr(ctx, "config", None), as_of=getattr(ctx, "as_of", None),
                             settings=ctx.value() if hasattr(ctx, "value") else None)
        cols = [key, *(c for c in ATTRIBUTE_TABLE if c in table.columns)]
        shown = table[cols].copy()
        shown[key] = shown[key].map(lambda v: "(none)" if v is None or v != v else str(v).lower() if isinstance(v, bool) else str(v))
        for c in ("equity_share", "return_rate", "discount_dependent_share"):
            shown[c] = shown[c].astype(float) * 100
        shown = shown.rename(columns=ATTRIBUTE_TABLE).rename(columns={
            "equity": money_title("equity", currency), "mean CLV": money_title("mean CLV", currency)})
        sec.tables.append((f"By {key}", shown))
    return sec
