"""Every POST endpoint of `drip serve` under arbitrary input (issue 12, finding 10): no 5xx, no
traceback, and nothing stored from a refused request. A real server, SQLite and PostgreSQL.

The endpoints are read from the app's own routes, so a new one is covered without editing this
file. Bodies are arbitrary bytes, arbitrary JSON, and JSON shaped like what each endpoint takes
with hostile values (NUL and control characters, over-long text, huge and deep numbers, wrong
types); the SendGrid webhook's are signed with the site's key half of the time so that they get
past the signature to the parser.
"""

from __future__ import annotations

import json
import os
import re
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select
from sqlalchemy.engine import Engine
from sqlmodel import SQLModel

from dripengine.config import load_settings
from dripengine.storage.engine import make_engine
from dripengine.testing.sendgrid_webhook import Signer
from dripengine.testing.serve_process import ServeProcess
from dripengine.tokens import sign
from tests.conftest import PG_ENV, cloned_database
from tests.served import init_folder

pytestmark = pytest.mark.slow  # hypothesis against a `drip serve` subprocess

TOKEN = "api-token-for-hostile-tests-0123456789"
INBOUND_SECRET = "inbound-secret-for-tests-0123456789"
NOW = "2026-11-23T10:00:00+00:00"
NOW_STAMP = str(int(datetime.fromisoformat(NOW).timestamp()))  # the server's clock (--now)
LEAD = "jane@acme.example"  # recycled when the server starts: events match a lead and score
TRACEBACK = re.compile(rb"Traceback \(most recent call last\)|File \"/")


@dataclass
class Site:
    server: ServeProcess
    engine: Engine
    signer: Signer
    posts: list[str]  # every POST route's path, parameters filled in


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def site(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    _pg_template: str | None,
) -> Iterator[Site]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DRIP_", "SENDGRID_"))}
    with ExitStack() as stack:
        if request.param == "postgres":
            admin_url = os.environ.get(PG_ENV)
            if not admin_url or _pg_template is None:
                pytest.skip(f"PostgreSQL tests need {PG_ENV}")
            url = cloned_database(admin_url, _pg_template, "drip_hostile")
            env["DRIP_DATABASE_URL"] = stack.enter_context(url)
        folder: Path = tmp_path_factory.mktemp(f"hostile-{request.param}") / "site"
        init_folder(folder, env)
        signer = Signer.generate()
        env.update(
            DRIP_SENDGRID_WEBHOOK_PUBLIC_KEY=signer.public_key,
            DRIP_API_TOKEN=TOKEN,
            DRIP_WEBHOOKS_INBOUND_SECRET=INBOUND_SECRET,
        )
        engine = make_engine(load_settings(folder / "drip.toml", env=env).database_url)
        stack.callback(engine.dispose)
        server = stack.enter_context(ServeProcess(folder, env=env, clean_env=True, now=NOW))
        lead = json.dumps({"email": LEAD, "from": "sql", "reason": "no_budget"}).encode()
        answer = server.post("/api/recycle", lead, _api_headers())
        assert answer.status == 201, answer.data
        yield Site(server, engine, signer, _post_paths(folder, env))


def _api_headers() -> dict[str, str]:
    return {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}


def _signed(site: Site, body: bytes) -> dict[str, str]:
    return {
        "Content-Type": "application/json",
        "X-Twilio-Email-Event-Webhook-Timestamp": NOW_STAMP,
        "X-Twilio-Email-Event-Webhook-Signature": site.signer.sign(body, NOW_STAMP),
    }


def _post_paths(folder: Path, env: dict[str, str]) -> list[str]:
    """Every POST route of the app as `drip serve` builds it, path parameters filled in."""
    from starlette.routing import Route

    from dripengine.clock import SystemClock
    from dripengine.funnel.sla import load_sla
    from dripengine.web import build_app
    from dripengine.web.context import WebContext

    config = load_settings(folder / "drip.toml", env=env)
    engine = make_engine(config.database_url)
    try:
        app = build_app(WebContext(config, engine, load_sla(folder / "sla.yaml"), SystemClock()))
    finally:
        engine.dispose()
    secret = config.sender.secret_key or ""
    paths = set()
    for route in app.routes:
        if isinstance(route, Route) and "POST" in (route.methods or ()):
            path = route.path.replace("{secret}", INBOUND_SECRET)
            paths.add(path.replace("{token}", sign(secret, "unsubscribe", uuid.uuid4().hex)))
    assert {"/api/recycle", "/api/events", "/webhooks/sendgrid"} <= paths
    return sorted(paths)


