"""The queries behind ``drip stats`` and the report: aggregates counted by the database.

Every figure is an aggregate (``count``, ``sum(case …)``, ``group by``): the work grows in the
database, never as Python per row. What each count means, and the rates over them, are
:mod:`dripengine.reports.stats`'s; this module counts, and returns plain dicts keyed by the counts'
names.

- :func:`email_counts`: the emails **sent** in the window, each counted once per outcome
  (:data:`EMAIL_COUNTS`), per campaign, step, day, or campaign, step and day;
- :func:`made_counts`: the enrolments and the hand-backs (``handoff`` rows) made in the window, per
  campaign or day;
- :func:`funnel_counts`: the closed loop, one row per recycle reason or campaign over the recycles
  (``recycle_record``) made in the window, each recycle an *episode* until the lead's next one;
- :func:`known_campaigns`: every campaign id the enrolments name.

The window is any value with ``now`` and ``since`` (:class:`Span`), both ends included.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal, Protocol

from sqlalchemy import Select, Table, and_, case, exists, false, func, literal, or_, select
from sqlalchemy.engine import Connection
from sqlalchemy.sql.elements import ColumnElement

from dripengine import vocabulary as v
from dripengine.storage.models import (
    ENROLLMENT,
    EVENT,
    FEEDBACK,
    HANDOFF,
    MESSAGE,
    RECYCLE_RECORD,
)

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

# events that show a person paid attention during a recycle (machine opens and scanner clicks
# carry machine = true and are left out)
ENGAGED_TYPES = (v.OPEN, v.CLICK, v.REPLY, v.SITE_VISIT, v.FORM_FILL, v.DEMO_REQUEST)

EmailKey = Literal["campaign", "step", "day", "step_day", "variant"]
MadeKey = Literal["campaign", "day"]
FunnelKey = Literal["reason", "campaign"]


class Span(Protocol):
    """The time the numbers cover: ``since`` (None: from the start) up to ``now``, both included."""

    @property
    def now(self) -> datetime: ...

    @property
    def since(self) -> datetime | None: ...


def _within(span: Span, column: Any) -> ColumnElement[bool]:
    if span.since is None:
        return and_(column <= span.now)
    return and_(column >= span.since, column <= span.now)


def _count_if(condition: ColumnElement[bool]) -> ColumnElement[int]:
    return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)


# --- emails -----------------------------------------------------------------------------------------

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


def _campaign_key(column: Any) -> ColumnElement[str]:
    # an expression, not the bare column: SQLite would otherwise walk ix_message_campaign_created
    # for the GROUP BY order and read a million rows at random (10 s instead of 1 s)
    return func.coalesce(column, literal(NO_CAMPAIGN))


def _step_key() -> list[Any]:
    m = MESSAGE.c
    return [
        _campaign_key(m.campaign_id).label("campaign"),
        func.coalesce(m.track, literal("")).label("track"),
        m.step_id.label("step"),
    ]


def _day_of(connection: Connection, column: Any) -> ColumnElement[str]:
    """The UTC day of ``column`` as ``YYYY-MM-DD``: the cheapest expression on each database
    (SQLite keeps UTC text, so it is the first ten characters; ``date()`` per row cost 3 s a
    million rows)."""
    if connection.dialect.name == "postgresql":
        return func.to_char(func.timezone("UTC", column), "YYYY-MM-DD")
    return func.substr(column, 1, 10)


def _email_keys(connection: Connection, by: EmailKey) -> tuple[list[Any], list[Any]]:
    """The key columns of ``by`` over ``message``, and the extra columns of the sent query
    (``first``: the earliest send, which orders the steps)."""
    if by == "campaign":
        return [_campaign_key(MESSAGE.c.campaign_id).label("campaign")], []
    first = func.min(MESSAGE.c.sent_at).label("first")
    if by == "step":
        return _step_key(), [first]
    if by == "variant":  # only the emails of steps with A/B variants
        return [*_step_key(), MESSAGE.c.variant.label("variant")], [first]
    day = _day_of(connection, MESSAGE.c.sent_at).label("day")
    if by == "day":
        return [day], []
    return [*_step_key(), day], [first]


def email_counts(
    connection: Connection, span: Span, by: EmailKey, campaign: str | None = None
) -> dict[tuple[Any, ...], dict[str, Any]]:
    """Email counts (:data:`EMAIL_COUNTS`, and ``first`` for the step keys) per key of ``by``
    (``campaign``; ``step``: campaign, track, step; ``day``; ``step_day``: campaign, track, step,
    day; ``variant``: campaign, track, step, A/B variant), as {key values: counts}.

    Two queries: the emails sent (a range scan of ``ix_message_status_sent``, which covers it) and
    their outcomes (events grouped by message, joined to the message by its primary key). An
    email with no event at all is sent and delivered.
    """
    keys, extra = _email_keys(connection, by)
    m = MESSAGE.c
    where = [m.status == "sent", _within(span, m.sent_at)]
    if campaign is not None:
        where.append(m.campaign_id == campaign)
    if by == "variant":
        where.append(m.variant.is_not(None))
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


# --- enrolments and hand-backs ----------------------------------------------------------------------


def _counts_by(
    connection: Connection,
    table: Table,
    at: Any,
    key: ColumnElement[Any],
    span: Span,
    campaign: str | None,
) -> dict[Any, int]:
    """``count(*)`` of ``table``'s rows made in the window, per ``key``."""
    query = select(key.label("k"), func.count().label("n")).where(_within(span, at)).group_by(key)
    if campaign is not None:
        query = query.where(table.c.campaign_id == campaign)
    return {r.k: int(r.n) for r in connection.execute(query)}


