"""What :mod:`dripengine.scoring.review` reviews, read from the database.

The database counts the hand-backs with feedback per group and lists them with their Handoff's
payload (:mod:`dripengine.storage.review`); this module turns those rows into the review's
:class:`~dripengine.scoring.review.Counts` (score bands in band order) and
:class:`~dripengine.scoring.review.HandBack` values (the evidence's event types and link tags).
"""

from __future__ import annotations

from datetime import datetime

from dripengine.scoring.review import (
    BAND_EDGES,
    GROUPINGS,
    Counts,
    HandBack,
    band_label,
    band_labels,
)
from dripengine.storage import Connection
from dripengine.storage import review as queries


def load_counts(connection: Connection, since: datetime) -> dict[str, list[Counts]]:
    """Hand-backs, accepted and won per group, counted by the database."""
    # the bands as band_label draws them: below each edge, then the top one
    bands = [(edge, band_label(edge - 1)) for edge in BAND_EDGES]
    rows = queries.group_counts(connection, since, bands, band_label(BAND_EDGES[-1]))
    assert tuple(rows) == GROUPINGS
    counts = {grouping: [Counts(*row) for row in found] for grouping, found in rows.items()}
    counts["score band"].sort(key=lambda c: _band_order(c.key))
    return counts


def _band_order(key: str) -> int:
    labels = band_labels()
    return labels.index(key) if key in labels else len(labels)


def load_handbacks(connection: Connection, since: datetime) -> list[HandBack]:
    """The hand-backs with feedback since ``since``, with their evidence's event types and tags."""
    handbacks = []
    for score, fit, accepted, payload in queries.handbacks(connection, since):
        evidence = (payload or {}).get("evidence") or []
        items = [item for item in evidence if isinstance(item, dict)]
        handbacks.append(
            HandBack(
                score=score,
                fit=fit,
                accepted=accepted,
                event_types=frozenset(str(i["type"]) for i in items if i.get("type")),
                tags=frozenset(str(i["tag"]) for i in items if i.get("tag")),
            )
        )
    return handbacks


__all__ = ["load_counts", "load_handbacks"]