def _counts(engine: Engine) -> dict[str, int]:
    with engine.connect() as connection:
        return {
            table.name: connection.execute(select(func.count()).select_from(table)).scalar_one()
            for table in SQLModel.metadata.sorted_tables
            if table.name not in ("worker",)
        }


def _offset(minutes: int) -> timezone:
    return timezone(timedelta(minutes=minutes))


hostile_text = st.one_of(
    st.text(max_size=40),
    st.sampled_from(
        ["\x00", "a\x00b", "\x1b[2J", "x" * 5000, "é" * 400, "=?utf-8?q?a=0D=0A?=", ""]
    ),
)
scalar = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    hostile_text,
)
any_json = st.recursive(
    scalar,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=12), inner, max_size=5)
    ),
    max_leaves=20,
)
# ISO 8601 times over datetime's whole range, with offsets up to ±23:59 (0001-01-01T00:00+14:00
# is a valid string but no time in UTC)
any_time = st.one_of(
    st.datetimes(timezones=st.timezones() | st.integers(-1439, 1439).map(_offset)).map(
        lambda t: t.isoformat()
    ),
    st.sampled_from(
        ["9999-12-31T23:59:59-14:00", "0001-01-01T00:00:00+14:00", "9999-12-31T12:00:00Z"]
    ),
)
recycle_like = st.fixed_dictionaries(
    {
        "email": st.one_of(st.just("jane@acme.example"), hostile_text),
        "reason": st.one_of(st.just("no_budget"), hostile_text),
    },
    optional={
        "from": st.one_of(st.just("sql"), hostile_text),
        "note": hostile_text,
        "first_name": hostile_text,
        "company": hostile_text,
        "employees": scalar,
    },
)
event_like = st.fixed_dictionaries(
    {
        "email": st.one_of(hostile_text, st.just("jane@acme.example")),
        "type": st.one_of(st.sampled_from(["site_visit", "form_fill"]), hostile_text),
    },
    optional={"url": hostile_text, "id": hostile_text, "occurred_at": st.one_of(scalar, any_time)},
)
sendgrid_like = st.fixed_dictionaries(
    {
        "email": st.one_of(st.just(LEAD), hostile_text),
        "event": st.sampled_from(["delivered", "open", "click", "bounce", "spamreport", "x"]),
        "timestamp": st.one_of(
            st.integers(min_value=-(2**70), max_value=2**70),
            st.integers(min_value=0, max_value=253_402_300_799),  # 1970 … 9999-12-31T23:59:59
            st.sampled_from([253_402_300_799, 253_402_300_799.5, 1795000000]),
            hostile_text,
        ),
    },
    optional={
        "sg_event_id": hostile_text,
        "sg_message_id": hostile_text,
        "url": hostile_text,
        "reason": hostile_text,
        "drip_uid": hostile_text,
        "type": hostile_text,
    },
)
deep = st.integers(min_value=50, max_value=100_000).map(lambda n: b"[" * n + b"]" * n)
bodies = st.one_of(
    st.binary(max_size=600),
    deep,
    any_json.map(lambda v: json.dumps(v).encode()),
    st.lists(sendgrid_like, max_size=4).map(lambda v: json.dumps(v).encode()),
    recycle_like.map(lambda v: json.dumps(v).encode()),
    st.lists(event_like, max_size=3).map(lambda v: json.dumps(v).encode()),
    st.sampled_from([b"12345678901234567890" * 300, b'{"a": ' + b"9" * 5000 + b"}"]),
)
content_types = st.sampled_from(
    [
        "application/json",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=xyz",
        "text/plain",
        "",
    ]
)
timestamps = st.one_of(st.just("now"), st.text(max_size=20), st.just("9" * 5000))


