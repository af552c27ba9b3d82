"""``drip status``: what the sending side is doing, read from the database at ``now``.

Read-side only. Every figure is an aggregate the database computes
(:mod:`dripengine.storage.status`), so the cost does not grow with Python work per row; this module
puts them together with the campaigns' send windows and says what they mean.

Windows are half-open on the left and closed at ``now``: "sent in the last hour" is ``now - 1 h <
sent_at <= now``, so ``drip --now …`` reads the past as it was (rows from after ``now`` are not
counted). A failed message has no time of failure of its own; "failed in the last 24 h" counts the
failed messages *recorded* (``created_at``) in the last 24 h. States (due now, in flight, retrying,
unknown) are the rows as they are: an earlier ``--now`` moves the windows, not the rows.

Workers come from the ``worker`` heartbeat table the daemon writes (kind ``run``), serve processes
from the rows each `drip serve` process writes there (kind ``serve``): *stopped* when the row has a
``stopped_at``, *alive* when its heartbeat is at most :data:`ALIVE_WITHIN` old, else *dead* (it
stopped beating without saying goodbye: kill -9, power loss, a lost network).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from dripengine.reports.campaign_status import CampaignStatus, Group, assess, local
from dripengine.reports.timespan import relative
from dripengine.storage import Connection, Engine
from dripengine.storage import status as queries
from dripengine.storage.pauses import Pause, paused
from dripengine.storage.touches import held_count

if TYPE_CHECKING:
    from dripengine.campaigns import Campaign

HEARTBEAT_SECONDS = 15  # how often a `drip run` daemon or `drip serve` process writes its row
ALIVE_WITHIN = timedelta(seconds=HEARTBEAT_SECONDS * 3)  # three missed beats: dead
RATE_WINDOW = timedelta(minutes=5)
TOP_REASONS = 3
STOPPED_SHOWN_FOR = timedelta(hours=24)  # stopped workers older than this are only counted
MAX_WORKERS_SHOWN = 50


@dataclass(frozen=True)
class Reason:
    reason: str
    count: int


@dataclass(frozen=True)
class ProviderRate:
    provider: str
    sent_5m: int
    rate_per_second: float  # sent in the last 5 minutes / 300 s
    sent_24h: int


@dataclass(frozen=True)
class WorkerState:
    id: str
    host: str
    pid: int
    provider: str | None  # None: a serve process
    state: str  # alive | stopped | dead
    started_at: datetime
    heartbeat_at: datetime
    stopped_at: datetime | None
    sent: int
    failed: int


@dataclass
class Status:
    now: datetime
    due_now: int = 0
    scheduled_24h: int = 0
    in_flight: int = 0
    retrying: int = 0
    failed_24h: int = 0
    failed_reasons: list[Reason] = field(default_factory=list)
    unknown: int = 0
    sent_1h: int = 0
    sent_24h: int = 0
    providers: list[ProviderRate] = field(default_factory=list)
    workers_alive: int = 0
    workers_dead: int = 0
    workers_stopped: int = 0
    workers: list[WorkerState] = field(default_factory=list)
    serve_alive: int = 0  # `drip serve` processes (each of --workers N), as workers are counted
    serve_dead: int = 0
    serve_stopped: int = 0
    serve_processes: list[WorkerState] = field(default_factory=list)
    paused_campaigns: list[Pause] = field(default_factory=list)  # by the complaint breaker
    handoffs_pending: int = 0  # requalified leads not yet accepted by the CRM
    handoffs_failing: int = 0  # of those, the ones whose last attempt failed
    handoff_error: str | None = None  # the latest attempt's error
    handoffs_delivered_24h: int = 0
    active: int = 0  # active enrollments, due or not
    sendable_now: int = 0  # of due_now, the ones the next run sends (window open, not paused)
    # active enrollments whose lead a rep touched within sending.quiet_after_sales_touch
    held_for_sales_touch: int = 0
    campaigns: list[CampaignStatus] = field(default_factory=list)  # one per campaign: why
    campaigns_error: str | None = None  # why the campaign files did not load, when they did not
    hints: list[str] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        """Nothing due, scheduled, in flight or sent lately, and no worker ever: a fresh start."""
        return not any(
            (
                self.active,
                self.due_now,
                self.scheduled_24h,
                self.in_flight,
                self.retrying,
                self.failed_24h,
                self.unknown,
                self.sent_24h,
                self.workers_alive + self.workers_dead + self.workers_stopped,
            )
        )

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def read_status(
    engine: Engine,
    now: datetime,
    campaigns: Sequence[Campaign] | None = None,
    *,
    campaigns_error: str | None = None,
    held: Mapping[str, str] | None = None,
    quiet: timedelta = timedelta(0),
) -> Status:
    """Every figure of ``drip status`` at ``now``, one aggregate query per table and question.

    ``campaigns`` (the loaded campaign files) let each campaign's send window be judged; None
    when they did not load (``campaigns_error`` says why): the database's figures still show.
    ``quiet``: ``sending.quiet_after_sales_touch``, for the enrollments a sales touch holds."""
    status = Status(now=now, campaigns_error=campaigns_error)
    with engine.connect() as connection:
        _enrollments(connection, now, status)
        _messages(connection, now, status)
        _providers(connection, now, status)
        _workers(connection, now, status)
        status.paused_campaigns = paused(connection)
        _handoffs(connection, now, status)
        status.held_for_sales_touch = held_count(connection, now, quiet)
        groups = _campaign_groups(connection, now)
    status.campaigns = assess(groups, campaigns, status.paused_campaigns, now, held)
    status.active = sum(c.active for c in status.campaigns)
    status.sendable_now = sum(c.sendable_now for c in status.campaigns)
    status.hints = _hints(status)
    return status


def _enrollments(connection: Connection, now: datetime, status: Status) -> None:
    status.due_now, status.scheduled_24h = queries.due_counts(connection, now)


def _campaign_groups(connection: Connection, now: datetime) -> list[Group]:
    """Active enrollments by campaign and lead time zone: how many, due now, the next due after."""
    return [Group(*row) for row in queries.active_groups(connection, now)]


def _messages(connection: Connection, now: datetime, status: Status) -> None:
    counts = queries.message_states(connection)
    status.in_flight = int(counts.get("sending", 0))
    status.retrying = int(counts.get("retry", 0))
    status.unknown = int(counts.get("unknown", 0))
    reasons, status.failed_24h = queries.failures(connection, now, TOP_REASONS)
    status.failed_reasons = [Reason(reason, count) for reason, count in reasons]


def _providers(connection: Connection, now: datetime, status: Status) -> None:
    rows = queries.sent_by_provider(connection, now, RATE_WINDOW)
    window = RATE_WINDOW.total_seconds()
    status.providers = [
        ProviderRate(
            r["provider"],
            int(r["sent_5m"]),
            round(int(r["sent_5m"]) / window, 4),
            int(r["sent_24h"]),
        )
        for r in rows
    ]
    status.sent_1h = int(sum(r["sent_1h"] for r in rows))  # one row per provider: a handful
    status.sent_24h = int(sum(r["sent_24h"] for r in rows))


def _workers(connection: Connection, now: datetime, status: Status) -> None:
    counts = queries.worker_counts(connection, now, ALIVE_WITHIN)
    status.workers_alive = int(counts.get("alive", 0))
    status.workers_dead = int(counts.get("dead", 0))
    status.workers_stopped = int(counts.get("stopped", 0))
    rows = queries.workers(connection, now, ALIVE_WITHIN, STOPPED_SHOWN_FOR, MAX_WORKERS_SHOWN)
    status.workers = [WorkerState(**r) for r in rows]
    serve = queries.worker_counts(connection, now, ALIVE_WITHIN, kind="serve")
    status.serve_alive = int(serve.get("alive", 0))
    status.serve_dead = int(serve.get("dead", 0))
    status.serve_stopped = int(serve.get("stopped", 0))
    rows = queries.workers(
        connection, now, ALIVE_WITHIN, STOPPED_SHOWN_FOR, MAX_WORKERS_SHOWN, kind="serve"
    )
    status.serve_processes = [WorkerState(**r) for r in rows]


def _handoffs(connection: Connection, now: datetime, status: Status) -> None:
    pending, failing, delivered = queries.handoff_counts(connection, now)
    status.handoffs_pending = pending
    status.handoffs_failing = failing
    status.handoffs_delivered_24h = delivered
    if status.handoffs_failing:
        status.handoff_error = queries.latest_handoff_error(connection)


def _hints(status: Status) -> list[str]:
    if status.empty:
        return [
            "nothing yet: import leads (`drip leads import FILE.csv`), recycle them "
            "(`drip recycle --csv FILE.csv`), then send with `drip run`"
        ]
    hints = []
    if status.sendable_now and not status.workers_alive:
        hints.append(
            f"{status.sendable_now} due now and no worker alive: start `drip run` "
            "(or `drip run --once`)"
        )
    elif status.active and not status.sendable_now:
        hints.extend(_why_nothing_now(status))
    if status.campaigns_error:
        hints.append(f"the campaign files do not load: {status.campaigns_error}")
    gone = [c.campaign_id for c in status.campaigns if c.state == "unknown_campaign"]
    if gone:
        hints.append(
            f"enrolments in {', '.join(gone)}, which no campaign file defines: restore the file "
            "before the next `drip run`, or that run ends them"
        )
    if status.workers_dead:
        hints.append(
            f"{status.workers_dead} worker(s) stopped beating without stopping: their work is "
            "picked up by the others once its lease runs out"
        )
    if status.serve_dead:
        hints.append(
            f"{status.serve_dead} drip serve process(es) stopped beating without stopping "
            "(killed, or the host is gone): check that enough of them still answer"
        )
    if status.unknown:
        hints.append(
            f"{status.unknown} message(s) interrupted by a crash were not resent (unknown): "
            "see docs/sending.md, 'After a crash'"
        )
    return hints


def _why_nothing_now(status: Status) -> list[str]:
    """Enrolled leads, nothing to send now: when the next email goes out, or what holds it."""
    hints = []
    paused_with_work = [c for c in status.campaigns if c.state == "paused" and c.active]
    for campaign in paused_with_work:
        hints.append(
            f"{campaign.campaign_id} is paused by the complaint breaker with {campaign.active} "
            f"active enrolment(s): clean the list, then `drip campaigns resume "
            f"{campaign.campaign_id}`"
        )
    upcoming = [
        (
            campaign.window_opens_at if campaign.state == "window_closed" else campaign.next_due_at,
            campaign,
        )
        for campaign in status.campaigns
        if campaign.state in ("window_closed", "waiting")
    ]
    dated = [(at, c) for at, c in upcoming if at is not None]
    if dated:
        at, campaign = min(dated, key=lambda pair: (pair[0], pair[1].campaign_id))
        zone = ZoneInfo(campaign.timezone or "UTC")
        keep = (
            "the running `drip run` sends it then"
            if status.workers_alive
            else ("keep `drip run` running (or run `drip run --once` then)")
        )
        hints.append(
            f"nothing goes out now: the next email ({campaign.campaign_id}) goes out "
            f"{local(at, zone)} ({relative(at, status.now)}); {keep}"
        )
    return hints


__all__ = ["ALIVE_WITHIN", "ProviderRate", "Reason", "Status", "WorkerState", "read_status"]
