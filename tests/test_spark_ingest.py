"""Validated ingest on Spark (local mode) rejects the same rows for the same reasons, and keeps the
same rows with the same values, as the DuckDB ingest (:func:`patron.ingest`).

Two references: hand-written expectations (which rows are bad and why, what a good row parses to)
and the DuckDB engine, an independent SQL engine running the check builders in its own dialect.
One Spark session serves the module (``slow``); skipped where pyspark or Java is missing.
"""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pyspark  # noqa: F401  (the test environment has the spark extra: a missing pyspark fails)
import pytest

import patron
from patron.data.dialect import SPARK, java_datetime_pattern
from patron.data.schema import CONSENT_CHANNELS, CONTACT_KINDS, CONTRACTS
from patron.data.store import connect
from patron.errors import InputError

if shutil.which("java") is None:
    pytest.skip("Spark needs Java 17 on the PATH and `java` was not found", allow_module_level=True)

from patron.data.engines.spark import SHORT_RUN_JAVA_OPTIONS, spark_session
from patron.data.ingest.spark import REJECT_COLUMNS, ingest_spark
from tests.spark_support import SPARK_MODULE_MARKS

pytestmark = SPARK_MODULE_MARKS

NOW = datetime(2025, 1, 1, tzinfo=UTC)
"""Fixed 'now' of every ingest: 2030 is in the future, 2024 is not."""

TX_COLUMNS = ["customer_id", "order_id", "occurred_at", "amount", "currency", "channel", "category", "discount", "margin"]

# Transactions without order_id (derived keys). Row numbers are 1-based positions in the file.
TRANSACTIONS = {
    "customer_id": ["c1", "  ", "c3", "c4", "c5", "c6", "c7", "c8", "c9", "c10", "c11", "c12", "c1", "c1", "c13", "c14", None],
    "occurred_at": ["2024-03-31 14:05:00", "2024-01-02", "yesterday", "2030-01-01", "2024-01-05", "2024-01-06", "2024-01-07",
                    "2024-01-08", "2024-03-31T14:05:00+02:00", "2024-02-30", "20240105", "2024-01-09T10:00:00Z",
                    "2024-03-31 14:05:00", "2024-03-31 14:05:00", "2024-01-10", "2024-01-11", "2024-01-12"],
    "amount": ["12.50", "3", "4", "5", "abc", "inf", "nan", None, " 7.25 ", "8", "9", "1e3", "12.50", "12.50", "x1", "1.5d", "2"],
    "currency": ["usd", "EUR", None, None, None, None, None, None, "EUR", None, None, "US", "usd", "usd", "U$D", None, None],
    "channel": ["web", None, None, None, None, None, None, None, "store", None, None, None, "web", "web", None, None, None],
    "discount": [0.0, None, None, None, None, None, None, None, 0.5, -1.0, None, None, 0.0, 0.0, None, None, None],
}
EXPECTED_TX_REJECTS = {
    (2, "customer_id", "missing customer_id"),
    (3, "occurred_at", "unparseable timestamp"),
    (4, "occurred_at", "timestamp \"2030-01-01\" is in the future (later than now plus the allowed clock skew)"),
    (5, "amount", 'non-numeric amount "abc"'),
    (6, "amount", 'amount "inf" is not a finite number'),
    (7, "amount", 'amount "nan" is not a finite number'),
    (8, "amount", "missing amount"),
    (10, "occurred_at", "unparseable timestamp"),
    (10, "discount", 'discount "-1.0" is negative'),
    (12, "currency", 'currency "US" is not a three-letter ISO 4217 code'),
    (15, "amount", 'non-numeric amount "x1"'),
    (15, "currency", 'currency "U$D" is not a three-letter ISO 4217 code'),
    (16, "amount", 'non-numeric amount "1.5d"'),
    (17, "customer_id", "missing customer_id"),
}
"""(row, column, start of the reason); unparseable reasons go on with the formats expected."""

