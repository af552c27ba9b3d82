"""``drip run``: APScheduler 3 is the clock, the database is the queue.

Each worker keeps its jobs in memory (APScheduler 3 must not share a job store between processes:
its FAQ says jobs then run twice or not at all); the work itself is claimed in the database with a
lease, so any number of workers can run side by side. Jobs: *dispatch* every
``sending.tick_seconds`` (coalesced, never two at once), *heartbeat* every 15 s (the ``worker`` row
``drip status`` reads), *handoffs* every 15 s (due CRM handoffs, :mod:`.handoff_delivery`), *sla*
every minute (SLA clocks that passed, :func:`~dripengine.daemon.housekeeping.run_sla`),
*breakers* every minute (the complaint breaker, :mod:`.breaker`) and *winners* every minute (A/B
winners, :mod:`dripengine.sending.winners`). Before each dispatch the campaign
and template folders are looked at: when a file changed, the campaigns are re-read
(:class:`~dripengine.campaigns.live.Reloader`: a broken file pauses its campaign or keeps its last
good version) and used from the next batch on. SIGTERM / SIGINT: the batch in flight finishes and
is recorded, then exit 0.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
from collections.abc import Callable
from types import FrameType

from apscheduler.schedulers.blocking import BlockingScheduler

from dripengine.campaigns.live import LiveCampaigns
from dripengine.config import Settings
from dripengine.daemon.housekeeping import HANDOFF_SECONDS, SLA_SECONDS, run_sla
from dripengine.engagement.breaker import CHECK_SECONDS, check_breakers
from dripengine.handoff.delivery import deliver_pending
from dripengine.providers import settle_unknown
from dripengine.reports.status import HEARTBEAT_SECONDS
from dripengine.sending.dispatcher import Dispatcher
from dripengine.sending.tally import Tally
from dripengine.sending.winners import WINNER_SECONDS, pick_winners
from dripengine.storage.rounds import write_heartbeat

SETTLE_SECONDS = 600  # how often the daemon settles messages a crash left unknown (the providers')

log = logging.getLogger("dripengine.daemon.worker")


class Daemon:
    def __init__(
        self,
        dispatcher: Dispatcher,
        settings: Settings,
        reload: Callable[[], LiveCampaigns | None] | None = None,
    ) -> None:
        self.dispatcher = dispatcher
        self.settings = settings
        self.reload = reload
        self.stopping = threading.Event()
        self.totals = Tally()
        self.scheduler = BlockingScheduler(timezone="UTC")
        self._warned = False  # the CRM settings problem is logged once

    def start(self) -> None:
        self._heartbeat(started=True)
        tick = self.settings.sending.tick_seconds
        jobs = (
            ("dispatch", self._dispatch, tick),
            ("heartbeat", self._heartbeat, HEARTBEAT_SECONDS),
            ("handoffs", self._handoffs, HANDOFF_SECONDS),
            ("breakers", self._breakers, CHECK_SECONDS),
            ("settle-unknown", self._settle_unknown, SETTLE_SECONDS),
            ("sla", self._sla, SLA_SECONDS),
            ("winners", self._winners, WINNER_SECONDS),
        )
        for job_id, job, seconds in jobs:
            # coalesced, one at a time: a slow run is not stacked up behind itself
            self.scheduler.add_job(
                job, "interval", seconds=seconds, id=job_id, coalesce=True, max_instances=1
            )
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, self._on_signal)
        log.info(
            "worker %s started (provider %s, tick %ss)",
            self.dispatcher.worker,
            self.dispatcher.provider.name,
            tick,
        )
        try:
            self.scheduler.start()  # blocks until shutdown
        finally:
            self._heartbeat(stopped=True)
            self.dispatcher.provider.close()
            log.info(
                "worker %s stopped: %s sent, %s failed",
                self.dispatcher.worker,
                self.totals.sent,
                self.totals.failed,
            )

    def _dispatch(self) -> None:
        self._reload()
        tally = self.dispatcher.run_once(stop=self.stopping.is_set)
        self.totals.add(tally)
        if tally.sent or tally.failed:
            log.info("sent %s, failed %s, retry %s", tally.sent, tally.failed, tally.retried)
        for error in tally.errors:
            log.warning("failed: %s", error)

    def _reload(self) -> None:
        """Campaign or template files changed: run what they now say, between two batches."""
        live = self.reload() if self.reload is not None else None
        if live is None:
            return
        self.dispatcher.use_campaigns(live.campaigns, live.only)
        for notice in live.notices:
            log.warning("%s", notice)
        paused = sorted(live.held) + (["every campaign not loaded"] if live.hold_unknown else [])
        log.info(
            "campaign files re-read: running %s%s",
            ", ".join(c.id for c in live.campaigns) or "none",
            f"; paused: {', '.join(paused)}" if paused else "",
        )

    def _handoffs(self) -> None:
        d = self.dispatcher
        tally = deliver_pending(d.engine, self.settings, d.clock)
        if tally.skipped and self.settings.crm.webhook_url and not self._warned:
            log.warning("handoffs not sent: %s", tally.skipped)
            self._warned = True
        if tally.delivered:
            log.info("handoffs: %s delivered to the CRM", tally.delivered)

    def _sla(self) -> None:
        """The SLA's clocks that passed: alerted once, acted on, the CRM reminded."""
        d = self.dispatcher
        work = run_sla(d.engine, self.settings, d.clock, d.sla, list(d.campaigns.values()))
        for line in work.lines():
            log.warning("%s", line)

    def _breakers(self) -> None:
        d = self.dispatcher
        for campaign_id in check_breakers(d.engine, self.settings, d.clock.now()):
            log.warning(
                "campaign %s paused by the complaint breaker (see drip status)", campaign_id
            )

    def _settle_unknown(self) -> None:
        d = self.dispatcher
        grace = self.settings.sending.unknown_grace_hours
        for title, settled in settle_unknown(d.engine, d.clock.now(), grace).items():
            log.warning(
                "%s %s message(s) left unknown by a crash had no event in %s h: failed, "
                "not resent (docs/sending.md)",
                settled,
                title,
                grace,
            )

    def _winners(self) -> None:
        d = self.dispatcher
        for switch in pick_winners(d.engine, d.campaigns.values(), d.clock.now()):
            log.info("%s", switch.line())

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        log.info("signal %s: finishing the batch in flight, then stopping", signum)
        self.stopping.set()
        # shutdown(wait=True) waits for a running dispatch job; run it off the signal handler
        threading.Thread(target=self.scheduler.shutdown, kwargs={"wait": True}, daemon=True).start()

    def _heartbeat(self, *, started: bool = False, stopped: bool = False) -> None:
        now = self.dispatcher.clock.now()
        values = {
            "id": self.dispatcher.worker,
            "kind": "run",
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "provider": self.dispatcher.provider.name,
            "started_at": now,
            "heartbeat_at": now,
            "sent": self.totals.sent,
            "failed": self.totals.failed,
        }
        write_heartbeat(
            self.dispatcher.engine,
            values,
            changes={"heartbeat_at": now, "sent": self.totals.sent, "failed": self.totals.failed}
            | ({"stopped_at": now} if stopped else {}),
            started=started,
        )


def run_daemon(
    dispatcher: Dispatcher,
    settings: Settings,
    reload: Callable[[], LiveCampaigns | None] | None = None,
) -> Tally:
    daemon = Daemon(dispatcher, settings, reload)
    daemon.start()
    return daemon.totals
