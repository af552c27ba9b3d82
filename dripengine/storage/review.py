"""The queries behind ``drip scoring review``: the hand-backs with feedback, counted per group.

One row per hand-back with feedback given since ``since`` (a subquery over ``feedback`` grouped by
lead and hand-back: accepted when any of its feedback is accepted / won / lost), counted per group
with ``GROUP BY`` in the database; then the same hand-backs with their Handoff's payload (its
evidence), for the threshold sweep and the signals :mod:`dripengine.scoring.review` computes.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import case, func, literal, select
from sqlalchemy.engine import Connection
from sqlalchemy.sql.elements import ColumnElement

from dripengine.storage.models import FEEDBACK, HANDOFF

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


def _band(
    score: ColumnElement[Any], bands: Sequence[tuple[float, str]], top: str
) -> ColumnElement[Any]:
    """The score's band: ``unknown`` without a score, else the label of the first band whose
    upper edge (excluded) is above it, else ``top``."""
    whens: list[tuple[Any, Any]] = [(score.is_(None), literal("unknown"))]
    for edge, label in bands:
        whens.append((score < edge, literal(label)))
    return case(*whens, else_=literal(top))


def group_counts(
    connection: Connection, since: datetime, bands: Sequence[tuple[float, str]], top: str
) -> dict[str, list[tuple[str, int, int, int]]]:
    """Per grouping (overall, score band, fit grade, campaign, recycle reason), each group's key
    with its hand-backs, accepted and won, ordered by key. Score bands are ``bands`` (upper edge,
    label), lowest first, then ``top``."""
    hb = _handbacks(since)
    keys: dict[str, ColumnElement[Any]] = {
        "overall": literal("all"),
        "score band": _band(hb.c.score, bands, top),
        "fit grade": func.coalesce(hb.c.fit, "unknown"),
        "campaign": func.coalesce(hb.c.campaign, "none"),
        "recycle reason": func.coalesce(hb.c.reason, "unknown"),
    }
    counts: dict[str, list[tuple[str, int, int, int]]] = {}
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
            (str(row.key), int(row.handed), int(row.accepted), int(row.won))
            for row in connection.execute(query)
        ]
    return counts


def handbacks(
    connection: Connection, since: datetime
) -> list[tuple[float | None, str | None, bool, dict[str, Any] | None]]:
    """The hand-backs with feedback since ``since``: score and fit at the hand-back, whether sales
    took it, and the Handoff's payload (None when the Handoff row is gone)."""
    hb = _handbacks(since)
    query = select(hb.c.score, hb.c.fit, hb.c.accepted, HANDOFF.c.payload).select_from(
        hb.outerjoin(HANDOFF, HANDOFF.c.id == hb.c.handoff_id)
    )
    return [
        (row.score, row.fit, bool(row.accepted), row.payload) for row in connection.execute(query)
    ]


__all__ = ["group_counts", "handbacks"]
