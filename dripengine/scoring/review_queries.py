"""What :mod:`dripengine.scoring.review` reviews, read from the database.

One row per hand-back with feedback given since ``since`` (a subquery over ``feedback`` grouped by
lead and hand-back: accepted when any of its feedback is accepted / won / lost), counted per group
with ``GROUP BY`` in the database; then the same hand-backs with their Handoff's evidence (event
types and link tags), for the threshold sweep and the signals, which are computed in Python over
that short list.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Table, case, func, literal, select
from sqlalchemy.engine import Connection
from sqlalchemy.sql.elements import ColumnElement

from dripengine.scoring.review import (
    BAND_EDGES,
    GROUPINGS,
    Counts,
    HandBack,
    band_label,
    band_labels,
)
from dripengine.storage.models import Feedback, Handoff

FEEDBACK: Table = Feedback.__table__  # type: ignore[attr-defined]
HANDOFF: Table = Handoff.__table__  # type: ignore[attr-defined]
TOOK_IT = ("accepted", "won", "lost")  # a loss follows an acceptance


def _handbacks(since: datetime) -> Any:
    f = FEEDBACK.c
    return (
        select(
            f.lead_id,
            f.handoff_id,
            func.max(f.score_at_handoff).label("score"),
            func.max(f.fit_at_handoff).label("fit"),
            func.max(f.campaign_id).label("campaign"),
            func.max(f.recycle_reason).label("reason"),
            func.max(case((f.outcome.in_(TOOK_IT), 1), else_=0)).label("accepted"),
            func.max(case((f.outcome == "won", 1), else_=0)).label("won"),
        )
        .where(f.at >= since)
        .group_by(f.lead_id, f.handoff_id)
        .subquery("hand_back")
    )


def _band(score: ColumnElement[Any]) -> ColumnElement[Any]:
    """The SQL twin of :func:`band_label`."""
    whens: list[tuple[Any, Any]] = [(score.is_(None), literal("unknown"))]
    whens.append((score < BAND_EDGES[0], literal(band_label(BAND_EDGES[0] - 1))))
    for edge in BAND_EDGES[1:]:
        whens.append((score < edge, literal(band_label(edge - 1))))
    return case(*whens, else_=literal(band_label(BAND_EDGES[-1])))


def load_counts(connection: Connection, since: datetime) -> dict[str, list[Counts]]:
    """Hand-backs, accepted and won per group, counted by the database."""
    hb = _handbacks(since)
    keys: dict[str, ColumnElement[Any]] = {
        "overall": literal("all"),
        "score band": _band(hb.c.score),
        "fit grade": func.coalesce(hb.c.fit, "unknown"),
        "campaign": func.coalesce(hb.c.campaign, "none"),
        "recycle reason": func.coalesce(hb.c.reason, "unknown"),
    }
    assert tuple(keys) == GROUPINGS
    counts: dict[str, list[Counts]] = {}
    for grouping, key in keys.items():
        # the key computed once in a subquery, grouped by its column: each bound literal appears
        # once in the SQL (PostgreSQL does not match two copies of a parameterised CASE)
        keyed = select(key.label("key"), hb.c.accepted, hb.c.won).select_from(hb).subquery("k")
        query = (
            select(
                keyed.c.key,
                func.count().label("handed"),
                func.coalesce(func.sum(keyed.c.accepted), 0).label("accepted"),
                func.coalesce(func.sum(keyed.c.won), 0).label("won"),
            )
            .group_by(keyed.c.key)
            .order_by(keyed.c.key)
        )
        counts[grouping] = [
            Counts(str(row.key), int(row.handed), int(row.accepted), int(row.won))
            for row in connection.execute(query)
        ]
    counts["score band"].sort(key=lambda c: _band_order(c.key))
    return counts


def _band_order(key: str) -> int:
    labels = band_labels()
    return labels.index(key) if key in labels else len(labels)


def load_handbacks(connection: Connection, since: datetime) -> list[HandBack]:
    """The hand-backs with feedback since ``since``, with their evidence's event types and tags."""
    hb = _handbacks(since)
    query = select(hb.c.score, hb.c.fit, hb.c.accepted, HANDOFF.c.payload).select_from(
        hb.outerjoin(HANDOFF, HANDOFF.c.id == hb.c.handoff_id)
    )
    handbacks = []
    for row in connection.execute(query):
        evidence = (row.payload or {}).get("evidence") or []
        items = [item for item in evidence if isinstance(item, dict)]
        handbacks.append(
            HandBack(
                score=row.score,
                fit=row.fit,
                accepted=bool(row.accepted),
                event_types=frozenset(str(i["type"]) for i in items if i.get("type")),
                tags=frozenset(str(i["tag"]) for i in items if i.get("tag")),
            )
        )
    return handbacks


__all__ = ["load_counts", "load_handbacks"]
