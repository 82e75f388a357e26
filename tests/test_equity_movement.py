"""What moved customer equity (issue 24 item 3): the five parts of each month's change add up to
the change exactly, on hand-made orders whose new / returning / silent customers are counted here
from the orders themselves; the equity at each month end is the one equity_over_time computes
(score's own path); and the parts vanish where nothing they measure changed."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from patron.data.ingest import ingest
from patron.data.store import reader
from patron.relationship.segments import equity_over_time
from patron.relationship.segments.movement import COMPONENTS, decompose, equity_movement
from patron.report import figures as F
from patron.value.scoring import score
from patron.value.settings import ValueSettings
from patron.value.summary_arrays import run_summary
from patron.value.summary_sql import SummarySpec

START, END = "2024-05-01", "2024-11-30"
"""The window: month ends 2024-05-31 to 2024-11-30."""


def hand_made_orders(seed: int = 11, customers: int = 600) -> pd.DataFrame:
    """Orders of ``customers`` people: a first purchase on a day of 2024-01-01 to 2024-09-27 (none
    later), then purchases at each person's own rate (gamma-distributed, mean 1 per 20 days)
    until their own lifetime (exponential, mean 200 days) runs out, at amounts around each
    person's mean spend; nothing after 2024-11-30."""
    rng = np.random.default_rng(seed)
    rows = []
    mean_spend = rng.gamma(4.0, 12.0, size=customers)
    rate = rng.gamma(2.0, 1 / 40, size=customers)
    life = rng.exponential(200, size=customers)
    for i in range(customers):
        day = pd.Timestamp("2024-01-01") + pd.Timedelta(days=int(rng.integers(0, 270)))
        days, t = [day], 0.0
        while True:
            t += rng.exponential(1 / rate[i])
            if t > life[i]:
                break
            days.append(day + pd.Timedelta(days=int(t)))
        rows += [(f"c{i:03d}", f"o{i:03d}-{j}", d.date().isoformat(), round(float(rng.gamma(5.0, mean_spend[i] / 5.0)), 2))
                 for j, d in enumerate(days) if d <= pd.Timestamp(END)]
    return pd.DataFrame(rows, columns=["customer_id", "order_id", "occurred_at", "amount"])


@pytest.fixture(scope="module")
def orders() -> pd.DataFrame:
    return hand_made_orders()


@pytest.fixture(scope="module")
def movement_db(tmp_path_factory: pytest.TempPathFactory, orders: pd.DataFrame) -> str:
    folder = tmp_path_factory.mktemp("movement")
    csv = folder / "orders.csv"
    orders.to_csv(csv, index=False)
    db = str(folder / "m.duckdb")
    ingest(csv, kind="transactions", db=db)
    return db


@pytest.fixture(scope="module")
def movement(movement_db: str):
    return equity_movement(movement_db, start=START, end=END)


def test_parts_sum_to_each_change_exactly(movement):
    steps = movement.steps
    done = steps[steps["change"].notna()]
    assert len(done) == 6  # every month end after the first
    total = done[list(COMPONENTS)].sum(axis=1).to_numpy()
    scale = done["equity_end"].abs().max()
    np.testing.assert_allclose(total, done["change"].to_numpy(), rtol=0, atol=1e-9 * scale)
    np.testing.assert_allclose(done["change"], done["equity_end"] - done["equity_start"], rtol=1e-12)
    # each month starts where the previous one ended
    prev_end = steps.set_index("as_of")["equity_end"]
    np.testing.assert_allclose(done["equity_start"].to_numpy(), prev_end.reindex(done["previous"]).to_numpy(), rtol=1e-12)


def test_equity_matches_equity_over_time(movement, movement_db):
    reference = equity_over_time(movement_db, start=START, end=END)
    np.testing.assert_allclose(movement.history["equity"], reference["equity"], rtol=1e-9)
    done = movement.steps[movement.steps["change"].notna()]
    ref = reference.set_index("as_of")["equity"]
    np.testing.assert_allclose(done["equity_end"].to_numpy(), ref.reindex(done["as_of"]).to_numpy(), rtol=1e-9)


def test_customer_groups_are_counted_from_the_orders(movement, orders):
    o = orders.assign(day=pd.to_datetime(orders["occurred_at"]))
    first = o.groupby("customer_id")["day"].min()
    for row in movement.steps[movement.steps["change"].notna()].itertuples():
        p, c = row.previous, row.as_of
        known = set(first[first <= p].index)
        new = set(first[(first > p) & (first <= c)].index)
        bought = set(o.loc[(o["day"] > p) & (o["day"] <= c), "customer_id"]) & known
        assert (row.new, row.returning, row.silent) == (len(new), len(bought), len(known) - len(bought))