KEYED = {  # order_id given: duplicates within the input are rejected, the first kept
    "customer_id": ["a", "b", "c", "d", "e", "f"],
    "order_id": ["A1", "A2", "A1", "A3", "A3", "A1"],
    "occurred_at": ["2024-01-01"] * 6,
    "amount": [1.0, 2.0, 3.0, float("nan"), 5.0, 6.0],
}
EXPECTED_KEYED_REJECTS = {
    (3, "order_id", 'duplicate order_id "A1" (first at row 1)'),
    (4, "amount", "is not a finite number"),
    (6, "order_id", 'duplicate order_id "A1" (first at row 1)'),
}
"""Row 4 is bad (NaN), so row 5 is the first valid A3 and is kept. The NaN is shown as 'nan' by
DuckDB and 'NaN' by Spark (a non-text value), so only the end of that reason is compared."""

CONTACTS = {  # --date-format "%d/%m/%Y %H:%M", a choice and a boolean column
    "customer_id": ["c1", "c2", "c3", "c4", "c5", "c1"],
    "occurred_at": ["05/03/2024 14:00", "2024-03-05", "06/03/2024 09:30", "07/03/2024 10:00", "08/03/2024 11:00", "05/03/2024 14:00"],
    "channel": ["email", "sms", "email", "push", "email", "email"],
    "kind": ["Sent", "sent", "bogus", "opened", "clicked", "Sent"],
    "in_holdout": ["yes", "no", "true", "maybe", "0", "yes"],
}
EXPECTED_CONTACT_REJECTS = {
    (2, "occurred_at", "unparseable timestamp"),
    (3, "kind", 'kind "bogus" is not one of ' + ", ".join(CONTACT_KINDS)),
    (4, "in_holdout", 'in_holdout "maybe" is not true/false'),
}
DATE_FORMAT = "%d/%m/%Y %H:%M"


@pytest.fixture(scope="module")
def spark():
    session = spark_session("local[2]", **{"spark.driver.extraJavaOptions": SHORT_RUN_JAVA_OPTIONS})
    yield session
    session.stop()


def _write(columns: dict, path: Path) -> str:
    pq.write_table(pa.table(columns), path, coerce_timestamps="us")
    return str(path)


def _duckdb(path: str, kind: str, tmp: Path, **kw) -> tuple[pd.DataFrame, pd.DataFrame]:
    db = tmp / "patron.duckdb"
    patron.ingest(path, kind=kind, db=db, now=NOW, rejects_file=tmp / "rejects.csv", **kw)
    with connect(str(db)) as con:
        rejects = con.execute('SELECT "row", "column", value, reason FROM rejects').df()
        names = [c.name for c in CONTRACTS[kind].columns]
        stored = con.execute(f"SELECT {', '.join(names)} FROM {kind}").df()
    return rejects, stored


