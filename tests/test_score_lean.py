"""The lean scoring path (issue 22): a bad summary row is still named by its customer id (the ids are
looked up only for the rows at fault), scores keep the ids and their order without a Python
string per customer, and the reading engine can be released between two reads."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

import patron
from patron.data import store
from patron.errors import InputError
from patron.value.scoring import check_summary, score
from patron.value.settings import SPEND_BASES


def summary_frame(ids: list[str]) -> pd.DataFrame:
    n = len(ids)
    rng = np.random.default_rng(3)
    x = rng.integers(0, 5, n).astype(float)
    T = np.full(n, 40.0)
    tx = np.where(x > 0, rng.uniform(1, 39, n), 0.0)
    m = np.where(x > 0, rng.uniform(5, 50, n), 0.0)
    table = pa.table({"customer_id": pa.array(ids), "frequency": x, "recency": tx, "T": T, "monetary_value": m})
    return table.to_pandas()


def test_a_bad_row_is_named_by_its_customer_id():
    frame = summary_frame([f"c{i}" for i in range(10)])
    frame.loc[[2, 5, 7, 8], "recency"] = 99.0  # later than T
    frame.loc[[2, 5, 7, 8], "frequency"] = 1.0
    with pytest.raises(InputError, match=r"recency is not between 0 and T for 4 customers \(c2, c5, c7, \.\.\.\)"):
        check_summary(frame)
    frame = summary_frame([f"c{i}" for i in range(10)]).drop(columns="customer_id")
    frame.loc[4, "T"] = np.nan
    with pytest.raises(InputError, match=r"for 1 customer \(row 5\)"):
        check_summary(frame)


def test_scores_keep_the_ids_in_order_and_spend_bases_as_text():
    ids = [f"id-{i:04d}" for i in range(2000)][::-1]
    frame = summary_frame(ids)
    res = score(frame)
    assert res.customers["customer_id"].astype(str).tolist() == ids
    own, none, nonpositive = SPEND_BASES
    frame.loc[[0, 1], ["frequency", "recency", "monetary_value"]] = [[2.0, 10.0, 0.0], [0.0, 0.0, 0.0]]
    res = score(frame)
    x, m = frame["frequency"].to_numpy(), frame["monetary_value"].to_numpy()
    want = np.where(x > 0, np.where(m > 0, own, nonpositive), none)
    basis = res.customers["spend_basis"].astype(str).to_numpy()
    assert basis[0] == nonpositive and basis[1] == none
    assert (basis == want).all()
    out = pa.Table.from_pandas(res.customers, preserve_index=False)
    assert pa.types.is_string(out.schema.field("spend_basis").type) or pa.types.is_large_string(out.schema.field("spend_basis").type)


def test_the_reading_engine_can_be_released_between_reads(tmp_path, db):
    tx = pa.table({"customer_id": ["a", "a", "b"], "order_id": ["1", "2", "3"],
                   "occurred_at": pa.array(["2025-01-01", "2025-01-08", "2025-01-03"]).cast(pa.timestamp("us")),
                   "amount": [10.0, 20.0, 5.0]})
    patron.ingest(tx, db=db)
    first = patron.summary(db, end="2025-02-01", output="arrow")
    store.release_reader()
    assert store._READER.engine is None
    again = patron.summary(db, end="2025-02-01", output="arrow")
    assert again.equals(first)
    assert again.column("frequency").to_pylist() == [1, 0]


def test_the_score_command_writes_what_the_library_computes(tmp_path, db):
    """The command's lean path (summary columns as Arrow, engine released, dictionaries chosen) gives
    the scores of ``score(summary(db))`` on the same database, column for column."""
    import pyarrow.parquet as pq
    from typer.testing import CliRunner

    from patron.cli.app import app as cli_app
    from patron.value.simulate import simulate_transactions

    patron.ingest(simulate_transactions(3000, seed=5), db=db)
    out = tmp_path / "scores.parquet"
    result = CliRunner().invoke(cli_app, ["score", "--db", db, "--end", "2025-06-30", "--out", str(out), "--json"])
    assert result.exit_code == 0, result.output
    written = pq.read_table(out).to_pandas()
    want = score(patron.summary(db, end="2025-06-30")).customers
    assert list(written.columns) == list(want.columns)
    assert written["customer_id"].astype(str).tolist() == want["customer_id"].astype(str).tolist()
    assert written["spend_basis"].astype(str).tolist() == want["spend_basis"].astype(str).tolist()
    numbers = [c for c in want.columns if c not in ("customer_id", "spend_basis")]
    np.testing.assert_array_equal(written[numbers].to_numpy(dtype=float), want[numbers].to_numpy(dtype=float))


def test_summary_columns_are_those_of_the_whole_summary(db):
    """``columns`` keeps the named summary columns (customer_id first) of every bucket: the same
    values, in the same customer order, as the whole summary computed in one query."""
    from patron.value.simulate import simulate_transactions

    patron.ingest(simulate_transactions(2000, seed=11), db=db)
    whole = patron.summary(db, end="2025-06-30", output="arrow", buckets=1)
    some = patron.summary(db, end="2025-06-30", output="arrow", buckets=5, columns=("T", "frequency", "T"))
    assert some.column_names == ["customer_id", "T", "frequency"]
    assert some.num_rows == whole.num_rows > 1000
    assert some.equals(whole.select(["customer_id", "T", "frequency"]))
    with pytest.raises(InputError, match="unknown summary column 'zbar'"):
        patron.summary(db, end="2025-06-30", columns=("frequency", "zbar"))
    with pytest.raises(InputError, match="frequency_holdout need holdout_end"):
        patron.summary(db, end="2025-06-30", columns=("frequency_holdout",))
    with pytest.raises(InputError, match="columns and compressed"):
        patron.summary(db, end="2025-06-30", columns=("frequency",), compressed=("frequency",))


def test_the_score_command_in_buckets_writes_the_same_scores(tmp_path, db, monkeypatch):
    """Summarised in several buckets, five columns kept, the engine's cache handed back before the
    sort, the command's scores are those of ``score(summary(db))`` computed in one query, to the
    last digit."""
    import pyarrow.parquet as pq
    from typer.testing import CliRunner

    import patron.value.summary as summary_module
    from patron.cli.app import app as cli_app
    from patron.value.simulate import simulate_transactions

    patron.ingest(simulate_transactions(3000, seed=7), db=db)
    want = score(patron.summary(db, end="2025-06-30", buckets=1)).customers
    monkeypatch.setattr(summary_module, "ROWS_PER_BUCKET", 2000)  # several buckets for a few thousand orders
    out = tmp_path / "scores.parquet"
    result = CliRunner().invoke(cli_app, ["score", "--db", db, "--end", "2025-06-30", "--out", str(out), "--json"])
    assert result.exit_code == 0, result.output
    written = pq.read_table(out).to_pandas()
    assert list(written.columns) == list(want.columns)
    assert written["customer_id"].astype(str).tolist() == want["customer_id"].astype(str).tolist()
    numbers = [c for c in want.columns if c not in ("customer_id", "spend_basis")]
    np.testing.assert_array_equal(written[numbers].to_numpy(dtype=float), want[numbers].to_numpy(dtype=float))
