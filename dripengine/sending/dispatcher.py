"""The dispatcher: claim due enrollments, decide, render, deliver, record, advance.

One batch, in order:

1. **Recover** messages left as ``sending`` by a worker that died (its lease ran out): the provider's
   own evidence decides (the outbox file is there or not); without evidence the message is marked
   ``unknown`` and never resent blindly.
2. **Claim** up to ``batch_size`` due enrollments with a lease (see :mod:`.store`).
3. **Decide** each one with :func:`dripengine.sending.policy.decide` (suppression, exits, window,
   condition, frequency cap); a skipped step is recorded and the next one decided at once.
4. **Record** a ``sending`` Message per email *before* the provider is called, and commit. The
   unique (enrollment, round, step) key is the last guard against a double send.
5. **Render** (compiled templates, Jinja per lead) and **deliver** the batch through the provider.
6. **Record** each result (sent / retry with backoff / failed) and **advance** each enrollment to
   its next step's due time, or completion; release the leases.
"""

from __future__ import annotations

import os
import random
import socket
import threading
import uuid
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.engine import Connection, Engine

from dripengine.campaigns import Campaign, Step
from dripengine.campaigns.sequence import Progress, next_step
from dripengine.campaigns.window import WINDOW_SPREAD, next_opening, resolve_timezone
from dripengine.clock import Clock
from dripengine.config import Settings
from dripengine.engagement import tracking
from dripengine.funnel.sla import SLA
from dripengine.providers.base import Provider, SendResult
from dripengine.scoring.rules import ScoringRules, decayed, rules_from_settings
from dripengine.sending.compose import compose
from dripengine.sending.message import OutgoingEmail, mailbox
from dripengine.sending.policy import DueLead, decide
from dripengine.sending.store import (
    DELIVERED,
    DONE,
    ENROLLMENT,
    MESSAGE,
    Batch,
    MessageRow,
    claim,
    count_due,
    insert_messages,
    load,
    stale_sending,
    update_rows,
)
from dripengine.templates import Sender, TemplateEngine, TemplateError
from dripengine.templates.text import one_line
from dripengine.tokens import sign

RELEASE = {"lease_owner": None, "lease_until": None}
BACKOFF_BASE = timedelta(minutes=1)
BACKOFF_MAX = timedelta(hours=6)
MAX_SKIPS = 50  # steps skipped in a row before the enrollment is looked at again next tick

# SQLite allows one writer; a read transaction that later writes fails at once (SQLITE_BUSY_SNAPSHOT,
# not retried by busy_timeout) when another connection committed meanwhile. The dispatcher's
# transactions therefore run one at a time within the process; never held around the provider.
_SQLITE_WRITES = threading.RLock()


def worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


@dataclass
class Tally:
    claimed: int = 0
    sent: int = 0
    retried: int = 0
    failed: int = 0
    skipped: int = 0
    waiting: int = 0
    exited: int = 0
    completed: int = 0
    recovered: int = 0
    errors: list[str] = field(default_factory=list)

    def add(self, other: Tally) -> None:
        for name in (
            "claimed",
            "sent",
            "retried",
            "failed",
            "skipped",
            "waiting",
            "exited",
            "completed",
            "recovered",
        ):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.errors += other.errors


@dataclass
class _Prepared:
    """A batch whose 'sending' rows are committed and whose emails are rendered: ready to send."""

    now: datetime
    sends: list[_Send]
    dropped: list[_Send]


@dataclass
class _Send:
    enrollment: dict[str, Any]
    lead: dict[str, Any]
    campaign: Campaign
    track: str
    step: Step
    progress: Progress
    score: float
    uid: str
    recycle: dict[str, Any] = field(default_factory=dict)
    message_id: int | None = None
    email: OutgoingEmail | None = None
    error: str | None = None
    attempts: int = 1


@dataclass(frozen=True)
class RunCounts:
    """How far ``run_once`` is: claimed enrollments whose outcome is committed, emails sent and
    failed so far (recorded), for ``run_once(on_counts=…)``."""

    done: int
    sent: int
    failed: int


