"""``drip run`` end to end: claim → decide → render → SendGrid stand-in → record → advance.

The data: N leads, each enrolled in the skeleton's ``lost-sql-winback`` campaign with its first
step (``checkin``) due now, built with SQLAlchemy Core bulk inserts; the skeleton's templates and
``drip.toml`` (``sending.batch_size`` 500, the frequency cap out of the way). The SendGrid stand-in
runs in its own process (``benchmarks/fast_standin.py``) over plain HTTP on loopback.

- ``dispatch.<db>.latency_50ms``: ``Dispatcher(...).run_once()`` with
  ``SendGridProvider(max_in_flight=128)`` (the default), the stand-in sleeping 50 ms a request and 100 ms a new
  connection. Target ≥ 1,000 emails/s. Baseline side by side: **the naive script** on a small
  sample — a ``SELECT`` of the due enrollments, Jinja on the template source and
  ``mjml.mjml2html`` per email, the ``sendgrid`` library as is
  (``SendGridAPIClient(api_key, host=…).send(mail)``), an ``INSERT``/``UPDATE`` per email, one at a
  time. Target ratio ≥ 100x.
- ``dispatch.<db>.no_latency``: the same end to end with no latency, against a **bare keep-alive
  HTTP loop** posting the very same payloads (captured from the end-to-end run, JSON pre-encoded;
  no database, no rendering) through one ``urllib3`` pool with 64 threads — the provider's
  concurrency. Target ratio ≥ 0.6x.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, nullcontext
from datetime import UTC, datetime, timedelta
from typing import Any

import jinja2
import mjml
import urllib3
from sendgrid import SendGridAPIClient
from sendgrid.helpers.mail import Mail
from sqlalchemy import insert, select, text, update
from sqlalchemy.engine import Engine

from benchmarks.common import (
    Context,
    compared,
    postgres_engine,
    skipped,
    sqlite_engine,
    timed,
)
from benchmarks.fast_standin import fast_standin_process
from dripengine.campaigns import Campaign, load_campaigns
from dripengine.cli.scaffold import SKELETON
from dripengine.clock import FixedClock
from dripengine.config import SendGridSettings, Settings, load_settings
from dripengine.funnel.sla import SLA, load_sla
from dripengine.mail.message import OutgoingEmail
from dripengine.providers.sendgrid.provider import SEND_PATH, SendGridProvider
from dripengine.sending.dispatcher import Dispatcher
from dripengine.sending.tally import Tally
from dripengine.storage.messages import ENROLLMENT, MESSAGE
from dripengine.storage.rounds import LEAD
from dripengine.templates import Sender, build_context

NOW = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)  # a Tuesday, 11:00 in Berlin: inside the window
CAMPAIGN = "lost-sql-winback"
SECRET = "benchmark-secret-key-0123456789"
IN_FLIGHT = SendGridSettings().max_in_flight  # what drip run uses by default (128)
TARGET_RATE = 1_000.0
TARGET_NAIVE_RATIO = 100.0
TARGET_BARE_RATIO = 0.6
ZONES = ["Europe/Berlin", "Europe/Paris", "Europe/London", None]
FIRST = ["Anna", "Ben", "Chloé", "David", "Elif", "Farid", "Greta", "Hiro", "Ines", "Jonas"]
CHUNK = 5_000


def settings() -> Settings:
    base = load_settings(SKELETON / "drip.toml", env={"DRIP_SECRET_KEY": SECRET})
    return base.model_copy(
        update={
            "sending": base.sending.model_copy(
                update={"batch_size": 500, "max_per_lead_per_week": 1_000}
            )
        }
    )


def skeleton() -> tuple[list[Campaign], SLA]:
    sla = load_sla(SKELETON / "sla.yaml")
    return load_campaigns(SKELETON / "campaigns", known_reasons=sla.known_reasons), sla


def lead_rows(start: int, stop: int, now: datetime) -> Iterator[dict[str, Any]]:
    for n in range(start, stop):
        yield {
            "email": f"lead{n}@company{n % 997}.example",
            "first_name": FIRST[n % len(FIRST)],
            "last_name": f"Lastname{n}",
            "company": f"Company {n % 997}",
            "timezone": ZONES[n % len(ZONES)],
            "attributes": {},
            "stage": "recycled",
            "score": 0.0,
            "recycle_count": 1,
            "created_at": now - timedelta(days=30),
            "updated_at": now - timedelta(days=2),
        }


def enrollment_row(lead_id: int, n: int, now: datetime, *, due: bool) -> dict[str, Any]:
    enrolled = now - timedelta(days=2)
    row: dict[str, Any] = {
        "lead_id": lead_id,
        "campaign_id": CAMPAIGN,
        "campaign_version": 1,
        "status": "active",
        "track": "cold",
        "current_step": "checkin",
        "step_index": 0,
        "round": 1,
        "next_due_at": now - timedelta(seconds=1 + n % 3600),
        "lease_owner": None,
        "lease_until": None,
        "exit_reason": None,
        "enrolled_at": enrolled,
        "updated_at": enrolled,
        "ended_at": None,
    }
    if not due:  # history: finished long ago, or active but due later
        if n % 4:
            row.update(
                status="completed",
                current_step=None,
                step_index=3,
                next_due_at=None,
                ended_at=now - timedelta(days=30 + n % 300),
            )
        else:
            row.update(next_due_at=now + timedelta(days=1 + n % 20))
    return row


def populate(engine: Engine, count: int, now: datetime = NOW, *, due: int | None = None) -> None:
    """``count`` leads, each with one enrollment; the first ``due`` (default: all) due now."""
    due = count if due is None else due
    for start in range(0, count, CHUNK):
        stop = min(count, start + CHUNK)
        with engine.begin() as connection:
            connection.execute(insert(LEAD), list(lead_rows(start, stop, now)))
            ids = (
                connection.execute(
                    select(LEAD.c.id)
                    .where(
                        LEAD.c.email.in_(
                            [f"lead{n}@company{n % 997}.example" for n in range(start, stop)]
                        )
                    )
                    .order_by(LEAD.c.id)
                )
                .scalars()
                .all()
            )
            connection.execute(
                insert(ENROLLMENT),
                [
                    enrollment_row(lead_id, n, now, due=n < due)
                    for n, lead_id in zip(range(start, stop), ids, strict=True)
                ],
            )
    if engine.dialect.name == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.execute(text("VACUUM ANALYZE"))
    else:
        with engine.begin() as connection:
            connection.execute(text("ANALYZE"))


class CapturingProvider(SendGridProvider):
    """The SendGrid provider, keeping the emails it was given (for the bare loop's payloads)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.emails: list[OutgoingEmail] = []

    def send(self, emails: Sequence[OutgoingEmail]) -> list[Any]:
        self.emails.extend(emails)
        return super().send(emails)


def end_to_end(
    engine: Engine, url: str, key: str, *, capture: bool = False
) -> tuple[Tally, float, list[OutgoingEmail]]:
    campaigns, sla = skeleton()
    provider_type = CapturingProvider if capture else SendGridProvider
    provider = provider_type(key, host=url, max_in_flight=IN_FLIGHT)
    try:
        dispatcher = Dispatcher(
            engine, settings(), campaigns, sla, provider, FixedClock(NOW), worker="bench"
        )
        dispatcher.templates.load("lost-sql/checkin.mjml")  # compiled once, as a daemon would have
        tally, seconds = timed(dispatcher.run_once)
    finally:
        provider.close()
    emails = provider.emails if isinstance(provider, CapturingProvider) else []
    return tally, seconds, emails


# -- the naive script ----------------------------------------------------------------------------


def naive_script(engine: Engine, url: str, key: str, limit: int) -> float:
    """One email at a time: SELECT, Jinja + MJML per email, the sendgrid library, INSERT/UPDATE."""
    config = settings()
    templates = config.path("templates")
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(templates), autoescape=True)
    campaigns, _ = skeleton()
    campaign = next(c for c in campaigns if c.id == CAMPAIGN)
    step = campaign.tracks["cold"].steps[0]
    client = SendGridAPIClient(key, host=url)
    sender = Sender(
        campaign.send.sender_name, campaign.send.sender_email, config.sender.postal_address
    )

    def send_all() -> int:
        sent = 0
        with engine.connect() as connection:
            due = connection.execute(
                select(ENROLLMENT, LEAD.c.email, LEAD.c.first_name, LEAD.c.company)
                .join(LEAD, LEAD.c.id == ENROLLMENT.c.lead_id)
                .where(ENROLLMENT.c.status == "active", ENROLLMENT.c.next_due_at <= NOW)
                .order_by(ENROLLMENT.c.next_due_at)
                .limit(limit)
            ).all()
        for row in due:
            context = build_context(
                {"email": row.email, "first_name": row.first_name, "company": row.company},
                campaign_id=campaign.id,
                campaign_name=campaign.name,
                step_id=step.id,
                track="cold",
                sender=sender,
                unsubscribe_url=f"{config.sender.base_url}/u/{row.id}",
                preferences_url=f"{config.sender.base_url}/p/{row.id}",
            )
            source = env.get_template(step.template).render(context, link=lambda url, tag=None: url)
            html = mjml.mjml2html(source)
            subject = env.from_string(step.subject).render(context)
            mail = Mail(campaign.send.from_, row.email, subject, html_content=html)
            response = client.send(mail)
            assert response.status_code == 202, response.status_code
            with engine.begin() as connection:
                connection.execute(
                    insert(MESSAGE).values(
                        enrollment_id=row.id,
                        lead_id=row.lead_id,
                        campaign_id=campaign.id,
                        round=row.round,
                        step_id=step.id,
                        status="sent",
                        attempts=1,
                        created_at=NOW,
                        sent_at=NOW,
                    )
                )
                connection.execute(
                    update(ENROLLMENT)
                    .where(ENROLLMENT.c.id == row.id)
                    .values(current_step="whats-new", step_index=1, updated_at=NOW)
                )
            sent += 1
        return sent

    sent, seconds = timed(send_all)
    assert sent == limit, sent
    return sent / seconds


