"""``drip stats`` and the report's numbers: what the campaigns did, counted by the database.

Read-side only, and every figure is an aggregate (``count``, ``sum(case …)``, ``group by``): the
work grows in the database, never as Python per row. Two shapes of question:

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

from sqlalchemy import Select, Table, and_, case, exists, false, func, literal, or_, select
from sqlalchemy.engine import Connection
from sqlalchemy.sql.elements import ColumnElement

from dripengine.engagement import vocabulary as v
from dripengine.storage.models import Enrollment, Event, Feedback, Handoff, Message, RecycleRecord

ENROLLMENT: Table = Enrollment.__table__  # type: ignore[attr-defined]
MESSAGE: Table = Message.__table__  # type: ignore[attr-defined]
EVENT: Table = Event.__table__  # type: ignore[attr-defined]
HANDOFF: Table = Handoff.__table__  # type: ignore[attr-defined]
FEEDBACK: Table = Feedback.__table__  # type: ignore[attr-defined]
RECYCLE_RECORD: Table = RecycleRecord.__table__  # type: ignore[attr-defined]

NO_CAMPAIGN = "(none)"  # emails and hand-backs recorded without a campaign

EMAIL_COUNTS = (
    "sent",
    "delivered",
    "human_opens",
    "machine_opens",
    "clicks",
    "replies",
    "unsubscribes",
    "bounces",
    "complaints",
)
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

# events that show a person paid attention during a recycle (machine opens and scanner clicks
# carry machine = true and are left out)
ENGAGED_TYPES = (v.OPEN, v.CLICK, v.REPLY, v.SITE_VISIT, v.FORM_FILL, v.DEMO_REQUEST)


@dataclass(frozen=True)
class Window:
    """The time the numbers cover: ``since`` (None: from the start) up to ``now``, both included."""

    now: datetime
    since: datetime | None = None

    def holds(self, column: Any) -> ColumnElement[bool]:
        if self.since is None:
            return and_(column <= self.now)
        return and_(column >= self.since, column <= self.now)


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


def _count_if(condition: ColumnElement[bool]) -> ColumnElement[int]:
    return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)


# One bit per outcome of an email; an email's events grouped by message give the sum of the
# distinct bits, which is their OR: an email opened twenty times is one open, and an email opened by
# a proxy and by a person is a human open. Simple CASE on the type is the cheapest per-event work
# SQLite can do (3M events: ~1.5 s); a flag column per outcome cost twice that.
HUMAN_OPEN, MACHINE_OPEN, CLICK, REPLY = 1, 2, 4, 8
UNSUBSCRIBE, GROUP_UNSUBSCRIBE, BOUNCE, SOFT_BOUNCE, DROPPED, COMPLAINT = 16, 32, 64, 128, 256, 512
UNDELIVERED = BOUNCE | SOFT_BOUNCE | DROPPED


def _outcome_bit() -> ColumnElement[int]:
    e = EVENT.c
    return case(
        {
            v.OPEN: case((e.machine, MACHINE_OPEN), else_=HUMAN_OPEN),
            v.CLICK: case((e.machine, 0), else_=CLICK),  # a link scanner's click is no click
            v.REPLY: REPLY,
            v.UNSUBSCRIBE: UNSUBSCRIBE,
            v.GROUP_UNSUBSCRIBE: GROUP_UNSUBSCRIBE,
            v.BOUNCE: BOUNCE,
            v.SOFT_BOUNCE: SOFT_BOUNCE,
            v.DROPPED: DROPPED,
            v.COMPLAINT: COMPLAINT,
        },
        value=e.type,
        else_=0,
    )


def _outcomes() -> Any:
    """One row per email that has events: ``mask``, the OR of its outcome bits."""
    e = EVENT.c
    return (
        select(e.message_id.label("message_id"), func.sum(_outcome_bit().distinct()).label("mask"))
        .where(e.message_id.is_not(None))
        .group_by(e.message_id)
        .subquery("outcomes")
    )


def _has(mask: Any, bits: int) -> ColumnElement[int]:
    return _count_if(mask.op("&")(bits) != 0)


def _emails(
    connection: Connection,
    window: Window,
    keys: Sequence[Any],
    campaign: str | None,
    extra: Sequence[Any] = (),
) -> dict[tuple[Any, ...], dict[str, Any]]:
    """Email counts per ``keys`` (expressions over ``message``), as {key values: counts}.

    Two queries: the emails sent (a range scan of ``ix_message_status_sent``, which covers it) and
    their outcomes (events grouped by message, joined to the message by its primary key). An
    email with no event at all is sent and delivered.
    """
    m = MESSAGE.c
    where = [m.status == "sent", window.holds(m.sent_at)]
    if campaign is not None:
        where.append(m.campaign_id == campaign)
    names = [k.name for k in keys]
    sent = select(*keys, func.count().label("sent"), *extra).where(*where).group_by(*keys)
    out: dict[tuple[Any, ...], dict[str, Any]] = {}
    for r in connection.execute(sent):
        counts = dict.fromkeys(EMAIL_COUNTS, 0)
        counts.update(r._mapping)
        counts["delivered"] = counts["sent"]
        out[tuple(r._mapping[n] for n in names)] = counts
    outcomes = _outcomes()
    mask = outcomes.c.mask
    found = (
        select(
            *keys,
            _has(mask, UNDELIVERED).label("undelivered"),
            _has(mask, HUMAN_OPEN).label("human_opens"),
            _count_if(mask.op("&")(HUMAN_OPEN | MACHINE_OPEN) == MACHINE_OPEN).label(
                "machine_opens"
            ),
            _has(mask, CLICK).label("clicks"),
            _has(mask, REPLY).label("replies"),
            _has(mask, UNSUBSCRIBE | GROUP_UNSUBSCRIBE).label("unsubscribes"),
            _has(mask, BOUNCE | SOFT_BOUNCE).label("bounces"),
            _has(mask, COMPLAINT).label("complaints"),
        )
        .select_from(outcomes.join(MESSAGE, m.id == outcomes.c.message_id))
        .where(*where)
        .group_by(*keys)
    )
    for r in connection.execute(found):
        counts = out[tuple(r._mapping[n] for n in names)]
        for name in EMAIL_COUNTS[2:]:
            counts[name] = int(r._mapping[name])
        counts["delivered"] = counts["sent"] - int(r.undelivered)
    return out


def _campaign_key(column: Any) -> ColumnElement[str]:
    # an expression, not the bare column: SQLite would otherwise walk ix_message_campaign_created
    # for the GROUP BY order and read a million rows at random (10 s instead of 1 s)
    return func.coalesce(column, literal(NO_CAMPAIGN))


def _counts_by(
    connection: Connection,
    table: Table,
    at: Any,
    key: ColumnElement[Any],
    window: Window,
    campaign: str | None,
) -> dict[Any, int]:
    """``count(*)`` of ``table``'s rows made in the window, per ``key``."""
    query = select(key.label("k"), func.count().label("n")).where(window.holds(at)).group_by(key)
    if campaign is not None:
        query = query.where(table.c.campaign_id == campaign)
    return {r.k: int(r.n) for r in connection.execute(query)}


