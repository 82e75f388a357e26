"""The writer's identity resolution (:class:`Identity`): the in-memory graph of
:class:`patron.people.identity.Resolver` used inside the writer's transaction, the person of a dead
letter, and the customers of files entered at start."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import duckdb

from patron.service.items import Accepted, fallback_customer


@dataclass(slots=True)
class Resolved:
    """Person of each new event (``message_id -> customer_id``) and the identity resolution's
    result."""

    customer_of: dict[str, str]
    resolution: Any = None


class Identity:
    """The writer's identity resolution: :class:`patron.people.identity.Resolver` (graph held in memory,
    reset after a rollback or a reopen) inside the writer's transaction."""

    def __init__(self, rules: Any) -> None:
        from patron.people.identity import Resolver

        self.rules = rules
        self.resolver = Resolver(rules)

    def reset(self) -> None:
        """Forget the in-memory graph (the tables changed behind it: rollback, reopen)."""
        self.resolver.reset()

    def ensure(self, con: duckdb.DuckDBPyConnection) -> None:
        """Create the identity tables."""
        from patron.people.identity import ensure_tables

        ensure_tables(con)

    def enter_file_customers(self, con: duckdb.DuckDBPyConnection) -> None:
        """Enter customers of files that are not in the identity graph (a database from before they
        entered it at ingest) into it, in one transaction (:mod:`patron.people.identity.files`)."""
        from patron.people.identity.files import resolve_file_customers

        con.execute("BEGIN TRANSACTION")
        try:
            resolve_file_customers(con, self.rules)
            con.execute("COMMIT")
        except BaseException:
            try:
                con.execute("ROLLBACK")
            except duckdb.Error:  # no transaction left to roll back
                pass
            raise

    def person_of(self, con: duckdb.DuckDBPyConnection, payload: str | None, rules: Any) -> str | None:
        """The person of a dead letter: that of the first identifier its payload carries
        (:func:`patron.people.identity.payload.payload_identifiers`, canonical order) that the graph knows;
        None when it knows none (the dead letter keeps its best-effort id)."""
        from patron.people.identity.payload import payload_identifiers

        idents = payload_identifiers(payload, rules.identity_traits) if payload else []
        if not idents:
            return None
        resolver = self.resolver
        if not resolver.loaded_:
            resolver.load(con)
        return next((resolver.person_[i] for i in idents if i in resolver.person_), None)

    def resolve(self, con: duckdb.DuckDBPyConnection, accepted: list[Accepted]) -> Resolved:
        """Resolve the events' identifiers, record links and merges, and make earlier rows follow
        merged persons (before the group's own rows are inserted)."""
        rows = [(a.event.message_id, a.event.occurred_at, kind, value)
                for a in accepted for kind, value in a.mapped.identifiers]
        res = self.resolver.resolve(con, rows)
        if res.changed:
            self.resolver.follow(con, res)
        found = res.customer_of
        customer_of = {a.event.message_id: found.get(a.event.message_id) or fallback_customer(a.event)
                       for a in accepted}
        return Resolved(customer_of, res)
