"""Campaign files: what a campaign sends, to whom, when, and under which message class.

A campaign is a TOML or JSON file::

    name = "spring-sale"
    purpose = "marketing"             # the consent purpose it needs
    channel = "email"                 # email, sms, push, mail, phone, in_app
    class = "marketing"               # or "transactional" (receipts, password resets)
    target = "status in [active, cooling] and clv > 100"   # a segment name or rule
    # target_file = "ids.csv"        # or a file of customer ids (column customer_id, or one per line)
    send_at = "2024-05-02T09:00:00+02:00"   # ISO 8601; without offset it is UTC
    send_window_end = "2024-05-02T20:00:00+02:00"   # optional: latest time a quiet-hours delay may reach
    value_per_response = 12.5         # optional, in the order currency
    holdout_fraction = 0.1            # 0 <= f < 1, a random share kept out for measurement
    seed = 7                          # makes the holdout reproducible
    topic = "offers"                  # optional; customers who listed topics must want it
    store = "store-12"                # optional, a local campaign: customers near this store
    within_km = 5                     # (with store) how near, great-circle km [default 5]

A local campaign (``store``) targets the customers within ``within_km`` of the store (and of
``target`` when given too), and its quiet hours are read in the store's time zone for customers
who set no time zone of their own (docs/place.md).

A bad file is refused whole with one line naming the file, (for id lists) the row, and the field.
"""

from __future__ import annotations

import json
import os
import tomllib
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import pandas as pd
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)

from patron.contact.consent.policy import CHANNELS, ContactPolicy, contact_policy
from patron.contact.consent.times import to_utc_naive
from patron.errors import InputError
from patron.scope import note_file


