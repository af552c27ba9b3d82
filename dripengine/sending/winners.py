"""Picking A/B winners: each step with ``pick_winner`` and no winner yet is judged on what its
variants got so far (:func:`dripengine.campaigns.winner.judge`), and a winner is recorded once.

Run by the daemon every :data:`WINNER_SECONDS` and by ``drip run --once`` before it sends, so the
run that finds a winner already sends only it. Cheap when there is nothing to judge: one read of
the small ``variant_winner`` table, then one aggregate query per undecided step.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from dripengine.campaigns import Campaign
from dripengine.campaigns.winner import Verdict, judge
from dripengine.storage import Engine
from dripengine.storage.variants import record_winner, variant_counts, winners

WINNER_SECONDS = 60  # how often the daemon looks for winners

__all__ = ["WINNER_SECONDS", "Switch", "pick_winners"]


@dataclass(frozen=True)
class Switch:
    """A step that switched to its winner in this call."""

    campaign_id: str
    step_id: str
    verdict: Verdict

    def line(self) -> str:
        return (
            f"campaign {self.campaign_id} step {self.step_id}: {self.verdict.reason}; "
            f"from now on the step sends only {self.verdict.winner}"
        )


def pick_winners(engine: Engine, campaigns: Iterable[Campaign], now: datetime) -> list[Switch]:
    """Judge every undecided step with ``pick_winner`` at ``now``; the winners recorded now."""
    tests = [
        (campaign, step)
        for campaign in campaigns
        for _, step in campaign.all_steps()
        if step.pick_winner is not None and step.variants
    ]
    if not tests:
        return []
    switched: list[Switch] = []
    with engine.begin() as connection:
        decided = winners(connection)
        for campaign, step in tests:
            if (campaign.id, step.id) in decided:
                continue
            rule = step.pick_winner
            assert rule is not None and step.variants is not None
            counts = variant_counts(connection, campaign.id, step.id, now)
            verdict = judge(
                [v.id for v in step.variants],
                {vid: (c.successes(rule.metric), c.sent) for vid, c in counts.items()},
                metric=rule.metric,
                min_sends=rule.min_sends,
                confidence=rule.confidence,
            )
            if verdict.winner is None:
                continue
            if record_winner(
                connection,
                campaign.id,
                step.id,
                verdict.winner,
                rule.metric,
                now,
                verdict.detail,
            ):
                switched.append(Switch(campaign.id, step.id, verdict))
    return switched