# -- the bare keep-alive loop --------------------------------------------------------------------


def bare_loop(url: str, key: str, emails: Sequence[OutgoingEmail]) -> float:
    """The same payloads, JSON pre-encoded, posted by 64 threads on one kept-alive urllib3 pool."""
    builder = SendGridProvider(key, host=url)
    bodies = [json.dumps(builder.payload(e)).encode() for e in emails]
    builder.close()
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    pool = urllib3.connection_from_url(url, maxsize=IN_FLIGHT, block=True, retries=False)
    lock = threading.Lock()
    position = iter(range(len(bodies)))

    def worker() -> int:
        done = 0
        while True:
            with lock:
                index = next(position, None)
            if index is None:
                return done
            response = pool.request("POST", SEND_PATH, body=bodies[index], headers=headers)
            assert response.status == 202, response.status
            done += 1

    with ThreadPoolExecutor(IN_FLIGHT) as threads:
        _, seconds = timed(
            lambda: sum(f.result() for f in [threads.submit(worker) for _ in range(IN_FLIGHT)])
        )
    pool.close()
    return len(bodies) / seconds


# -- the runs ------------------------------------------------------------------------------------


def backends(ctx: Context) -> Iterator[tuple[str, Callable[[str], AbstractContextManager[Engine]]]]:
    yield "sqlite", lambda label: nullcontext(sqlite_engine(ctx, label))
    if ctx.postgres_url is not None:
        yield "postgres", lambda label: postgres_engine(ctx, label)


