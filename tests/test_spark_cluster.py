"""patron on a real Spark cluster: a standalone master and two workers on this machine.

``scripts/spark_cluster.py`` starts the master and two workers (one core and 1 GB each) from pyspark's
own distribution; executors then run in their own JVMs, launched by the workers, and start the driver's
Python for the steps that run Python there. On that cluster the test runs the whole pipeline -- ingest a
raw file with bad rows, summary, BG/NBD and Gamma-Gamma fits, scores written by the executors, customer
equity and its interval, relationship status -- through the public API in one session, and
``patron score --engine spark`` through the command line with ``PATRON_SPARK_MASTER``; every result is
compared with the DuckDB engine's on the same data (and the rejects with hand-written expectations).

It also proves what docs/spark.md says executors need: with the executors' Python made unstartable,
ingest, the summary and the fits still run (pure Spark SQL; only the distinct statistic rows come to
the driver), while scoring and status fail (they run patron's NumPy code on the executors).

One cluster and one Spark session serve the module (about 2-3 minutes on 2 busy cores). Its own xdist
group lets it run beside the local-mode Spark modules; in one process they run one after the other
(each stops its session; the session fixture checks that none is active).
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pyspark  # noqa: F401  (the test environment has the spark extra: a missing pyspark fails)
import pytest

import patron
from patron.data.datasets import CDNOW_CALIBRATION_END, CDNOW_HOLDOUT_END, load_cdnow
from patron.data.store import connect
from patron.value.scoring import fit_model, score

ROOT = Path(__file__).resolve().parents[1]

pytestmark = [
    pytest.mark.spark,
    pytest.mark.slow,
    pytest.mark.xdist_group("spark-cluster"),
    pytest.mark.filterwarnings("ignore:PySpark does not yet fully support pandas:FutureWarning"),
    pytest.mark.filterwarnings("ignore:The copy keyword is deprecated"),
]

NOW = datetime(2025, 1, 1, tzinfo=UTC)
"""Fixed 'now' of both ingests (CDNOW is 1997-98; the planted future row is 2030)."""

FLOAT_REL_TOLERANCE = 1e-12
"""Sums and means of amounts differ in the last bits between the engines, which add the same doubles in
another order (measured on CDNOW: up to 5 ulp for monetary_value, 2 for total_spend, in local mode too)."""

AMOUNT_SUMS = ("monetary_value", "total_spend", "refunded", "monetary_value_holdout")
"""Summary columns that sum amounts; every other column must be equal exactly."""

PARAM_REL_TOLERANCE = 1e-9
SCORE_REL_TOLERANCE = 1e-9
INTERVAL_REL_TOLERANCE = 1e-8
"""As tests/test_spark_engine.py: the delta method's forward differences magnify last bits."""

STATUS_AS_OF = "1998-03-31"
VALUE = dict(horizon=52.0, discount_rate=0.1, margin=0.3)

BAD_ROWS = {
    3: ("", "1997-01-05", "10.00"),
    100: ("bad-ts", "1997-13-45", "10.00"),
    2000: ("bad-amount", "1997-02-01", "ten"),
    6000: ("from-the-future", "2030-01-01", "10.00"),
}
"""Rows planted in the raw file at these 1-based positions: (customer_id, occurred_at, amount) as text."""

EXPECTED_REJECTS = {(3, "customer_id"), (100, "occurred_at"), (2000, "amount"), (6000, "occurred_at")}


