"""What a round writes: its decisions and the ``sending`` rows before the provider is called, the
provider's results after, and each enrollment advanced to its next step's due time or completed.

**Recorded before sent**: :func:`record_decisions` inserts a ``sending`` message per email (the
unique (enrollment, round, step) key is the last guard against a double send: a send whose row
exists already gets no id and is dropped) and is committed before the provider call.
:func:`record_results` then writes sent / retry (with backoff, or the wait the provider asked for)
/ failed, and :func:`advance` moves the enrollment on; :func:`next_due` is the one place the
dispatcher computes the next step's due time. An enrollment that left meanwhile (an unsubscribe,
a requalification) is not touched: every enrollment update requires it to be still active.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from dripengine.campaigns import schedule
from dripengine.campaigns.sequence import NextStep, next_step
from dripengine.campaigns.window import resolve_timezone
from dripengine.providers.base import SendResult
from dripengine.sending.decide import Decided, Send, message_row
from dripengine.sending.tally import Tally
from dripengine.storage import Connection
from dripengine.storage.messages import insert_messages, update_enrollments, update_messages

RELEASE = {"lease_owner": None, "lease_until": None}
BACKOFF_BASE = timedelta(minutes=1)
BACKOFF_MAX = timedelta(hours=6)


def record_decisions(
    connection: Connection, decided: Decided, provider_name: str, now: datetime
) -> None:
    """Write the round's decisions: skipped steps, a ``sending`` row per email (a retry's row
    turns ``sending`` again), the enrollments' new values. Each send gets its ``message_id``; one
    still without is a double and must not be sent."""
    insert_messages(connection, decided.skipped_rows)
    retry_rows = [s for s in decided.sends if s.message_id is not None]
    fresh = [s for s in decided.sends if s.message_id is None]
    inserted = insert_messages(connection, [_sending_row(s, provider_name, now) for s in fresh])
    for send in fresh:
        send.message_id = inserted.get((send.enrollment.id, send.enrollment.round, send.step.id))
    update_messages(
        connection,
        [
            {
                "id": s.message_id,
                "status": "sending",
                "attempts": s.attempts,
                "provider": provider_name,
                "variant": s.variant.id if s.variant else None,  # a winner may be new since
                "template": s.template,
            }
            for s in retry_rows
        ],
    )
    update_enrollments(connection, decided.enrollment_updates, where_status="active")


def _sending_row(send: Send, provider_name: str, now: datetime) -> dict[str, Any]:
    return message_row(
        send.enrollment,
        send.lead,
        send.campaign,
        send.track,
        send.step,
        now,
        status="sending",
        provider=provider_name,
        uid=send.uid,
        variant=send.variant,
    )


def record_results(
    connection: Connection,
    sends: Sequence[Send],
    results: Mapping[str, SendResult],
    now: datetime,
    tally: Tally,
    *,
    max_attempts: int,
    rng: random.Random,
) -> None:
    """Each send's outcome, and its enrollment advanced (or due again, for a retry)."""
    message_updates: list[dict[str, Any]] = []
    enrollment_updates: list[dict[str, Any]] = []
    deferred: set[str] = set()
    for send in sends:
        result = results.get(send.uid)
        subject = send.email.subject if send.email else None
        error: str | None
        if send.error is not None or result is None:
            status, error = "failed", send.error or "no answer from the provider"
        elif result.status == "retry" and result.retry_after:
            # asked to wait (a 429, the rate limit, the daily cap): not a failed attempt
            status, error = "retry", result.error
            deferred.add(send.uid)
        elif result.status == "retry" and send.attempts < max_attempts:
            status, error = "retry", result.error
        elif result.status == "retry":
            status, error = "failed", f"gave up after {send.attempts} attempts: {result.error}"
        else:
            status, error = result.status, result.error
        update: dict[str, Any] = {
            "id": send.message_id,
            "status": status,
            "error": error,
            "subject": subject,
        }
        if status == "sent":
            assert result is not None
            tally.sent += 1
            update.update(provider_message_id=result.provider_message_id, sent_at=now)
        elif status == "retry":
            tally.retried += 1
            assert result is not None
            wait = result.retry_after
            delay = timedelta(seconds=wait) if wait else backoff(send.attempts, rng)
            enrollment_updates.append(
                {
                    "id": send.enrollment.id,
                    "next_due_at": now + delay,
                    "updated_at": now,
                    **RELEASE,
                }
            )
        else:
            tally.failed += 1
            tally.errors.append(f"{send.lead.email} {send.campaign.id}/{send.step.id}: {error}")
        if send.uid in deferred:
            update["attempts"] = send.attempts - 1
        message_updates.append(update)
        if status != "retry":
            enrollment_updates.append(advance(send, now))
    update_messages(connection, message_updates)
    # only an enrollment still active: an unsubscribe, a requalification or "leave this
    # campaign" that landed while we held the lease stands (the exit wins over our advance)
    update_enrollments(connection, enrollment_updates, where_status="active")


def release(connection: Connection, sends: Sequence[Send]) -> None:
    """Give back the leases of ``sends`` (dropped: their message existed already)."""
    update_enrollments(
        connection, [{"id": s.enrollment.id, **RELEASE} for s in sends], where_status="active"
    )


def advance(send: Send, now: datetime) -> dict[str, Any]:
    """The enrollment after this step: the next step's due time, or completed."""
    base = {
        "id": send.enrollment.id,
        **RELEASE,
        "updated_at": now,
        "step_index": send.enrollment.step_index + 1,
    }
    following = next_due(send, now)
    if following is None:
        return {
            **base,
            "status": "completed",
            "ended_at": now,
            "next_due_at": None,
            "current_step": None,
        }
    upcoming, due = following
    return {
        **base,
        "next_due_at": due,
        "current_step": upcoming.step.id,
        "track": upcoming.track,
    }


def next_due(send: Send, now: datetime) -> tuple[NextStep, datetime] | None:
    """The step after ``send``'s (sent at ``now``) and when it is due: its wait from now, moved
    into the campaign's send window in the lead's zone (spread by address); None when the round
    is complete."""
    progress = send.progress.after(send.step.id, now, sent=True)
    upcoming = next_step(send.campaign, send.score, progress)
    if upcoming is None:
        return None
    tz = resolve_timezone(send.lead.timezone, send.campaign.send.timezone)
    return upcoming, schedule.next_due(
        upcoming.earliest, send.campaign.send.window, tz, send.lead.email
    )


def backoff(attempt: int, rng: random.Random) -> timedelta:
    """Exponential backoff with full jitter: 1, 2, 4 … minutes (capped), times a random 0.5 to 1."""
    ceiling = min(BACKOFF_BASE * (2 ** (attempt - 1)), BACKOFF_MAX)
    return ceiling * (0.5 + rng.random() / 2)


__all__ = [
    "advance",
    "backoff",
    "next_due",
    "record_decisions",
    "record_results",
    "release",
]