def _with_enrolled_and_requalified(
    connection: Connection,
    window: Window,
    campaign: str | None,
    emails: dict[tuple[Any, ...], dict[str, Any]],
    key_of: Any,
    name: str,
) -> list[Row]:
    enrolled = _counts_by(
        connection,
        ENROLLMENT,
        ENROLLMENT.c.enrolled_at,
        key_of(ENROLLMENT.c.campaign_id, ENROLLMENT.c.enrolled_at),
        window,
        campaign,
    )
    requalified = _counts_by(
        connection,
        HANDOFF,
        HANDOFF.c.created_at,
        key_of(HANDOFF.c.campaign_id, HANDOFF.c.created_at),
        window,
        campaign,
    )
    by_key = {k[0]: counts for k, counts in emails.items()}
    rows = []
    for value in sorted(set(by_key) | set(enrolled) | set(requalified)):
        counts = {"enrolled": enrolled.get(value, 0)}
        counts.update({c: int(by_key.get(value, {}).get(c, 0)) for c in EMAIL_COUNTS})
        counts["requalified"] = requalified.get(value, 0)
        rows.append(Row({name: value}, counts, CAMPAIGN_RATES))
    return rows


def by_campaign(connection: Connection, window: Window, campaign: str | None = None) -> list[Row]:
    """One row per campaign with enrolments, emails or hand-backs in the window."""
    key = _campaign_key(MESSAGE.c.campaign_id).label("campaign")
    return _campaign_rows(
        connection, window, campaign, _emails(connection, window, [key], campaign)
    )


def _campaign_rows(
    connection: Connection,
    window: Window,
    campaign: str | None,
    emails: dict[tuple[Any, ...], dict[str, Any]],
) -> list[Row]:
    """:func:`by_campaign` from the email counts per campaign."""
    return _with_enrolled_and_requalified(
        connection, window, campaign, emails, lambda c, _at: _campaign_key(c), "campaign"
    )


def _step_key() -> list[Any]:
    m = MESSAGE.c
    return [
        _campaign_key(m.campaign_id).label("campaign"),
        func.coalesce(m.track, literal("")).label("track"),
        m.step_id.label("step"),
    ]