def _load_cluster_module():
    spec = importlib.util.spec_from_file_location("spark_cluster", ROOT / "scripts" / "spark_cluster.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    spark_cluster = _load_cluster_module()
    from patron.data.engines.spark import SHORT_RUN_JAVA_OPTIONS

    with spark_cluster.StandaloneCluster(tmp_path_factory.mktemp("cluster"), workers=2, cores=1, memory="1g",
                                         java_options=SHORT_RUN_JAVA_OPTIONS) as running:
        state = running.state()
        assert state["aliveworkers"] == 2 and state["cores"] == 2, state
        yield running
        # daemons, executors, executors' Python daemons and workers (seen while the session ran)
        started = set(running.process_pids()) | set(getattr(running, "seen_with_session", ()))
    left = [pid for pid in started if _alive(pid)]
    assert not left, f"processes left after stop: {left}"


@pytest.fixture(scope="module")
def raw(tmp_path_factory) -> Path:
    """CDNOW as text columns (as exported by a shop), with the rows of :data:`BAD_ROWS` planted."""
    cdnow = load_cdnow()
    frame = pd.DataFrame({"customer_id": cdnow["customer_id"].astype(str),
                          "occurred_at": cdnow["occurred_at"].dt.strftime("%Y-%m-%d"),
                          "amount": cdnow["amount"].map(lambda v: f"{v:.2f}")})
    rows = frame.to_dict("list")
    for position in sorted(BAD_ROWS):
        for column, value in zip(rows, BAD_ROWS[position], strict=True):
            rows[column].insert(position - 1, value)
    path = tmp_path_factory.mktemp("raw") / "orders.parquet"
    pq.write_table(pa.table(rows), path)
    return path


@pytest.fixture(scope="module")
def duck(raw, tmp_path_factory) -> str:
    """The DuckDB engine's store after ingesting the same raw file (the reference)."""
    db = str(tmp_path_factory.mktemp("duck") / "patron.duckdb")
    patron.ingest(str(raw), kind="transactions", db=db, now=NOW)
    return db


def _run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "patron", *args], capture_output=True, text=True, timeout=900,
                          env=env, cwd=ROOT)


@pytest.fixture(scope="module")
def cli_scores(cluster, duck, tmp_path_factory) -> dict:
    """``patron score --engine spark`` on the cluster (its own application, run before the module's
    session takes the workers' cores) and ``patron score --db`` on DuckDB, on the same clean rows."""
    folder = tmp_path_factory.mktemp("cli")
    clean = folder / "clean.parquet"
    with connect(duck) as con:
        con.execute("COPY (SELECT customer_id, occurred_at, amount FROM transactions) TO ? (FORMAT parquet)",
                    [str(clean)])
    from patron.data.engines.spark import SHORT_RUN_JAVA_OPTIONS
    env = {**os.environ, "PATRON_SPARK_MASTER": cluster.master_url,
           "PYSPARK_SUBMIT_ARGS": f'--conf "spark.executor.extraJavaOptions={SHORT_RUN_JAVA_OPTIONS}" '
                                  "--conf spark.scheduler.minRegisteredResourcesRatio=1.0 pyspark-shell"}
    env.pop("PYSPARK_PYTHON", None)  # the CLI's spark_session sets it to its own interpreter
    settings = ["--end", CDNOW_CALIBRATION_END, "--horizon", "52", "--discount-rate", "0.1", "--margin", "0.3", "--json"]
    on_spark = _run_cli("score", "--engine", "spark", "--transactions", str(clean), "--out", str(folder / "scores"),
                        *settings, env=env)
    on_duck = _run_cli("score", "--db", duck, "--out", str(folder / "scores.parquet"), *settings)
    assert on_spark.returncode == 0, on_spark.stderr[-3000:]
    assert on_duck.returncode == 0, on_duck.stderr[-3000:]
    return {"spark": json.loads(on_spark.stdout), "duck": json.loads(on_duck.stdout),
            "spark_rows": pd.read_parquet(folder / "scores"), "duck_rows": pd.read_parquet(folder / "scores.parquet"),
            "apps": {a["id"] for a in cluster.state()["completedapps"]}}


@pytest.fixture(scope="module")
def spark(cluster, cli_scores):
    from pyspark.sql import SparkSession

    from patron.data.engines.spark import SHORT_RUN_JAVA_OPTIONS, spark_session

    assert SparkSession.getActiveSession() is None, "another Spark session is active in this process"
    session = spark_session(cluster.master_url, **{
        "spark.driver.extraJavaOptions": SHORT_RUN_JAVA_OPTIONS,
        "spark.executor.extraJavaOptions": SHORT_RUN_JAVA_OPTIONS,
        "spark.executor.memory": "1g",
        # jobs wait until both executors are registered, so both take part
        "spark.scheduler.minRegisteredResourcesRatio": "1.0",
        "spark.scheduler.maxRegisteredResourcesWaitingTime": "120s",
    })
    try:
        assert session.sparkContext.master == cluster.master_url
        yield session
        cluster.seen_with_session = cluster.process_pids()
    finally:
        session.stop()


