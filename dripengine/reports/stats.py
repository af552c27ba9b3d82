"""``drip stats`` and the report's numbers: what the campaigns did, and the rates over it.

The database counts (:mod:`dripengine.storage.stats`); this module defines what each figure means,
shapes the counts into the views' rows and works out the rates. Two shapes of question:

*Emails* (by campaign, by step, by week). The cohort is the emails **sent** in the window
(``since <= sent_at <= now``); each is counted once per outcome, whatever the number of events:

- ``delivered``: sent, and no bounce, soft bounce or drop came back for it (an ESP's event webhook
  reports deliveries, SMTP and the outbox do not, so the absence of a failure is what all share);
- ``human_opens``: opened at least once by a person (an open event not flagged ``machine``);
  ``machine_opens``: opened only by a machine (Apple Mail Privacy Protection and other proxies),
  so the two add up to the emails opened at all;
- ``clicks``: clicked by a person (link-scanner clicks are left out); ``replies`` (auto-replies
  left out), ``unsubscribes``, ``bounces`` (hard and soft), ``complaints``: emails with at least
  one such event.

``enrolled`` counts the enrolments made in the window, ``requalified`` the hand-backs to sales
(the ``handoff`` rows) made in the window, each under the campaign they belong to.

*The closed loop* (by recycle reason, and by campaign for the report). The cohort is the recycles
made in the window (``recycle_record``); each recycle is an *episode* that lasts until the lead's
next recycle. Per episode: ``engaged`` (a person opened, clicked, replied, or a site visit, form
fill or demo request came in), ``requalified`` (handed back to sales), ``accepted`` (sales said
accepted or won), ``won`` (sales said won) — each at most once, so every stage is a subset of the
one before.

Rates sit beside the counts with their denominators in :data:`RATES` (``open_rate = human_opens /
delivered``); a rate with a zero denominator is ``None``, never a division error.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, Literal

from dripengine.storage import Connection
from dripengine.storage import stats as counted
from dripengine.storage.stats import EMAIL_COUNTS, MadeKey

CAMPAIGN_COUNTS = ("enrolled", *EMAIL_COUNTS, "requalified")
FUNNEL_COUNTS = ("recycled", "engaged", "requalified", "accepted", "won")

# name -> (numerator, denominator): each rate is printed beside its numerator, and named with its
# denominator in the output's footer and in docs/stats.md
EMAIL_RATES: dict[str, tuple[str, str]] = {
    "delivery_rate": ("delivered", "sent"),
    "open_rate": ("human_opens", "delivered"),
    "machine_open_rate": ("machine_opens", "delivered"),
    "click_rate": ("clicks", "delivered"),
    "reply_rate": ("replies", "delivered"),
    "unsubscribe_rate": ("unsubscribes", "delivered"),
    "bounce_rate": ("bounces", "sent"),
    "complaint_rate": ("complaints", "delivered"),
}
CAMPAIGN_RATES = {**EMAIL_RATES, "requalification_rate": ("requalified", "enrolled")}
STEP_RATES = {"reach_rate": ("sent", "first_step_sent"), **EMAIL_RATES}
FUNNEL_RATES: dict[str, tuple[str, str]] = {
    "engaged_rate": ("engaged", "recycled"),
    "requalification_rate": ("requalified", "recycled"),
    "acceptance_rate": ("accepted", "requalified"),
    "win_rate": ("won", "requalified"),
}


@dataclass(frozen=True)
class Window:
    """The time the numbers cover: ``since`` (None: from the start) up to ``now``, both included."""

    now: datetime
    since: datetime | None = None


@dataclass(frozen=True)
class View:
    """What a ``--by`` view shows: its key columns, its counts and its rates."""

    name: str
    keys: tuple[str, ...]
    counts: tuple[str, ...]
    rates: Mapping[str, tuple[str, str]]


VIEWS: dict[str, View] = {
    "campaign": View("campaign", ("campaign",), CAMPAIGN_COUNTS, CAMPAIGN_RATES),
    "step": View("step", ("campaign", "track", "step"), EMAIL_COUNTS, STEP_RATES),
    "week": View("week", ("week",), CAMPAIGN_COUNTS, CAMPAIGN_RATES),
    "reason": View("reason", ("reason",), FUNNEL_COUNTS, FUNNEL_RATES),
}
BY: tuple[str, ...] = tuple(VIEWS)


@dataclass
class Row:
    """One line of a view: what it is about (``key``), its counts, and its rates on demand."""

    key: dict[str, Any]
    counts: dict[str, int]
    rates_of: Mapping[str, tuple[str, str]] = field(repr=False)

    def rate(self, name: str) -> float | None:
        """``numerator / denominator``, or None when the denominator is 0."""
        numerator, denominator = self.rates_of[name]
        below = self.counts[denominator] if denominator in self.counts else self.key[denominator]
        return self.counts[numerator] / below if below else None

    def rates(self) -> dict[str, float | None]:
        return {
            name: None if (value := self.rate(name)) is None else round(value, 4)
            for name in self.rates_of
        }

    def as_dict(self) -> dict[str, Any]:
        return {**self.key, **self.counts, **self.rates()}


def total(
    rows: Sequence[Row], key: Mapping[str, Any], rates_of: Mapping[str, tuple[str, str]]
) -> Row:
    """The rows added up: every count is additive (each email, enrolment, hand-back and recycle
    is in exactly one row)."""
    counts: dict[str, int] = {}
    for row in rows:
        for name, value in row.counts.items():
            counts[name] = counts.get(name, 0) + value
    return Row(dict(key), counts, rates_of)


# --- emails -----------------------------------------------------------------------------------------

EmailCounts = dict[tuple[Any, ...], dict[str, Any]]  # {key values: counts}, as the database gave


def _with_enrolled_and_requalified(
    connection: Connection,
    window: Window,
    campaign: str | None,
    emails: EmailCounts,
    by: MadeKey,
) -> list[Row]:
    """One row per campaign (or day) with emails, enrolments or hand-backs in the window."""
    enrolled, requalified = counted.made_counts(connection, window, by, campaign)
    by_key = {k[0]: counts for k, counts in emails.items()}
    rows = []
    for value in sorted(set(by_key) | set(enrolled) | set(requalified)):
        counts = {"enrolled": enrolled.get(value, 0)}
        counts.update({c: int(by_key.get(value, {}).get(c, 0)) for c in EMAIL_COUNTS})
        counts["requalified"] = requalified.get(value, 0)
        rows.append(Row({by: value}, counts, CAMPAIGN_RATES))
    return rows


def by_campaign(connection: Connection, window: Window, campaign: str | None = None) -> list[Row]:
    """One row per campaign with enrolments, emails or hand-backs in the window."""
    emails = counted.email_counts(connection, window, "campaign", campaign)
    return _with_enrolled_and_requalified(connection, window, campaign, emails, "campaign")


def by_step(connection: Connection, window: Window, campaign: str | None = None) -> list[Row]:
    """One row per campaign, track and step, in sending order (by each step's first send).

    ``reach_rate`` is a step's sends over the sends of its track's first step: how far down the
    sequence the leads get (they leave by requalifying, opting out, bouncing or an exit rule).
    """
    return _step_rows(counted.email_counts(connection, window, "step", campaign))


def _step_rows(emails: EmailCounts) -> list[Row]:
    order = sorted(emails, key=lambda k: (k[0], k[1], emails[k]["first"], k[2]))
    first: dict[tuple[str, str], int] = {}
    rows = []
    for campaign_id, track, step in order:
        counts = emails[(campaign_id, track, step)]
        head = first.setdefault((campaign_id, track), int(counts["sent"]))
        key = {"campaign": campaign_id, "track": track, "step": step, "first_step_sent": head}
        rows.append(Row(key, {c: int(counts[c]) for c in EMAIL_COUNTS}, STEP_RATES))
    return rows


def monday(day: str) -> str:
    """The Monday of the week of ``day`` (``YYYY-MM-DD``)."""
    value = date.fromisoformat(day)
    return (value - timedelta(days=value.weekday())).isoformat()


def by_week(connection: Connection, window: Window, campaign: str | None = None) -> list[Row]:
    """One row per week (Monday to Sunday, UTC), oldest first: emails by the week they were sent,
    enrolments and hand-backs by the week they were made.

    The database counts per day; the days (a few hundred aggregate rows at most) are added up
    into weeks here, which is exact because each email, enrolment and hand-back is in one day.
    """
    emails = counted.email_counts(connection, window, "day", campaign)
    return _week_rows(connection, window, campaign, emails)


def _week_rows(
    connection: Connection, window: Window, campaign: str | None, emails: EmailCounts
) -> list[Row]:
    """:func:`by_week` from the email counts per day."""
    days = _with_enrolled_and_requalified(connection, window, campaign, emails, "day")
    weeks: dict[str, list[Row]] = {}
    for row in days:
        weeks.setdefault(monday(row.key["day"]), []).append(row)
    return [total(rows, {"week": week}, CAMPAIGN_RATES) for week, rows in sorted(weeks.items())]


@dataclass(frozen=True)
class EmailViews:
    campaigns: list[Row]
    steps: list[Row]
    weeks: list[Row]


def email_views(connection: Connection, window: Window, campaign: str | None = None) -> EmailViews:
    """:func:`by_campaign`, :func:`by_step` and :func:`by_week` from one pass over the emails.

    The emails and their events are counted once, per campaign, track, step and day (a few
    thousand groups), and those counts are added up into the three views here: each email is in
    exactly one such group, so the sums are the views' own counts. The report needs all three;
    reading the million emails and three million events once instead of three times is most of
    its time.
    """
    fine = counted.email_counts(connection, window, "step_day", campaign)
    by_campaign_: EmailCounts = {}
    by_step_: EmailCounts = {}
    by_day: EmailCounts = {}
    for (campaign_id, track, step, when), counts in fine.items():
        for target, key in (
            (by_campaign_, (campaign_id,)),
            (by_step_, (campaign_id, track, step)),
            (by_day, (when,)),
        ):
            into = target.get(key)
            if into is None:
                target[key] = dict(counts)
                continue
            for name in EMAIL_COUNTS:
                into[name] += counts[name]
            into["first"] = min(into["first"], counts["first"])
    return EmailViews(
        _with_enrolled_and_requalified(connection, window, campaign, by_campaign_, "campaign"),
        _step_rows(by_step_),
        _week_rows(connection, window, campaign, by_day),
    )


# --- the closed loop --------------------------------------------------------------------------------


def funnel(
    connection: Connection,
    window: Window,
    group: Literal["reason", "campaign"] = "reason",
    campaign: str | None = None,
) -> list[Row]:
    """recycled → engaged → requalified → accepted → won, one row per recycle reason (or per
    campaign the recycle went into), over the recycles made in the window."""
    return [
        Row({group: r[group]}, {n: int(r[n]) for n in FUNNEL_COUNTS}, FUNNEL_RATES)
        for r in counted.funnel_counts(connection, window, group, campaign)
    ]


# --- one call for the CLI and the report ------------------------------------------------------------


def read(connection: Connection, by: str, window: Window, campaign: str | None = None) -> list[Row]:
    if by == "campaign":
        return by_campaign(connection, window, campaign)
    if by == "step":
        return by_step(connection, window, campaign)
    if by == "week":
        return by_week(connection, window, campaign)
    if by == "reason":
        return funnel(connection, window, "reason", campaign)
    raise ValueError(f"--by {by}: use one of {', '.join(BY)}")