def made_counts(
    connection: Connection, span: Span, by: MadeKey, campaign: str | None = None
) -> tuple[dict[Any, int], dict[Any, int]]:
    """The enrolments and the hand-backs made in the window, each as {campaign or day: count}."""

    def key(table: Table, at: Any) -> ColumnElement[Any]:
        if by == "campaign":
            return _campaign_key(table.c.campaign_id)
        return _day_of(connection, at)

    e, h = ENROLLMENT.c, HANDOFF.c
    enrolled = _counts_by(
        connection, ENROLLMENT, e.enrolled_at, key(ENROLLMENT, e.enrolled_at), span, campaign
    )
    handed = _counts_by(
        connection, HANDOFF, h.created_at, key(HANDOFF, h.created_at), span, campaign
    )
    return enrolled, handed


# --- the closed loop --------------------------------------------------------------------------------


def funnel_counts(
    connection: Connection, span: Span, group: FunnelKey, campaign: str | None = None
) -> list[dict[str, Any]]:
    """recycled, engaged, requalified, accepted, won per recycle reason (or per campaign the
    recycle went into), over the recycles made in the window; one dict per row, ordered by it."""
    return [dict(r._mapping) for r in connection.execute(_funnel_query(span, group, campaign))]


def _funnel_query(span: Span, group: FunnelKey, campaign: str | None) -> Select[Any]:
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
        .where(rr.at <= span.now)
        .subquery("episode")
    )
    ep = episode.c

    def during(at: Any) -> ColumnElement[bool]:
        return and_(at >= ep.at, or_(ep.next_at.is_(None), at < ep.next_at), at <= span.now)

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
        .where(ep.at >= span.since if span.since is not None else literal(True))
        .group_by(column)
        .order_by(column)
    )
    if campaign is not None:
        query = query.where(ep.campaign_id == campaign)
    return query


def known_campaigns(connection: Connection) -> list[str]:
    """Every campaign id the database has seen (enrolments), sorted, for a helpful error."""
    rows = connection.execute(select(ENROLLMENT.c.campaign_id).distinct())
    return sorted(r[0] for r in rows)


__all__ = [
    "EMAIL_COUNTS",
    "NO_CAMPAIGN",
    "Span",
    "email_counts",
    "funnel_counts",
    "known_campaigns",
    "made_counts",
]
