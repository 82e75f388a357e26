"""The identity keys of the ``[service]`` section of the rules file: which identifiers are unique to a
person, which traits identify one, which values name nobody, and the cap on linked identifiers.

Ingest (a customers file entering the identity graph) and the service resolve identities with the
same rules; the service's full section (:class:`patron.service.settings.ServiceRules`) extends this
model. Read alone (:func:`patron.people.identity.files.identity_rules`), the section's other keys belong to
the service and are left to it.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from patron.people.identity.normalize import DEFAULT_PLACEHOLDERS, DEFAULT_UNIQUE
from patron.people.identity.outcome import DEFAULT_MAX_LINKED


class IdentityRules(BaseModel):
    """The identity keys of ``[service]`` (other keys of the section are the service's)."""

    model_config = ConfigDict(extra="ignore")

    unique_identifiers: list[str] = Field(
        default_factory=lambda: list(DEFAULT_UNIQUE),
        description="Identifier kinds of which a person has at most one value: two different values never "
        "merge (a shared device does not fuse two people). Kinds: customer_id (the id of a customers file "
        "row: always unique), user_id, anonymous_id, email, phone, or a trait name listed in identity_traits.",
    )
    identity_traits: list[str] = Field(
        default_factory=lambda: ["email", "phone"],
        description="Traits of identify events (and context.traits), and columns of customers files, that "
        "identify a person; email is lower-cased and trimmed, then matched by its SHA-256.",
    )
    placeholder_identifiers: list[str] = Field(
        default_factory=lambda: list(DEFAULT_PLACEHOLDERS),
        description="Identifier values that name nobody (compared trimmed and case-insensitively, for every "
        "kind): they never link anyone, and an event carrying one belongs to the person of its other "
        "identifiers. The first sighting of each is recorded in identity_merges. [] to list none.",
    )
    max_linked_identifiers: int = Field(
        DEFAULT_MAX_LINKED, ge=0,
        description="An identifier seen with more than this many distinct other identifiers is shared "
        "(a placeholder nobody listed, a shared account or device): it links nobody from then on, the links "
        "made through it are undone, and this is recorded in identity_merges. 0: no cap.",
    )
