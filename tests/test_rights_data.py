"""A database with one distinctive person in every table that can hold personal data, for the
data-rights tests (no tests here; imported by test_rights_export.py and test_rights_erase.py).

Everything about the person is known by construction: :data:`PERSON_ORDERS` are their
transactions, and the other tables get hand-written rows, so expected values never come from the
code under test.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

import patron
from patron.data.store import connect

PERSON = "cust-ZQXJ-4471"
"""The person to export and erase: an id that occurs nowhere by chance."""

EMAIL = "zqxj.person@example.org"
"""The person's email, an attribute in the customers file (an identity attribute)."""

BYSTANDER = "c007"
"""A customer with no link to the person (no referral, nothing shared)."""

PERSON_ORDERS = pd.DataFrame({
    "customer_id": [PERSON] * 4,
    "order_id": ["zq-o1", "zq-o2", "zq-o3", "zq-o4"],
    "occurred_at": ["2024-01-03 10:00", "2024-02-14 18:30", "2024-05-01 09:15", "2024-05-03 12:00"],
    "amount": [12.5, 40.0, 7.25, -5.0],
    "category": ["books", "garden", "books", "books"],
})
"""The person's orders (one refund): revenue 54.75, 4 orders."""

PERSON_REVENUE = 54.75
"""Sum of :data:`PERSON_ORDERS` amounts, by hand: 12.5 + 40 + 7.25 - 5."""

MARKERS: tuple[str, ...] = (PERSON, EMAIL, "Zqxjville", "zqxj", "zq-o")
"""Text that only the person's data contains: id, email, city, their common core, their order ids."""

OTHERS = [f"c{i:03d}" for i in range(1, 41)]
"""Forty other customers."""


def _other_orders(seed: int = 7) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for cid in OTHERS:
        for k in range(int(rng.integers(1, 7))):
            day = pd.Timestamp("2024-01-01") + pd.Timedelta(days=int(rng.integers(0, 300)))
            rows.append({"customer_id": cid, "order_id": f"{cid}-o{k}", "occurred_at": day.isoformat(sep=" "),
                         "amount": round(float(rng.gamma(2.0, 20.0)), 2), "category": str(rng.choice(["books", "garden", "toys"]))})
    return pd.DataFrame(rows)


def build_database(tmp_path: Path, *, derived: bool = True) -> str:
    """Ingest the person and the others into ``tmp_path/shop.duckdb`` from CSV files, add derived
    tables (and a view, and a table in another schema) by ``CREATE TABLE AS``; return the path."""
    db = str(tmp_path / "shop.duckdb")
    src = tmp_path / "in"
    src.mkdir()
    orders = pd.concat([PERSON_ORDERS, _other_orders()], ignore_index=True)
    orders.to_csv(src / "orders.csv", index=False)
    customers = pd.DataFrame({
        "customer_id": [PERSON, *OTHERS, PERSON],  # the repeated row is rejected: a reject whose value is the id
        "first_seen": ["2023-12-30"] * (len(OTHERS) + 2),
        "email": [EMAIL, *[f"{c}@example.com" for c in OTHERS], EMAIL],
        "city": ["Zqxjville", *["Lyon"] * len(OTHERS), "Zqxjville"],
    })
    customers.to_csv(src / "customers.csv", index=False)
    contacts = pd.DataFrame({
        "customer_id": [PERSON, PERSON, PERSON, "c001", BYSTANDER],
        "occurred_at": ["2024-01-10", "2024-01-11", "2024-03-01", "2024-01-10", "2024-01-10"],
        "channel": ["email", "email", "sms", "email", "email"],
        "campaign_id": ["spring", "spring", "flash", "spring", "spring"],
        "kind": ["sent", "opened", "sent", "sent", "sent"],
    })
    contacts.to_csv(src / "contacts.csv", index=False)
    consents = pd.DataFrame({
        "customer_id": [PERSON, PERSON, BYSTANDER],
        "purpose": ["marketing", "marketing", "marketing"],
        "channel": ["email", "email", "email"],
        "status": ["granted", "revoked", "granted"],
        "occurred_at": ["2024-01-01", "2024-04-01", "2024-01-01"],
        "source": ["web form", "app", "web form"],
    })
    consents.to_csv(src / "consents.csv", index=False)
    preferences = pd.DataFrame({
        "customer_id": [PERSON, BYSTANDER], "occurred_at": ["2024-01-02", "2024-01-02"],
        "channel": ["email", "any"], "max_per_week": [1, 3], "time_zone": ["Europe/Paris", "UTC"],
    })
    preferences.to_csv(src / "preferences.csv", index=False)
    feedback = pd.DataFrame({
        "customer_id": [PERSON, BYSTANDER], "occurred_at": ["2024-02-20", "2024-02-21"],
        "score": [9, 6], "kind": ["nps", "nps"],
    })
    feedback.to_csv(src / "feedback.csv", index=False)
    referrals = pd.DataFrame({
        "referrer_id": [PERSON, "c002", "c003", BYSTANDER],
        "referred_id": ["c001", PERSON, EMAIL, "c010"],  # as referrer, as referred by id, as referred by email
        "occurred_at": ["2024-03-01", "2023-12-20", "2023-12-21", "2024-03-02"],
        "kind": ["invited", "signed_up", "invited", "invited"],
        "link_id": ["L1", "L2", "L3", "L4"],
    })
    referrals.to_csv(src / "referrals.csv", index=False)
    for kind in ("transactions", "customers", "contacts", "consents", "preferences", "feedback", "referrals"):
        name = "orders" if kind == "transactions" else kind
        patron.ingest(src / f"{name}.csv", kind=kind, db=db, rejects_file=src / f"{name}.rejects.csv")
    if derived:
        add_derived_tables(db)
    return db


