"""Customer-managed contact: the consent ledger, the customer's preferences, the contact policy,
campaign files and the contact planner.

>>> from patron.contact.consent import consent_state, plan
"""

from patron.contact.consent.campaign import (
    Campaign,
    campaign_from_dict,
    load_campaign,
    read_id_list,
)
from patron.contact.consent.ledger import (
    consent_counts,
    consent_history,
    consent_state,
    record_consent,
)
from patron.contact.consent.planner import INCLUDED, REASONS, Plan, plan
from patron.contact.consent.policy import ChannelPolicy, ContactPolicy, contact_policy
from patron.contact.consent.preferences import effective_preferences, record_preferences

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
