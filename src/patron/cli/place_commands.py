"""``patron stores``: the stores' catchments (customers and customer equity within --km, and
customers whose nearest store each is), or a local campaign's targets (--store)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated

import typer

from patron.cli.app import DbOption, JsonOption, _print_json, app, out
from patron.cli.output import records, write_frame
from patron.cli.progress import spinner


def _money(v: float | None) -> str:
    return "" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:,.2f}"


@app.command()
def stores(
    db: DbOption = None,
    km: Annotated[float, typer.Option("--km", help="Catchment radius, great-circle km.", min=0)] = 5.0,
    store: Annotated[str | None, typer.Option("--store", help="List the customers within --km of this store (a local campaign's targets) instead.")] = None,
    target: Annotated[str | None, typer.Option("--target", help="With --store: only customers of this segment name or rule.")] = None,
    config: Annotated[Path | None, typer.Option("--config", help="Rules file [default: $PATRON_CONFIG or ./patron.toml].")] = None,
    out_file: Annotated[Path | None, typer.Option("--out", help="Write the table to a .csv or .parquet file.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Stores' catchments: per store, the customers within --km and their customer equity, and the
    customers whose nearest store it is (docs/place.md). With --store, the customers near that
    store (nearest first) with the store's time zone, as a local campaign targets them."""
    from patron.relationship.catchment import catchments, local_targets

    with spinner("measuring catchments", quiet=as_json):
        if store is not None:
            table = local_targets(db, store, km=km, rule=target, config=config, where="--store")
        else:
            table = catchments(db, km=km, config=config)
    write_frame(table, out_file)
    if as_json:
        _print_json({"km": km, "store": store, "rows": records(table), "out": str(out_file) if out_file else None})
        return
    from rich.table import Table

    if store is not None:
        zone = table["store_time_zone"].iloc[0] if len(table) else None
        out.print(f"{len(table):,} customers within {km:g} km of {store}" + (f" (local time: {zone})" if zone else ""))
        for r in table.head(20).itertuples(index=False):
            out.print(f"  {r.customer_id}  {r.distance_km:.2f} km", highlight=False)
    else:
        t = Table(title=f"Store catchments: customers and equity within {km:g} km, and by nearest store", title_justify="left")
        for name in ("store", "name", "within", "equity within", "nearest", "equity nearest", "mean km"):
            t.add_column(name, justify="left" if name in ("store", "name") else "right")
        for r in table.itertuples(index=False):
            t.add_row(str(r.store_id), str(r.name or ""), f"{r.customers_within:,}", _money(r.equity_within),
                      f"{r.customers_nearest:,}", _money(r.equity_nearest), "" if math.isnan(r.mean_km_nearest) else f"{r.mean_km_nearest:.1f}")
        out.print(t)
    if out_file is not None:
        out.print(f"table written to {out_file}")
