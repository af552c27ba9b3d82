"""What a worker does besides sending: pause campaigns past a breaker, deliver CRM handoffs,
settle the messages a crash left unknown (past the grace period, each provider its own way),
enforce the SLA's clocks (alert, renurture, remind the CRM: :func:`run_sla`).

Run by the daemon as APScheduler jobs and once at the end of ``drip run --once``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from dripengine.campaigns import Campaign
from dripengine.clock import Clock
from dripengine.config import Settings
from dripengine.engagement.breaker import check_breakers
from dripengine.funnel.sla import SLA
from dripengine.funnel.sla_watch import Sweep, sweep
from dripengine.handoff.delivery import DeliveryTally, deliver_pending
from dripengine.handoff.reminders import deliver_reminders
from dripengine.providers import settle_unknown
from dripengine.storage import Engine

HANDOFF_SECONDS = 15  # how often the daemon tries the handoffs that are due
SLA_SECONDS = 60  # how often the daemon looks for SLA clocks that passed and sends reminders


@dataclass
class Housekeeping:
    paused: list[str] = field(default_factory=list)
    handoffs: DeliveryTally = field(default_factory=DeliveryTally)
    warning: str | None = None  # a CRM URL is set but handoffs cannot go (no secret)
    # messages left unknown by a crash, failed past the grace period: how many, by provider title
    settled: dict[str, int] = field(default_factory=dict)
    sla: SlaWork | None = None

    def lines(self) -> list[str]:
        """What happened, for a person (nothing when nothing did)."""
        out = [
            f"campaign {cid} paused by the complaint breaker (`drip status` says why; "
            f"`drip campaigns resume {cid}` when it is fixed)"
            for cid in self.paused
        ]
        for title, settled in self.settled.items():
            out.append(
                f"{settled} {title} message(s) left unknown by a crash: no event for them "
                "past the grace period, now failed (see docs/sending.md)"
            )
        if self.warning:
            out.append(f"handoffs not sent: {self.warning}")
        tally = self.handoffs
        if tally.delivered or tally.failed:
            out.append(
                f"handoffs to the CRM: {tally.delivered} delivered, {tally.failed} to retry"
                + (f" ({tally.errors[0]})" if tally.errors else "")
            )
        return out + (self.sla.lines() if self.sla else [])


@dataclass
class SlaWork:
    """The SLA's clocks that passed (:mod:`dripengine.funnel.sla_watch`) and the reminders sent."""

    swept: Sweep
    reminders: DeliveryTally

    def lines(self) -> list[str]:
        out = self.swept.lines()
        tally = self.reminders
        if tally.delivered or tally.failed:
            out.append(
                f"SLA reminders to the CRM: {tally.delivered} delivered, {tally.failed} failed"
                + (f" ({tally.errors[0]})" if tally.errors else "")
            )
        elif self.swept.alerted and tally.skipped and "secret" in tally.skipped:
            out.append(f"SLA reminders not sent: {tally.skipped}")
        return out


def run_sla(
    engine: Engine, settings: Settings, clock: Clock, sla: SLA, campaigns: Sequence[Campaign]
) -> SlaWork:
    """Alert (and act on) the clocks that passed, then deliver the reminders that are due."""
    swept = sweep(
        engine,
        sla,
        campaigns,
        clock.now(),
        reminders=bool(settings.crm.sla_reminder_url),
        reset_score=settings.scoring.reset_on_recycle,
    )
    return SlaWork(swept, deliver_reminders(engine, settings, clock))


def run_housekeeping(
    engine: Engine,
    settings: Settings,
    clock: Clock,
    sla: SLA | None = None,
    campaigns: Sequence[Campaign] = (),
) -> Housekeeping:
    """Every job once (``drip run --once``); the SLA's only when ``sla`` is given."""
    done = Housekeeping()
    done.paused = check_breakers(engine, settings, clock.now())
    done.handoffs = deliver_pending(engine, settings, clock)
    done.settled = settle_unknown(engine, clock.now(), settings.sending.unknown_grace_hours)
    if settings.crm.webhook_url and done.handoffs.skipped:
        done.warning = done.handoffs.skipped
    if sla is not None:
        done.sla = run_sla(engine, settings, clock, sla, campaigns)
    return done


__all__ = [
    "HANDOFF_SECONDS",
    "SLA_SECONDS",
    "Housekeeping",
    "SlaWork",
    "run_housekeeping",
    "run_sla",
]
