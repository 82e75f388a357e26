"""Per-customer uplift from past campaigns: :func:`fit_uplift`.

Training data are the exposures of past campaigns (one row per campaign and customer, see
:mod:`patron.contact.effect.sql`) with features measured strictly before each exposure, the arm,
and whether the customer bought within the outcome window. A seeded split by customer holds
out ``[contact_effect] uplift_test_fraction`` of them; the model (:class:`~patron.contact.effect.learners.UpliftModel`)
is fitted on the rest and evaluated on the held-out part (Qini coefficient, uplift at k, see
:mod:`patron.contact.effect.qini`). Every known customer is then scored on features as of the end of
the data, and the table ``incremental_value`` is replaced:

``incremental_value(customer_id, expected_incremental_value, uplift, model, fitted_at)`` where
``uplift`` is the predicted change in the probability of buying within the window if contacted,
and ``expected_incremental_value = uplift x value per response`` (money). The contact planner
ranks customers by it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd

from patron.contact.effect.learners import UpliftModel
from patron.contact.effect.lift import Config
from patron.contact.effect.qini import qini_coefficient, qini_curve, uplift_at_k
from patron.contact.effect.rules import rules
from patron.contact.effect.sql import FEATURES, scoring_sql, training_sql
from patron.data.store import connect, reader, table_exists
from patron.errors import InputError, NoDataError
from patron.settings import get_settings

UPLIFT_AT: tuple[float, ...] = (0.1, 0.2, 0.3, 0.5)
"""Shares of customers (top by predicted uplift) at which uplift at k is reported."""

INCREMENTAL_VALUE_COLUMNS: tuple[str, ...] = ("customer_id", "expected_incremental_value", "uplift", "model", "fitted_at")
"""Columns of the table ``incremental_value``."""


@dataclass
class UpliftResult:
    """What :func:`fit_uplift` found: the model, its held-out evaluation and the scores written."""

    model: UpliftModel
    label: str
    n_train: int
    n_test: int
    qini_coefficient: float
    qini_random: float
    uplift_at_k: dict[float, float]
    observed_lift_test: float
    value_per_response: float
    qini_curve: pd.DataFrame
    test: pd.DataFrame
    scores: pd.DataFrame = field(repr=False)

    def to_dict(self) -> dict[str, object]:
        """The evaluation as plain values (for ``--json``)."""
        return {
            "model": self.label, "n_train": self.n_train, "n_test": self.n_test,
            "qini_coefficient": self.qini_coefficient, "qini_random": self.qini_random,
            "uplift_at_k": {f"{k:.0%}": v for k, v in self.uplift_at_k.items()},
            "observed_lift_test": self.observed_lift_test, "value_per_response": self.value_per_response,
            "customers_scored": len(self.scores),
        }


def customer_split(customer_ids: np.ndarray, test_fraction: float, seed: int) -> np.ndarray:
    """Boolean mask of the test rows: a random ``test_fraction`` of the distinct customers (seeded),
    with all of a customer's exposures on the same side (a customer in several campaigns never
    informs the model about themselves). The arms stay balanced because assignment was random."""
    uniq, inverse = np.unique(np.asarray(customer_ids, dtype=str), return_inverse=True)
    rng = np.random.default_rng(seed)
    chosen = np.zeros(len(uniq), dtype=bool)
    chosen[rng.choice(len(uniq), round(test_fraction * len(uniq)), replace=False)] = True
    return chosen[inverse]


def load_training(db: str | os.PathLike[str] | None, *, window_days: int, campaign_id: str | None) -> pd.DataFrame:
    """One row per exposure: features (:data:`~patron.contact.effect.sql.FEATURES`), ``in_control``,
    ``responded``, ``revenue``."""
    with reader(db) as con:
        if not table_exists(con, "contacts"):
            raise NoDataError(f"database {db} holds no contacts: ingest them first (patron ingest FILE --kind contacts)")
        return con.execute(training_sql(window_days=window_days, campaign_id=campaign_id)).df()


def fit_uplift(
    db: str | os.PathLike[str] | None = None,
    *,
    campaign_id: str | None = None,
    learner: str = "t",
    base: str = "gbm",
    window_days: int | None = None,
    config: Config = None,
    write: bool = True,
    score: bool = True,
    as_of: datetime | None = None,
) -> UpliftResult:
    """Fit an uplift model on past campaigns, evaluate it on a held-out split, score every customer.

    Parameters
    ----------
    db
        The patron database (``contacts``, ``transactions``, optionally ``customers``).
    campaign_id
        Train on this campaign only (default: every campaign with a holdout).
    learner, base
        ``t`` or ``x``; ``gbm`` or ``logistic`` (:class:`~patron.contact.effect.learners.UpliftModel`).
    window_days
        Outcome window in days; default ``[contact_effect] window_days``.
    write
        Replace the table ``incremental_value`` with the scores.
    score
        Score every known customer (``False``: evaluate only; ``scores`` is empty and nothing is written).
    as_of
        Time the scoring features are measured at (default: just after the latest transaction or contact).

    Raises
    ------
    NoDataError
        When either arm has fewer than ``uplift_min_per_arm`` exposures or
        ``uplift_min_responders`` responders.
    """
    r = rules(config)
    days = int(window_days if window_days is not None else r.window_days)
    data = load_training(db, window_days=days, campaign_id=campaign_id)
    data = data[data["campaign_id"].isin(data.loc[data["in_control"] == 1, "campaign_id"].unique())]
    treated = (data["in_control"] == 0).to_numpy()
    y = data["responded"].to_numpy().astype(int)
    counts = {"treated": (int(treated.sum()), int(y[treated].sum())), "control": (int((~treated).sum()), int(y[~treated].sum()))}
    for arm, (n, resp) in counts.items():
        if n < r.uplift_min_per_arm or resp < r.uplift_min_responders:
            raise NoDataError(
                f"database {db}: too few data for an uplift model: the {arm} arm has {n} exposures and {resp} responders "
                f"(need {r.uplift_min_per_arm} and {r.uplift_min_responders}; [contact_effect] uplift_min_per_arm, uplift_min_responders)"
            )
    try:
        model = UpliftModel(learner=learner, base=base, seed=r.uplift_seed, threads=get_settings().threads or 1)
        X = data[list(FEATURES)].astype(float).to_numpy()
        test = customer_split(data["customer_id"].to_numpy(), r.uplift_test_fraction, r.uplift_seed)
        model.fit(X[~test], treated[~test], y[~test])
    except ValueError as exc:
        raise InputError(f"uplift model: {exc}") from None
    pred = model.predict(X[test])
    wt, yt = treated[test], y[test]
    random_score = np.random.default_rng(r.uplift_seed + 1).random(int(test.sum()))
    label = f"{learner}-learner/{base}, window {days} days, campaign {campaign_id or 'all'}"
    test_frame = data.loc[test, ["campaign_id", "customer_id", "in_control", "responded"]].assign(uplift=pred)

    responders = data.loc[treated & (y == 1), "revenue"]
    value = r.value_per_response if r.value_per_response is not None else float(responders.mean()) if len(responders) else 0.0
    if score:
        scores = score_customers(db, model, value_per_response=value, label=label, as_of=as_of, write=write)
    else:
        scores = pd.DataFrame(columns=list(INCREMENTAL_VALUE_COLUMNS))
    return UpliftResult(
        model=model, label=label, n_train=int((~test).sum()), n_test=int(test.sum()),
        qini_coefficient=qini_coefficient(pred, wt, yt), qini_random=qini_coefficient(random_score, wt, yt),
        uplift_at_k={k: uplift_at_k(pred, wt, yt, k) for k in UPLIFT_AT},
        observed_lift_test=float(yt[wt].mean() - yt[~wt].mean()), value_per_response=value,
        qini_curve=qini_curve(pred, wt, yt), test=test_frame, scores=scores,
    )


def score_customers(
    db: str | os.PathLike[str] | None,
    model: UpliftModel,
    *,
    value_per_response: float,
    label: str,
    as_of: datetime | None = None,
    write: bool = True,
) -> pd.DataFrame:
    """Predicted uplift and expected incremental value of every known customer as of ``as_of``;
    with ``write``, replaces the table ``incremental_value`` (columns :data:`INCREMENTAL_VALUE_COLUMNS`)."""
    with connect(db, read_only=not write) as con:
        if as_of is None:
            last = con.execute(
                "SELECT MAX(ts) FROM (SELECT MAX(occurred_at) AS ts FROM transactions UNION ALL SELECT MAX(occurred_at) FROM contacts) x"
            ).fetchall()[0][0]
            as_of = (last or datetime.now(UTC).replace(tzinfo=None)) + timedelta(seconds=1)
        feats = con.execute(scoring_sql(as_of)).df()
        uplift = model.predict(feats[list(FEATURES)].astype(float).to_numpy()) if len(feats) else np.zeros(0)
        fitted_at = datetime.now(UTC).replace(tzinfo=None, microsecond=0)
        scores = pd.DataFrame({
            "customer_id": feats["customer_id"].astype(str).to_numpy(),
            "expected_incremental_value": uplift * value_per_response,
            "uplift": uplift, "model": label, "fitted_at": fitted_at,
        })
        if write:
            con.register("_incremental_value", scores)
            con.execute("DROP TABLE IF EXISTS incremental_value")
            con.execute(
                "CREATE TABLE incremental_value AS SELECT CAST(customer_id AS VARCHAR) AS customer_id, "
                "CAST(expected_incremental_value AS DOUBLE) AS expected_incremental_value, CAST(uplift AS DOUBLE) AS uplift, "
                "CAST(model AS VARCHAR) AS model, CAST(fitted_at AS TIMESTAMP) AS fitted_at FROM _incremental_value"
            )
            con.unregister("_incremental_value")
    return scores