@pytest.fixture(scope="module")
def ingested(spark, raw, tmp_path_factory) -> tuple[Path, dict[str, int], pd.DataFrame]:
    from patron.data.ingest.spark import ingest_spark

    folder = tmp_path_factory.mktemp("ingested")
    counts = ingest_spark(spark, str(raw), kind="transactions", out=folder / "clean", rejects_out=folder / "rejects",
                          now=NOW)
    return folder / "clean", counts, pd.read_parquet(folder / "rejects")


def _sorted(frame: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    return frame.sort_values(keys, kind="stable").reset_index(drop=True)


def test_cluster_runs_two_workers_on_loopback(cluster):
    state = cluster.state()
    assert state["url"] == cluster.master_url and cluster.master_url.startswith("spark://127.0.0.1:")
    assert [(w["host"], w["cores"], w["memory"], w["state"]) for w in state["workers"]] == [("127.0.0.1", 1, 1024, "ALIVE")] * 2


def test_ingest_on_cluster_same_as_duckdb(ingested, duck):
    clean, counts, rejects = ingested
    rows = 6919 + len(BAD_ROWS)
    assert counts == {"rows_read": rows, "accepted": 6919, "rejected": len(BAD_ROWS)}
    assert set(zip(rejects["row"], rejects["column"], strict=True)) == EXPECTED_REJECTS
    with connect(duck) as con:
        duck_rejects = con.execute('SELECT "row", "column", reason FROM rejects').df()
        duck_rows = con.execute("SELECT order_id, customer_id, occurred_at, amount FROM transactions").df()
    assert set(zip(rejects["row"], rejects["column"], rejects["reason"], strict=True)) == set(
        zip(duck_rejects["row"], duck_rejects["column"], duck_rejects["reason"], strict=True))
    got = _sorted(pd.read_parquet(clean)[list(duck_rows.columns)], ["order_id"])
    expected = _sorted(duck_rows, ["order_id"])
    assert got["order_id"].tolist() == expected["order_id"].tolist()  # derived keys: same on both engines
    assert got["customer_id"].tolist() == expected["customer_id"].tolist()
    assert (pd.to_datetime(got["occurred_at"]).to_numpy() == pd.to_datetime(expected["occurred_at"]).to_numpy()).all()
    assert (got["amount"].to_numpy() == expected["amount"].to_numpy()).all()


def test_summary_on_cluster_same_as_duckdb(spark, ingested, duck):
    """``patron.summary(..., engine="spark")`` runs on the active (cluster) session."""
    clean, _, _ = ingested
    kw = dict(end=CDNOW_CALIBRATION_END, holdout_end=CDNOW_HOLDOUT_END)
    got = _sorted(patron.summary(str(clean), engine="spark", **kw), ["customer_id"])
    expected = _sorted(patron.summary(duck, **kw), ["customer_id"])
    assert list(got.columns) == list(expected.columns) and len(got) == len(expected) == 2357
    for col in expected.columns:
        g, e = got[col].to_numpy(), expected[col].to_numpy()
        assert g.dtype.kind == e.dtype.kind, col
        if col in AMOUNT_SUMS:
            np.testing.assert_allclose(g, e, rtol=FLOAT_REL_TOLERANCE, atol=0, err_msg=col)
        else:  # counts, dates, and recency/T/duration (whole days / 7: one IEEE division each)
            assert (g == e).all(), (col, np.flatnonzero(g != e)[:5])


def test_fits_scores_and_equity_on_cluster_same_as_duckdb(spark, ingested, duck, tmp_path):
    from patron.value.spark_fit import fit_spark
    from patron.value.spark_score import (
        SCORE_COLUMNS,
        equity_interval_spark,
        score_spark,
        write_scores,
    )
    from patron.value.spark_summary import summary_spark

    clean, _, _ = ingested
    end = CDNOW_CALIBRATION_END
    tm, sm = fit_spark("bgnbd", spark, str(clean), end=end), fit_spark("gammagamma", spark, str(clean), end=end)
    for name, model, columns in (("bgnbd", tm, ("frequency", "recency", "T")),
                                 ("gammagamma", sm, ("frequency", "monetary_value"))):
        reference = fit_model(name, patron.summary(duck, end=end, compressed=columns))
        for name, value in reference.params_.items():
            assert model.params_[name] == pytest.approx(value, rel=PARAM_REL_TOLERANCE), name

    summary = summary_spark(spark, str(clean), end=end)
    write_scores(score_spark(summary, tm, sm, **VALUE), tmp_path / "scores")
    local = score(patron.summary(duck, end=end), model="bgnbd", **VALUE)
    got = _sorted(pq.read_table(tmp_path / "scores").to_pandas(), ["customer_id"])
    expected = _sorted(local.customers, ["customer_id"])
    assert got["customer_id"].astype(str).tolist() == expected["customer_id"].astype(str).tolist()
    for col in SCORE_COLUMNS:
        rtol = INTERVAL_REL_TOLERANCE if col in ("clv_lower", "clv_upper") else SCORE_REL_TOLERANCE
        np.testing.assert_allclose(got[col].to_numpy(float), expected[col].to_numpy(float), rtol=rtol, err_msg=col)
    assert (got["spend_basis"].to_numpy() == expected["spend_basis"].to_numpy()).all()
    equity, lower, upper = equity_interval_spark(summary, tm, sm, **VALUE)
    assert equity == pytest.approx(local.equity, rel=SCORE_REL_TOLERANCE)
    assert (lower, upper) == pytest.approx((local.equity_lower, local.equity_upper), rel=INTERVAL_REL_TOLERANCE)


def test_status_on_cluster_same_as_duckdb(spark, ingested, duck):
    from patron.relationship.spark_status import status_spark
    from patron.relationship.status import relationship_status

    clean, _, _ = ingested
    got = _sorted(status_spark(spark, str(clean), as_of=STATUS_AS_OF).toPandas(), ["customer_id"])
    expected = _sorted(relationship_status(duck, as_of=STATUS_AS_OF), ["customer_id"])
    assert got["customer_id"].tolist() == expected["customer_id"].astype(str).tolist()
    assert got["status"].nunique() >= 4
    assert (got["status"].to_numpy() == expected["status"].to_numpy()).all()
    assert (got["status_reason"].to_numpy() == expected["status_reason"].to_numpy()).all()
    for col in ("probability_purchase", "probability_alive", "expected_purchases"):
        np.testing.assert_allclose(got[col].to_numpy(float), expected[col].to_numpy(float), rtol=SCORE_REL_TOLERANCE,
                                   equal_nan=True, err_msg=col)


def test_cli_score_on_cluster_same_as_duckdb(cli_scores):
    got, want = cli_scores["spark"], cli_scores["duck"]
    assert got["engine"] == "spark" and got["customers"] == want["customers"] == 2357
    for key in ("customer_equity", "customer_equity_lower", "customer_equity_upper"):
        assert got[key] == pytest.approx(want[key], rel=INTERVAL_REL_TOLERANCE), key
    spark_rows = _sorted(cli_scores["spark_rows"], ["customer_id"])
    duck_rows = _sorted(cli_scores["duck_rows"], ["customer_id"])
    assert spark_rows["customer_id"].astype(str).tolist() == duck_rows["customer_id"].astype(str).tolist()
    np.testing.assert_allclose(spark_rows["clv"], duck_rows["clv"], rtol=SCORE_REL_TOLERANCE)
    assert len(cli_scores["apps"]) == 1  # the CLI ran as an application of this cluster, and ended


def test_executors_need_python_only_for_scoring_and_status(spark, raw, ingested, tmp_path):
    """With the executors' Python unstartable, ingest, the summary and the fits run (Spark SQL; the
    fits collect the distinct statistic rows through Arrow on the driver); scoring and status do not
    (they run patron's code on the executors)."""
    from patron.data.ingest.spark import ingest_spark
    from patron.relationship.spark_status import status_spark
    from patron.value.spark_fit import fit_spark
    from patron.value.spark_score import score_spark
    from patron.value.spark_summary import summary_spark

    clean, _, _ = ingested
    context = spark.sparkContext
    working = context.pythonExec
    context.pythonExec = str(tmp_path / "no-python-here")
    try:
        counts = ingest_spark(spark, str(raw), kind="transactions", out=tmp_path / "clean",
                              rejects_out=tmp_path / "rejects", now=NOW)
        assert counts["accepted"] == 6919
        summary = summary_spark(spark, str(tmp_path / "clean"), end=CDNOW_CALIBRATION_END)
        assert summary.count() == 2357
        tm = fit_spark("bgnbd", spark, str(clean), end=CDNOW_CALIBRATION_END)
        sm = fit_spark("gammagamma", spark, str(clean), end=CDNOW_CALIBRATION_END)
        with pytest.raises(Exception, match="no-python-here"):
            score_spark(summary, tm, sm, **VALUE).count()
        with pytest.raises(Exception, match="no-python-here"):
            status_spark(spark, str(clean), as_of=STATUS_AS_OF).count()
    finally:
        context.pythonExec = working


def test_both_executors_ran_tasks(spark, cluster, ingested):
    """Each worker ran an executor of the session's application, and each executor ran tasks."""
    app = spark.sparkContext.applicationId
    running = [a for a in cluster.state()["activeapps"] if a["id"] == app]
    assert len(running) == 1 and running[0]["cores"] == 2
    logs = cluster.executor_logs(app)
    assert len(logs) == 2
    assert all("Finished task" in log for log in logs)
    commands = [Path(f"/proc/{pid}/cmdline").read_bytes() for pid in cluster.process_pids() if _alive(pid)]
    assert sum(b"CoarseGrainedExecutorBackend" in c for c in commands) == 2

    def ancestors(_: object):
        """In a Python task: the command lines of this worker's parent processes (nested: pickled by
        value, as the executors cannot import this test module)."""
        pid, chain = os.getpid(), []
        for _ in range(4):
            pid = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
            if pid <= 1:
                break
            chain.append(Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace"))
        yield os.getpid(), chain

    # Python runs inside the executors: each Python task reports, while it runs, that it descends from an
    # executor JVM of this application (evidence taken in the task itself, not from logs or from processes
    # that may be gone by the time the test looks; the executor's INFO log line of Python timings was
    # missing on CI's machine).
    ran = spark.sparkContext.parallelize(range(4), 4).mapPartitions(ancestors).collect()
    assert len(ran) == 4 and all(pid != os.getpid() for pid, _ in ran)
    assert all(any("CoarseGrainedExecutorBackend" in c and app in c for c in chain) for _, chain in ran), ran


@pytest.mark.parametrize(("master", "on_loopback"), [
    ("local[2]", True), ("spark://127.0.0.1:7077", True), ("spark://localhost:7077", True),
    ("spark://10.0.0.5:7077", False), ("spark://master-a:7077,master-b:7077", False),
    ("spark://127.0.0.1:7077,master-b:7077", False), ("yarn", False), ("k8s://https://127.0.0.1:6443", False),
])
def test_a_session_binds_to_loopback_only_when_the_cluster_is_on_this_machine(master, on_loopback):
    """A driver bound to 127.0.0.1 cannot be reached by executors on other machines, and 4 shuffle
    partitions are a laptop's: both are left to Spark (or the user) when the master is elsewhere."""
    from patron.data.engines.spark import session_conf

    conf = session_conf(master)
    assert (conf.get("spark.driver.host"), conf.get("spark.driver.bindAddress")) == (
        ("127.0.0.1", "127.0.0.1") if on_loopback else (None, None))
    assert ("spark.sql.shuffle.partitions" in conf) is on_loopback
    assert conf["spark.sql.session.timeZone"] == "UTC"
