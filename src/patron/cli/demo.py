"""``patron demo``: the main job on bundled data."""

from __future__ import annotations

from rich.console import Console

from patron.datasets import CDNOW_CALIBRATION_END, CDNOW_HOLDOUT_END, data_path
from patron.ingest import ingest
from patron.insights import overview
from patron.summary import summary

CDNOW_SAMPLE_COLUMNS = ["master_customer_id", "customer_id", "date", "number_of_cds", "amount"]


def run_demo(db: str, out: Console, err: Console) -> None:
    """Ingest the CDNOW sample into ``db``, summarise the 39-week calibration period, print a report."""
    source = data_path("CDNOW_sample.txt")
    out.rule("patron demo: CDNOW sample, 2,357 customers (Fader & Hardie)")
    with err.status("ingesting CDNOW_sample.txt"):
        result = ingest(source, kind="transactions", db=db, columns=CDNOW_SAMPLE_COLUMNS, mapping={"occurred_at": "date"}, date_format="%Y%m%d")
    out.print(f"ingest: {result.accepted:,} new, {result.already_present:,} already present, {result.rejected:,} rejected -> {db}")
    with err.status("summarising"):
        cal = summary(db, period="W", end=CDNOW_CALIBRATION_END, holdout_end=CDNOW_HOLDOUT_END)
    from patron.cli.app import _print_overview

    _print_overview(overview(cal), unit="W")
    out.print(
        f"calibration to {CDNOW_CALIBRATION_END}, holdout to {CDNOW_HOLDOUT_END}: "
        f"{int(cal['frequency_holdout'].sum()):,} repeat purchases in the holdout by "
        f"{int((cal['frequency_holdout'] > 0).sum()):,} customers"
    )
