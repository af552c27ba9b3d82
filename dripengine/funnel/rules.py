"""The recycle and re-entry decisions over the stages of :mod:`dripengine.stages`.

Pure logic: plain values in, decisions out. The database side lives in :mod:`dripengine.funnel.recycle`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from dripengine.exceptions import FunnelError
from dripengine.stages import RECYCLABLE, check_stage, label
from dripengine.suggest import did_you_mean


@dataclass(frozen=True)
class RecyclePlan:
    """What a recycle will record: the stage sales says the lead came back from, and the reason."""

    email: str
    from_stage: str
    reason: str
    previous_stage: str | None  # the stage stored before (None for a lead new to dripengine)


def check_reason(reason: str, reason_stages: dict[str, tuple[str, ...]]) -> None:
    """FunnelError unless ``reason`` is one of the SLA's recycle reasons (with did-you-mean)."""
    if reason not in reason_stages:
        known = ", ".join(sorted(reason_stages))
        hint = did_you_mean(reason, reason_stages)
        raise FunnelError(
            f'"{reason}" is not a recycle reason in the SLA{hint} (use one of: {known})'
        )


def plan_recycle(
    *,
    email: str,
    current_stage: str | None,
    declared_from: str | None,
    reason: str,
    reason_stages: dict[str, tuple[str, ...]],
    suppressed_because: str | None,
) -> RecyclePlan:
    """Decide whether a lead may be recycled, and from which stage.

    ``declared_from`` is what sales says (the CRM is the source of truth for where the deal was);
    without it the lead's stored stage is used. ``reason_stages`` maps each reason code of the SLA to
    the stages it applies to.
    """
    if suppressed_because:
        raise FunnelError(
            f"{email} is suppressed ({suppressed_because}): it is never mailed again, so it is "
            "not recycled (`drip suppress remove` only if the person asked to be mailed again)"
        )
    if current_stage in ("customer", "evangelist"):
        raise FunnelError(
            f"{email} is a {current_stage}: customers are not recycled into win-back campaigns"
        )
    if declared_from is not None:
        from_stage = check_stage(declared_from)
    elif current_stage in RECYCLABLE:
        from_stage = current_stage
    elif current_stage == "recycled":
        raise FunnelError(
            f"{email} is already recycled: say which stage sales had it in with --from "
            f"({', '.join(RECYCLABLE)})"
        )
    elif current_stage is None:
        raise FunnelError(
            f"{email} is new to dripengine: say which stage sales had it in with --from "
            f"({', '.join(RECYCLABLE)})"
        )
    else:
        from_stage = current_stage
    if from_stage not in RECYCLABLE:
        raise FunnelError(
            f"{email}: only leads sales gave back are recycled (from {', '.join(RECYCLABLE)}), "
            f"not from {label(from_stage)}"
        )
    check_reason(reason, reason_stages)
    if from_stage not in reason_stages[reason]:
        stages = ", ".join(reason_stages[reason])
        raise FunnelError(
            f'the SLA gives reason "{reason}" for {stages} only, not for {label(from_stage)}'
        )
    return RecyclePlan(
        email=email, from_stage=from_stage, reason=reason, previous_stage=current_stage
    )


ReentryPolicy = Literal["restart", "resume", "deny"]
ReentryAction = Literal["enroll", "restart", "resume", "keep", "deny"]


@dataclass(frozen=True)
class ExistingEnrollment:
    status: str  # active | completed | exited
    entered_at: datetime  # when the lead last entered (or re-entered) the campaign
    step: str | None


@dataclass(frozen=True)
class ReentryDecision:
    action: ReentryAction
    why: str


def decide_reentry(
    *,
    policy: ReentryPolicy,
    cooldown_days: int,
    max_recycles: int | None,
    previous_recycles: int,
    existing: ExistingEnrollment | None,
    now: datetime,
) -> ReentryDecision:
    """Apply a campaign's re-entry policy to a lead being recycled into it.

    ``previous_recycles`` counts the lead's recycles before this one. Actions: ``enroll`` (first
    time), ``restart`` (from the first step, a new round), ``resume`` (continue where it stopped),
    ``keep`` (already running; left as it is), ``deny`` (not enrolled, with the reason).
    """
    if max_recycles is not None and previous_recycles >= max_recycles:
        return ReentryDecision(
            "deny",
            f"recycled {previous_recycles} times already (the campaign allows {max_recycles})",
        )
    if existing is None:
        return ReentryDecision("enroll", "first time in this campaign")
    if cooldown_days and now < existing.entered_at + timedelta(days=cooldown_days):
        until = existing.entered_at + timedelta(days=cooldown_days)
        return ReentryDecision(
            "deny",
            f"entered {existing.entered_at:%d %b %Y}; the {cooldown_days}-day cool-down runs "
            f"until {until:%d %b %Y}",
        )
    if policy == "deny":
        return ReentryDecision(
            "deny", f"was in this campaign before ({existing.status}); re-entry is denied"
        )
    if policy == "restart":
        return ReentryDecision("restart", f"was {existing.status}; restarts from the first step")
    # resume
    if existing.status == "active":
        return ReentryDecision("keep", f"already enrolled; continues at step {existing.step}")
    if existing.status == "exited" and existing.step is not None:
        return ReentryDecision("resume", f"exited before; resumes at step {existing.step}")
    return ReentryDecision(
        "restart", "completed before; nothing to resume, restarts from the first step"
    )
