"""The workload of tests/test_scale_out_pg.py: the rows, the webhook posts, the tracking hits.

Two kinds of lead, all recycled into ``lost-sql-winback``:

- **send** leads (fit D): their ``checkin`` went out through SendGrid 11 days ago, their
  ``whats-new`` is due now. `drip run` sends it through the outbox, and its pixel and tracked
  link (read from the ``.eml``) are hit on `drip serve`; SendGrid's events of the old ``checkin``
  (processed, delivered, an open and a click now) arrive at the same time.
- **history** leads (half of them fit B, so they can be handed back to sales at a score of 60):
  two emails sent through SendGrid days ago, nothing due; SendGrid posts their opens and clicks
  (some machine opens, one open again under another ``sg_event_id``, unsubscribes of some
  fit-D leads). A third of them already earned 2 of the day's 3 open points earlier that day.

Scores depend on the order events are ingested in two ways (``engagement/rescore.py``): an event
older than the lead's score is added undecayed at the score's time, and a daily cap gives its
rest to whichever event comes first. So the workload is chosen to make the single-process result
independent of that order — every scoring event of one lead happens at the same second (its
``moment``), and no daily cap ever leaves an event with nothing in one order but not another —
and the test proves it by replaying the events in two orders. What remains to differ when two
servers ingest at once is the concurrency itself.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import insert, select, text
from sqlalchemy.engine import Engine

from dripengine import vocabulary as v
from dripengine.engagement.tracking import machine_reason, read_click, read_open
from dripengine.storage.models import ENROLLMENT, EVENT, LEAD, MESSAGE, RECYCLE_RECORD, SCORE_CHANGE
from dripengine.testing.sendgrid_webhook import sendgrid_event
from dripengine.vocabulary import IncomingEvent

T = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)  # the workers' clock: Tuesday 11:00 in Berlin
SERVE_NOW = T + timedelta(hours=1)  # the servers' clock: every tracking hit happens then
CAMPAIGN = "lost-sql-winback"
DAY = timedelta(days=1)
BROWSER = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
IMAGE_PROXY = (
    "Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 (via ggpht.com GoogleImageProxy)"
)
CLIENT_IP = "127.0.0.1"  # what `drip serve` sees of every hit
GUIDE = "https://acme.example/guides/restart-checklist?drip_tag=guide"  # 5 + 3 points
PRICING = "https://acme.example/pricing?drip_tag=pricing"  # 5 + 15
DEMO = "https://acme.example/demo/15-minutes?drip_tag=demo"  # 5 + 20
HOME = "https://acme.example/"  # 5
SEND_EMAIL = re.compile(r"send(\d+)@")


@dataclass(frozen=True)
class Sent:
    """An email sent before the test: its uid, SendGrid's id of it, when."""

    uid: str
    sg_id: str
    at: datetime


@dataclass(frozen=True)
class Lead:
    index: int
    email: str
    kind: str  # send | history
    moment: datetime  # when all of its scoring events happen
    sent: tuple[Sent, ...]


def uid(*parts: object) -> str:
    """A stable message uid: both databases get the same rows."""
    return hashlib.md5("-".join(map(str, parts)).encode()).hexdigest()


def day(at: datetime) -> datetime:
    return at.replace(hour=0, minute=0, second=0, microsecond=0)


def plan(sends: int, histories: int) -> list[Lead]:
    leads = []
    for i in range(sends):
        sent = Sent(uid("send", i), uid("sg-send", i)[:22], T - 11 * DAY)
        leads.append(Lead(i, f"send{i:05d}@sendco{i % 40}.example", "send", SERVE_NOW, (sent,)))
    for j in range(histories):
        moment = SERVE_NOW - (j % 3) * DAY - timedelta(minutes=j % 50)
        sent = (
            Sent(uid("hist", j, 1), uid("sg-hist", j, 1)[:22], T - 9 * DAY),
            Sent(uid("hist", j, 2), uid("sg-hist", j, 2)[:22], T - 3 * DAY),
        )
        leads.append(Lead(j, f"hist{j:05d}@histco{j % 40}.example", "history", moment, sent))
    return leads


def good_fit(lead: Lead) -> bool:
    return lead.kind == "history" and lead.index % 2 == 0