@settings(
    max_examples=250,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    index=st.integers(min_value=0, max_value=50),
    body=bodies,
    content_type=content_types,
    signed=st.booleans(),
    timestamp=timestamps,
)
def test_any_post_is_answered_without_5xx_and_a_refusal_stores_nothing(
    site: Site, index: int, body: bytes, content_type: str, signed: bool, timestamp: str
) -> None:
    path = site.posts[index % len(site.posts)]
    headers = {"Authorization": f"Bearer {TOKEN}"}  # past the token to the parser
    if content_type:
        headers["Content-Type"] = content_type
    if path == "/webhooks/sendgrid":
        stamp = NOW_STAMP if timestamp == "now" else timestamp
        headers["X-Twilio-Email-Event-Webhook-Timestamp"] = stamp
        headers["X-Twilio-Email-Event-Webhook-Signature"] = (
            site.signer.sign(body, stamp) if signed else "MEUCIQ=="
        )
    before = _counts(site.engine)
    try:
        answer = site.server.post(path, body, headers, timeout=30.0)
    except Exception as exc:  # a header value urllib3 itself refuses to send
        if isinstance(exc, ValueError | UnicodeEncodeError):
            return
        raise
    data = answer.data
    assert answer.status < 500, (path, answer.status, data[:300])
    assert not TRACEBACK.search(data), (path, data[:300])
    if 400 <= answer.status < 500:
        assert _counts(site.engine) == before, (path, answer.status, data[:300])
    assert site.server.healthy()


@pytest.mark.parametrize(
    "when", ["9999-12-31T23:59:59-14:00", "0001-01-01T00:00:00+14:00", "9999-12-31T12:00:00Z"]
)
def test_an_event_time_no_datetime_can_hold_is_a_422_naming_the_field(
    site: Site, when: str
) -> None:
    """Valid ISO 8601 that is no time in UTC, or one at the end of year 9999 (scoring's day
    arithmetic overflowed): a 500 before. Now a 422 that names ``occurred_at``, nothing stored."""
    before = _counts(site.engine)
    body = json.dumps({"email": LEAD, "type": "site_visit", "occurred_at": when}).encode()
    answer = site.server.post("/api/events", body, _api_headers())
    assert answer.status == 422, answer.data
    assert json.loads(answer.data)["error"].startswith("occurred_at: "), answer.data
    assert _counts(site.engine) == before


def test_a_sendgrid_event_at_the_end_of_year_9999_is_skipped_and_the_batch_kept(
    site: Site,
) -> None:
    """A signed batch: the event with the largest timestamp a datetime holds is skipped and named
    (it was a 500, and SendGrid would have retried the whole batch for a day); the other is stored."""
    events = [
        {"email": LEAD, "event": "open", "timestamp": 253_402_300_799, "sg_event_id": "end-9999"},
        {"email": LEAD, "event": "open", "timestamp": 1795000000, "sg_event_id": uuid.uuid4().hex},
    ]
    body = json.dumps(events).encode()
    answer = site.server.post("/webhooks/sendgrid", body, _signed(site, body))
    assert answer.status == 200, answer.data
    summary = json.loads(answer.data)
    assert summary["stored"] == 1 and summary["skipped"] == 1, summary
    assert summary["skipped_events"][0]["reason"].startswith("timestamp: "), summary


def test_an_inbound_post_with_a_huge_dkim_field_is_answered_at_once(site: Site) -> None:
    """A crafted dkim field (60 KB of letters) held the event loop for half a minute: every
    request to the server waited. Now it is answered in well under a second, as a normal post."""
    path = next(p for p in site.posts if p.endswith(INBOUND_SECRET))
    fields = {
        "headers": f"From: {LEAD}\r\nSubject: Re: hi\r\n",
        "SPF": "fail",
        "dkim": "a" * 60_000,
    }
    body = "&".join(f"{name}={value}" for name, value in fields.items()).encode()
    started = time.perf_counter()
    answer = site.server.post(
        path, body, {"Content-Type": "application/x-www-form-urlencoded"}, timeout=5.0
    )
    assert answer.status == 200, answer.data
    assert time.perf_counter() - started < 1.0
    assert json.loads(answer.data)["type"] == "unverified_reply"
