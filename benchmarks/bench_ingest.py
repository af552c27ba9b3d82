"""SendGrid events into `drip serve` over HTTP: signed batches of 1,000, stored and rescored.

A ``drip init`` folder with 5,000 recycled leads (quick: 300), each actively enrolled in
``lost-sql-winback`` and sent its first email (Message rows with SendGrid ids), then ``drip serve``
as a subprocess with a generated ECDSA P-256 public key. The events are what SendGrid posts for
such a send, each referencing its message by our ``drip_uid`` custom arg: processed, delivered,
an open (one in three a machine open), a second open, and for every other lead a click — 22,500
events in all (quick: 1,350), in time order as SendGrid batches them, posted one signed
batch of 1,000 after another from one client (SendGrid posts in batches of up to ~1,000 events).

- ``ingest.<db>.events_per_s``: events stored a second, from the first post to the last answer.
- ``ingest.<db>.sent_twice``: every batch posted twice in a row (SendGrid's retries): new events
  a second over the same wall time (the second post of each batch is all duplicates).
- With ``DRIP_BENCH_SERVE_WORKERS=1,2``, also ``drip serve --workers 2`` posted to by two clients
  at once: the same lines with ``.2_workers`` after the name.

Target: ≥ 5,000 events/s on SQLite (``meets_target``); PostgreSQL printed beside it.
"""

from __future__ import annotations

import json
import os
import random
import time
import uuid
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

from click.testing import CliRunner
from sqlalchemy import insert, select
from sqlalchemy.engine import Engine

from benchmarks.common import (
    Context,
    measurement,
    postgres_engine,
    serve_workers,
    skipped,
    workers_suffix,
)
from dripengine.storage.engine import make_engine
from dripengine.storage.models import Enrollment, Lead, Message, RecycleRecord
from dripengine.testing.sendgrid_webhook import Signer, sendgrid_event
from dripengine.testing.serve_process import ServeProcess

TARGET = 5_000.0
BATCH = 1_000
CAMPAIGN = "lost-sql-winback"


def run(ctx: Context) -> Iterable[dict[str, Any]]:
    leads = ctx.size(5_000, 300)
    for workers in serve_workers():
        for twice in (False, True):
            yield _measure(ctx, "sqlite", leads, None, twice, workers)
        if ctx.postgres_url is None:
            yield skipped("ingest.postgres", ctx.postgres_skip_reason)
            continue
        for twice in (False, True):
            with postgres_engine(ctx, f"ingest{int(twice)}") as engine:
                url = engine.url.render_as_string(hide_password=False)
                engine.dispose()
                yield _measure(ctx, "postgres", leads, url, twice, workers)


def _measure(
    ctx: Context, db: str, leads: int, url: str | None, twice: bool, workers: int = 1
) -> dict[str, Any]:
    label = f"{db}-{'twice' if twice else 'once'}-{workers}"
    with _site(ctx, label, leads, url, workers) as (server, signer, uids):
        events = _events(uids)
        batches = [events[i : i + BATCH] for i in range(0, len(events), BATCH)]
        stored, seconds = _post_all(server, signer, batches, twice, clients=workers)
    rate = stored / seconds
    extra: dict[str, Any] = {
        "events": len(events),
        "stored": stored,
        "posts": len(batches) * (2 if twice else 1),
        "seconds": round(seconds, 2),
        "workers": workers,
    }
    if db == "sqlite" and not twice and workers == 1:
        extra.update(target=TARGET, meets_target=rate >= TARGET)
    name = f"ingest.{db}.{'sent_twice' if twice else 'events_per_s'}{workers_suffix(workers)}"
    return measurement(name, rate, "events/s", **extra)


def _post_all(
    server: ServeProcess,
    signer: Signer,
    batches: list[list[dict[str, Any]]],
    twice: bool,
    clients: int = 1,
) -> tuple[int, float]:
    """Post every batch (twice in a row when ``twice``); ``clients`` threads post at once, each
    every ``clients``-th batch (SendGrid posts batches side by side when it has many)."""
    bodies = [json.dumps(batch).encode() for batch in batches]
    stored = [0] * clients

    def post(client: int) -> None:
        for body in bodies[client::clients]:
            for _ in range(2 if twice else 1):
                headers = signer.headers(body, timestamp=int(time.time()))
                response = server.post("/webhooks/sendgrid", body, headers)
                if response.status != 200:
                    raise RuntimeError(f"{response.status}: {response.data[:300]!r}")
                stored[client] += response.json()["stored"]

    started = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        for done in [pool.submit(post, client) for client in range(clients)]:
            try:
                done.result()
            except RuntimeError as exc:
                raise RuntimeError(f"{exc}\n{server.log()}") from None
    return sum(stored), time.perf_counter() - started


