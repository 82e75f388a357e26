"""What counts as a contact sent: the one definition every query that counts contacts uses.

A row of ``contacts`` is a **sent contact** when ``kind = 'sent'`` and it is not a holdout record
(``in_holdout`` false or empty). A holdout row (``kind = 'sent'``, ``in_holdout = true``) says
"this customer would have been sent this campaign's message at this time, but was not": it is the
control arm of the campaign's measurement (:mod:`patron.contact.effect.lift`) and nothing else.
The customer received nothing, so a holdout row never counts toward frequency caps (the planner
and the real-time contact check), cost-to-serve (:mod:`patron.relationship.profitability`), dose-response or
the uplift model's contact-history features.

The builders return SQL text that runs on DuckDB and Spark alike.
"""

from __future__ import annotations


def is_sent(alias: str = "") -> str:
    """SQL condition: the ``contacts`` row (of table alias ``alias``, or unqualified) is a sent
    contact, not a holdout record."""
    p = f"{alias}." if alias else ""
    return f"({p}kind = 'sent' AND ({p}in_holdout IS NULL OR NOT {p}in_holdout))"


SENT_CONTACTS = f"(SELECT * FROM contacts WHERE {is_sent()})"
"""A relation of the sent contacts (every column of ``contacts``): use as ``FROM {SENT_CONTACTS} c``."""
