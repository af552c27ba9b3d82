"""The complaint breaker: a campaign whose spam complaints or hard bounces pass a rate pauses itself.

Mailbox providers judge a sender by these two rates (Gmail and Yahoo act at a 0.3% complaint
rate); a campaign sent to a bad list can damage every other campaign's delivery within a day. So
over the campaign's emails sent in the last :data:`WINDOW` (and, after a resume, only those sent
since), once there are at least ``scoring.breaker_min_sample`` of them, a complaint rate above
``scoring.max_complaint_rate`` (0.1%) or a hard-bounce rate above ``scoring.max_bounce_rate`` (2%)
pauses the campaign (:mod:`dripengine.storage.pauses`) until someone runs ``drip campaigns resume
ID``.

:func:`trip` is the rule, pure; :func:`check_breakers` reads the figures and writes the pauses
(the statements are :mod:`dripengine.storage.messages`'s and :mod:`dripengine.storage.pauses`').
The daemon runs it every minute; ingest may call it after a batch of events.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from dripengine.config import ScoringSettings, Settings
from dripengine.storage import Connection, Engine, pauses
from dripengine.storage.messages import sent_and_flagged
from dripengine.vocabulary import BOUNCE, COMPLAINT

WINDOW = timedelta(days=30)
CHECK_SECONDS = 60  # how often the daemon checks


@dataclass(frozen=True)
class Sample:
    """One campaign's emails in the window: sent, and how many drew a complaint / a hard bounce."""

    sent: int
    complaints: int
    hard_bounces: int


def trip(sample: Sample, rules: ScoringSettings) -> str | None:
    """Why the campaign must pause, or None. Rates are judged only over a large enough sample."""
    if sample.sent < rules.breaker_min_sample or sample.sent == 0:
        return None
    checks = (
        ("complaint", sample.complaints, rules.max_complaint_rate),
        ("hard-bounce", sample.hard_bounces, rules.max_bounce_rate),
    )
    for name, count, limit in checks:
        rate = count / sample.sent
        if rate > limit:
            return f"{name} rate {rate:.2%} ({count} of {sample.sent:,} sent) is over {limit:.2%}"
    return None


def samples(connection: Connection, now: datetime) -> dict[str, Sample]:
    """Every campaign's sample at ``now``: one aggregate query (per-message flags from ``event``)."""
    found = sent_and_flagged(connection, now, WINDOW, complaint=COMPLAINT, bounce=BOUNCE)
    return {campaign_id: Sample(*counts) for campaign_id, counts in found.items()}


def decide(
    found: Mapping[str, Sample], already: set[str], rules: ScoringSettings
) -> dict[str, str]:
    """The campaigns to pause now (not paused already) and why."""
    verdicts = {cid: trip(sample, rules) for cid, sample in found.items() if cid not in already}
    return {cid: reason for cid, reason in sorted(verdicts.items()) if reason}


def check_breakers(engine: Engine, settings: Settings, now: datetime) -> list[str]:
    """Pause every campaign past a breaker at ``now``; the ids of the campaigns paused by this call."""
    # read, then write in a transaction of its own: on SQLite a read transaction that turns into
    # a write fails at once when another connection wrote meanwhile (the pause upsert is idempotent)
    with engine.connect() as connection:
        already = {p.campaign_id for p in pauses.paused(connection)}
        tripped = decide(samples(connection, now), already, settings.scoring)
    if tripped:
        with engine.begin() as connection:
            for campaign_id, reason in tripped.items():
                pauses.pause(connection, campaign_id, reason, now)
    return list(tripped)


__all__ = ["CHECK_SECONDS", "WINDOW", "Sample", "check_breakers", "decide", "samples", "trip"]
