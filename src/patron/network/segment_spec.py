"""Referral rows from Segment-spec track events (for the live event service).

Mapping (``docs/referrals.md`` has the table):

* ``Product Shared`` and ``Cart Shared`` (Segment e-commerce spec): the sharer is ``userId``
  (else ``anonymousId``); ``properties.recipient`` is the person reached, kind ``invited`` when
  it is present, else ``shared`` (a share to many); ``properties.share_via`` is the channel.
* ``Referral Accepted`` (patron's name for the invite-accepted event): the person who accepted is
  ``userId``/``anonymousId``; the referrer is ``properties.referrer_id``, else ``context.referrer.id``;
  kind ``signed_up``.
* Any other event whose ``context.referrer.id`` is set: the referrer is that id, the person reached
  is ``userId``/``anonymousId``; kind ``purchased`` for ``Order Completed``, ``signed_up`` for
  ``Signed Up``, else ``clicked``; the channel is ``context.referrer.type``.

Everywhere: ``referral_id`` = ``messageId``; ``occurred_at`` = ``timestamp`` (else
``originalTimestamp``, ``receivedAt``); ``campaign_id`` = ``properties.campaign_id``, else
``context.campaign.name``; ``link_id`` = ``properties.link_id``, else ``context.referrer.link``,
else ``properties.url``. Other events are skipped. Rows are not validated here: ingest them with
``patron.ingest(frame, kind="referrals")``, which sends bad rows to the rejects.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import pandas as pd

from patron.data.schema import REFERRALS

SHARE_EVENTS: tuple[str, ...] = ("Product Shared", "Cart Shared")
"""Segment e-commerce events that record a share."""

ACCEPT_EVENT = "Referral Accepted"
"""The invite-accepted event patron reads (not part of the Segment spec; name it so in your tracking plan)."""

REFERRED_KINDS: dict[str, str] = {"Order Completed": "purchased", "Signed Up": "signed_up"}
"""Kinds of other events that carry ``context.referrer``; any other such event is ``clicked``."""


def _get(obj: Any, *path: str) -> Any:
    for key in path:
        if not isinstance(obj, dict):
            return None
        obj = obj.get(key)
    return None if obj == "" else obj


def _first(*values: Any) -> Any:
    return next((v for v in values if v is not None), None)


def _row(event: dict[str, Any]) -> dict[str, Any] | None:
    name = event.get("event")
    person = _first(_get(event, "userId"), _get(event, "anonymousId"))
    props = _get(event, "properties") or {}
    ref = _get(event, "context", "referrer") or {}
    common = {
        "referral_id": _get(event, "messageId"),
        "occurred_at": _first(_get(event, "timestamp"), _get(event, "originalTimestamp"), _get(event, "receivedAt")),
        "campaign_id": _first(_get(props, "campaign_id"), _get(event, "context", "campaign", "name")),
        "link_id": _first(_get(props, "link_id"), _get(ref, "link"), _get(props, "url")),
    }
    if name in SHARE_EVENTS:
        recipient = _get(props, "recipient")
        return {**common, "referrer_id": person, "referred_id": recipient, "channel": _get(props, "share_via"),
                "kind": "invited" if recipient is not None else "shared"}
    if name == ACCEPT_EVENT:
        return {**common, "referrer_id": _first(_get(props, "referrer_id"), _get(ref, "id")), "referred_id": person,
                "channel": _first(_get(props, "channel"), _get(ref, "type")), "kind": "signed_up"}
    if _get(ref, "id") is not None:
        return {**common, "referrer_id": _get(ref, "id"), "referred_id": person, "channel": _get(ref, "type"),
                "kind": REFERRED_KINDS.get(str(name), "clicked")}
    return None


def referrals_from_segment_events(events: Iterable[dict[str, Any]]) -> pd.DataFrame:
    """Referral rows (the columns of the ``referrals`` contract, as text) from Segment track events.

    Events that are neither shares, nor ``Referral Accepted``, nor carry ``context.referrer.id``
    are skipped. A missing ``messageId`` leaves ``referral_id`` empty (ingest then derives it)."""
    rows = [r for r in (_row(e) for e in events if isinstance(e, dict)) if r is not None]
    columns = [c.name for c in REFERRALS.columns]
    frame = pd.DataFrame(rows, columns=columns)
    for col in columns:
        frame[col] = frame[col].astype(object).where(frame[col].notna(), None)
        frame[col] = frame[col].map(lambda v: None if v is None else str(v))
    if frame["referral_id"].isna().all():
        frame = frame.drop(columns="referral_id")
    return frame
