"""Word of mouse: referral cascades, the viral coefficient, and whether referred customers are worth more.

See ``docs/referrals.md`` for the definitions.
"""

from patron.network.cascades import Cascades, cascades
from patron.network.compare import Comparison, compare_referred, customer_metrics, referral_value
from patron.network.figures import report_figures, tree_layout
from patron.network.report import ReferralReport, referral_report
from patron.network.rules import ReferralRules, referral_rules
from patron.network.segment_spec import referrals_from_segment_events
from patron.network.simulate import SimulatedReferrals, branching_truth, simulate_referrals
from patron.network.stats import Estimate, structural_virality, subtree_sizes
from patron.network.viral import campaign_summary, viral_by_month

__all__ = [
    "Cascades",
    "Comparison",
    "Estimate",
    "ReferralReport",
    "ReferralRules",
    "SimulatedReferrals",
    "branching_truth",
    "campaign_summary",
    "cascades",
    "compare_referred",
    "customer_metrics",
    "referral_report",
    "referral_rules",
    "referral_value",
    "referrals_from_segment_events",
    "report_figures",
    "simulate_referrals",
    "structural_virality",
    "subtree_sizes",
    "tree_layout",
    "viral_by_month",
]
