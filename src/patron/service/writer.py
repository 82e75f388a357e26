"""The single writer: group commit of events, dedup by messageId, dead letters. (Stub: the events
helper fills this in; the interface below is fixed.)"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from patron.service.state import ServiceState


class Writer:
    """Owns every write to event-fed tables, on one thread."""

    def __init__(self, state: ServiceState) -> None:
        self.state = state

    def start(self) -> None:
        """Start the writer thread."""

    def stop(self) -> None:
        """Commit what is queued, then stop the thread."""

    def detach(self) -> None:
        """Close the writer's cursor (the database is about to be closed)."""

    def attach(self) -> None:
        """Open a new cursor on the (re)opened database."""
