"""A customer base with planted motivations, to measure how well :mod:`patron.relationship.motivation`
recovers them (benchmarks/bench_motivation_accuracy.py, tests/test_motivation_accuracy.py).

Each customer is drawn one of four motivations (:data:`PLANTED_SHARES`) and behaves as
:data:`BEHAVIOUR` says, over one year ending at :data:`AS_OF`:

* **orders**: a Poisson number (customer rate drawn from a Gamma with mean ``orders_mean``, at
  least one order), at uniform times; each is at a discount (10-40% of the list price) with the
  motivation's probability ``p_discount``;
* **campaigns**: :data:`CAMPAIGN_PLAN` (discount offers, content and values mailings, spread over
  the year), each sent to a random 60% of the base with 10% of those held out; a treated customer
  buys within 30 days with the motivation's extra probability for that kind of campaign
  (``lift_discount`` or ``lift_other``, on top of their own orders), and opens the e-mail with
  ``p_open_discount`` / ``p_open_other``; an order bought from a discount offer carries its discount;
* **content**: Poisson ``content_views`` content views a year (interactions ``content_view``);
* **referrals**: Poisson ``referrals`` shares a year;
* **survey**: 40% answer the values survey (feedback kind ``values``, 0-10), drawn around ``survey``.

Everything is vectorised over customers (loops run over the dozen campaigns only).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import date, datetime

import numpy as np
import pandas as pd

AS_OF = date(2024, 12, 31)
"""Last day of the simulated year (the day the classification is run as of)."""

PLANTED = ("discount", "values", "mixed", "other")
"""The planted motivations."""

PLANTED_SHARES = (0.35, 0.25, 0.25, 0.15)
"""Share of the base planted with each motivation of :data:`PLANTED`."""

BEHAVIOUR: dict[str, dict[str, float]] = {
    "discount": {"p_discount": 0.80, "lift_discount": 0.35, "lift_other": 0.02, "p_open_discount": 0.60,
                 "p_open_other": 0.08, "content_views": 0.3, "referrals": 0.2, "survey": 3.0},
    "values": {"p_discount": 0.08, "lift_discount": 0.03, "lift_other": 0.30, "p_open_discount": 0.10,
               "p_open_other": 0.60, "content_views": 6.0, "referrals": 1.5, "survey": 8.5},
    "mixed": {"p_discount": 0.45, "lift_discount": 0.20, "lift_other": 0.20, "p_open_discount": 0.35,
              "p_open_other": 0.35, "content_views": 2.5, "referrals": 0.7, "survey": 6.0},
    "other": {"p_discount": 0.12, "lift_discount": 0.02, "lift_other": 0.02, "p_open_discount": 0.10,
              "p_open_other": 0.10, "content_views": 0.4, "referrals": 0.1, "survey": 4.5},
}
"""How each planted motivation behaves (probabilities per order, exposure or customer; Poisson
means per year; the survey's centre on 0-10)."""

CAMPAIGN_PLAN: tuple[tuple[str, str, float], ...] = (
    ("d-jan", "discount", 20.0), ("c-feb", "content", 0.0), ("d-mar", "discount", 15.0), ("v-apr", "values", 0.0),
    ("d-may", "discount", 25.0), ("c-jun", "content", 0.0), ("d-jul", "discount", 20.0), ("c-aug", "content", 0.0),
    ("d-sep", "discount", 30.0), ("v-oct", "values", 0.0), ("d-nov", "discount", 25.0),
)
"""(campaign_id, kind, discount_pct), one a month from January to November (December's
responses would not be closed by :data:`AS_OF`)."""

INTERACTIONS_DDL = """CREATE TABLE IF NOT EXISTS interactions (
  interaction_id VARCHAR, customer_id VARCHAR, occurred_at TIMESTAMP, channel VARCHAR, kind VARCHAR,
  object VARCHAR, value DOUBLE, ingest_id VARCHAR
)"""
"""The ``interactions`` table of the data contract (issue 20 conventions), for a database whose
patron does not create it yet."""


@dataclass
class PlantedBase:
    """A simulated base: the tables to store, and each customer's planted motivation."""

    truth: pd.DataFrame
    """``customer_id, planted``."""
    transactions: pd.DataFrame
    campaigns: pd.DataFrame
    contacts: pd.DataFrame
    interactions: pd.DataFrame
    referrals: pd.DataFrame
    feedback: pd.DataFrame

    def tables(self) -> dict[str, pd.DataFrame]:
        """The stored tables by name."""
        return {"transactions": self.transactions, "campaigns": self.campaigns, "contacts": self.contacts,
                "interactions": self.interactions, "referrals": self.referrals, "feedback": self.feedback}


def _times(rng: np.random.Generator, start: datetime, days: np.ndarray | float, n: int) -> np.ndarray:
    """``n`` timestamps uniform over ``days`` days from ``start`` (seconds resolution)."""
    secs = (rng.random(n) * np.asarray(days) * 86400).astype("int64")
    return np.datetime64(start, "s") + secs.astype("timedelta64[s]")


def simulate_planted(n: int = 5000, *, seed: int = 0, orders_mean: float = 5.0, survey_share: float = 0.4,
                     shares: tuple[float, ...] = PLANTED_SHARES) -> PlantedBase:
    """Draw ``n`` customers with planted motivations (module docstring); reproducible by ``seed``."""
    rng = np.random.default_rng(seed)
    ids = np.array([f"c{i:06d}" for i in range(n)])
    kind = rng.choice(len(PLANTED), size=n, p=np.asarray(shares) / np.sum(shares))
    planted = np.array(PLANTED)[kind]

    def param(name: str) -> np.ndarray:
        return np.array([BEHAVIOUR[m][name] for m in PLANTED])[kind]

    year_start = datetime(AS_OF.year, 1, 1)
    days = (AS_OF - year_start.date()).days + 1
    # organic orders
    rate = rng.gamma(2.0, orders_mean / 2.0, n)
    n_orders = np.maximum(rng.poisson(rate), 1)
    who = np.repeat(np.arange(n), n_orders)
    at = _times(rng, year_start, days, who.size)
    discounted = rng.random(who.size) < param("p_discount")[who]
    # campaigns
    camp_rows, tx_extra = [], []
    for j, (cid, ckind, pct) in enumerate(CAMPAIGN_PLAN):
        send = datetime(AS_OF.year, j + 1, 10, 9)
        target = np.flatnonzero(rng.random(n) < 0.6)
        control = rng.random(target.size) < 0.1
        sent_at = np.datetime64(send, "s") + (rng.random(target.size) * 3600).astype("timedelta64[s]")
        camp_rows.append(pd.DataFrame({"customer_id": ids[target], "occurred_at": sent_at, "channel": "email",
                                       "campaign_id": cid, "kind": "sent", "in_holdout": control}))
        treated, t_at = target[~control], sent_at[~control]
        delivered = t_at + np.timedelta64(60, "s")
        camp_rows.append(pd.DataFrame({"customer_id": ids[treated], "occurred_at": delivered, "channel": "email",
                                       "campaign_id": cid, "kind": "delivered", "in_holdout": False}))
        is_disc = ckind == "discount"
        p_open = param("p_open_discount" if is_disc else "p_open_other")[treated]
        opened = rng.random(treated.size) < p_open
        open_at = delivered[opened] + (rng.random(int(opened.sum())) * 2 * 86400).astype("timedelta64[s]")
        camp_rows.append(pd.DataFrame({"customer_id": ids[treated[opened]], "occurred_at": open_at, "channel": "email",
                                       "campaign_id": cid, "kind": "opened", "in_holdout": False}))
        lift = param("lift_discount" if is_disc else "lift_other")[treated]
        buys = rng.random(treated.size) < lift
        buy_at = t_at[buys] + (rng.random(int(buys.sum())) * 28 * 86400 + 3600).astype("timedelta64[s]")
        tx_extra.append(pd.DataFrame({"who": treated[buys], "at": buy_at,
                                      "discounted": True if is_disc else rng.random(int(buys.sum())) < param("p_discount")[treated[buys]],
                                      "pct": pct}))
    extra = pd.concat(tx_extra, ignore_index=True)
    all_who = np.concatenate([who, extra["who"].to_numpy(int)])
    all_at = np.concatenate([at, extra["at"].to_numpy("datetime64[s]")])
    all_disc = np.concatenate([discounted, extra["discounted"].to_numpy(bool)])
    depth = np.concatenate([rng.uniform(0.10, 0.40, who.size), extra["pct"].to_numpy(float) / 100.0])
    list_price = rng.lognormal(3.5, 0.6, all_who.size)
    discount = np.where(all_disc, np.round(list_price * depth, 2), 0.0)
    transactions = pd.DataFrame({"customer_id": ids[all_who], "order_id": [f"o{i:08d}" for i in range(all_who.size)],
                                 "occurred_at": all_at, "amount": np.round(list_price - discount, 2), "discount": discount})
    campaigns = pd.DataFrame([{"campaign_id": c, "kind": k, "discount_pct": p if k == "discount" else None, "name": c}
                              for c, k, p in CAMPAIGN_PLAN])
    contacts = pd.concat(camp_rows, ignore_index=True)
    contacts.insert(0, "contact_id", [f"k{i:08d}" for i in range(len(contacts))])
    # content views (and page views that are not content, which must not count)
    views = rng.poisson(param("content_views"))
    vw = np.repeat(np.arange(n), views)
    pages = rng.poisson(3.0, n)
    pw = np.repeat(np.arange(n), pages)
    interactions = pd.DataFrame({
        "customer_id": ids[np.concatenate([vw, pw])],
        "occurred_at": np.concatenate([_times(rng, year_start, days, vw.size), _times(rng, year_start, days, pw.size)]),
        "channel": "web", "kind": ["content_view"] * vw.size + ["page_view"] * pw.size,
        "object": ["story"] * vw.size + ["home"] * pw.size, "value": np.nan})
    interactions.insert(0, "interaction_id", [f"i{i:08d}" for i in range(len(interactions))])
    shares_made = rng.poisson(param("referrals"))
    rw = np.repeat(np.arange(n), shares_made)
    referrals = pd.DataFrame({"referral_id": [f"r{i:07d}" for i in range(rw.size)], "referrer_id": ids[rw],
                              "referred_id": None, "channel": "link", "campaign_id": None, "link_id": None,
                              "occurred_at": _times(rng, year_start, days, rw.size), "kind": "shared"})
    answer = np.flatnonzero(rng.random(n) < survey_share)
    score = np.clip(np.round(rng.normal(param("survey")[answer], 1.5)), 0, 10)
    feedback = pd.DataFrame({"feedback_id": [f"f{i:07d}" for i in range(answer.size)], "customer_id": ids[answer],
                             "occurred_at": _times(rng, year_start, days, answer.size), "score": score, "kind": "values"})
    return PlantedBase(pd.DataFrame({"customer_id": ids, "planted": planted}), transactions, campaigns, contacts,
                       interactions, referrals, feedback)


def store_planted(base: PlantedBase, db: str | os.PathLike[str]) -> None:
    """Write the tables of ``base`` into the patron database ``db`` (created with the data
    contract's tables; rows inserted as drawn, without ingest's checks: the simulator draws valid rows)."""
    from patron.data.store import connect, create_tables

    with connect(db) as con:
        create_tables(con)
        con.execute(INTERACTIONS_DDL)
        for name, frame in base.tables().items():
            con.register("_planted", frame)
            con.execute(f"INSERT INTO {name} BY NAME SELECT * FROM _planted")
            con.unregister("_planted")


def confusion(truth: pd.DataFrame, found: pd.DataFrame) -> pd.DataFrame:
    """Customers by planted (rows) and found (columns) motivation; ``found`` has ``customer_id,
    motivation`` (a customer it lacks is ``unknown``)."""
    from patron.relationship.motivation import MOTIVATIONS

    merged = truth.merge(found[["customer_id", "motivation"]], on="customer_id", how="left")
    merged["motivation"] = merged["motivation"].fillna("unknown")
    table = pd.crosstab(pd.Categorical(merged["planted"], PLANTED), pd.Categorical(merged["motivation"], MOTIVATIONS),
                        dropna=False)
    table.index.name, table.columns.name = "planted", "found"
    return table


def accuracy(table: pd.DataFrame) -> float:
    """Share of customers whose found motivation is the planted one (``unknown`` counts as wrong)."""
    hits = sum(int(table.loc[m, m]) for m in table.index if m in table.columns)
    return hits / max(int(table.to_numpy().sum()), 1)


# --- the demo's motivation data: planted on the real CDNOW sample -------------------------------

DEMO_SEED = 20
"""Seed of :func:`demo_overlay` (the bundled demo files are its output; scripts/make_demo_motivation.py)."""

DEMO_CAMPAIGNS: tuple[tuple[str, str, float | None, str], ...] = (
    ("spring-sale-97", "discount", 20.0, "1997-03-15 09:00:00"),
    ("liner-notes-97", "content", None, "1997-05-10 09:00:00"),
    ("summer-sale-97", "discount", 15.0, "1997-07-12 09:00:00"),
    ("artists-fund-97", "values", None, "1997-09-06 09:00:00"),
    ("holiday-sale-97", "discount", 25.0, "1997-11-22 09:00:00"),
    ("new-releases-98", "content", None, "1998-01-17 09:00:00"),
    ("spring-sale-98", "discount", 20.0, "1998-03-14 09:00:00"),
    ("local-scenes-98", "values", None, "1998-05-02 09:00:00"),
)
"""(campaign_id, kind, discount_pct, sent at) of the demo's campaigns: e-mails to the CDNOW customers."""

DEMO_REACH = 0.3
"""Share of the customers who had bought by a campaign's send time who are sent it (10% of them held out)."""


def demo_overlay(orders: pd.DataFrame, *, seed: int = DEMO_SEED) -> dict[str, pd.DataFrame]:
    """Motivation data planted on real orders (the CDNOW sample: ``customer_id, occurred_at,
    amount`` in file order): each customer is drawn a motivation of :data:`PLANTED` (shares
    :data:`PLANTED_SHARES`, behaviour :data:`BEHAVIOUR`), and gets

    * ``discount`` on each order (the amount is the price paid; the discount is 10-40% of the list
      price) with the motivation's ``p_discount``;
    * the e-mails of :data:`DEMO_CAMPAIGNS` (a random :data:`DEMO_REACH` of those who had bought
      by then, 10% held out), opened with the motivation's ``p_open_discount``/``p_open_other``;
    * ``shared`` referrals (Poisson ``referrals`` over the 18 months) and, for 30%, one answer to
      the values survey (feedback ``values``, 0-10).

    The purchases are the real ones: responses to campaigns are not planted. Returns frames by
    name: ``discounts`` (one column, in the row order of ``orders``), ``campaigns``, ``contacts``,
    ``referrals``, ``feedback``, ``truth`` (customer_id, planted)."""
    rng = np.random.default_rng(seed)
    ids = np.array(sorted(orders["customer_id"].astype(str).unique()))
    kind = rng.choice(len(PLANTED), size=ids.size, p=np.asarray(PLANTED_SHARES) / np.sum(PLANTED_SHARES))

    def param(name: str) -> np.ndarray:
        return np.array([BEHAVIOUR[m][name] for m in PLANTED])[kind]

    index = {c: i for i, c in enumerate(ids)}
    who = orders["customer_id"].astype(str).map(index).to_numpy()
    discounted = rng.random(who.size) < param("p_discount")[who]
    depth = rng.uniform(0.10, 0.40, who.size)
    amount = orders["amount"].to_numpy(float)
    discounts = pd.DataFrame({"discount": np.where(discounted & (amount > 0), np.round(amount * depth / (1 - depth), 2), 0.0)})
    first = pd.Series(pd.to_datetime(orders["occurred_at"]).to_numpy()).groupby(who).min().reindex(range(ids.size)).to_numpy()
    rows = []
    for cid, ckind, _, sent in DEMO_CAMPAIGNS:
        at = np.datetime64(sent)
        eligible = np.flatnonzero(first <= at)
        target = eligible[rng.random(eligible.size) < DEMO_REACH]
        control = rng.random(target.size) < 0.1
        rows.append(pd.DataFrame({"customer_id": ids[target], "occurred_at": sent, "channel": "email", "campaign_id": cid,
                                  "kind": "sent", "in_holdout": control}))
        treated = target[~control]
        p_open = param("p_open_discount" if ckind == "discount" else "p_open_other")[treated]
        opened = treated[rng.random(treated.size) < p_open]
        open_at = at + (rng.random(opened.size) * 2 * 86400).astype("timedelta64[s]")
        rows.append(pd.DataFrame({"customer_id": ids[opened], "occurred_at": pd.to_datetime(open_at).strftime("%Y-%m-%d %H:%M:%S"),
                                  "channel": "email", "campaign_id": cid, "kind": "opened", "in_holdout": False}))
    contacts = pd.concat(rows, ignore_index=True)
    span = (np.datetime64("1998-06-30") - np.datetime64("1997-01-01")).astype(int)
    n_ref = rng.poisson(param("referrals") * 1.5)
    rw = np.repeat(np.arange(ids.size), n_ref)
    ref_at = pd.to_datetime(np.datetime64("1997-01-01") + rng.integers(0, span, rw.size).astype("timedelta64[D]"))
    referrals = pd.DataFrame({"referrer_id": ids[rw], "occurred_at": ref_at.strftime("%Y-%m-%d"), "channel": "link",
                              "kind": "shared"}).sort_values(["occurred_at", "referrer_id"], kind="stable")
    answer = np.flatnonzero(rng.random(ids.size) < 0.3)
    score = np.clip(np.round(rng.normal(param("survey")[answer], 1.5)), 0, 10)
    fb_at = pd.to_datetime(np.datetime64("1997-06-01") + rng.integers(0, 395, answer.size).astype("timedelta64[D]"))
    feedback = pd.DataFrame({"customer_id": ids[answer], "occurred_at": fb_at.strftime("%Y-%m-%d"), "score": score,
                             "kind": "values"})
    campaigns = pd.DataFrame([{"campaign_id": c, "kind": k, "discount_pct": p, "name": c.replace("-", " ")}
                              for c, k, p, _ in DEMO_CAMPAIGNS])
    return {"discounts": discounts, "campaigns": campaigns, "contacts": contacts, "referrals": referrals.reset_index(drop=True),
            "feedback": feedback, "truth": pd.DataFrame({"customer_id": ids, "planted": np.array(PLANTED)[kind]})}


DEMO_FILES: tuple[str, ...] = ("demo_transactions.csv", "demo_campaigns.csv", "demo_contacts.csv", "demo_referrals.csv",
                               "demo_feedback.csv")
"""The bundled demo files :func:`demo_files` writes (transactions first)."""


def demo_files() -> tuple[dict[str, str], pd.DataFrame]:
    """The text of each of :data:`DEMO_FILES` (CSV with a header), from the bundled CDNOW sample
    and :func:`demo_overlay`, and the planted truth. ``demo_transactions.csv`` is the sample's
    rows in file order (``customer_id`` the sample id, ``occurred_at`` the day, ``number_of_cds``,
    ``amount``) plus the simulated ``discount``."""
    from patron.data.datasets import data_path

    raw = pd.read_csv(data_path("CDNOW_sample.txt"), sep=r"\s+", header=None,
                      names=["master_customer_id", "customer_id", "date", "number_of_cds", "amount"],
                      dtype={"customer_id": str, "date": str})
    orders = pd.DataFrame({"customer_id": raw["customer_id"], "occurred_at": pd.to_datetime(raw["date"], format="%Y%m%d"),
                           "amount": raw["amount"]})
    parts = demo_overlay(orders)
    tx = pd.DataFrame({"customer_id": raw["customer_id"], "occurred_at": orders["occurred_at"].dt.strftime("%Y-%m-%d"),
                       "number_of_cds": raw["number_of_cds"], "amount": raw["amount"].map(lambda v: f"{v:.2f}"),
                       "discount": parts["discounts"]["discount"].map(lambda v: f"{v:.2f}")})
    frames = {"demo_transactions.csv": tx, "demo_campaigns.csv": parts["campaigns"], "demo_contacts.csv": parts["contacts"],
              "demo_referrals.csv": parts["referrals"], "demo_feedback.csv": parts["feedback"]}
    return {name: frame.to_csv(index=False, lineterminator="\n") for name, frame in frames.items()}, parts["truth"]
