"""The measured effect of contact: campaign lift against a holdout, per-customer uplift models,
and the dose-response between contact frequency and purchases or unsubscribes.

* :func:`campaign_effect` — lift per campaign with confidence intervals (:mod:`.lift`).
* :func:`fit_uplift` — T-/X-learner uplift model, Qini evaluation, table ``incremental_value`` (:mod:`.uplift`).
* :func:`dose_response`, :func:`over_contacted` — contacts per month vs response (:mod:`.dose`).
* :func:`simulate_experiment`, :func:`simulate_dose_response` — data with a known truth (:mod:`.simulate`).
* :func:`report_figures` — Plotly figures for the HTML report (:mod:`.figures`).

Definitions and rules: docs/contact-effect.md.
"""

from patron.contact_effect.dose import dose_response, over_contacted, over_contacted_segments
from patron.contact_effect.figures import report_figures
from patron.contact_effect.learners import UpliftModel
from patron.contact_effect.lift import LIFT_COLUMNS, campaign_effect, lift_table
from patron.contact_effect.qini import qini_coefficient, qini_curve, uplift_at_k
from patron.contact_effect.rules import ContactEffectRules, rules
from patron.contact_effect.simulate import simulate_dose_response, simulate_experiment
from patron.contact_effect.uplift import (
    INCREMENTAL_VALUE_COLUMNS,
    UpliftResult,
    fit_uplift,
    score_customers,
)

__all__ = [
    "INCREMENTAL_VALUE_COLUMNS",
    "LIFT_COLUMNS",
    "ContactEffectRules",
    "UpliftModel",
    "UpliftResult",
    "campaign_effect",
    "dose_response",
    "fit_uplift",
    "lift_table",
    "over_contacted",
    "over_contacted_segments",
    "qini_coefficient",
    "qini_curve",
    "report_figures",
    "rules",
    "score_customers",
    "simulate_dose_response",
    "simulate_experiment",
    "uplift_at_k",
]