def capped_before(lead: Lead) -> bool:
    """Earned 2 of the day's 3 open points before its moment (a third of the history leads)."""
    return lead.kind == "history" and lead.index % 3 == 0


def populate(engine: Engine, leads: list[Lead]) -> None:
    """The same rows in any fresh database: leads, recycles, enrollments, the emails sent."""
    recycled = T - 12 * DAY
    with engine.begin() as connection:
        connection.execute(insert(LEAD), [_lead_row(lead, recycled) for lead in leads])
        ids = dict(connection.execute(select(LEAD.c.email, LEAD.c.id)).all())
        connection.execute(
            insert(RECYCLE_RECORD),
            [
                {
                    "lead_id": ids[lead.email],
                    "from_stage": "sql",
                    "reason": "no_budget",
                    "at": recycled,
                    "recycle_count": 1,
                    "campaign_id": CAMPAIGN,
                    "outcome": "enrolled",
                }
                for lead in leads
            ],
        )
        connection.execute(
            insert(ENROLLMENT),
            [
                {
                    "lead_id": ids[lead.email],
                    "campaign_id": CAMPAIGN,
                    "status": "active",
                    "track": "cold",
                    "current_step": "whats-new" if lead.kind == "send" else "breakup",
                    "step_index": len(lead.sent),
                    "next_due_at": T - timedelta(hours=1) if lead.kind == "send" else T + 5 * DAY,
                    "enrolled_at": recycled,
                    "updated_at": lead.sent[-1].at,
                }
                for lead in leads
            ],
        )
        enrollments = dict(connection.execute(select(ENROLLMENT.c.lead_id, ENROLLMENT.c.id)).all())
        steps = ("checkin", "whats-new")
        connection.execute(
            insert(MESSAGE),
            [
                {
                    "uid": sent.uid,
                    "enrollment_id": enrollments[ids[lead.email]],
                    "lead_id": ids[lead.email],
                    "campaign_id": CAMPAIGN,
                    "step_id": steps[n],
                    "track": "cold",
                    "provider": "sendgrid",
                    "provider_message_id": sent.sg_id,
                    "status": "sent",
                    "attempts": 1,
                    "created_at": sent.at,
                    "sent_at": sent.at,
                }
                for lead in leads
                for n, sent in enumerate(lead.sent)
            ],
        )
        _earned_opens(connection, [lead for lead in leads if capped_before(lead)], ids)


def _lead_row(lead: Lead, recycled: datetime) -> dict[str, Any]:
    if lead.kind == "send":
        score = (lead.index % 4) * 2.0
        at: datetime | None = T - 10 * DAY if score else None
    else:
        score = 30.0 + (lead.index % 6) * 4
        at = day(lead.moment) + timedelta(seconds=61) if capped_before(lead) else T - 4 * DAY
    fit = good_fit(lead)  # B: name, company, role, industry and size; D: name and company
    return {  # every row the same keys: an executemany takes the first row's
        "email": lead.email,
        "first_name": f"Lead{lead.index}",
        "last_name": "Doe" if fit else None,
        "company": f"Company {lead.index % 40}",
        "title": "Head of Operations" if fit else None,
        "timezone": "Europe/Berlin",
        "attributes": {"industry": "software", "employees": 120} if fit else {},
        "stage": "recycled",
        "score": score,
        "score_updated_at": at,
        "recycle_count": 1,
        "created_at": recycled - 30 * DAY,
        "updated_at": recycled,
    }


def _earned_opens(connection: Any, leads: list[Lead], ids: dict[str, int]) -> None:
    """Two opens of the first email early on the moment's day, 1 point each (the daily cap is 3)."""
    if not leads:
        return
    messages = dict(connection.execute(select(MESSAGE.c.uid, MESSAGE.c.id)).all())
    rows = []
    for lead in leads:
        for second in (60, 61):
            at = day(lead.moment) + timedelta(seconds=second)
            rows.append(
                {
                    "message_id": messages[lead.sent[0].uid],
                    "lead_id": ids[lead.email],
                    "type": v.OPEN,
                    "provider": "sendgrid",
                    "provider_event_id": uid("earlier-open", lead.index, second),
                    "occurred_at": at,
                    "received_at": at,
                    "machine": False,
                    "dedupe_key": uid("earlier-open-key", lead.index, second) * 2,
                    "raw": {},
                }
            )
    stored = connection.execute(
        insert(EVENT).returning(EVENT.c.id, EVENT.c.lead_id, EVENT.c.occurred_at), rows
    )
    connection.execute(
        insert(SCORE_CHANGE),
        [
            {
                "lead_id": lead_id,
                "event_id": event_id,
                "delta": 1.0,
                "score_after": 0.0,  # not read by scoring; the lead row holds the score
                "reason": "open in lost-sql-winback/checkin",
                "at": at,
            }
            for event_id, lead_id, at in stored.all()
        ],
    )