class Campaign(BaseModel):
    """A validated campaign; instants are naive UTC datetimes."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    name: str = Field(min_length=1)
    """Campaign name; plans are stored under it (a new plan replaces the earlier one of the same name)."""
    purpose: str = Field(min_length=1)
    """Consent purpose the campaign needs (marketing) or carries (transactional)."""
    channel: Literal["email", "sms", "push", "mail", "phone", "in_app"]
    """Channel used."""
    message_class: Literal["marketing", "transactional"] = Field(default="marketing", alias="class")
    """``marketing`` (needs consent; capped; quiet hours; pauses) or ``transactional``."""
    target: str | None = None
    """A segment name or segment rule (see ``docs/segments.md``)."""
    target_file: str | None = None
    """A CSV file of customer ids (column ``customer_id``, or one id per line), relative to the campaign file."""
    target_ids: list[str] | None = None
    """Customer ids given inline."""
    send_at: datetime
    """When to send (UTC after validation)."""
    send_window_end: datetime | None = None
    """Latest send time (UTC) a quiet-hours delay may reach; default ``send_at`` (no delay)."""
    value_per_response: float | None = Field(default=None, ge=0)
    """Value of one response, in the order currency (informational; used to value the plan)."""
    holdout_fraction: float = Field(default=0.0, ge=0.0, lt=1.0)
    """Share of eligible customers kept out at random to measure the effect (0 <= f < 1)."""
    seed: int = 0
    """Seed of the deterministic holdout draw."""
    topic: str | None = None
    """Topic of the message; a customer who listed wanted topics gets it only if listed."""
    store: str | None = Field(default=None, min_length=1)
    """A local campaign: the ``store_id`` (``stores`` table) whose nearby customers it targets."""
    within_km: float | None = Field(default=None, ge=0, allow_inf_nan=False)
    """With ``store``: the radius in great-circle km [default 5]."""

    _source: str = PrivateAttr(default="<campaign>")

    @field_validator("send_at", "send_window_end", mode="before")
    @classmethod
    def _utc(cls, value: Any) -> Any:
        if value is None:
            return None
        if isinstance(value, str | datetime):
            try:
                return to_utc_naive(value)
            except InputError:
                raise ValueError(f"{value!r} is not an ISO 8601 timestamp such as 2024-05-02T09:00:00+02:00") from None
        return value

    @model_validator(mode="after")
    def _checks(self) -> Campaign:
        given = [k for k in ("target", "target_file", "target_ids") if getattr(self, k) is not None]
        if self.within_km is not None and self.store is None:
            raise ValueError("within_km needs store (the store_id of a local campaign)")
        if self.store is not None and given not in ([], ["target"]):
            raise ValueError("a local campaign (store) targets the customers near the store, optionally within target (a rule); "
                             "not target_file or target_ids")
        if len(given) != 1 and self.store is None:
            raise ValueError("give exactly one of target (a segment name or rule), target_file or target_ids")
        if self.send_window_end is not None and self.send_window_end < self.send_at:
            raise ValueError("send_window_end is before send_at")
        return self

    @property
    def source(self) -> str:
        """The file the campaign came from (``<campaign>`` when built in code)."""
        return self._source

    @property
    def window_end(self) -> datetime:
        """Latest allowed send time (UTC)."""
        return self.send_window_end or self.send_at


def check_campaign(campaign: Campaign, policy: ContactPolicy) -> None:
    """Refuse a campaign whose purpose its class may not carry: a transactional campaign may never
    carry a marketing purpose, and each class may use only the purposes the policy lists."""
    where = campaign.source
    if campaign.message_class == "transactional":
        if campaign.purpose in policy.marketing_purposes:
            raise InputError(f"{where}: field purpose: a transactional campaign may not carry the marketing purpose {campaign.purpose!r}")
        allowed = policy.transactional_purposes
    else:
        allowed = policy.marketing_purposes
    if campaign.purpose not in allowed:
        raise InputError(f"{where}: field purpose: {campaign.purpose!r} is not a {campaign.message_class} purpose (allowed: {', '.join(allowed)}; see [contact_policy])")


def campaign_from_dict(data: dict[str, Any], *, source: str = "<campaign>", config: Any = None) -> Campaign:
    """Validate ``data`` as a campaign (and against the contact policy of ``config``)."""
    try:
        campaign = Campaign.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"]) or "(file)"
        msg = first["msg"].removeprefix("Value error, ")
        raise InputError(f"{source}: field {field}: {msg}") from None
    campaign._source = source
    check_campaign(campaign, contact_policy(config))
    return campaign


def load_campaign(path: str | os.PathLike[str], *, config: Any = None) -> Campaign:
    """Read and validate a ``.toml`` or ``.json`` campaign file."""
    p = Path(path)
    if not p.is_file():
        raise InputError(f"{p}: no such campaign file")
    note_file(p)
    text = p.read_text(encoding="utf-8")
    suffix = p.suffix.lower()
    try:
        if suffix == ".toml":
            data = tomllib.loads(text)
        elif suffix == ".json":
            data = json.loads(text)
        else:
            raise InputError(f"{p}: a campaign file must end in .toml or .json")
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"{p}: not valid TOML: {exc}") from None
    except json.JSONDecodeError as exc:
        raise InputError(f"{p}: not valid JSON: line {exc.lineno}: {exc.msg}") from None
    if not isinstance(data, dict):
        raise InputError(f"{p}: a campaign must be an object of fields")
    if isinstance(data.get("target_file"), str):
        data["target_file"] = str(p.parent / data["target_file"])
    return campaign_from_dict(data, source=str(p), config=config)


def read_id_list(path: str | os.PathLike[str]) -> pd.Series:
    """Customer ids listed in a CSV file: the ``customer_id`` column, or the only column of a file
    with one id per line (no header). An empty id is an error naming the row (the N-th non-empty
    record after the header, as ingest counts)."""
    p = Path(path)
    if not p.is_file():
        raise InputError(f"{p}: no such target file")
    try:
        frame = pd.read_csv(p, dtype=str, keep_default_na=False, skip_blank_lines=True)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise InputError(f"{p}: cannot read the id list: {str(exc).splitlines()[0] if str(exc) else 'empty'}") from None
    cols = {c.strip().lower(): c for c in frame.columns}
    if "customer_id" in cols:
        ids = frame[cols["customer_id"]]
    elif len(frame.columns) == 1:
        header = frame.columns[0]
        ids = pd.concat([pd.Series([header]), frame[header]], ignore_index=True)
    else:
        raise InputError(f"{p}: field customer_id: no customer_id column (columns: {', '.join(frame.columns)})")
    ids = ids.astype(str).str.strip()
    empty = ids.index[ids == ""]
    if len(empty):
        raise InputError(f"{p}: row {int(empty[0]) + 1}, field customer_id: empty customer id")
    return ids.drop_duplicates().reset_index(drop=True).rename("customer_id")


def resolve_target(db: Any, campaign: Campaign, *, config: Any = None) -> pd.Series:
    """Customer ids the campaign targets, without duplicates (for a local campaign: those within
    ``within_km`` of ``store``, :func:`patron.relationship.catchment.local_targets`)."""
    if campaign.store is not None:
        from patron.relationship.catchment import DEFAULT_KM, local_targets

        km = campaign.within_km if campaign.within_km is not None else DEFAULT_KM
        near = local_targets(db, campaign.store, km=km, rule=campaign.target, config=config, where=f"{campaign.source}: field store")
        return near["customer_id"].astype(str).drop_duplicates().sort_values().reset_index(drop=True).rename("customer_id")
    if campaign.target_ids is not None:
        return pd.Series(list(dict.fromkeys(str(i) for i in campaign.target_ids)), name="customer_id", dtype=object)
    if campaign.target_file is not None:
        return read_id_list(campaign.target_file)
    from patron.relationship.segments import members  # written alongside; imported late

    ids = members(db, campaign.target, config=config)
    return pd.Series(ids, dtype=object).astype(str).drop_duplicates().reset_index(drop=True).rename("customer_id")


def store_time_zone(db: Any, campaign: Campaign) -> str | None:
    """The time zone of a local campaign's store (``None`` for other campaigns, or when the store
    states none): the local time of its quiet hours for customers without a time zone of their own."""
    if campaign.store is None:
        return None
    from patron.data.store import reader
    from patron.relationship.place import read_stores, store_or_error

    with reader(db) as con:
        zone = store_or_error(read_stores(con), campaign.store, f"{campaign.source}: field store").time_zone
    return zone.strip() if zone and zone.strip() else None


__all__ = ["CHANNELS", "Campaign", "campaign_from_dict", "check_campaign", "load_campaign", "read_id_list", "resolve_target", "store_time_zone"]
