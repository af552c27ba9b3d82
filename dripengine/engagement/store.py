"""Store the events not seen before, each once.

Duplicates are recognised by the dedupe key and by the provider's event id (both unique in the
event table): looked up first (:func:`unseen`, before matching), so a provider's retry costs no
match and no insert, and skipped by the insert itself (``ON CONFLICT DO NOTHING``, :func:`store_new`),
so two ``drip serve`` processes racing on the same retry still store it once. The new events come
back in the order they happened, for their effects.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from dripengine.engagement.matching import Matched
from dripengine.engagement.result import IngestResult
from dripengine.storage import Connection
from dripengine.storage import events as events_store
from dripengine.vocabulary import IncomingEvent

# Batches this large look their events up before matching them: a provider's retry of a whole
# batch then costs two look-ups. A smaller batch (a few tracking hits gathered by group commit)
# saves a round trip instead: its duplicates, rare, are matched and then skipped by the insert.
LOOK_FIRST = 50


def unseen(
    connection: Connection, events: Sequence[IncomingEvent], result: IngestResult
) -> list[tuple[str, IncomingEvent]]:
    """``(dedupe key, event)`` of each event not earlier in ``events`` and, for a batch of
    :data:`LOOK_FIRST` or more, not stored before; the others counted in ``result.duplicates``.
    (:func:`store_new`'s insert skips and counts any stored one that gets through.)"""
    keyed = [(e.dedupe_key(), e) for e in events]
    seen_keys: set[str] = set()
    seen_ids: set[tuple[str, str]] = set()
    if len(keyed) >= LOOK_FIRST:
        seen_keys = events_store.stored_dedupe_keys(connection, sorted({k for k, _ in keyed}))
        by_provider: dict[str, set[str]] = defaultdict(set)
        for _, e in keyed:
            if e.provider_event_id:
                by_provider[e.provider].add(e.provider_event_id)
        for provider, ids in by_provider.items():
            found = events_store.stored_provider_event_ids(connection, provider, sorted(ids))
            seen_ids.update((provider, i) for i in found)
    fresh: list[tuple[str, IncomingEvent]] = []
    for key, e in keyed:
        event_id = (e.provider, e.provider_event_id or "")
        if key in seen_keys or (e.provider_event_id and event_id in seen_ids):
            result.duplicates += 1
            continue
        seen_keys.add(key)
        if e.provider_event_id:
            seen_ids.add(event_id)
        fresh.append((key, e))
    return fresh


def store_new(
    connection: Connection, matched: list[Matched], now: datetime, result: IngestResult
) -> list[tuple[int, Matched]]:
    """Insert the (unseen) matched events; ``(event id, match)`` of each one stored, in time
    order. One another transaction stored meanwhile is skipped and counted as a duplicate."""
    if not matched:
        return []
    arrival = {m.key: n for n, m in enumerate(matched)}
    rows = [event_row(m, now) for m in matched]
    stored = [
        (event_id, matched[arrival[key]])
        for event_id, key in events_store.insert_new_events(connection, rows)
    ]
    # a concurrent ingest may have stored some of them between our look and our insert
    result.duplicates += len(matched) - len(stored)
    result.stored += len(stored)
    result.unmatched += sum(1 for _, m in stored if m.lead_id is None)
    # in the order they happened; at the same second, in the order they came
    stored.sort(key=lambda item: (item[1].event.occurred_at, arrival[item[1].key]))
    return stored


def event_row(m: Matched, now: datetime) -> dict[str, Any]:
    e = m.event
    return {
        "message_id": m.message["id"] if m.message is not None else None,
        "lead_id": m.lead_id,
        "type": e.type,
        "provider": e.provider,
        "provider_event_id": e.provider_event_id,
        "occurred_at": e.occurred_at,
        "received_at": now,
        "url": e.url,
        "tag": e.tag,
        "machine": e.machine,
        "dedupe_key": m.key,
        "detail": e.detail,
        "raw": dict(e.raw),
    }


__all__ = ["event_row", "store_new", "unseen"]
