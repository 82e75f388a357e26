"""What resolving a batch of identifiers gives (:class:`Resolution`), the columns of
``identity_merges`` and the words and limits of refused links.

These are shared by :mod:`~patron.people.identity.resolve` (the resolver),
:mod:`~patron.people.identity.batch` and :mod:`~patron.people.identity.batch_sql` (one batch, in
memory and in SQL) and :mod:`~patron.people.identity.follow` (rows that follow a merge); they sit
here, below all four, so that those modules import downward with no circle
(docs/architecture.md). :mod:`~patron.people.identity.resolve` re-exports them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

MERGE_COLUMNS: tuple[str, ...] = (
    "merged_at", "customer_id", "merged_id", "cause_message_id", "cause_occurred_at", "cause_kind",
    "cause_value", "reason",
)
"""Columns of ``identity_merges`` and of :attr:`Resolution.merges`."""

DEFAULT_MAX_LINKED: int = 1000
"""Default of ``[service] max_linked_identifiers``: an identifier seen with more than this many
distinct other identifiers is *shared* and links nobody (see :mod:`patron.people.identity`). Segment's
profile API caps a profile at 1,000 identifier mappings for the same reason; a real person's
devices and cookies over years stay well below (a weekly visitor whose browser drops cookies
every week gathers about 50 anonymousIds a year)."""

PLACEHOLDER_REASON: str = "refused: placeholder"
"""Start of the ``identity_merges`` reason recorded the first time a placeholder value is seen."""

SHARED_REASON: str = "refused: shared"
"""Start of the ``identity_merges`` reason recorded when an identifier becomes shared."""


def _frame(columns: Iterable[str], rows: list[tuple[Any, ...]] | None = None) -> pd.DataFrame:
    return pd.DataFrame(rows or [], columns=list(columns))


@dataclass
class Resolution:
    """What one batch of observations did (plain Python containers: cheap to build per batch).

    * ``customer_of``: ``{message_id: customer_id}``, the person of each message of the batch (the
      person of its first identifier in canonical order, i.e. its ``user_id`` when it has one);
    * ``merges``: the rows added to ``identity_merges`` (merges, refused merges, splits), as dicts
      with keys :data:`MERGE_COLUMNS`;
    * ``remapped``: ``{old_customer_id: customer_id}`` for every person id that existed before the
      batch and now names another person (absorbed, renamed): where its rows go;
    * ``moved``: ``[(message_id, old_customer_id, customer_id)]``, earlier messages whose person
      changed otherwise than by ``remapped`` (a person split because a late event, earlier in time,
      changed which links were refused). Rare; empty in the common case.
    """

    customer_of: dict[str, str]
    merges: list[dict[str, Any]] = field(default_factory=list)
    remapped: dict[str, str] = field(default_factory=dict)
    moved: list[tuple[str, str, str]] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        """Whether rows stored under earlier person ids must be rewritten (:func:`follow_merges`)."""
        return bool(self.remapped or self.moved)

    def frames(self) -> dict[str, pd.DataFrame]:
        """The four parts as DataFrames (``customer_of``: message_id, customer_id; ``remapped``:
        old_customer_id, customer_id; ``moved``: message_id, old_customer_id, customer_id)."""
        return {
            "customer_of": _frame(("message_id", "customer_id"), list(self.customer_of.items())),
            "merges": pd.DataFrame(self.merges, columns=list(MERGE_COLUMNS)),
            "remapped": _frame(("old_customer_id", "customer_id"), list(self.remapped.items())),
            "moved": _frame(("message_id", "old_customer_id", "customer_id"), list(self.moved)),
        }