# --- what SendGrid posts -------------------------------------------------------------------------


def sendgrid_events(leads: list[Lead], seed: int) -> list[dict[str, Any]]:
    """Every event SendGrid posts in the test, shuffled: a lead's events land in many batches."""
    items: list[dict[str, Any]] = []
    for lead in leads:
        items += _lead_events(lead)
    for n in range(20):  # events of mail that is not ours: stored, matched to no lead
        items.append(
            sendgrid_event(
                "open",
                timestamp=_ts(SERVE_NOW),
                uid=uid("not-ours", n),
                email=f"stranger{n}@elsewhere.example",
            )
        )
    random.Random(seed).shuffle(items)
    return items


def _lead_events(lead: Lead) -> list[dict[str, Any]]:
    items = []

    def event(kind: str, sent: Sent, at: datetime, **fields: Any) -> None:
        items.append(
            sendgrid_event(
                kind,
                timestamp=_ts(at),
                uid=sent.uid,
                email=lead.email,
                sg_message_id=f"{sent.sg_id}.filterdrecv-5bf8b8d5d6-x-1-6390D3C9-2.0",
                **fields,
            )
        )

    for sent in lead.sent:
        event("processed", sent, sent.at + timedelta(seconds=1))
        event("delivered", sent, sent.at + timedelta(seconds=3))
    i, at = lead.index, lead.moment
    if lead.kind == "send":
        event("open", lead.sent[0], at)
        if i % 2 == 0:
            event("click", lead.sent[0], at, url=GUIDE)
        return items
    first, second = lead.sent
    event("open", first, at, sg_machine_open=i % 4 == 0)
    event("open", second, at)
    if i % 7 == 0:  # the same open again under another sg_event_id: stored once
        items.append({**items[-1], "sg_event_id": uid("again", i)})
    event("click", first, at, url=(PRICING, GUIDE, HOME)[i % 3])
    if i % 5 == 0:  # 20 + 25 > the day's cap of 40: the second click gets the rest, in any order
        event("click", second, at, url=DEMO)
    if i % 10 == 3:  # fit D (odd): unsubscribed, never handed back
        event("unsubscribe", first, at)
    return items


def _ts(at: datetime) -> int:
    return int(at.timestamp())


def batches(items: list[dict[str, Any]], size: int) -> list[bytes]:
    return [json.dumps(items[n : n + size]).encode() for n in range(0, len(items), size)]


# --- the tracking hits of the emails `drip run` sends ---------------------------------------------


@dataclass(frozen=True)
class Hit:
    path: str  # /o/<token>.gif or /c/<token>
    server: int  # which `drip serve` gets it
    agent: str


def hits_of(eml: Path) -> list[Hit]:
    """The pixel twice (once on each server) and, for two leads in three, the tracked link (for
    one in six twice, on both): what a mail client and a reader do with the email."""
    message = message_from_bytes(eml.read_bytes(), policy=policy.default)
    found = SEND_EMAIL.search(str(message["To"]))
    assert found, message["To"]
    i = int(found.group(1))
    html = message.get_body(preferencelist=("html",)).get_content()  # type: ignore[union-attr]
    paths = [urlsplit(u).path for u in re.findall(r'(?:href|src)="([^"]+)"', html)]
    pixels = [p for p in paths if p.startswith("/o/")]
    links = [p for p in paths if p.startswith("/c/")]
    assert len(pixels) == 1 and links, f"{eml}: pixel {pixels}, links {links}"
    agent = IMAGE_PROXY if i % 5 == 0 else BROWSER
    hits = [Hit(pixels[0], i % 2, agent), Hit(pixels[0], (i + 1) % 2, agent)]
    if i % 3:
        hits.append(Hit(links[0], (i + 1) % 2, BROWSER))
    if i % 6 == 1:
        hits.append(Hit(links[0], i % 2, BROWSER))
    return hits


