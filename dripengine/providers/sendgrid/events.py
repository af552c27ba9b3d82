"""SendGrid Event Webhook payloads → :class:`IncomingEvent` values. Pure: no I/O, no clock.

SendGrid posts a JSON array of events; each is an object with ``event``, ``timestamp`` (unix
seconds), ``email``, ``sg_event_id``, ``sg_message_id``, the event's own fields (``url`` of a click,
``type`` and ``reason`` of a bounce, ``sg_machine_open`` of an open) and, at the top level, the
``custom_args`` of the message: ours is ``drip_uid`` (:data:`UID_ARG`), our Message.uid.

One event that cannot be read (an unknown event type, a field of the wrong type or too long)
is skipped with its index and the reason; the others are kept. Nothing here raises on input.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from dripengine import vocabulary as v
from dripengine.engagement import tracking
from dripengine.engagement.admit import NotStorable, admit
from dripengine.providers.sendgrid.provider import UID_ARG
from dripengine.providers.webhook import BadEvent, ParsedEvents, Skipped
from dripengine.vocabulary import IncomingEvent

PROVIDER = "sendgrid"
TAG_PARAM = tracking.TAG_PARAM  # a link's tag, when the link carries it in its query string

# SendGrid's event names → ours (bounce is decided by its ``type``, see _event_type)
EVENT_TYPES: Mapping[str, str] = {
    "processed": v.PROCESSED,
    "delivered": v.DELIVERED,
    "deferred": v.DEFERRED,
    "dropped": v.DROPPED,
    "bounce": v.BOUNCE,
    "open": v.OPEN,
    "click": v.CLICK,
    "spamreport": v.COMPLAINT,
    "unsubscribe": v.UNSUBSCRIBE,
    "group_unsubscribe": v.GROUP_UNSUBSCRIBE,
    "group_resubscribe": v.GROUP_RESUBSCRIBE,
}
# the longest value each stored column takes (models.py); longer is not a SendGrid event
MAX_ID = 200
MAX_EMAIL = 320
MAX_UID = 32
MAX_TAG = 100
# 1970 … 9999: what datetime can hold (a timestamp in milliseconds lands far past 9999)
MAX_TIMESTAMP = 253_402_300_799


def parse_events(payload: Any) -> ParsedEvents:
    """Every event of a decoded webhook body (a list), each read by :func:`parse_event`.

    ``payload`` that is not a list gives no events and one skipped entry at index -1.
    """
    result = ParsedEvents()
    if not isinstance(payload, list):
        result.skipped.append(Skipped(-1, f"expected a JSON array of events, got {_kind(payload)}"))
        return result
    for index, item in enumerate(payload):
        try:
            result.events.append(parse_event(item))
        except BadEvent as exc:
            result.skipped.append(Skipped(index, str(exc)))
    return result


def parse_event(item: Any) -> IncomingEvent:
    """One SendGrid event object as an :class:`IncomingEvent`; :class:`BadEvent` if unreadable."""
    if not isinstance(item, dict):
        raise BadEvent(f"expected an event object, got {_kind(item)}")
    name = _text(item, "event", required=True)
    assert name is not None
    if name not in EVENT_TYPES:
        raise BadEvent(f'unknown event type "{name[:40]}"')
    event_type = _event_type(name, item)
    url = _text(item, "url", required=event_type == v.CLICK)
    machine = item.get("sg_machine_open") or False if event_type == v.OPEN else False
    if not isinstance(machine, bool):
        raise BadEvent(f"sg_machine_open: expected true or false, got {_kind(machine)}")
    event = IncomingEvent(
        type=event_type,
        occurred_at=_timestamp(item),
        provider=PROVIDER,
        message_uid=_text(item, UID_ARG, limit=MAX_UID),
        email=_text(item, "email", limit=MAX_EMAIL),
        provider_event_id=_text(item, "sg_event_id", limit=MAX_ID),
        provider_message_id=_provider_message_id(item),
        url=url,
        tag=_tag(url) if url else None,
        machine=machine,
        detail=_detail(item),
        raw=item,
    )
    try:
        return admit(event)  # what the database takes: NULs, lengths (same on SQLite / PostgreSQL)
    except NotStorable as exc:
        reason = str(exc)
        for ours, theirs in _FIELD_NAMES.items():  # name the field as SendGrid posts it
            reason = reason.replace(ours, theirs, 1) if reason.startswith(ours) else reason
        raise BadEvent(reason) from None


_FIELD_NAMES = {
    "provider_event_id": "sg_event_id",
    "provider_message_id": "sg_message_id",
    "message_uid": UID_ARG,
    "occurred_at": "timestamp",
}


def _event_type(name: str, item: Mapping[str, Any]) -> str:
    if name != "bounce":
        return EVENT_TYPES[name]
    kind = _text(item, "type")
    # "blocked": the receiving server refused this time (reputation, content, full mailbox)
    return v.SOFT_BOUNCE if kind == "blocked" else v.BOUNCE


def _provider_message_id(item: Mapping[str, Any]) -> str | None:
    """``sg_message_id`` is ``<X-Message-Id>.filter…``: the part before ``.filter`` is the id the
    send was answered with, which is what Message.provider_message_id holds."""
    value = _text(item, "sg_message_id", limit=MAX_ID)
    return value.split(".filter", 1)[0] if value else None


def _timestamp(item: Mapping[str, Any]) -> datetime:
    value = item.get("timestamp")
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise BadEvent(f"timestamp: expected unix seconds (a number), got {_kind(value)}")
    if not 0 <= value <= MAX_TIMESTAMP:
        raise BadEvent(f"timestamp: {value} is not a unix time in seconds")
    return datetime.fromtimestamp(value, UTC)


def _detail(item: Mapping[str, Any]) -> str | None:
    """What a person wants to read about a delivery event: the reason and the server's status."""
    parts = []
    for key in ("reason", "response", "bounce_classification", "status"):
        value = item.get(key)
        if isinstance(value, str | int | float) and not isinstance(value, bool) and str(value):
            parts.append(str(value))
    return " · ".join(parts)[:1000] or None


def _tag(url: str) -> str | None:
    try:
        query = urlsplit(url).query
    except ValueError:
        return None
    for key, value in parse_qsl(query):
        if key == TAG_PARAM and value:
            return value[:MAX_TAG]
    return None


def _text(
    item: Mapping[str, Any], key: str, *, required: bool = False, limit: int | None = None
) -> str | None:
    value = item.get(key)
    if value is None:
        if required:
            raise BadEvent(f"{key}: missing")
        return None
    if not isinstance(value, str):
        raise BadEvent(f"{key}: expected a string, got {_kind(value)}")
    if required and not value:
        raise BadEvent(f"{key}: empty")
    if limit is not None and len(value) > limit:
        raise BadEvent(f"{key}: longer than {limit} characters")
    return value or None


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return f"a number ({value})"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__
