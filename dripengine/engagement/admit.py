"""What of an incoming event the database can take: checked once, for every source, before ingest.

Ids the event is matched and deduplicated by (``provider_event_id``, ``provider_message_id``,
``message_uid``, ``tag``, ``email``) must be storable as they are: one with a NUL or a control
character, or longer than its column, is not an id we sent or can match, so the event is refused
and counted (the rest of its batch is stored; the provider gets its 2xx and redelivers nothing).
The event's time must fall in :data:`EARLIEST` … :data:`LATEST` (UTC): a time such as
``9999-12-31T23:59:59-14:00`` is a valid ISO 8601 string but no datetime in UTC, and one in the
last days of year 9999 overflows the day arithmetic of scoring. Free text kept as evidence (``url``, ``detail``, the raw payload) only loses its NUL characters,
which PostgreSQL cannot store: a bounce whose reason carries one still suppresses its address.
Pure: no database.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import orjson

from dripengine.storage.events import EVENT_LIMITS as _EVENT
from dripengine.storage.events import MESSAGE_LIMITS as _MESSAGE
from dripengine.storage.textlimits import json_problem, text_problem, without_nul
from dripengine.vocabulary import TYPES, IncomingEvent

_IDS = (
    ("provider_event_id", _EVENT["provider_event_id"]),
    ("provider_message_id", _MESSAGE["provider_message_id"]),
    ("message_uid", _MESSAGE["uid"]),
    ("tag", _EVENT["tag"]),
    ("email", 320),
    ("provider", _EVENT["provider"]),
)

# events happen after the unix epoch; the upper bound leaves room below datetime's year 9999 for
# the windows and cool-downs computed from an event's time
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(9000, 1, 1, tzinfo=UTC)


class NotStorable(ValueError):
    """The event cannot be stored; the message names the field."""


def admit(event: IncomingEvent) -> IncomingEvent:
    """``event`` as it can be stored, or :class:`NotStorable`."""
    if event.type not in TYPES:
        raise NotStorable(f"unknown event type {event.type[:40]!r}")
    problem = _time_problem(event.occurred_at)
    if problem:
        raise NotStorable(problem)
    for name, limit in _IDS:
        value = getattr(event, name)
        if value is not None and not (value.isprintable() and len(value) <= limit):
            problem = text_problem(name, value, limit)
            if problem:
                raise NotStorable(problem)
    if _has_nul(event):
        event = replace(
            event,
            url=without_nul(event.url),
            detail=without_nul(event.detail),
            raw=without_nul(dict(event.raw)),
        )
    return event


def _time_problem(when: datetime) -> str | None:
    if when.tzinfo is None:
        return "occurred_at: a time without a time zone"
    try:
        utc = when.astimezone(UTC)
    except OverflowError:
        utc = None
    if utc is None or not EARLIEST <= utc < LATEST:
        return f"occurred_at: {when.isoformat()} is not between 1970 and 8999 (UTC)"
    return None


def _has_nul(event: IncomingEvent) -> bool:
    if "\x00" in (event.url or "") or "\x00" in (event.detail or ""):
        return True
    try:  # one C pass over the payload (~1 µs) instead of a walk in Python (~4 µs)
        return b"\\u0000" in orjson.dumps(event.raw)
    except TypeError:  # a value JSON cannot carry: walk it
        return json_problem("raw", event.raw) is not None


__all__ = ["EARLIEST", "LATEST", "NotStorable", "admit"]