def hit_event(secret: str, hit: Hit) -> IncomingEvent:
    """The event `drip serve` makes of a hit (``web/tracking.py``), for the one-process replay."""
    token = hit.path.split("/", 2)[2]
    machine = machine_reason(hit.agent, CLIENT_IP)
    common: dict[str, Any] = {
        "occurred_at": SERVE_NOW,
        "provider": "drip",
        "machine": machine is not None,
        "detail": machine,
        "raw": {"user_agent": hit.agent, "ip": CLIENT_IP},
    }
    if hit.path.startswith("/o/"):
        return IncomingEvent(type=v.OPEN, message_uid=read_open(secret, token[:-4]), **common)
    target = read_click(secret, token)
    return IncomingEvent(
        type=v.CLICK, message_uid=target.message_uid, url=target.url, tag=target.tag, **common
    )


# --- what the database holds afterwards -----------------------------------------------------------


@dataclass(frozen=True)
class LeadState:
    score: float
    score_updated_at: datetime | None
    stage: str
    requalified: bool
    score_changes: int
    stage_changes: int
    handoffs: int
    suppressed: bool


def per_lead(engine: Engine) -> dict[str, LeadState]:
    query = """
        SELECT l.email, l.score, l.score_updated_at, l.stage, l.requalified_at IS NOT NULL,
          (SELECT count(*) FROM score_change s WHERE s.lead_id = l.id),
          (SELECT count(*) FROM stage_change c WHERE c.lead_id = l.id),
          (SELECT count(*) FROM handoff h WHERE h.lead_id = l.id),
          EXISTS (SELECT 1 FROM suppression p WHERE p.email = l.email)
        FROM lead l"""
    with engine.connect() as connection:
        return {row[0]: LeadState(*row[1:]) for row in connection.execute(text(query))}


def stored_events(engine: Engine) -> Counter[tuple[Any, ...]]:
    """Every stored event as what it says (not its row id): provider, dedupe key (not the
    provider's event id: of two copies under two ids, either may be the one kept), type, the
    message's uid, the lead's address, when, url, tag, machine."""
    query = """
        SELECT e.provider, e.dedupe_key, e.type, m.uid, l.email, e.occurred_at, e.url,
          e.tag, e.machine
        FROM event e LEFT JOIN message m ON m.id = e.message_id LEFT JOIN lead l ON l.id = e.lead_id
    """
    with engine.connect() as connection:
        return Counter(tuple(row) for row in connection.execute(text(query)))


def differences(
    got: dict[str, LeadState], expected: dict[str, LeadState], tolerance: float = 1e-9
) -> Iterator[str]:
    """One line per lead whose state differs (the score within ``tolerance``)."""
    assert got.keys() == expected.keys()
    for email in sorted(got):
        a, b = got[email], expected[email]
        close = abs(a.score - b.score) <= tolerance
        if not close or replace(a, score=0.0) != replace(b, score=0.0):
            yield f"{email}: {a} != {b} (score off by {a.score - b.score:+.12g})"


def summary(got: dict[str, LeadState], expected: dict[str, LeadState]) -> str:
    """The differences counted by kind of lead and what differs, e.g. ``history: score short by
    5: 12`` (a lost update: the event's score change is there, its points are not)."""
    found: Counter[str] = Counter()
    for email in got:
        a, b = got[email], expected[email]
        kind = email[:4]
        if a.score_changes != b.score_changes:
            found[f"{kind}: {a.score_changes - b.score_changes:+d} score changes"] += 1
        if abs(a.score - b.score) > 1e-9:
            found[f"{kind}: score off by {a.score - b.score:+.6g}"] += 1
        for name in ("stage", "requalified", "stage_changes", "handoffs", "suppressed"):
            if getattr(a, name) != getattr(b, name):
                found[f"{kind}: {name} {getattr(a, name)} (one process: {getattr(b, name)})"] += 1
    return "; ".join(f"{what}: {n}" for what, n in sorted(found.items()))