def add_derived_tables(db: str) -> None:
    """Tables other parts of patron derive per customer, built here by ``CREATE TABLE AS``."""
    with connect(db) as con:
        con.execute("CREATE TABLE scores AS SELECT customer_id, sum(amount) AS revenue, count(*) AS n_orders FROM transactions GROUP BY customer_id").fetchall()
        con.execute("CREATE TABLE incremental_value AS SELECT customer_id, 'spring' AS campaign_id, 0.5 * count(*) AS value FROM contacts GROUP BY customer_id").fetchall()
        con.execute("CREATE SCHEMA analytics").fetchall()
        con.execute("CREATE TABLE analytics.notes AS SELECT customer_id, 'note about ' || customer_id AS note FROM customers").fetchall()
        con.execute("CREATE VIEW revenue_by_customer AS SELECT customer_id, sum(amount) AS revenue FROM transactions GROUP BY customer_id").fetchall()
        con.execute("CREATE TABLE campaign_names (campaign_id VARCHAR, name VARCHAR)").fetchall()
        con.execute("INSERT INTO campaign_names VALUES ('spring', 'Spring sale'), ('flash', 'Flash sale')").fetchall()


PERSON_TABLES: dict[str, tuple[str, ...]] = {
    "customers": ("customer_id",),
    "transactions": ("customer_id",),
    "contacts": ("customer_id",),
    "consents": ("customer_id",),
    "preferences": ("customer_id",),
    "feedback": ("customer_id",),
    "referrals": ("referrer_id", "referred_id"),
    "scores": ("customer_id",),
    "incremental_value": ("customer_id",),
    "analytics.notes": ("customer_id",),
    "identities": ("customer_id",),
    "identity_links": ("customer_id",),
    "identity_observations": ("customer_id",),
}
"""The tables the fixture puts the person in, with their person columns (written by hand)."""

PERSON_ROWS: dict[str, int] = {
    "customers": 1, "transactions": 4, "contacts": 3, "consents": 2, "preferences": 1, "feedback": 1,
    "referrals": 3, "scores": 1, "incremental_value": 1, "analytics.notes": 1, "rejects": 1,
    "identities": 2, "identity_links": 2, "identity_observations": 2,
}
"""How many rows about the person each table holds, counted from the data above by hand (referrals:
as referrer, as referred by id, as referred by email; rejects: the repeated customers row; the
identity graph: their customer id and e-mail, one link of the two, observed once, from the
customers file)."""


def file_bytes(db: str) -> bytes:
    data = Path(db).read_bytes()
    wal = Path(db + ".wal")
    return data + (wal.read_bytes() if wal.exists() else b"")


def needles(*texts: str) -> list[bytes]:
    out = []
    for t in texts:
        for v in {t, t.upper(), t.lower()}:
            out += [v.encode("utf-8"), v.encode("utf-16-le"), v.encode("utf-16-be")]
    return out


def bytes_hits(db: str, *texts: str) -> list[bytes]:
    """The encodings of ``texts`` (UTF-8, UTF-16; as given, upper and lower case) found in the
    bytes of the database file or its write-ahead log."""
    data = file_bytes(db)
    return [n for n in needles(*texts) if n in data]


def text_hits(db: str, *texts: str) -> list[tuple[str, str, str]]:
    """Every (table, column, text) where a text column of a table contains ``text`` (any case)."""
    hits = []
    with connect(db, read_only=True) as con:
        cols = con.execute(
            "SELECT c.table_schema, c.table_name, c.column_name FROM information_schema.columns c JOIN information_schema.tables t "
            "USING (table_catalog, table_schema, table_name) WHERE t.table_type = 'BASE TABLE' AND c.data_type = 'VARCHAR'"
        ).fetchall()
        by_table: dict[tuple[str, str], list[str]] = {}
        for schema, table, col in cols:
            by_table.setdefault((schema, table), []).append(col)
        for (schema, table), names in by_table.items():
            pairs = [(c, t) for c in names for t in texts]
            sums = ", ".join(f'sum(CASE WHEN instr(lower("{c}"), lower(?)) > 0 THEN 1 ELSE 0 END)' for c, _ in pairs)
            counts = con.execute(f'SELECT {sums} FROM "{schema}"."{table}"', [t for _, t in pairs]).fetchall()[0]
            hits += [(f"{schema}.{table}", c, t) for (c, t), n in zip(pairs, counts, strict=True) if n]
    return hits
