"""Customer-managed contact: the consent ledger, the customer's preferences, the contact policy,
campaign files and the contact planner.

>>> from patron.consent import consent_state, plan
"""

from patron.consent.campaign import Campaign, campaign_from_dict, load_campaign, read_id_list
from patron.consent.ledger import consent_counts, consent_history, consent_state, record_consent
from patron.consent.planner import INCLUDED, REASONS, Plan, plan
from patron.consent.policy import ChannelPolicy, ContactPolicy, contact_policy
from patron.consent.preferences import effective_preferences, record_preferences

__all__ = [
    "INCLUDED",
    "REASONS",
    "Campaign",
    "ChannelPolicy",
    "ContactPolicy",
    "Plan",
    "campaign_from_dict",
    "consent_counts",
    "consent_history",
    "consent_state",
    "contact_policy",
    "effective_preferences",
    "load_campaign",
    "plan",
    "read_id_list",
    "record_consent",
    "record_preferences",
]
