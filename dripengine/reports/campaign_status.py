"""Per campaign, for ``drip status``: how many are enrolled, what is due, and why nothing goes out.

Pure: the database's aggregates (:class:`Group`, one per campaign and lead time zone), the loaded
campaigns, the breaker's pauses and ``now`` go in; one :class:`CampaignStatus` per campaign comes
out, with a ``state`` and a sentence that says what happens next:

========================  ==========================================================================
state                     when
========================  ==========================================================================
``paused``                the complaint breaker paused the campaign: nothing goes out until resumed
``file_broken``           its campaign file (or a template) is broken: held, nothing sent or ended
``unknown_campaign``      enrolments name a campaign no file defines (``drip run`` ends them)
``no_active``             no active enrolment
``sending``               some are due now and inside their send window: the next run sends them
``window_closed``         some are due now, but every one of them is outside its send window
``waiting``               every active enrolment waits for its step's wait; the next is due later
``not_loaded``            due now, but the campaign files do not load, so the window is not known
========================  ==========================================================================

The send window is judged like the dispatcher judges it (:mod:`dripengine.sending.policy`): in the
lead's time zone, the campaign's when the lead has none. The database groups the enrolments by
campaign and lead time zone, so the work here is per group (a handful), never per enrolment.
Times are shown in the campaign's time zone, with how far they are from ``now``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from dripengine.campaigns import WEEKDAYS, Campaign
from dripengine.campaigns.window import in_window, next_opening, resolve_timezone
from dripengine.reports.timespan import relative
from dripengine.storage.pauses import Pause

STATES = (
    "paused",
    "file_broken",
    "unknown_campaign",
    "no_active",
    "sending",
    "window_closed",
    "waiting",
    "not_loaded",
)


@dataclass(frozen=True)
class Group:
    """Active enrolments of one campaign whose leads share one time zone (None: the lead has none)."""

    campaign_id: str
    timezone: str | None
    active: int
    due_now: int  # next_due_at <= now
    next_due_at: datetime | None  # the earliest next_due_at after now


@dataclass(frozen=True)
class CampaignStatus:
    campaign_id: str
    name: str | None  # None: no campaign file defines this id (or the files did not load)
    timezone: str | None  # the campaign's zone: the one its times are shown in
    active: int
    due_now: int
    sendable_now: int  # of due_now, inside their send window now (what the next run sends)
    next_due_at: datetime | None  # UTC: the earliest active enrolment due after now
    next_due_local: (
        str | None
    )  # the same instant in the campaign's zone, "Tue 2026-11-24 11:00 CET"
    next_due_in: str | None  # "in 2 h 10 min"
    window: str | None  # "mon, tue 09:00-17:00 Europe/Berlin"
    window_open: bool | None  # in the campaign's zone, now
    window_opens_at: datetime | None  # UTC: when the closed window next opens
    paused_since: datetime | None
    paused_reason: str | None
    state: str  # one of STATES
    reason: str  # the sentence ``drip status`` prints


def local(instant: datetime, tz: ZoneInfo) -> str:
    """``Tue 2026-11-24 11:00 CET``: an instant as a reader in ``tz`` sees it."""
    return instant.astimezone(tz).strftime("%a %Y-%m-%d %H:%M %Z")


def describe_window(campaign: Campaign) -> str:
    """``mon, tue, wed, thu 09:00-17:00 Europe/Berlin``."""
    window = campaign.send.window
    days = ", ".join(WEEKDAYS[day] for day in sorted(window.days))
    return f"{days} {window.start:%H:%M}-{window.end:%H:%M} {campaign.send.timezone}"


def assess(
    groups: Iterable[Group],
    campaigns: Sequence[Campaign] | None,
    pauses: Sequence[Pause],
    now: datetime,
    held: Mapping[str, str] | None = None,
) -> list[CampaignStatus]:
    """One status per campaign: every loaded campaign (in routing order: priority, then id), then
    the ids only the database knows (enrolments of a campaign no file defines, or every id when
    ``campaigns`` is None because the files did not load), by id."""
    by_campaign: dict[str, list[Group]] = {}
    for group in groups:
        by_campaign.setdefault(group.campaign_id, []).append(group)
    paused = {p.campaign_id: p for p in pauses}
    defined = {c.id: c for c in campaigns or ()}
    order = [c.id for c in sorted(defined.values(), key=lambda c: (c.priority, c.id))]
    order += sorted((set(by_campaign) | set(paused)) - set(defined))
    held = held or {}
    order += sorted(set(held) - set(order) - {"*"})
    return [
        _one(
            cid,
            by_campaign.get(cid, []),
            defined.get(cid),
            campaigns is not None,
            paused,
            now,
            held.get(cid) or (held.get("*") if cid not in defined else None),
        )
        for cid in order
    ]


def _one(
    campaign_id: str,
    groups: Sequence[Group],
    campaign: Campaign | None,
    loaded: bool,
    paused: Mapping[str, Pause],
    now: datetime,
    held_because: str | None = None,
) -> CampaignStatus:
    active = sum(g.active for g in groups)
    due_now = sum(g.due_now for g in groups)
    upcoming = [g.next_due_at for g in groups if g.next_due_at is not None]
    next_due = min(upcoming) if upcoming else None
    tz = ZoneInfo(campaign.send.timezone) if campaign else ZoneInfo("UTC")
    sendable = 0
    opens: datetime | None = None
    window_open: bool | None = None
    if campaign is not None:
        window = campaign.send.window
        window_open = in_window(now, window, tz)
        for g in groups:
            if not g.due_now:
                continue
            zone = resolve_timezone(g.timezone, campaign.send.timezone)
            if in_window(now, window, zone):
                sendable += g.due_now
            else:
                opening = next_opening(now, window, zone)
                opens = opening if opens is None else min(opens, opening)
        if opens is None and not window_open:
            opens = next_opening(now, window, tz)
    pause = paused.get(campaign_id)
    state, reason = _reason(
        campaign_id, campaign, loaded, pause, active, due_now, sendable, next_due, opens, tz, now
    )
    if held_because is not None and pause is None:
        state, reason = (
            "file_broken",
            (
                f"paused: {held_because}; its {active} enrolment(s) wait (nothing is sent, none is "
                "ended) until it is fixed: `drip campaigns validate`"
            ),
        )
        sendable = 0
    return CampaignStatus(
        campaign_id=campaign_id,
        name=campaign.name if campaign else None,
        timezone=campaign.send.timezone if campaign else None,
        active=active,
        due_now=due_now,
        sendable_now=0 if pause else sendable,
        next_due_at=next_due,
        next_due_local=local(next_due, tz) if next_due else None,
        next_due_in=relative(next_due, now) if next_due else None,
        window=describe_window(campaign) if campaign else None,
        window_open=window_open,
        window_opens_at=opens,
        paused_since=pause.paused_at if pause else None,
        paused_reason=pause.reason if pause else None,
        state=state,
        reason=reason,
    )


def _reason(
    campaign_id: str,
    campaign: Campaign | None,
    loaded: bool,
    pause: Pause | None,
    active: int,
    due_now: int,
    sendable: int,
    next_due: datetime | None,
    opens: datetime | None,
    tz: ZoneInfo,
    now: datetime,
) -> tuple[str, str]:
    if pause is not None:
        return "paused", (
            f"paused by the complaint breaker since {local(pause.paused_at, tz)} "
            f"({relative(pause.paused_at, now)}): {pause.reason}; nothing goes out until "
            f"`drip campaigns resume {campaign_id}`"
        )
    if loaded and campaign is None:
        return "unknown_campaign", (
            f"no campaign file defines {campaign_id!r}: the next `drip run` ends its "
            f"{active} enrolment(s)"
        )
    if not active:
        return "no_active", "no active enrolments: `drip recycle` leads that match its audience"
    if campaign is None:
        if due_now:
            return "not_loaded", (
                f"{due_now} due now, but the campaign files do not load, so nothing is sent: "
                "`drip campaigns validate` says why"
            )
        return "waiting", _waiting(active, next_due, tz, now)
    if sendable:
        return "sending", f"{sendable} due now: the next `drip run` sends them"
    if due_now and opens is not None:
        return "window_closed", (
            f"{due_now} due, but the send window ({describe_window(campaign)}) is closed now; "
            f"it opens {local(opens, tz)} ({relative(opens, now)})"
        )
    return "waiting", _waiting(active, next_due, tz, now)


def _waiting(active: int, next_due: datetime | None, tz: ZoneInfo, now: datetime) -> str:
    when = f"{local(next_due, tz)} ({relative(next_due, now)})" if next_due else "later"
    return f"every active enrolment ({active}) waits for its next step; the next is due {when}"


__all__ = ["STATES", "CampaignStatus", "Group", "assess", "describe_window", "local"]
