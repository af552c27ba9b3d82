"""What a worker does besides sending: pause campaigns past a breaker, deliver CRM handoffs,
settle the messages a crash left unknown (past the grace period, each provider its own way).

Run by the daemon as APScheduler jobs and once at the end of ``drip run --once``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from dripengine.clock import Clock
from dripengine.config import Settings
from dripengine.engagement.breaker import check_breakers
from dripengine.handoff.delivery import DeliveryTally, deliver_pending
from dripengine.providers import settle_unknown
from dripengine.storage import Engine

HANDOFF_SECONDS = 15  # how often the daemon tries the handoffs that are due


@dataclass
class Housekeeping:
    paused: list[str] = field(default_factory=list)
    handoffs: DeliveryTally = field(default_factory=DeliveryTally)
    warning: str | None = None  # a CRM URL is set but handoffs cannot go (no secret)
    # messages left unknown by a crash, failed past the grace period: how many, by provider title
    settled: dict[str, int] = field(default_factory=dict)

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
        return out


def run_housekeeping(engine: Engine, settings: Settings, clock: Clock) -> Housekeeping:
    done = Housekeeping()
    done.paused = check_breakers(engine, settings, clock.now())
    done.handoffs = deliver_pending(engine, settings, clock)
    done.settled = settle_unknown(engine, clock.now(), settings.sending.unknown_grace_hours)
    if settings.crm.webhook_url and done.handoffs.skipped:
        done.warning = done.handoffs.skipped
    return done


__all__ = ["HANDOFF_SECONDS", "Housekeeping", "run_housekeeping"]