def _spark_out(out: Path, rejects_out: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    return pq.read_table(out).to_pandas(), pq.read_table(rejects_out).to_pandas()


def _triples(rejects: pd.DataFrame) -> set[tuple[int, str, str]]:
    return {(int(r), c, reason) for r, c, reason in rejects[["row", "column", "reason"]].itertuples(index=False)}


def _values(rejects: pd.DataFrame) -> set[tuple[int, str, str | None]]:
    """(row, column, input text) of each reject, None for an empty value."""
    return {(int(r), c, None if pd.isna(v) else v) for r, c, v in rejects[["row", "column", "value"]].itertuples(index=False)}


def _matches(got: set, expected: set) -> bool:
    """Every expected (row, column, reason start) has exactly one reject and vice versa."""
    if len(got) != len(expected):
        return False
    return all(any(g[:2] == e[:2] and (g[2].startswith(e[2]) or g[2].endswith(e[2])) for g in got) for e in expected)


def _records(frame: pd.DataFrame, columns: list[str], key: str) -> list[tuple]:
    """Rows as tuples sorted by ``key``; missing values are None, timestamps pandas Timestamps."""
    out = []
    for row in frame[columns].itertuples(index=False):
        out.append(tuple(None if (not isinstance(v, bool) and pd.isna(v)) else (pd.Timestamp(v) if isinstance(v, datetime | pd.Timestamp) else v) for v in row))
    i = columns.index(key)
    return sorted(out, key=lambda r: r[i])


def _same_rows(duck: pd.DataFrame, spark: pd.DataFrame, key: str) -> None:
    """The same rows with the same values (floats exactly: both parse the same text)."""
    assert set(spark.columns) == set(duck.columns)
    columns = list(duck.columns)
    assert _records(spark, columns, key) == _records(duck, columns, key)


def test_transactions_same_rejects_and_rows_as_duckdb(spark, tmp_path):
    src = _write(TRANSACTIONS, tmp_path / "tx.parquet")
    duck_rejects, duck_rows = _duckdb(src, "transactions", tmp_path)
    counts = ingest_spark(spark, src, out=tmp_path / "out", rejects_out=tmp_path / "rej", now=NOW)
    rows, rejects = _spark_out(tmp_path / "out", tmp_path / "rej")

    assert list(rejects.columns) == list(REJECT_COLUMNS)
    assert _matches(_triples(rejects), EXPECTED_TX_REJECTS)
    assert _triples(rejects) == _triples(duck_rejects)
    assert _values(rejects) == _values(duck_rejects)
    # rows 1, 9, 11, 13, 14 are good; 1, 13 and 14 are identical orders
    assert counts == {"rows_read": 17, "accepted": 5, "rejected": 12}
    _same_rows(duck_rows, rows, "order_id")
    assert set(rows.columns) == set(TX_COLUMNS)
    by_customer = rows.set_index("customer_id")
    assert by_customer.loc["c9", "occurred_at"] == pd.Timestamp("2024-03-31 12:05:00")  # +02:00 -> UTC
    assert by_customer.loc["c9", "amount"] == 7.25 and by_customer.loc["c9", "currency"] == "EUR"
    assert by_customer.loc["c11", "occurred_at"] == pd.Timestamp("2024-01-05")  # YYYYMMDD
    repeated = sorted(rows.loc[rows["customer_id"] == "c1", "order_id"])
    assert len(repeated) == 3 and repeated[0].startswith("~") and repeated[0].endswith(".1")
    assert {k[:-2] for k in repeated} == {repeated[0][:-2]} and [k[-2:] for k in repeated] == [".1", ".2", ".3"]


def test_keyed_duplicates_in_a_folder_of_files(spark, tmp_path):
    src = _write(KEYED, tmp_path / "keyed.parquet")
    duck_rejects, duck_rows = _duckdb(src, "transactions", tmp_path)
    folder = tmp_path / "parts"
    folder.mkdir()
    table = pa.table(KEYED)
    _write(table.slice(0, 4).to_pydict(), folder / "part-0.parquet")  # rows 1-4
    _write(table.slice(4).to_pydict(), folder / "part-1.parquet")  # rows 5-6
    counts = ingest_spark(spark, folder, out=tmp_path / "out", rejects_out=tmp_path / "rej", now=NOW)
    rows, rejects = _spark_out(tmp_path / "out", tmp_path / "rej")
    assert _matches(_triples(rejects), EXPECTED_KEYED_REJECTS)
    assert {t[:2] for t in _triples(rejects)} == {t[:2] for t in _triples(duck_rejects)}
    assert counts == {"rows_read": 6, "accepted": 3, "rejected": 3}
    _same_rows(duck_rows, rows, "order_id")
    assert dict(zip(rows["order_id"], rows["customer_id"], strict=True)) == {"A1": "a", "A2": "b", "A3": "e"}


def test_contacts_choice_boolean_and_date_format(spark, tmp_path):
    src = _write(CONTACTS, tmp_path / "contacts.parquet")
    duck_rejects, duck_rows = _duckdb(src, "contacts", tmp_path, date_format=DATE_FORMAT)
    counts = ingest_spark(spark, src, kind="contacts", out=tmp_path / "out", rejects_out=tmp_path / "rej",
                          date_format=DATE_FORMAT, now=NOW)
    rows, rejects = _spark_out(tmp_path / "out", tmp_path / "rej")
    assert _matches(_triples(rejects), EXPECTED_CONTACT_REJECTS)
    assert _triples(rejects) == _triples(duck_rejects)
    assert counts == {"rows_read": 6, "accepted": 3, "rejected": 3}
    _same_rows(duck_rows, rows, "contact_id")
    first = rows.sort_values("contact_id")
    assert set(first["kind"]) == {"sent", "clicked"}
    assert sorted(first["in_holdout"]) == [False, True, True]
    assert pd.Timestamp("2024-03-05 14:00:00") in set(first["occurred_at"])


def test_all_or_nothing_contract_writes_no_rows(spark, tmp_path):
    consents = {
        "customer_id": ["c1", "c2", "c3"],
        "purpose": ["marketing"] * 3,
        "channel": ["email", "pigeon", "sms"],
        "status": ["granted", "granted", "denied"],
        "occurred_at": ["2024-01-01", "2024-01-02", "2024-01-03"],
        "expires_at": ["2030-01-01", None, None],  # may lie in the future
    }
    src = _write(consents, tmp_path / "consents.parquet")
    with pytest.raises(InputError) as duck:
        patron.ingest(src, kind="consents", db=tmp_path / "p.duckdb", now=NOW, rejects_file=tmp_path / "r.csv")
    with pytest.raises(InputError) as err:
        ingest_spark(spark, src, kind="consents", out=tmp_path / "out", rejects_out=tmp_path / "rej", now=NOW)
    message = str(err.value)
    assert "\n" not in message and "row 2, column channel" in message and "nothing written" in message
    assert "row 2, column channel" in str(duck.value)
    assert not (tmp_path / "out").exists()
    assert _triples(pq.read_table(tmp_path / "rej").to_pandas()) == {
        (2, "channel", 'channel "pigeon" is not one of ' + ", ".join(CONSENT_CHANNELS))
    }


PLAUSIBLE = {  # the plausibility rules (docs/data-contract.md), row by row
    "customer_id": ["c1", "c2", "c3", "c4", "c5", "c6", "c7", "a\u200bb", "\u202eevil", "a\x00b", '{"id": 7}',
                    "{3F2504E0}", "c13", "c14", "c15", "c16", "c17", "c18"],
    "occurred_at": ["2024-03-31T14:05:00 Europe/Paris", "2024-10-27 02:30:00 Europe/Paris",
                    "2024-03-31 02:30:00 Europe/Paris", "2024-03-31 14:05:00+25:00", "2024-03-31 16:05 +14",
                    "-2024-01-01", "1899-12-31", "2024-01-01", "2024-01-01", "2024-01-01", "2024-01-01",
                    "2024-01-01", "2024-01-01", "2024-01-01", "2024-03-31T16:05:00-0230",
                    "2024-03-31 14:05:00 Mars/Olympus", "2024-01-01\n", "2024-03-05T01:05:07.123456789Z"],
    "amount": ["1"] * 12 + ["1_000", "1e16", "1", "1", "1", "+.5e1"],
}
EXPECTED_PLAUSIBLE_REJECTS = {
    (4, "occurred_at", 'unparseable timestamp "2024-03-31 14:05:00+25:00"'),
    (6, "occurred_at", 'unparseable timestamp "-2024-01-01"'),
    (7, "occurred_at", 'timestamp "1899-12-31" is before 1900-01-01 (the date floor, PATRON_DATE_FLOOR)'),
    (8, "customer_id", 'customer_id "a\u200bb" contains U+200B'),
    (9, "customer_id", 'customer_id "\u202eevil" contains U+202E'),
    (10, "customer_id", 'customer_id "a\x00b" contains U+0000'),
    (11, "customer_id", 'customer_id "{"id": 7}" is a JSON object or array, not an id'),
    (13, "amount", 'non-numeric amount "1_000"'),
    (14, "amount", 'amount "1e16" is over the largest plausible amount (1e+15)'),
    (16, "occurred_at", 'unparseable timestamp "2024-03-31 14:05:00 Mars/Olympus"'),
    (17, "occurred_at", 'unparseable timestamp "2024-01-01\n"'),
}


def test_plausibility_rules_same_as_duckdb(spark, tmp_path):
    src = _write(PLAUSIBLE, tmp_path / "plausible.parquet")
    duck_rejects, duck_rows = _duckdb(src, "transactions", tmp_path)
    counts = ingest_spark(spark, src, out=tmp_path / "out", rejects_out=tmp_path / "rej", now=NOW)
    rows, rejects = _spark_out(tmp_path / "out", tmp_path / "rej")
    assert _matches(_triples(rejects), EXPECTED_PLAUSIBLE_REJECTS)
    assert _triples(rejects) == _triples(duck_rejects)
    assert counts == {"rows_read": 18, "accepted": 7, "rejected": 11}
    _same_rows(duck_rows, rows, "customer_id")
    at = dict(zip(rows["customer_id"], rows["occurred_at"], strict=True))
    # Paris is UTC+2 from 31 March 2024 01:00 UTC to 27 October 01:00 UTC, UTC+1 otherwise
    assert at["c1"] == pd.Timestamp("2024-03-31 12:05")
    assert at["c2"] == pd.Timestamp("2024-10-27 00:30")  # 02:30 came twice that night: the first
    assert at["c3"] == pd.Timestamp("2024-03-31 01:30")  # 02:30 never came: read at UTC+1
    assert at["c5"] == pd.Timestamp("2024-03-31 02:05") and at["c15"] == pd.Timestamp("2024-03-31 18:35")
    assert at["c18"] == pd.Timestamp("2024-03-05 01:05:07.123456")  # truncated to microseconds
    assert rows.set_index("customer_id").loc["c18", "amount"] == 5.0


def test_nested_customer_id_is_rejected_like_duckdb(spark, tmp_path):
    table = pa.table({"customer_id": pa.array([{"id": 7}, None]), "occurred_at": ["2024-01-01"] * 2,
                      "amount": [1.0, 2.0]})
    pq.write_table(table, tmp_path / "nested.parquet")
    src = str(tmp_path / "nested.parquet")
    with pytest.raises(InputError):  # no valid row
        patron.ingest(src, kind="transactions", db=tmp_path / "p.duckdb", now=NOW, rejects_file=tmp_path / "r.csv")
    with pytest.raises(InputError):
        ingest_spark(spark, src, out=tmp_path / "out", rejects_out=tmp_path / "rej", now=NOW)
    expected = {(1, "customer_id", 'customer_id "{"id":7}" is a JSON object or array, not an id'),
                (2, "customer_id", "missing customer_id")}
    assert _triples(pq.read_table(tmp_path / "rej").to_pandas()) == expected
    with connect(str(tmp_path / "p.duckdb")) as con:
        assert _triples(con.execute('SELECT "row", "column", value, reason FROM rejects').df()) == expected


def test_unsupported_strftime_code_is_a_one_line_input_error(spark, tmp_path):
    src = _write(CONTACTS, tmp_path / "contacts.parquet")
    with pytest.raises(InputError) as err:
        ingest_spark(spark, src, kind="contacts", out=tmp_path / "out", rejects_out=tmp_path / "rej", date_format="%d %b %Y")
    assert "%b" in str(err.value) and "\n" not in str(err.value)
    assert not (tmp_path / "out").exists() and not (tmp_path / "rej").exists()


@pytest.mark.parametrize(("strftime", "java"), [
    ("%Y%m%d", "yyyyMMdd"),
    ("%d/%m/%Y %H:%M:%S", "dd/MM/yyyy HH:mm:ss"),
    ("%Y-%m-%dT%H:%M", "yyyy-MM-dd'T'HH:mm"),
    ("%d.%m.%Y 100%%", "dd.MM.yyyy 100%"),
])
def test_java_datetime_pattern(strftime, java):
    assert java_datetime_pattern(strftime) == java


def test_spark_literal_escapes_quotes_and_backslashes():
    assert SPARK.literal("it's \\N") == "'it\\'s \\\\N'"


def test_customers_keep_extra_columns_as_attributes(spark, tmp_path):
    customers = {
        "customer_id": ["c1", "c2", "c1", "c3"],
        "first_seen": ["2024-01-01", "2024-01-02", "2024-01-03", "soon"],
        "email": ["a@x.org", "b@x.org", "c@x.org", "d@x.org"],
        "tier": ["gold", "silver", "gold", "bronze"],
    }
    src = _write(customers, tmp_path / "customers.parquet")
    duck_rejects, duck_rows = _duckdb(src, "customers", tmp_path)
    counts = ingest_spark(spark, src, kind="customers", out=tmp_path / "out", rejects_out=tmp_path / "rej", now=NOW)
    rows, rejects = _spark_out(tmp_path / "out", tmp_path / "rej")
    assert _triples(rejects) == _triples(duck_rejects) == {
        (3, "customer_id", 'duplicate customer_id "c1" (first at row 1)'),
        (4, "first_seen", 'unparseable timestamp "soon" (expected ISO 8601 such as 2024-03-31, 2024-03-31T14:05:00Z, '
                          "2024-03-31T16:05:00+02:00 (offsets up to ±14:00) or 2024-03-31T16:05:00 Europe/Paris, "
                          "or YYYYMMDD; set --date-format otherwise)"),
    }
    assert counts == {"rows_read": 4, "accepted": 2, "rejected": 2}
    _same_rows(duck_rows, rows.drop(columns="attributes"), "customer_id")
    attributes = dict(zip(rows["customer_id"], rows["attributes"].map(json.loads), strict=True))
    assert attributes == {"c1": {"email": "a@x.org", "tier": "gold"}, "c2": {"email": "b@x.org", "tier": "silver"}}


def test_dataframe_source_is_numbered_in_order(spark, tmp_path):
    rows = list(zip(*KEYED.values(), strict=True))  # from Python rows: NaN stays NaN (pandas would make it NULL)
    frame = spark.createDataFrame(rows, "customer_id string, order_id string, occurred_at string, amount double")
    counts = ingest_spark(spark, frame, out=tmp_path / "out", rejects_out=tmp_path / "rej", now=NOW)
    _, rejects = _spark_out(tmp_path / "out", tmp_path / "rej")
    assert _matches(_triples(rejects), EXPECTED_KEYED_REJECTS)
    assert counts == {"rows_read": 6, "accepted": 3, "rejected": 3}


def test_ingest_on_spark_from_python_defaults_the_rejects_folder(spark, tmp_path):
    """``patron ingest --engine spark`` from the Python API: the same counts as ingest_spark, the
    rejects beside ``out`` by default, and without ``out`` one line naming the parameter."""
    from patron.data.ingest.spark import ingest_on_spark

    src = _write(KEYED, tmp_path / "keyed.parquet")
    result = ingest_on_spark(src, out=tmp_path / "orders", spark=spark)
    assert result == {"rows_read": 6, "accepted": 3, "rejected": 3, "kind": "transactions", "out": str(tmp_path / "orders"),
                      "rejects": str(tmp_path / "orders_rejects"), "engine": "spark"}
    rows, rejects = _spark_out(tmp_path / "orders", tmp_path / "orders_rejects")
    assert len(rows) == 3 and _matches(_triples(rejects), EXPECTED_KEYED_REJECTS)
    with pytest.raises(InputError, match=r"^out is needed on the Spark engine") as caught:
        ingest_on_spark(src, out=None, spark=spark)
    assert caught.value.parameters == ("out",)
