"""Word of mouse: referral cascades, the viral coefficient, and whether referred customers are worth more.

See ``docs/referrals.md`` for the definitions.
"""

from patron.referrals.cascades import Cascades, cascades
from patron.referrals.compare import Comparison, compare_referred, customer_metrics, referral_value
from patron.referrals.figures import report_figures, tree_layout
from patron.referrals.report import ReferralReport, referral_report
from patron.referrals.rules import ReferralRules, referral_rules
from patron.referrals.segment import referrals_from_segment_events
from patron.referrals.simulate import SimulatedReferrals, branching_truth, simulate_referrals
from patron.referrals.stats import Estimate, structural_virality, subtree_sizes
from patron.referrals.viral import campaign_summary, viral_by_month

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