def _events(uids: list[tuple[str, str]]) -> list[dict[str, Any]]:
    """What SendGrid posts after these sends, in the order it would (by time, interleaved)."""
    rng = random.Random(7)
    now = int(time.time())
    timed: list[tuple[int, dict[str, Any]]] = []
    for n, (uid, email) in enumerate(uids):
        sent = now - 3 * 86_400 + rng.randrange(3600)
        message_id = f"{uid[:22]}.filterdrecv-5bf8b8d5d6-x-1-6390D3C9-2.0"

        plan: list[tuple[str, int, dict[str, Any]]] = [
            ("processed", sent, {}),
            ("delivered", sent + 2, {}),
            ("open", sent + 60 + rng.randrange(86_400), {"sg_machine_open": n % 3 == 0}),
            ("open", sent + 90_000 + rng.randrange(86_400), {}),
        ]
        if n % 2 == 0:
            plan.append(("click", sent + 100_000 + rng.randrange(86_400), {}))
        for event, at, fields in plan:
            item = sendgrid_event(
                event, timestamp=at, uid=uid, email=email, sg_message_id=message_id, **fields
            )
            timed.append((at, item))
    timed.sort(key=lambda pair: pair[0])
    return [item for _, item in timed]


@contextmanager
def _site(
    ctx: Context, label: str, leads: int, url: str | None, workers: int = 1
) -> Iterator[tuple[ServeProcess, Signer, list[tuple[str, str]]]]:
    from dripengine.cli import main

    folder = ctx.tmp / label
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DRIP_", "SENDGRID_"))}
    if url:
        env["DRIP_DATABASE_URL"] = url
    cleared: dict[str, str | None] = {k: None for k in os.environ if k.startswith("DRIP_")}
    result = CliRunner().invoke(main, ["init", str(folder)], env={**cleared, **env})
    if result.exit_code != 0:
        raise RuntimeError(f"drip init failed: {result.output}")
    engine = make_engine(url or f"sqlite:///{folder / 'drip.db'}")
    try:
        uids = _populate(engine, leads)
    finally:
        engine.dispose()
    signer = Signer.generate()
    env["DRIP_SENDGRID_WEBHOOK_PUBLIC_KEY"] = signer.public_key
    args = ("--workers", str(workers)) if workers > 1 else ()
    with ServeProcess(folder, env=env, args=args, clean_env=True) as server:
        yield server, signer, uids


def _populate(engine: Engine, count: int) -> list[tuple[str, str]]:
    """Recycled leads, each enrolled and sent the first step: the rows events refer to."""
    now = datetime.now(UTC).replace(microsecond=0)
    sent = now - timedelta(days=3)
    lead_rows = [
        {
            "email": f"lead{i}@company{i % 500}.example",
            "first_name": f"Lead{i}",
            "company": f"Company {i % 500}",
            "title": "Head of Operations" if i % 2 else "Analyst",
            "timezone": "Europe/Berlin",
            "attributes": {"employees": 50 + i % 1000},
            "stage": "recycled",
            "score": 0.0,
            "recycle_count": 1,
            "created_at": sent - timedelta(days=30),
            "updated_at": sent - timedelta(days=1),
        }
        for i in range(count)
    ]
    with engine.begin() as connection:
        connection.execute(insert(Lead), lead_rows)
        ids = dict(connection.execute(select(Lead.email, Lead.id)).all())  # type: ignore[arg-type]
        lead_ids = [ids[row["email"]] for row in lead_rows]
        connection.execute(
            insert(RecycleRecord),
            [
                {
                    "lead_id": lead_id,
                    "from_stage": "sql",
                    "reason": "no_budget",
                    "at": sent - timedelta(days=1),
                    "recycle_count": 1,
                    "campaign_id": CAMPAIGN,
                    "outcome": "enrolled",
                }
                for lead_id in lead_ids
            ],
        )
        connection.execute(
            insert(Enrollment),
            [
                {
                    "lead_id": lead_id,
                    "campaign_id": CAMPAIGN,
                    "status": "active",
                    "track": "cold",
                    "current_step": "guide",
                    "step_index": 1,
                    "next_due_at": now + timedelta(days=4),
                    "enrolled_at": sent - timedelta(days=1),
                    "updated_at": sent,
                }
                for lead_id in lead_ids
            ],
        )
        enrollments = dict(
            connection.execute(select(Enrollment.lead_id, Enrollment.id)).all()  # type: ignore[arg-type]
        )
        messages = [
            {
                "uid": uuid.uuid4().hex,
                "enrollment_id": enrollments[lead_id],
                "lead_id": lead_id,
                "campaign_id": CAMPAIGN,
                "step_id": "checkin",
                "track": "cold",
                "provider": "sendgrid",
                "provider_message_id": None,
                "status": "sent",
                "attempts": 1,
                "created_at": sent,
                "sent_at": sent,
            }
            for lead_id in lead_ids
        ]
        for message in messages:
            message["provider_message_id"] = message["uid"][:22]
        connection.execute(insert(Message), messages)
    return [(m["uid"], row["email"]) for m, row in zip(messages, lead_rows, strict=True)]