def run(ctx: Context) -> Iterable[dict[str, Any]]:
    count = ctx.size(5_000, 300)
    naive_count = ctx.size(40, 6)
    for backend, fresh in backends(ctx):
        with fast_standin_process(per_request=0.05, per_connection=0.1) as (url, key):
            with fresh("naive") as engine:
                populate(engine, naive_count)
                naive = naive_script(engine, url, key, naive_count)
                engine.dispose()
            with fresh("e2e") as engine:
                populate(engine, count)
                tally, seconds, _ = end_to_end(engine, url, key)
                engine.dispose()
        assert tally.sent == count and not tally.failed, tally
        rate = count / seconds
        yield compared(
            f"dispatch.{backend}.latency_50ms",
            rate,
            naive,
            "emails/s",
            baseline_is="naive script: Jinja + mjml2html per email, SendGridAPIClient.send, one at a time",
            emails=count,
            baseline_emails=naive_count,
            latency="50 ms a request + 100 ms a new connection",
            max_in_flight=IN_FLIGHT,
            target=TARGET_RATE,
            target_ratio=TARGET_NAIVE_RATIO,
            meets_target=rate >= TARGET_RATE and rate / naive >= TARGET_NAIVE_RATIO,
        )
        with fast_standin_process() as (url, key):
            with fresh("e2e-fast") as engine:
                populate(engine, count)
                tally, seconds, emails = end_to_end(engine, url, key, capture=True)
                engine.dispose()
            assert tally.sent == count and len(emails) == count, tally
            bare = bare_loop(url, key, emails)
        rate = count / seconds
        yield compared(
            f"dispatch.{backend}.no_latency",
            rate,
            bare,
            "emails/s",
            baseline_is=f"bare keep-alive loop: urllib3 pool, {IN_FLIGHT} threads, same payloads pre-encoded",
            emails=count,
            latency="none",
            target_ratio=TARGET_BARE_RATIO,
            meets_target=rate / bare >= TARGET_BARE_RATIO,
        )
    if ctx.postgres_url is None:
        yield skipped("dispatch.postgres", ctx.postgres_skip_reason)
