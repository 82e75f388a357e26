"""The measured effect of contact: campaign lift against a holdout, per-customer uplift models,
and the dose-response between contact frequency and purchases or unsubscribes.

* :func:`campaign_effect` — lift per campaign with confidence intervals; :func:`revenue_headline` —
  their incremental revenue, proven campaigns only, with an interval (:mod:`.lift`).
* :func:`fit_uplift` — T-/X-learner uplift model, Qini evaluation, table ``incremental_value`` (:mod:`.uplift`).
* :func:`dose_response`, :func:`over_contacted` — contacts per month vs response (:mod:`.dose`).
* :func:`simulate_experiment`, :func:`simulate_dose_response` — data with a known truth (:mod:`.simulate`,
  :mod:`.simulate_dose`).
* :func:`report_figures` — Plotly figures for the HTML report (:mod:`.figures`).

Definitions and rules: docs/contact-effect.md.
"""

from patron.contact.effect.dose import dose_response, over_contacted, over_contacted_segments
from patron.contact.effect.figures import report_figures
from patron.contact.effect.learners import UpliftModel
from patron.contact.effect.lift import LIFT_COLUMNS, campaign_effect, lift_table, revenue_headline
from patron.contact.effect.qini import qini_coefficient, qini_curve, uplift_at_k
from patron.contact.effect.rules import ContactEffectRules, rules
from patron.contact.effect.simulate import simulate_experiment
from patron.contact.effect.simulate_dose import (
    planted_effect,
    simulate_dose_response,
    targeted_contacts,
)
from patron.contact.effect.uplift import (
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
    "planted_effect",
    "qini_coefficient",
    "qini_curve",
    "report_figures",
    "revenue_headline",
    "rules",
    "score_customers",
    "simulate_dose_response",
    "simulate_experiment",
    "targeted_contacts",
    "uplift_at_k",
]