def by_step(connection: Connection, window: Window, campaign: str | None = None) -> list[Row]:
    """One row per campaign, track and step, in sending order (by each step's first send).

    ``reach_rate`` is a step's sends over the sends of its track's first step: how far down the
    sequence the leads get (they leave by requalifying, opting out, bouncing or an exit rule).
    """
    first = func.min(MESSAGE.c.sent_at).label("first")
    return _step_rows(_emails(connection, window, _step_key(), campaign, [first]))


def _step_rows(emails: dict[tuple[Any, ...], dict[str, Any]]) -> list[Row]:
    order = sorted(emails, key=lambda k: (k[0], k[1], emails[k]["first"], k[2]))
    first: dict[tuple[str, str], int] = {}
    rows = []
    for campaign_id, track, step in order:
        counts = emails[(campaign_id, track, step)]
        head = first.setdefault((campaign_id, track), int(counts["sent"]))
        key = {"campaign": campaign_id, "track": track, "step": step, "first_step_sent": head}
        rows.append(Row(key, {c: int(counts[c]) for c in EMAIL_COUNTS}, STEP_RATES))
    return rows


def day_of(connection: Connection, column: Any) -> ColumnElement[str]:
    """The UTC day of ``column`` as ``YYYY-MM-DD``: the cheapest expression on each database
    (SQLite keeps UTC text, so it is the first ten characters; ``date()`` per row cost 3 s a
    million rows)."""
    if connection.dialect.name == "postgresql":
        return func.to_char(func.timezone("UTC", column), "YYYY-MM-DD")
    return func.substr(column, 1, 10)


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
    key = day_of(connection, MESSAGE.c.sent_at).label("day")
    return _week_rows(connection, window, campaign, _emails(connection, window, [key], campaign))


def _week_rows(
    connection: Connection,
    window: Window,
    campaign: str | None,
    emails: dict[tuple[Any, ...], dict[str, Any]],
) -> list[Row]:
    """:func:`by_week` from the email counts per day."""
    days = _with_enrolled_and_requalified(
        connection, window, campaign, emails, lambda _c, at: day_of(connection, at), "day"
    )
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
    day = day_of(connection, MESSAGE.c.sent_at).label("day")
    first = func.min(MESSAGE.c.sent_at).label("first")
    fine = _emails(connection, window, [*_step_key(), day], campaign, [first])
    by_campaign_: dict[tuple[Any, ...], dict[str, Any]] = {}
    by_step_: dict[tuple[Any, ...], dict[str, Any]] = {}
    by_day: dict[tuple[Any, ...], dict[str, Any]] = {}
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
        _campaign_rows(connection, window, campaign, by_campaign_),
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
        Row(
            {group: getattr(r, group)}, {n: int(getattr(r, n)) for n in FUNNEL_COUNTS}, FUNNEL_RATES
        )
        for r in connection.execute(funnel_query(window, group, campaign))
    ]


def funnel_query(
    window: Window, group: Literal["reason", "campaign"], campaign: str | None
) -> Select[Any]:
    rr = RECYCLE_RECORD.c
    episode = (
        select(
            rr.id,
            rr.lead_id,
            rr.reason,
            rr.campaign_id,
            rr.at,
            func.lead(rr.at)
            .over(partition_by=rr.lead_id, order_by=(rr.at, rr.id))
            .label("next_at"),
        )
        .where(rr.at <= window.now)
        .subquery("episode")
    )
    ep = episode.c

    def during(at: Any) -> ColumnElement[bool]:
        return and_(at >= ep.at, or_(ep.next_at.is_(None), at < ep.next_at), at <= window.now)

    e, h, f = EVENT.c, HANDOFF.c, FEEDBACK.c
    engaged = exists().where(
        e.lead_id == ep.lead_id,
        during(e.occurred_at),
        e.type.in_(ENGAGED_TYPES),
        e.machine == false(),
    )
    requalified = exists().where(h.lead_id == ep.lead_id, during(h.created_at))

    def told(*outcomes: str) -> Any:
        return exists().where(f.lead_id == ep.lead_id, during(f.at), f.outcome.in_(outcomes))

    column = ep.reason if group == "reason" else _campaign_key(ep.campaign_id)
    key = column.label(group)
    query = (
        select(
            key,
            func.count().label("recycled"),
            _count_if(engaged).label("engaged"),
            _count_if(requalified).label("requalified"),
            _count_if(told("accepted", "won")).label("accepted"),
            _count_if(told("won")).label("won"),
        )
        .where(ep.at >= window.since if window.since is not None else literal(True))
        .group_by(column)
        .order_by(column)
    )
    if campaign is not None:
        query = query.where(ep.campaign_id == campaign)
    return query


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


def known_campaigns(connection: Connection) -> list[str]:
    """Every campaign id the database has seen (enrolments), for a helpful error."""
    rows = connection.execute(select(ENROLLMENT.c.campaign_id).distinct())
    return sorted(r[0] for r in rows)