class _ProgressHook:
    """The running count for ``run_once(on_progress=…, on_counts=…)``; called under a lock (two
    threads add)."""

    def __init__(
        self,
        callback: Callable[[int], None] | None = None,
        counts: Callable[[RunCounts], None] | None = None,
    ) -> None:
        self.callback = callback
        self.counts = counts
        self.done = self.sent = self.failed = 0
        self.lock = threading.Lock()

    def add(self, count: int, *, sent: int = 0, failed: int = 0) -> None:
        if (self.callback is None and self.counts is None) or count <= 0:
            return
        with self.lock:
            self.done += count
            self.sent += sent
            self.failed += failed
            if self.callback is not None:
                self.callback(self.done)
            if self.counts is not None:
                self.counts(RunCounts(self.done, self.sent, self.failed))


class Dispatcher:
    _progress = _ProgressHook()  # dispatch_batch() outside run_once(): nobody listens

    def __init__(
        self,
        engine: Engine,
        settings: Settings,
        campaigns: Sequence[Campaign],
        sla: SLA,
        provider: Provider,
        clock: Clock,
        *,
        worker: str | None = None,
        templates: TemplateEngine | None = None,
        rules: ScoringRules | None = None,
        rng: random.Random | None = None,
        only: Collection[str] | None = None,
    ) -> None:
        self.engine = engine
        self.settings = settings
        self.campaigns: Mapping[str, Campaign] = {c.id: c for c in campaigns}
        # with a campaign file broken: claim only from these campaigns (the broken one's wait)
        self.only: frozenset[str] | None = None if only is None else frozenset(only)
        self.sla = sla
        self.provider = provider
        self.clock = clock
        self.worker = worker or worker_id()
        self.templates = templates or TemplateEngine(settings.path("templates"))
        self.rules = rules or rules_from_settings(settings.scoring)
        self.rng = rng or random.Random()
        self.lease = timedelta(seconds=settings.sending.lease_seconds)

    def use_campaigns(self, campaigns: Sequence[Campaign], only: Collection[str] | None) -> None:
        """Run these campaigns from the next batch on (the daemon re-read the campaign files)."""
        self.campaigns = {c.id: c for c in campaigns}
        self.only = None if only is None else frozenset(only)

    # -- the loop -------------------------------------------------------------------------------

    def count_due(self) -> int:
        """Enrollments due now and not leased: what :meth:`run_once` would claim (a bar's total)."""
        with self.engine.connect() as connection:
            return count_due(connection, self.clock.now(), self.only)

    def run_once(
        self,
        *,
        max_batches: int | None = None,
        stop: Any = None,
        on_progress: Callable[[int], None] | None = None,
        on_counts: Callable[[RunCounts], None] | None = None,
    ) -> Tally:
        """Dispatch batches until nothing is due (or ``stop()`` says so); the totals.

        Three stages overlap, each on its own thread: while batch N is with the provider (the
        sending thread), batch N-1's results are recorded (the recording thread) and batch N+1 is
        claimed, decided, committed as 'sending' and rendered here. N+1 is handed to the provider
        as soon as the provider is done with N, so the provider is never idle waiting for a
        recording; the provider still gets one batch at a time. The leases keep unrecorded
        batches out of the next claims. At most two batches are unrecorded at once; all are
        recorded before this returns, and an error on another thread is raised here.

        ``on_progress(done)``, if given, is called with the number of claimed enrollments whose
        outcome is committed so far: those that wait, exit or complete when their batch's
        decisions are committed, those with an email when its result is recorded. Calls come
        from this thread and from the sending thread, one at a time, ``done`` never decreasing.
        ``on_counts(RunCounts)``, if given, is called at the same moments with that count and
        the emails sent and failed so far.
        """
        self._progress = _ProgressHook(on_progress, on_counts)
        try:
            return self._run_batches(max_batches, stop)
        finally:
            del self._progress  # back to the class's silent hook

    def _run_batches(self, max_batches: int | None, stop: Any) -> Tally:
        total = Tally()
        total.recovered = self.recover()
        batches = 0
        sending: Future[Future[Tally]] | None = None  # its result: the batch's recording
        recording: list[Future[Tally]] = []  # oldest first
        with (
            ThreadPoolExecutor(max_workers=1, thread_name_prefix="drip-send") as sender,
            ThreadPoolExecutor(max_workers=1, thread_name_prefix="drip-record") as recorder,
        ):
            try:
                while max_batches is None or batches < max_batches:
                    if stop is not None and stop():
                        break
                    tally = Tally()
                    prepared = self._prepare(tally)
                    if sending is not None:
                        handed, sending = sending, None
                        recording.append(handed.result())  # the provider is done with it
                    if prepared is None:
                        if recording:
                            # claimed while batches were in flight: look again once they are recorded
                            while recording:
                                total.add(recording.pop(0).result())
                            continue
                        total.add(tally)
                        break
                    batches += 1
                    while len(recording) > 1:  # at most two batches not yet recorded
                        total.add(recording.pop(0).result())
                    sending = sender.submit(self._send, prepared, tally, recorder)
            finally:
                errors: list[BaseException] = []
                if sending is not None:
                    try:
                        recording.append(sending.result())
                    except BaseException as exc:
                        errors.append(exc)
                for future in recording:
                    try:
                        total.add(future.result())
                    except BaseException as exc:
                        errors.append(exc)
                if errors:
                    raise errors[0]
        return total

    def recover(self) -> int:
        """Resolve messages a dead worker left as 'sending', by the provider's evidence."""
        now = self.clock.now()
        with self._transaction() as connection:
            rows = stale_sending(connection, now)
            updates = []
            for row in rows:
                verdict = self.provider.evidence(row.uid, row.created_at)
                if verdict == "sent":
                    updates.append({"id": row.id, "status": "sent", "sent_at": now})
                elif verdict == "not_sent":
                    updates.append(
                        {
                            "id": row.id,
                            "status": "retry",
                            "error": "interrupted before delivery; will be sent again",
                        }
                    )
                else:
                    updates.append(
                        {
                            "id": row.id,
                            "status": "unknown",
                            "error": f"interrupted while {self.provider.name} was sending; not resent, to avoid a duplicate",
                        }
                    )
            update_rows(connection, MESSAGE, updates, where_status="sending")
        return len(rows)

    def dispatch_batch(self) -> Tally:
        """One batch, synchronously: claim, decide, render, deliver, record."""
        tally = Tally()
        prepared = self._prepare(tally)
        if prepared is not None:
            self._deliver(prepared, tally)
        return tally

    @contextmanager
    def _transaction(self) -> Iterator[Connection]:
        if self.engine.dialect.name == "sqlite":
            with _SQLITE_WRITES, self.engine.begin() as connection:
                yield connection
        else:
            with self.engine.begin() as connection:
                yield connection

    def _prepare(self, tally: Tally) -> _Prepared | None:
        """Claim, decide and commit the 'sending' rows, then render; None when nothing is due."""
        now = self.clock.now()
        with self._transaction() as connection:
            ids = claim(
                connection,
                self.worker,
                now,
                self.lease,
                self.settings.sending.batch_size,
                self.only,
            )
        tally.claimed = len(ids)
        if not ids:
            return None
        with self._transaction() as connection:
            batch = load(connection, ids, now)
            sends, enrollment_updates, message_rows = self._decide(batch, now, tally)
            new_rows = [row for row in message_rows if row.get("status") == "skipped"]
            insert_messages(connection, new_rows)
            retry_rows = [s for s in sends if s.message_id is not None]
            fresh = [s for s in sends if s.message_id is None]
            inserted = insert_messages(connection, [self._sending_row(s, now) for s in fresh])
            for send in fresh:
                send.message_id = inserted.get(
                    (send.enrollment["id"], send.enrollment["round"], send.step.id)
                )
            update_rows(
                connection,
                MESSAGE,
                [
                    {
                        "id": s.message_id,
                        "status": "sending",
                        "attempts": s.attempts,
                        "provider": self.provider.name,
                    }
                    for s in retry_rows
                ],
            )
            update_rows(connection, ENROLLMENT, enrollment_updates, where_status="active")
        # the 'sending' rows are committed: only now may the provider be called
        dropped = [s for s in sends if s.message_id is None]  # its message exists: never twice
        sends = [s for s in sends if s.message_id is not None]
        self._progress.add(len(ids) - len(sends) - len(dropped))  # waiting, exited, completed
        self._render(sends, now)
        return _Prepared(now, sends, dropped)

    def _deliver(self, prepared: _Prepared, tally: Tally) -> Tally:
        """Send a prepared batch through the provider and record the results; ``tally``."""
        return self._record_batch(prepared, self._provider_call(prepared), tally)

    def _send(
        self, prepared: _Prepared, tally: Tally, recorder: ThreadPoolExecutor
    ) -> Future[Tally]:
        """The provider call (on the sending thread); the recording is queued on ``recorder``."""
        results = self._provider_call(prepared)
        return recorder.submit(self._record_batch, prepared, results, tally)

    def _provider_call(self, prepared: _Prepared) -> dict[str, SendResult]:
        ready = [s.email for s in prepared.sends if s.email is not None]
        return {r.uid: r for r in self.provider.send(ready)} if ready else {}

    def _record_batch(
        self, prepared: _Prepared, results: Mapping[str, SendResult], tally: Tally
    ) -> Tally:
        with self._transaction() as connection:
            self._record(connection, prepared.sends, results, prepared.now, tally)
            update_rows(
                connection,
                ENROLLMENT,
                [{"id": s.enrollment["id"], **RELEASE} for s in prepared.dropped],
                where_status="active",
            )
        self._progress.add(
            len(prepared.sends) + len(prepared.dropped), sent=tally.sent, failed=tally.failed
        )
        return tally

    # -- deciding -------------------------------------------------------------------------------

    def _decide(
        self, batch: Batch, now: datetime, tally: Tally
    ) -> tuple[list[_Send], list[dict[str, Any]], list[dict[str, Any]]]:
        sends: list[_Send] = []
        enrollment_updates: list[dict[str, Any]] = []
        skipped_rows: list[dict[str, Any]] = []
        cap = self.settings.sending.max_per_lead_per_week
        for enrollment in batch.enrollments:
            lead = batch.leads[enrollment["lead_id"]]
            campaign = self.campaigns.get(enrollment["campaign_id"])
            release = {
                "id": enrollment["id"],
                "lease_owner": None,
                "lease_until": None,
                "updated_at": now,
            }
            if campaign is None:
                tally.exited += 1
                enrollment_updates.append(
                    {
                        **release,
                        "status": "exited",
                        "exit_reason": f"campaign {enrollment['campaign_id']} no longer exists",
                        "ended_at": now,
                        "next_due_at": None,
                    }
                )
                continue
            rows = batch.messages.get(enrollment["id"], [])
            progress = _progress(
                rows, batch.engaged.get(enrollment["id"], set()), enrollment["enrolled_at"]
            )
            score = decayed(lead["score"], lead["score_updated_at"], now, self.rules.half_life_days)
            due_lead = DueLead(
                email=lead["email"],
                score=score,
                timezone=resolve_timezone(lead["timezone"], campaign.send.timezone),
                suppressed=batch.suppressed.get(lead["email"]),
            )
            recent = batch.recent.get(lead["id"], [])
            for _ in range(MAX_SKIPS):
                decision = decide(
                    campaign,
                    due_lead,
                    progress,
                    entered_at=enrollment["enrolled_at"],
                    recent_sends=recent,
                    cap=cap,
                    now=now,
                )
                if decision.kind != "skip":
                    break
                assert decision.step is not None
                tally.skipped += 1
                skipped_rows.append(
                    self._row(
                        enrollment,
                        lead,
                        campaign,
                        decision.track,
                        decision.step,
                        now,
                        status="skipped",
                        error=decision.reason,
                    )
                )
                progress = progress.after(decision.step.id, now, sent=False)
            if decision.kind == "send":
                assert decision.step is not None and decision.track is not None
                retry = next(
                    (r for r in rows if r.step_id == decision.step.id and r.status == "retry"), None
                )
                sends.append(
                    _Send(
                        enrollment,
                        lead,
                        campaign,
                        decision.track,
                        decision.step,
                        progress,
                        score,
                        uid=retry.uid if retry else uuid.uuid4().hex,
                        recycle=self._recycle_context(batch.recycles.get(lead["id"])),
                        message_id=retry.id if retry else None,
                        attempts=(retry.attempts + 1) if retry else 1,
                    )
                )
                recent = [*recent, now]
                batch.recent[lead["id"]] = (
                    recent  # the cap sees this batch's sends to the same lead
                )
                # the lease is kept until the result is recorded: while the provider works, no
                # other worker may claim this enrollment or take its message for a crashed one
                enrollment_updates.append(
                    {
                        "id": enrollment["id"],
                        "updated_at": now,
                        "track": decision.track,
                        "current_step": decision.step.id,
                    }
                )
            elif decision.kind == "wait":
                tally.waiting += 1
                enrollment_updates.append(
                    {
                        **release,
                        "next_due_at": decision.until,
                        **(
                            {"current_step": decision.step.id, "track": decision.track}
                            if decision.step
                            else {}
                        ),
                    }
                )
            elif decision.kind == "exit":
                tally.exited += 1
                enrollment_updates.append(
                    {
                        **release,
                        "status": "exited",
                        "exit_reason": decision.reason,
                        "ended_at": now,
                        "next_due_at": None,
                    }
                )
            elif decision.kind == "complete":
                tally.completed += 1
                enrollment_updates.append(
                    {
                        **release,
                        "status": "completed",
                        "exit_reason": None,
                        "ended_at": now,
                        "next_due_at": None,
                        "current_step": None,
                    }
                )
            else:  # still skipping after MAX_SKIPS: look again next tick
                enrollment_updates.append({**release, "next_due_at": now + timedelta(minutes=1)})
        return sends, enrollment_updates, skipped_rows

    def _row(
        self,
        enrollment: Mapping[str, Any],
        lead: Mapping[str, Any],
        campaign: Campaign,
        track: str | None,
        step: Step,
        now: datetime,
        *,
        status: str,
        error: str | None = None,
        uid: str | None = None,
    ) -> dict[str, Any]:
        return {
            "uid": uid or uuid.uuid4().hex,
            "enrollment_id": enrollment["id"],
            "lead_id": lead["id"],
            "campaign_id": campaign.id,
            "round": enrollment["round"],
            "step_id": step.id,
            "track": track,
            "template": step.template,
            "subject": None,
            "provider": self.provider.name if status == "sending" else None,
            "provider_message_id": None,
            "status": status,
            "error": error,
            "attempts": 1 if status == "sending" else 0,
            "created_at": now,
            "sent_at": None,
        }

    def _sending_row(self, send: _Send, now: datetime) -> dict[str, Any]:
        return self._row(
            send.enrollment,
            send.lead,
            send.campaign,
            send.track,
            send.step,
            now,
            status="sending",
            uid=send.uid,
        )

    # -- rendering and recording ----------------------------------------------------------------

    def _render(self, sends: Sequence[_Send], now: datetime) -> None:
        settings = self.settings
        base = settings.sender.base_url.rstrip("/")
        senders: dict[str, Sender] = {}  # parsing the From address costs ~25 µs: once a campaign
        templates = self.templates
        # the template files are checked for changes once a batch, not once an email (four
        # stat calls an email were ~45 µs); a broken template still fails each of its emails
        for name in {send.step.template for send in sends}:
            with suppress(TemplateError):
                templates.load(name)
        check_files, templates.check_files = templates.check_files, False
        try:
            self._render_each(sends, now, base, senders)
        finally:
            templates.check_files = check_files

    def _render_each(
        self, sends: Sequence[_Send], now: datetime, base: str, senders: dict[str, Sender]
    ) -> None:
        settings = self.settings
        secret = settings.sender.secret_key
        # our own tracking for mail the provider does not track (see dripengine.engagement.tracking)
        own_tracking = not self.provider.tracks_engagement
        track_clicks, track_opens = (
            own_tracking and settings.web.track_clicks,
            own_tracking and settings.web.track_opens,
        )
        for send in sends:
            campaign = send.campaign
            sender = senders.get(campaign.id)
            if sender is None:
                sender = senders[campaign.id] = Sender(
                    campaign.send.sender_name,
                    campaign.send.sender_email,
                    settings.sender.postal_address,
                )
            token = sign(settings.sender.secret_key, "unsubscribe", send.uid)
            try:
                rendered = compose(
                    self.templates,
                    campaign,
                    send.track,
                    send.step,
                    send.lead,
                    sender=sender,
                    recycle=send.recycle,
                    unsubscribe_url=f"{base}/u/{token}",
                    preferences_url=f"{base}/p/{token}",
                    rewrite_link=(
                        tracking.click_rewriter(base, secret, send.uid)
                        if track_clicks
                        else None
                        if own_tracking
                        else tracking.tag_in_url  # SendGrid tracks; the tag rides in the URL
                    ),
                )
            except TemplateError as exc:
                send.error = f"template error: {exc}"
                continue
            html = rendered.html
            if track_opens:
                html = tracking.add_pixel(html, tracking.open_url(base, secret, send.uid))
            # lead data never reaches a header unsanitised: no CR/LF, no control characters
            name = one_line(
                " ".join(p for p in (send.lead.get("first_name"), send.lead.get("last_name")) if p)
            )
            send.email = OutgoingEmail(
                uid=send.uid,
                sender=campaign.send.from_,
                to=mailbox(name, send.lead["email"]),
                subject=rendered.subject,
                html=html,
                text=rendered.text,
                created_at=now,
                reply_to=campaign.send.reply_to,
                unsubscribe_url=f"{base}/u/{token}",
                categories=(campaign.id, send.step.id),
            )

    def _recycle_context(self, record: Mapping[str, Any] | None) -> dict[str, Any]:
        if not record:
            return {}
        reason = self.sla.recycle_reasons.get(record["reason"])
        return {
            "from_stage": record["from_stage"],
            "reason": record["reason"],
            "reason_label": reason.label if reason else record["reason"],
        }

    def _record(
        self,
        connection: Connection,
        sends: Sequence[_Send],
        results: Mapping[str, SendResult],
        now: datetime,
        tally: Tally,
    ) -> None:
        message_updates: list[dict[str, Any]] = []
        enrollment_updates: list[dict[str, Any]] = []
        max_attempts = self.settings.sending.max_attempts
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
                delay = timedelta(seconds=wait) if wait else _backoff(send.attempts, self.rng)
                enrollment_updates.append(
                    {
                        "id": send.enrollment["id"],
                        "next_due_at": now + delay,
                        "updated_at": now,
                        **RELEASE,
                    }
                )
            else:
                tally.failed += 1
                tally.errors.append(
                    f"{send.lead['email']} {send.campaign.id}/{send.step.id}: {error}"
                )
            if send.uid in deferred:
                update["attempts"] = send.attempts - 1
            message_updates.append(update)
            if status != "retry":
                enrollment_updates.append(self._advance(send, now))
        update_rows(connection, MESSAGE, message_updates)
        # only an enrollment still active: an unsubscribe, a requalification or "leave this
        # campaign" that landed while we held the lease stands (the exit wins over our advance)
        update_rows(connection, ENROLLMENT, enrollment_updates, where_status="active")

    def _advance(self, send: _Send, now: datetime) -> dict[str, Any]:
        """The enrollment after this step: the next step's due time, or completed."""
        progress = send.progress.after(send.step.id, now, sent=True)
        upcoming = next_step(send.campaign, send.score, progress)
        base = {
            "id": send.enrollment["id"],
            **RELEASE,
            "updated_at": now,
            "step_index": send.enrollment["step_index"] + 1,
        }
        if upcoming is None:
            return {
                **base,
                "status": "completed",
                "ended_at": now,
                "next_due_at": None,
                "current_step": None,
            }
        tz = resolve_timezone(send.lead["timezone"], send.campaign.send.timezone)
        due = next_opening(
            upcoming.earliest,
            send.campaign.send.window,
            tz,
            spread_key=send.lead["email"],
            spread=WINDOW_SPREAD,
        )
        return {
            **base,
            "next_due_at": due,
            "current_step": upcoming.step.id,
            "track": upcoming.track,
        }


def _progress(
    rows: Sequence[MessageRow], engaged: set[tuple[str, str]], entered_at: datetime
) -> Progress:
    done = frozenset(r.step_id for r in rows if r.status in DONE)
    ordered = sorted(rows, key=lambda r: r.created_at)
    sent = tuple(r.step_id for r in ordered if r.status in DELIVERED)
    last = max((r.created_at for r in rows if r.status in DONE), default=entered_at)
    return Progress(last_at=max(last, entered_at), done=done, sent=sent, engaged=frozenset(engaged))


def _backoff(attempt: int, rng: random.Random) -> timedelta:
    """Exponential backoff with full jitter: 1, 2, 4 … minutes (capped), times a random 0.5 to 1."""
    ceiling = min(BACKOFF_BASE * (2 ** (attempt - 1)), BACKOFF_MAX)
    return ceiling * (0.5 + rng.random() / 2)
