"""``drip stats --by variant``: each A/B variant of each step, its emails' outcomes, its weight,
and where the step's test stands (collecting, no winner yet, or the winner with when and why).

The counts are :func:`dripengine.storage.stats.email_counts`' (the same meaning as ``--by step``:
each email once per outcome, machine opens and scanner clicks apart); the verdict of a step still
testing is :func:`dripengine.campaigns.winner.judge`'s on the figures the daemon would use
(:mod:`dripengine.storage.variants`: leads, not emails; up to the window's ``now``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from dripengine.campaigns import Campaign, Step
from dripengine.campaigns.winner import judge
from dripengine.reports.stats import EMAIL_RATES, Row, View, Window
from dripengine.storage import Connection
from dripengine.storage import stats as counted
from dripengine.storage.stats import EMAIL_COUNTS
from dripengine.storage.variants import WinnerRow, variant_counts, winner_rows

__all__ = ["COLUMNS", "KEYS", "VIEW", "by_variant"]

KEYS = ("campaign", "track", "step", "variant")
COLUMNS = ("weight", "winner", "decided_at", "status")  # beside the keys, counts and rates


def by_variant(
    connection: Connection,
    window: Window,
    campaigns: Sequence[Campaign],
    campaign: str | None = None,
) -> list[Row]:
    """One row per variant of every step with variants (campaign file order), then any variant
    the database has emails for that the files no longer list."""
    emails = counted.email_counts(connection, window, "variant", campaign)
    decided = {(w.campaign_id, w.step_id): w for w in winner_rows(connection)}
    rows: list[Row] = []
    listed: set[tuple[Any, ...]] = set()
    for c in campaigns:
        if campaign is not None and c.id != campaign:
            continue
        for track, step in c.all_steps():
            if not step.variants:
                continue
            won = decided.get((c.id, step.id))
            status = _status(connection, window, c.id, step, won)
            for variant in step.variants:
                key = (c.id, track, step.id, variant.id)
                listed.add(key)
                rows.append(_row(key, emails.get(key), variant.weight, won, status))
    for key in sorted(set(emails) - listed):
        won = decided.get((key[0], key[2]))
        rows.append(_row(key, emails[key], None, won, "not in the campaign files any more"))
    return rows


def _row(
    key: tuple[Any, ...],
    counts: dict[str, Any] | None,
    weight: float | None,
    won: WinnerRow | None,
    status: str,
) -> Row:
    values = {name: int((counts or {}).get(name, 0)) for name in EMAIL_COUNTS}
    return Row(
        {
            **dict(zip(KEYS, key, strict=True)),
            "weight": weight,
            "winner": won is not None and won.variant == key[3],
            "decided_at": won.decided_at.isoformat() if won else None,
            "status": status,
        },
        values,
        EMAIL_RATES,
    )


def _status(
    connection: Connection, window: Window, campaign_id: str, step: Step, won: WinnerRow | None
) -> str:
    """Where the step's test stands, in one sentence."""
    if won is not None:
        reason = str(won.detail.get("reason") or f"{won.variant} won on {won.metric}")
        return f"{won.variant} sent to everyone since {won.decided_at:%Y-%m-%d %H:%M} UTC: {reason}"
    rule = step.pick_winner
    if rule is None or not step.variants:
        return "no pick_winner: each variant keeps its share"
    counts = variant_counts(connection, campaign_id, step.id, window.now)
    return judge(
        [v.id for v in step.variants],
        {vid: (c.successes(rule.metric), c.sent) for vid, c in counts.items()},
        metric=rule.metric,
        min_sends=rule.min_sends,
        confidence=rule.confidence,
    ).reason


VIEW = View("variant", KEYS, EMAIL_COUNTS, EMAIL_RATES)
