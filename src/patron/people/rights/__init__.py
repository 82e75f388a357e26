"""Data rights: export everything held about a person (:func:`export_customer`) and erase it
(:func:`erase_customer`), discovering the tables that hold personal data from the database itself.

See ``docs/data-rights.md``.
"""

from patron.people.rights.erase import ErasureResult, erase_customer
from patron.people.rights.export import export_customer
from patron.people.rights.rules import AUDIT_TABLE, PERSON_COLUMNS, RightsRules

__all__ = ["AUDIT_TABLE", "PERSON_COLUMNS", "ErasureResult", "RightsRules", "erase_customer", "export_customer"]
