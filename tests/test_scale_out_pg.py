"""Two `drip serve` and two `drip run` processes on one PostgreSQL database give what one gives.

Real processes, as an operator runs them in a `drip init` folder: both workers send the due
emails (outbox provider: the ``.eml`` files are the provider's side of what was sent), while
SendGrid's signed event batches arrive, each posted twice at once to the two servers, and the
pixel and link of every email sent are hit on both servers. Then every count is checked exactly,
and every lead's state against the same events ingested by one process, one batch after another,
in a scratch database populated identically — in two different orders, which must agree with
each other first (``tests/scale_out.py`` says why the workload makes the order not matter).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import pytest
import urllib3
from sqlalchemy import insert, select, text
from sqlalchemy.engine import Engine

from dripengine.clock import FixedClock
from dripengine.config import Settings, load_settings
from dripengine.engagement.ingest import Engagement
from dripengine.funnel.sla import load_sla
from dripengine.providers import event_webhooks
from dripengine.providers.sendgrid.provider import UID_ARG
from dripengine.storage.engine import make_engine
from dripengine.storage.models import LEAD, MESSAGE
from dripengine.testing.run_process import RunProcess
from dripengine.testing.sendgrid_webhook import Signer
from dripengine.testing.serve_process import ServeProcess
from dripengine.vocabulary import IncomingEvent
from tests import scale_out as w
from tests.conftest import PG_ENV, cloned_database
from tests.waiting import wait_for

pytestmark = [
    pytest.mark.slow,  # four drip processes, thousands of emails, events and hits
    pytest.mark.postgres,
    pytest.mark.skipif(
        not os.environ.get(PG_ENV),
        reason=f"several drip processes on one database need PostgreSQL: set {PG_ENV} "
        "(e.g. postgresql+psycopg://postgres@127.0.0.1:5432/postgres)",
    ),
    pytest.mark.parametrize("db_url", ["postgres"], indirect=True),
]

SENDS = 1500  # due emails, sent by the two workers
HISTORIES = 750  # leads with earlier SendGrid emails and their events
BATCH = 250  # events in one SendGrid post
SEED = 20261124


class Traffic:
    """The load on the two servers, from threads of this process."""

    def __init__(self, servers: list[ServeProcess], signer: Signer) -> None:
        self.signer = signer

        # A kept-alive connection the server closes after 5 idle seconds (uvicorn's keep-alive)
        # may be reused by us at that very moment and reset: as a browser does, a hit is tried
        # again (one counted twice is a duplicate anyway); a post goes on a connection of its
        # own (its pool keeps none) and is never retried, so each is answered exactly once.
        def pools(retries: urllib3.Retry | bool) -> list[urllib3.HTTPConnectionPool]:
            return [
                urllib3.HTTPConnectionPool(
                    "127.0.0.1",
                    server.port,
                    maxsize=8,
                    block=True,
                    retries=retries,
                    timeout=urllib3.Timeout(connect=10, read=120),
                )
                for server in servers
            ]

        self.pools = pools(urllib3.Retry(total=3, redirect=0, status=0))
        self.post_pools = pools(False)
        self.webhook_threads = ThreadPoolExecutor(4, thread_name_prefix="webhook")
        self.hit_threads = ThreadPoolExecutor(8, thread_name_prefix="hit")
        self.posts: list[Future[tuple[int, dict[str, Any]]]] = []
        self.hits: list[tuple[w.Hit, Future[str | None]]] = []
        self.answered: list[float] = []  # when each post was answered (time.monotonic)

    def post_twice(self, bodies: list[bytes]) -> None:
        """Each batch to both servers at once (SendGrid's retry racing its first delivery)."""
        stamp = int(w.SERVE_NOW.timestamp())  # SendGrid signs with its clock; the servers' is this
        for n, body in enumerate(bodies):
            headers = self.signer.headers(body, timestamp=stamp)
            for server in (n % 2, (n + 1) % 2):
                self.posts.append(self.webhook_threads.submit(self._post, server, body, headers))

    def _post(
        self, server: int, body: bytes, headers: dict[str, str]
    ) -> tuple[int, dict[str, Any]]:
        answer = self.post_pools[server].request(
            "POST", "/webhooks/sendgrid", body=body, headers={**headers, "Connection": "close"}
        )
        self.answered.append(time.monotonic())
        return answer.status, json.loads(answer.data) if answer.data else {}

    def hit(self, hits: list[w.Hit]) -> None:
        for hit in hits:
            self.hits.append((hit, self.hit_threads.submit(self._get, hit)))

    def _get(self, hit: w.Hit) -> str | None:
        """What is wrong with the answer, or None."""
        answer = self.pools[hit.server].request(
            "GET", hit.path, headers={"User-Agent": hit.agent}, redirect=False
        )
        if hit.path.startswith("/o/"):
            ok = answer.status == 200 and answer.headers.get("content-type") == "image/gif"
        else:
            ok = answer.status == 302 and answer.headers.get("location", "").startswith("https://")
        return None if ok else f"{hit.path}: {answer.status} {answer.data[:200]!r}"

    def close(self) -> None:
        self.webhook_threads.shutdown(cancel_futures=True)
        self.hit_threads.shutdown(cancel_futures=True)
        for pool in (*self.pools, *self.post_pools):
            pool.close()


def follow_outbox(
    outbox: Path, expected: int, alive: Callable[[], None], traffic: Traffic
) -> list[w.Hit]:
    """Hit each email's pixel and link as soon as its file is there, until ``expected`` are."""
    seen: set[Path] = set()
    hits: list[w.Hit] = []
    while len(seen) < expected:

        def new_files() -> list[Path]:
            alive()
            return sorted(p for p in outbox.rglob("*.eml") if p not in seen)

        fresh = wait_for(new_files, timeout=120, what=f"email {len(seen) + 1} of {expected}")
        for path in fresh:
            seen.add(path)
            mine = w.hits_of(path)
            traffic.hit(mine)
            hits += mine
    return hits


def test_two_servers_and_two_workers_give_what_one_process_gives(
    folder: Path, db_url: str, _pg_template: str | None
) -> None:
    leads = w.plan(SENDS, HISTORIES)
    items = w.sendgrid_events(leads, SEED)
    bodies = w.batches(items, BATCH)
    signer = Signer.generate()
    env = {
        "DRIP_DATABASE_URL": db_url,
        "DRIP_PROVIDER": "outbox",
        "DRIP_SENDGRID_WEBHOOK_PUBLIC_KEY": signer.public_key,
        "DRIP_SENDING_TICK_SECONDS": "0.2",
        "DRIP_SENDING_BATCH_SIZE": "100",
    }
    engine = make_engine(db_url)
    try:
        w.populate(engine, leads)
        traffic, hits, timings = run_all_at_once(folder, env, signer, bodies, engine)
        check_sends(folder, engine)
        check_webhook_answers([future.result() for future in traffic.posts], items)
        problems = [p for _, future in traffic.hits if (p := future.result()) is not None]
        assert not problems, problems[:5]
        got, got_events = w.per_lead(engine), w.stored_events(engine)
        sent = sent_rows(engine)
    finally:
        engine.dispose()

    settings = load_settings(folder / "drip.toml")
    assert settings.sender.secret_key
    calls = webhook_calls(settings, bodies) + hit_calls(settings.sender.secret_key, hits)
    began = time.monotonic()
    backwards = [call[::-1] for call in calls[::-1]]
    with ThreadPoolExecutor(2) as replays:  # two databases: the waits for each overlap
        one, two = (
            replays.submit(replay, settings, _pg_template, leads, sent, order)
            for order in (calls, backwards)
        )
        (expected, expected_events), (reordered, reordered_events) = one.result(), two.result()
    timings["one process, twice"] = round(time.monotonic() - began, 1)
    # the workload does not depend on the order of ingestion: two orders, one result
    assert not list(w.differences(reordered, expected)), "the workload is order-dependent"
    assert reordered_events == expected_events

    # each event stored once, and the same events one process stores
    assert max(got_events.values()) == 1, [e for e, n in got_events.items() if n > 1][:5]
    assert got_events == expected_events, (
        sorted(got_events - expected_events, key=str)[:5],
        sorted(expected_events - got_events, key=str)[:5],
    )
    tracked = sum(n for e, n in got_events.items() if e[0] == "drip")
    assert tracked == len({h.path for h in hits})  # the pixel's and link's copies: once each
    # every lead as one process leaves it: score, score changes, stage, handoffs, suppression
    wrong = list(w.differences(got, expected))
    assert not wrong, (
        f"{len(wrong)} leads differ from one process ({w.summary(got, expected)}; {timings}):\n"
        + "\n".join(wrong[:10])
    )
    requalified = [s for s in got.values() if s.requalified]
    assert requalified and all(s.handoffs == 1 and s.stage == "mql" for s in requalified)
    assert any(s.suppressed for s in got.values())


def run_all_at_once(
    folder: Path, env: dict[str, str], signer: Signer, bodies: list[bytes], engine: Engine
) -> tuple[Traffic, list[w.Hit], dict[str, float]]:
    """Two servers, two workers, the posts and the hits, all at once; until nothing is due."""
    started = time.monotonic()
    timings: dict[str, float] = {}

    def mark(what: str) -> None:
        timings[what] = round(time.monotonic() - started, 1)

    with ExitStack() as stack:
        servers = [
            stack.enter_context(
                ServeProcess(
                    folder,
                    env=env,
                    now=w.SERVE_NOW.isoformat(),
                    log_name=f"serve-{n}.log",
                    clean_env=True,
                )
            )
            for n in (0, 1)
        ]
        workers = [
            stack.enter_context(
                RunProcess(
                    folder, env=env, now=w.T.isoformat(), log_name=f"run-{n}.log", clean_env=True
                )
            )
            for n in (0, 1)
        ]
        traffic = Traffic(servers, signer)
        stack.callback(traffic.close)
        mark("up")

        def alive() -> None:
            for process in workers:
                assert process.running(), f"drip run exited {process.returncode}: {process.log()}"

        traffic.post_twice(bodies)
        hits = follow_outbox(folder / "outbox", SENDS, alive, traffic)
        mark("all sent")
        for post in traffic.posts:
            post.result()
        timings["posts answered"] = round(max(traffic.answered) - started, 1)
        for _, hit in traffic.hits:
            hit.result()
        mark("hits answered")
        wait_for(lambda: not due_or_in_flight(engine), timeout=60, what="nothing due")
        codes = [process.stop() for process in workers]
        assert codes == [0, 0], "\n".join(process.log() for process in workers)
    # nothing went wrong that a 2xx answer hid (a tracking hit whose event could not be stored
    # still gets its pixel or redirect: only the log says so)
    for process in (*servers, *workers):
        wrong = troubles(process.log_path)
        assert not wrong, f"{process.log_path.name}:\n" + "\n".join(wrong[:10])
    mark("stopped")
    return traffic, hits, timings


def troubles(log: Path) -> list[str]:
    """The lines of a log that tell of an error."""
    lines = log.read_text(encoding="utf-8", errors="replace").splitlines()
    return [line for line in lines if " ERROR " in line or "Traceback" in line]


def due_or_in_flight(engine: Engine) -> int:
    with engine.connect() as connection:
        return int(
            connection.execute(
                text(
                    "SELECT (SELECT count(*) FROM enrollment WHERE status = 'active' "
                    "AND next_due_at <= :now) + (SELECT count(*) FROM message WHERE status "
                    "IN ('sending', 'unknown', 'retry'))"
                ),
                {"now": w.T},
            ).scalar_one()
        )


def check_sends(folder: Path, engine: Engine) -> None:
    """Every due email sent once, as the provider's side (the outbox files) shows it."""
    files = [p.stem for p in (folder / "outbox").rglob("*.eml")]
    assert len(files) == len(set(files)) == SENDS
    with engine.connect() as connection:
        rows = connection.execute(
            select(MESSAGE.c.uid, MESSAGE.c.lead_id, MESSAGE.c.status, MESSAGE.c.step_id).where(
                MESSAGE.c.created_at >= w.T
            )
        ).all()
        steps = dict(
            connection.execute(
                text("SELECT current_step, count(*) FROM enrollment GROUP BY current_step")
            ).all()
        )
    assert {r.uid for r in rows} == set(files)
    assert {(r.status, r.step_id) for r in rows} == {("sent", "whats-new")}
    assert len({r.lead_id for r in rows}) == SENDS  # one each
    assert steps.get("breakup") == SENDS + HISTORIES  # every send lead moved on to its next step


def check_webhook_answers(answers: list[tuple[int, dict[str, Any]]], items: list[Any]) -> None:
    """Every post taken; between the two copies of all batches, each event stored once."""
    assert {status for status, _ in answers} == {200}, [a for a in answers if a[0] != 200][:3]
    assert sum(a["received"] for _, a in answers) == 2 * len(items)
    assert sum(a["skipped"] for _, a in answers) == 0
    # what the dedupe key tells apart (an open again under another sg_event_id is the same open)
    unique = len({(i[UID_ARG], i["event"], i["timestamp"], i.get("url")) for i in items})
    assert unique < len(items) and sum(a["stored"] for _, a in answers) == unique
    assert sum(a["stored"] + a["duplicates"] for _, a in answers) == 2 * len(items)


def sent_rows(engine: Engine) -> list[dict[str, Any]]:
    """The messages the workers wrote, every column, to put in the one-process databases."""
    with engine.connect() as connection:
        rows = connection.execute(select(MESSAGE).where(MESSAGE.c.created_at >= w.T))
        return [dict(row._mapping) for row in rows]


def webhook_calls(settings: Settings, bodies: list[bytes]) -> list[list[IncomingEvent]]:
    """Each post's events as the server reads them (the same parser), each post twice."""
    (webhook,) = event_webhooks(settings)
    calls = []
    for body in bodies:
        parsed = webhook.parse(webhook.items(json.loads(body)))
        assert not parsed.skipped
        calls += [parsed.events, parsed.events]
    return calls


def hit_calls(secret: str, hits: list[w.Hit], size: int = 64) -> list[list[IncomingEvent]]:
    events = [w.hit_event(secret, hit) for hit in hits]
    return [events[n : n + size] for n in range(0, len(events), size)]


def replay(
    settings: Settings,
    template: str | None,
    leads: list[w.Lead],
    sent: list[dict[str, Any]],
    calls: list[list[IncomingEvent]],
) -> tuple[dict[str, w.LeadState], Any]:
    """The events through one process, one ingest after another, on a database populated as
    the test's was (with the emails the workers sent): each lead's state, the events stored."""
    admin = os.environ[PG_ENV]
    with cloned_database(admin, template, "drip_one") as url, scratch(url) as engine:
        w.populate(engine, leads)
        with engine.begin() as connection:
            connection.execute(insert(MESSAGE), sent)
            leads_here = dict(connection.execute(select(LEAD.c.id, LEAD.c.email)).all())
        assert {row["lead_id"] for row in sent} <= leads_here.keys()
        engagement = Engagement(
            engine, settings, load_sla(settings.path("sla")), FixedClock(w.SERVE_NOW)
        )
        for events in calls:
            engagement.ingest(events)
        return w.per_lead(engine), w.stored_events(engine)


@contextmanager
def scratch(url: str) -> Iterator[Engine]:
    engine = make_engine(url)
    try:
        yield engine
    finally:
        engine.dispose()