def test_no_new_customers_means_no_new_customer_value(movement):
    # nobody buys for the first time after September (the orders are made that way)
    late = movement.steps[(movement.steps["as_of"] > "2024-09-30") & movement.steps["change"].notna()]
    assert len(late) == 2
    assert (movement.steps.loc[movement.steps["as_of"] <= "2024-09-30", "new"].iloc[1:] > 0).all()
    assert (late["new"] == 0).all() and (late["new_customers"] == 0.0).all()


def test_first_month_has_no_movement_and_says_why(movement):
    first = movement.steps.iloc[0]
    assert first["as_of"] == pd.Timestamp("2024-05-31")
    assert np.isnan(first["change"]) and all(np.isnan(first[c]) for c in COMPONENTS)
    assert "first period end" in first["why"]
    assert movement.refitted


def _summary(db: str, day: str) -> pd.DataFrame:
    with reader(db) as con:
        return run_summary(con, SummarySpec(end=pd.Timestamp(day).date(), unit="W")).to_pandas()


def test_parts_vanish_where_nothing_they_measure_changed(movement_db):
    value = ValueSettings()
    d_p, d_c = _summary(movement_db, "2024-07-31"), _summary(movement_db, "2024-08-31")
    s = score(d_p, settings=value)
    models = (s.transaction_model, s.spend_model)
    same = decompose(d_p, d_p, models, models, value, since="2024-07-31")
    assert all(same[c] == 0.0 for c in COMPONENTS) and same["change"] == 0.0
    aged = decompose(d_p, d_c, models, models, value, since="2024-07-31")  # same models: no re-estimate
    assert aged["rate_estimates"] == 0.0 and aged["spend_estimates"] == 0.0
    assert aged["lost_customers"] < 0  # silent customers fade
    assert aged["change"] == pytest.approx(aged["lost_customers"] + aged["returning_customers"] + aged["new_customers"], abs=1e-6)


def test_waterfall_draws_the_latest_month_from_start_to_end(movement):
    fig = F.equity_waterfall(movement.steps, currency="USD")
    last = movement.steps.dropna(subset=["change"]).iloc[-1]
    trace = fig.data[0]
    assert trace.type == "waterfall"
    assert list(trace.measure) == ["absolute"] + ["relative"] * 5 + ["total"]
    assert list(trace.y) == [last["equity_start"], *(last[c] for c in COMPONENTS), last["equity_end"]]
    assert fig.layout.yaxis.tickprefix == "$" and "refitted" in fig.layout.title.text
    table = F.equity_movement_table(movement.steps, currency="USD")
    assert table["note"].iloc[0].startswith("first period end")
    assert table.columns[1] == "equity before ($)" and "new customers ($)" in table.columns
    assert table["equity after ($)"].iloc[-1] == last["equity_end"] and table["new customers"].iloc[-1] == last["new"]
    assert table["new customers"].isna().iloc[0]  # no movement in the first month: no counts either


def test_period_end_summaries_from_one_read_are_the_summaries_as_of_each_day(tmp_path, orders: pd.DataFrame) -> None:
    """The month-end summaries finished from one read of the orders (iter_period_end_summaries) are,
    customer by customer and to the last bit, the summaries queried as of each month end
    (run_summary); a refund-only customer and a zero-amount order included. Their ``rows`` match
    customers across month ends: the same customer id at the same position of the common list."""
    from patron.relationship.segments.equity import iter_period_end_summaries

    extra = pd.DataFrame([("r1", "r1-a", "2024-06-10", -15.0), ("r1", "r1-b", "2024-08-03", 20.0),
                          ("z1", "z1-a", "2024-07-01", 0.0), ("z1", "z1-b", "2024-10-15", -5.0)],
                         columns=["customer_id", "order_id", "occurred_at", "amount"])
    csv = tmp_path / "orders.csv"
    pd.concat([orders, extra]).to_csv(csv, index=False)
    db = str(tmp_path / "s.duckdb")
    ingest(csv, kind="transactions", db=db)
    ids_at: dict[int, str] = {}
    seen = 0
    for day, frame, rows in iter_period_end_summaries(db, START, END, "M", "W"):
        with reader(db) as con:
            expected = run_summary(con, SummarySpec(end=day, unit="W")).to_pandas()
        got = frame.sort_values("customer_id").reset_index(drop=True)
        pd.testing.assert_frame_equal(got, expected.sort_values("customer_id").reset_index(drop=True), check_exact=True)
        assert ("r1" in set(frame["customer_id"])) == (day >= pd.Timestamp("2024-08-03").date())
        assert ("z1" in set(frame["customer_id"])) == (day >= pd.Timestamp("2024-07-01").date())
        assert len(rows) == len(frame)
        for position, customer in zip(rows.tolist(), frame["customer_id"].astype(str), strict=True):
            assert ids_at.setdefault(position, customer) == customer
        seen += 1
    assert seen == 7
