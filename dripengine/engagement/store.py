"""An ingest's second step: store the events not seen before, each once.

Duplicates are recognised by the dedupe key and by the provider's event id (both unique in the
event table): looked up first, so a provider's retry costs no insert, and skipped by the insert
itself (``ON CONFLICT DO NOTHING``), so two ``drip serve`` processes racing on the same retry still
store it once. The new events come back in the order they happened, for their effects.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from typing import Any

from dripengine.engagement.matching import Matched
from dripengine.engagement.result import IngestResult
from dripengine.storage import Connection
from dripengine.storage import events as events_store


def store_new(
    connection: Connection, matched: list[Matched], now: datetime, result: IngestResult
) -> list[tuple[int, Matched]]:
    """Insert the events not stored before; ``(event id, match)`` of each new one, in time order."""
    seen_keys = events_store.stored_dedupe_keys(connection, sorted({m.key for m in matched}))
    seen_ids: set[tuple[str, str]] = set()
    by_provider: dict[str, set[str]] = defaultdict(set)
    for m in matched:
        if m.event.provider_event_id:
            by_provider[m.event.provider].add(m.event.provider_event_id)
    for provider, ids in by_provider.items():
        found = events_store.stored_provider_event_ids(connection, provider, sorted(ids))
        seen_ids.update((provider, i) for i in found)
    fresh: dict[str, Matched] = {}
    for m in matched:
        event_id = (m.event.provider, m.event.provider_event_id or "")
        if m.key in seen_keys or (m.event.provider_event_id and event_id in seen_ids):
            result.duplicates += 1
            continue
        seen_keys.add(m.key)
        if m.event.provider_event_id:
            seen_ids.add(event_id)
        fresh[m.key] = m
    if not fresh:
        return []
    rows = [event_row(m, now) for m in fresh.values()]
    stored = [
        (event_id, fresh[key]) for event_id, key in events_store.insert_new_events(connection, rows)
    ]
    # a concurrent ingest may have stored some of them between our look and our insert
    result.duplicates += len(fresh) - len(stored)
    result.stored += len(stored)
    result.unmatched += sum(1 for _, m in stored if m.lead_id is None)
    # in the order they happened; at the same second, in the order they came
    arrival = {key: n for n, key in enumerate(fresh)}
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


__all__ = ["event_row", "store_new"]
