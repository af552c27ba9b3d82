"""The SLA enforced: the breaches listed, and each clock that passes alerted once and acted on.

:func:`list_breaches` is ``drip sla breaches``. :func:`sweep` is the daemon's (and ``drip run
--once``'s) job: every clock that passed on a hand-back whose lead is still with sales gets one
``sla_alert`` row (unique per hand-back and clock, so two workers never alert twice), ``pending``
for the reminder webhook when ``crm.sla_reminder_url`` is set, else ``unconfigured``. When the
decision clock passes and ``sales_commitments.on_no_decision`` is ``renurture``, the lead is
recycled with reason ``sla_no_decision`` through the funnel's one recycle path, in the
transaction that writes the alert; the alert's ``action`` says what became of it:

- ``renurtured``: recycled and enrolled (or kept) in the campaign whose audience takes the reason;
- ``unmatched`` / ``denied``: recycled, but no campaign takes it / the campaign's re-entry rule
  refused it (the recycle record says why);
- ``suppressed``: never renurtured, the address is suppressed; it stays with sales;
- ``refused``: the recycle path refused it (the summary line says why).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from zoneinfo import ZoneInfo

from dripengine.campaigns import Campaign
from dripengine.exceptions import FunnelError
from dripengine.funnel.recycle import recycle_in
from dripengine.funnel.recycle_request import RecycleContext, RecycleRequest
from dripengine.funnel.sla import NO_DECISION, SLA
from dripengine.funnel.sla_breaches import Breach, ClockState, breaches, clocks
from dripengine.storage import Connection, Engine, suppression
from dripengine.storage import funnel as funnel_store
from dripengine.storage import sla as store

__all__ = ["ACTOR", "Alerted", "Sweep", "list_breaches", "sweep"]

ACTOR = "dripengine-sla"  # who a renurture's stage change and recycle record name
_ACTIONS = {"enrolled": "renurtured", "restarted": "renurtured", "resumed": "renurtured"}
_ACTIONS |= {"kept": "renurtured", "unmatched": "unmatched", "denied": "denied"}


def list_breaches(
    engine: Engine, sla: SLA, now: datetime, *, resolved: bool = False
) -> list[Breach]:
    """The clocks overdue at ``now`` (with ``resolved``: also those stopped late), most overdue
    first. Open ones can only be on a lead still with sales, so only those are read then."""
    with engine.connect() as connection:
        rows = store.handbacks(connection, now, open_only=not resolved)
    return breaches(rows, sla, now, resolved=resolved)


@dataclass(frozen=True)
class Alerted:
    email: str
    clock: str
    due_at: datetime
    status: str  # pending | unconfigured
    action: str | None
    detail: str | None  # what the renurture did, in words
    zone: ZoneInfo  # the SLA's, for people

    def line(self) -> str:
        what = "first touch" if self.clock == "first_touch" else "decision"
        due = self.due_at.astimezone(self.zone)
        text = f"SLA: {self.email}: {what} overdue since {due:%Y-%m-%d %H:%M} {self.zone.key}"
        if self.status == "pending":
            text += "; reminder queued for the CRM"
        return text + (f"; {self.detail}" if self.detail else "")


@dataclass
class Sweep:
    alerted: list[Alerted] = field(default_factory=list)

    def lines(self) -> list[str]:
        return [alert.line() for alert in self.alerted]


def sweep(
    engine: Engine,
    sla: SLA,
    campaigns: Sequence[Campaign],
    now: datetime,
    *,
    reminders: bool,
    reset_score: bool = True,
) -> Sweep:
    """Alert every clock that passed by ``now`` and has not alerted yet (see the module)."""
    done = Sweep()
    with engine.connect() as connection:
        rows = store.handbacks(connection, now, open_only=True)
    for row in rows:
        for state in clocks(row, sla):
            if state.alerted or not state.passed(now):
                continue
            with engine.begin() as connection:
                alerted = _alert(connection, state, sla, campaigns, now, reminders, reset_score)
            if alerted is not None:
                done.alerted.append(alerted)
    return done


def _alert(
    connection: Connection,
    state: ClockState,
    sla: SLA,
    campaigns: Sequence[Campaign],
    now: datetime,
    reminders: bool,
    reset_score: bool,
) -> Alerted | None:
    stage = funnel_store.lead_stage(connection, state.email)
    if stage is None or stage[2] != "mql":
        return None  # sales moved it on since it was read
    status = "pending" if reminders else "unconfigured"
    alert_id = store.insert_alert(
        connection,
        {
            "uid": uuid.uuid4().hex,
            "handoff_id": state.handoff_id,
            "lead_id": state.lead_id,
            "clock": state.clock,
            "due_at": state.due_at,
            "status": status,
            "attempts": 0,
            "next_attempt_at": now if reminders else None,
            "created_at": now,
        },
    )
    if alert_id is None:
        return None  # another worker alerted this clock
    action = detail = None
    if state.clock == "decision" and sla.sales_commitments.on_no_decision == "renurture":
        action, detail = _renurture(connection, state, sla, campaigns, now, reset_score)
        store.set_action(connection, alert_id, action)
    return Alerted(state.email, state.clock, state.due_at, status, action, detail, sla.clock.zone)


def _renurture(
    connection: Connection,
    state: ClockState,
    sla: SLA,
    campaigns: Sequence[Campaign],
    now: datetime,
    reset_score: bool,
) -> tuple[str, str]:
    """Recycle the lead with the SLA's reason; (the alert's action, what happened in words)."""
    entry = suppression.suppressed(connection, [state.email]).get(state.email)
    if entry is not None:
        return "suppressed", f"not renurtured: the address is suppressed ({entry.reason})"
    days = sla.sales_commitments.decision_days
    request = RecycleRequest(
        email=state.email,
        reason=NO_DECISION,
        note=(
            f"no decision from sales within {days} working days of the hand-back on "
            f"{state.handed_back_at:%Y-%m-%d %H:%M} UTC"
        ),
        actor=ACTOR,
    )
    ctx = RecycleContext(
        campaigns=campaigns,
        sla=sla,
        now=now,
        reset_score=reset_score,
        create_leads=False,
        sla_reasons=True,
    )
    try:
        with connection.begin_nested():  # a refusal leaves the alert standing
            outcome = recycle_in(connection, request, ctx)
    except FunnelError as exc:
        return "refused", f"not renurtured: {exc.message}"
    action = _ACTIONS.get(outcome.outcome, outcome.outcome)
    return action, f"{action}: {outcome.describe()}"
