"""The dispatcher: one round after another through the sending pipeline.

A round, in order (each stage its own module):

1. :mod:`.claim` — before the first round, **recover** messages left as ``sending`` by a worker
   that died (the provider's evidence decides; without evidence ``unknown``, never resent
   blindly); then **claim** up to ``batch_size`` due enrollments with a lease and **load** what
   deciding them reads.
2. :mod:`.decide` — :func:`dripengine.sending.policy.decide` for each (suppression, exits, window,
   condition, frequency cap); a skipped step is recorded and the next one decided at once.
3. :mod:`.record` — a ``sending`` message per email is committed *before* the provider is called.
4. :mod:`.render` — each email composed (:mod:`.compose`), links signed, tracking added.
5. :mod:`.deliver` — the batch through the provider.
6. :mod:`.record` — each result (sent / retry with backoff / failed), each enrollment advanced to
   its next step's due time or completed, the leases released.

This module only runs the stages and overlaps them across rounds (:meth:`Dispatcher.run_once`).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Collection, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from dripengine.campaigns import Campaign
from dripengine.clock import Clock
from dripengine.config import Settings
from dripengine.funnel.sla import SLA
from dripengine.providers.base import Provider, SendResult
from dripengine.scoring.rules import ScoringRules, rules_from_settings
from dripengine.sending.claim import claim_round, due_count, load_round, recover, worker_id
from dripengine.sending.decide import Send, decide_round
from dripengine.sending.deliver import deliver
from dripengine.sending.record import record_decisions, record_results, release
from dripengine.sending.render import render
from dripengine.sending.tally import ProgressHook, RunCounts, Tally
from dripengine.storage import Engine
from dripengine.storage.rounds import write_transaction
from dripengine.storage.variants import winners
from dripengine.templates import TemplateEngine


@dataclass
class _Prepared:
    """A batch whose 'sending' rows are committed and whose emails are rendered: ready to send."""

    now: datetime
    sends: list[Send]
    dropped: list[Send]  # their message existed already: never sent twice


class Dispatcher:
    _progress = ProgressHook()  # dispatch_batch() outside run_once(): nobody listens

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
        self._variants = _has_variants(campaigns)
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
        self._variants = _has_variants(campaigns)
        self.only = None if only is None else frozenset(only)

    # -- the loop -------------------------------------------------------------------------------

    def count_due(self) -> int:
        """Enrollments due now and not leased: what :meth:`run_once` would claim (a bar's total)."""
        return due_count(self.engine, self.clock.now(), self.only)

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
        self._progress = ProgressHook(on_progress, on_counts)
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
        return recover(self.engine, self.provider, self.clock.now())

    def dispatch_batch(self) -> Tally:
        """One batch, synchronously: claim, decide, render, deliver, record."""
        tally = Tally()
        prepared = self._prepare(tally)
        if prepared is not None:
            self._record_batch(prepared, deliver(self.provider, prepared.sends), tally)
        return tally

    def _prepare(self, tally: Tally) -> _Prepared | None:
        """Claim, decide and commit the 'sending' rows, then render; None when nothing is due."""
        now = self.clock.now()
        sending = self.settings.sending
        ids = claim_round(self.engine, self.worker, now, self.lease, sending.batch_size, self.only)
        tally.claimed = len(ids)
        if not ids:
            return None
        with write_transaction(self.engine) as connection:
            # the A/B winners recorded so far (any worker's): a small table, read only when
            # some step has variants
            won = winners(connection) if self._variants else {}
            decided = decide_round(
                load_round(connection, ids, now, sending.quiet_after_sales_touch),
                self.campaigns,
                self.sla,
                now,
                tally,
                cap=sending.max_per_lead_per_week,
                half_life_days=self.rules.half_life_days,
                quiet=sending.quiet_after_sales_touch,
                winners=won,
            )
            record_decisions(connection, decided, self.provider.name, now)
        # the 'sending' rows are committed: only now may the provider be called
        dropped = [s for s in decided.sends if s.message_id is None]  # its message exists
        sends = [s for s in decided.sends if s.message_id is not None]
        self._progress.add(len(ids) - len(sends) - len(dropped))  # waiting, exited, completed
        render(sends, now, templates=self.templates, settings=self.settings, provider=self.provider)
        return _Prepared(now, sends, dropped)

    def _send(
        self, prepared: _Prepared, tally: Tally, recorder: ThreadPoolExecutor
    ) -> Future[Tally]:
        """The provider call (on the sending thread); the recording is queued on ``recorder``."""
        results = deliver(self.provider, prepared.sends)
        return recorder.submit(self._record_batch, prepared, results, tally)

    def _record_batch(
        self, prepared: _Prepared, results: Mapping[str, SendResult], tally: Tally
    ) -> Tally:
        with write_transaction(self.engine) as connection:
            record_results(
                connection,
                prepared.sends,
                results,
                prepared.now,
                tally,
                max_attempts=self.settings.sending.max_attempts,
                rng=self.rng,
            )
            release(connection, prepared.dropped)
        self._progress.add(
            len(prepared.sends) + len(prepared.dropped), sent=tally.sent, failed=tally.failed
        )
        return tally


def _has_variants(campaigns: Sequence[Campaign]) -> bool:
    return any(step.variants for c in campaigns for _, step in c.all_steps())


__all__ = ["Dispatcher"]
