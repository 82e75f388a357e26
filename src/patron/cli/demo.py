"""``patron demo``: the main job on bundled data."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console

from patron.cli.output import print_overview
from patron.data.datasets import CDNOW_CALIBRATION_END, CDNOW_HOLDOUT_END, data_path
from patron.data.ingest import ingest
from patron.value.overview import overview
from patron.value.summary import summary

if TYPE_CHECKING:
    from patron.value.settings import ValueSettings

CDNOW_SAMPLE_COLUMNS = ["master_customer_id", "customer_id", "date", "number_of_cds", "amount"]

DEMO_TRANSACTIONS = "demo_transactions.csv"
"""The CDNOW sample with a simulated ``discount`` column (same rows, customers, days and amounts;
src/patron/data/datasets/data/README.md)."""

MOTIVATION_FILES: dict[str, str] = {"campaigns": "demo_campaigns.csv", "contacts": "demo_contacts.csv",
                                    "referrals": "demo_referrals.csv", "feedback": "demo_feedback.csv"}
"""Bundled simulated files the demo ingests after the transactions, by kind (docs/motivation.md)."""


def ingest_motivation_data(db: str) -> dict[str, int]:
    """Ingest the demo's simulated campaigns, e-mails, referrals and values survey into ``db``;
    the rows accepted per kind."""
    return {kind: ingest(data_path(name), kind=kind, db=db).accepted for kind, name in MOTIVATION_FILES.items()}


def place_demo(db: str, out: Console, value: object) -> None:
    """The demo's attributes and place lines: equity by region, a local rule, the largest
    catchments (docs/place.md)."""
    from patron.relationship.catchment import catchments
    from patron.relationship.segments import equity_by, members

    regions = equity_by(db, "region", settings=value)  # type: ignore[arg-type]
    out.print("customer equity by region: " + ", ".join(
        f"{r.region} {r.equity:,.0f} ({r.customers:,} customers)" for r in regions.itertuples(index=False) if isinstance(r.region, str)))
    rule = "within_km('store-nyc', 25) and clv > 50 and acquisition_channel = 'store'"
    out.print(f"{rule}: {len(members(db, rule, settings=value)):,} customers")  # type: ignore[arg-type]
    top = catchments(db, km=25, settings=value).head(3)  # type: ignore[arg-type]
    out.print("largest catchments (25 km): " + ", ".join(
        f"{r.store_id} {r.customers_within:,} customers, equity {r.equity_within:,.0f}" for r in top.itertuples(index=False)))


def run_demo(db: str, out: Console, err: Console, *, report: Path | None = None) -> None:
    """Ingest the CDNOW sample into ``db``, summarise the 39-week calibration period, value every
    customer, print the figures, and write the HTML report (status, segments, cohorts, equity) to
    ``report``."""
    source = data_path(DEMO_TRANSACTIONS)  # the CDNOW sample plus a simulated discount per order
    out.rule("patron demo: CDNOW sample, 2,357 customers (Fader & Hardie)")
    with err.status(f"ingesting {DEMO_TRANSACTIONS}"):
        result = ingest(source, kind="transactions", db=db)
    out.print(f"ingest: {result.accepted:,} new, {result.already_present:,} already present, {result.rejected:,} rejected -> {db}")
    with err.status("ingesting the simulated customer attributes, locations and stores"):
        people = ingest(data_path("demo_customers.csv"), kind="customers", db=db)
        shops = ingest(data_path("demo_stores.csv"), kind="stores", db=db)
    out.print(f"customers (simulated city, region, location, acquisition channel; data/README.md): {people.accepted:,} new; "
              f"stores: {shops.accepted:,} new")
    with err.status("ingesting the simulated campaigns, e-mails, referrals and values survey"):
        extra = ingest_motivation_data(db)
    out.print("simulated motivation data (docs/motivation.md): " + ", ".join(f"{n:,} {k}" for k, n in extra.items()))
    with err.status("summarising"):
        cal = summary(db, period="W", end=CDNOW_CALIBRATION_END, holdout_end=CDNOW_HOLDOUT_END)
    print_overview(out, overview(cal), unit="W")
    out.print(
        f"calibration to {CDNOW_CALIBRATION_END}, holdout to {CDNOW_HOLDOUT_END}: "
        f"{int(cal['frequency_holdout'].sum()):,} repeat purchases in the holdout by "
        f"{int((cal['frequency_holdout'] > 0).sum()):,} customers"
    )
    from patron.value.scoring import score
    from patron.value.settings import ValueSettings

    value = ValueSettings(currency="USD")  # the [value] defaults; CDNOW's amounts are US dollars
    with err.status("fitting BG/NBD and Gamma-Gamma, scoring CLV"):
        scores = score(cal, settings=value)
    p, g = scores.transaction_model.params_, scores.spend_model.params_
    out.print("BG/NBD: " + ", ".join(f"{k}={v:.4f}" for k, v in p.items()) + f" (log-likelihood {scores.transaction_model.log_likelihood_:.2f})")
    out.print("Gamma-Gamma: " + ", ".join(f"{k}={v:.4f}" for k, v in g.items()))
    top = scores.customers.nlargest(5, "clv")[["customer_id", "frequency", "probability_alive", "clv", "clv_lower", "clv_upper"]]
    out.print(top.to_string(index=False, float_format=lambda v: f"{v:,.2f}"))
    out.print(
        f"customer equity: [bold]{scores.equity:,.2f}[/] {value.label()} "
        f"({scores.level:.0%} interval {scores.equity_lower:,.2f} to {scores.equity_upper:,.2f}; parameter uncertainty)"
    )
    for line in scores.notes():
        out.print(line, highlight=False)
    _engagement_demo(db, out, err)
    with err.status("customer attributes and place: profiles, regions, catchments"):
        place_demo(db, out, value)
    if report is None:
        print_motivation(db, out, value)
        return
    from patron.extras import MissingExtraError, require

    try:
        require("report", "the demo's HTML report", modules=("plotly",))
    except MissingExtraError as exc:
        err.print(f"report not written: {exc}", markup=False, highlight=False, soft_wrap=True)
        print_motivation(db, out, value)
        return
    from patron.report import write_report

    began = time.perf_counter()
    with err.status("writing the customer equity report (status, loyalty, segments, cohorts, equity over time)") as status:
        path = write_report(db, report, settings=value, on_section=lambda title: status.update(f"report: {title}"))
    out.print(f"report: [bold]{path.resolve()}[/] ({time.perf_counter() - began:.1f} s; open it in a browser, no network needed)")
    print_motivation(db, out, value)


def _engagement_demo(db: str, out: Console, err: Console) -> None:
    """Ingest the bundled simulated interactions of the CDNOW customers (data README: seed, rates,
    correlation with purchases) and show engagement and whether it predicts purchases."""
    from patron.relationship.engagement import engagement_lift, write_engagement

    with err.status("ingesting simulated interactions (cdnow_interactions.parquet)"):
        result = ingest(data_path("cdnow_interactions.parquet"), kind="interactions", db=db)
    out.print(f"interactions (simulated, see the data README): {result.accepted:,} new, {result.already_present:,} already present")
    eng = write_engagement(db, as_of=CDNOW_HOLDOUT_END)
    out.print(f"engagement as of {eng['as_of']}: {eng['customers']:,} customers, mean score {eng['mean_score']:.1f}% of days active; "
              + "trend " + ", ".join(f"{k} {v:,}" for k, v in eng["trend"].items()))
    with err.status("engagement lift: BG/NBD to 1997-12-30, holdout to 1998-06-30"):
        lift = engagement_lift(db, holdout_end=CDNOW_HOLDOUT_END)
    out.print(f"holdout purchases / BG/NBD prediction by engagement band at {lift.calibration_end}:")
    out.print(lift.bands[["band", "customers", "actual", "predicted", "lift", "lift_lower", "lift_upper"]].to_string(
        index=False, float_format=lambda v: f"{v:,.2f}"))


def print_motivation(db: str, out: Console, value: ValueSettings) -> None:
    """One line: the share of the buyers in each motivation and their mean CLV (the profiles the
    report stored, else built now), from the simulated discounts, campaigns, referrals and survey."""
    from patron.relationship.motivation_mix import motivation_table

    table = motivation_table(db, settings=value)
    parts = [f"{r.motivation} {r.share:.0%} (mean CLV {r.mean_clv:,.2f})" for r in table.itertuples(index=False)]
    out.print("why customers buy (simulated motivations, see docs/motivation.md; patron motivation): " + ", ".join(parts),
              highlight=False)
