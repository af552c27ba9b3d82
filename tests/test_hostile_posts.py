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
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select
from sqlalchemy.engine import Engine
from sqlmodel import SQLModel

from dripengine.config import load_settings
from dripengine.db import make_engine
from dripengine.testing.sendgrid_webhook import Signer
from dripengine.testing.serve_process import ServeProcess
from dripengine.tokens import sign
from tests.conftest import PG_ENV, cloned_database
from tests.served import init_folder

TOKEN = "api-token-for-hostile-tests-0123456789"
INBOUND_SECRET = "inbound-secret-for-tests-0123456789"
NOW = "2026-11-23T10:00:00+00:00"
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
        yield Site(server, engine, signer, _post_paths(folder, env))


def _post_paths(folder: Path, env: dict[str, str]) -> list[str]:
    """Every POST route of the app as `drip serve` builds it, path parameters filled in."""
    from starlette.routing import Route

    from dripengine.clock import SystemClock
    from dripengine.sla import load_sla
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
    optional={"url": hostile_text, "id": hostile_text, "occurred_at": scalar},
)
sendgrid_like = st.fixed_dictionaries(
    {
        "email": st.one_of(st.just("jane@acme.example"), hostile_text),
        "event": st.sampled_from(["delivered", "open", "click", "bounce", "spamreport", "x"]),
        "timestamp": st.one_of(
            st.integers(min_value=-(2**70), max_value=2**70), hostile_text, st.just(1795000000)
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
    headers = {"Authorization": f"Bearer {TOKEN}"}
    if content_type:
        headers["Content-Type"] = content_type
    if path == "/webhooks/sendgrid":
        stamp = str(int(time.time())) if timestamp == "now" else timestamp
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
