"""`drip feedback` and `POST /api/feedback` as a user and a CRM use them: a `drip init` folder whose
leads were recycled and requalified through the ingest path; the CLI in-process, `drip serve` as
a subprocess on a loopback port (real HTTP); SQLite and PostgreSQL."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from dripengine.config import load_settings
from dripengine.storage.engine import make_engine
from dripengine.storage.models import Enrollment, Feedback, Lead
from tests.clirun import drip
from tests.conftest import PG_ENV
from tests.test_feedback import LATER, handed_back
from tests.waiting import wait_for

TOKEN = "feedback-api-token-0123456789"


@pytest.fixture
def site_engine(folder: Path) -> Iterator[Engine]:
    engine = make_engine(load_settings(str(folder / "drip.toml")).database_url)
    yield engine
    engine.dispose()


def _leads(engine: Engine) -> dict[str, str]:
    with Session(engine) as session:
        return {lead.email: lead.stage for lead in session.exec(select(Lead))}


def _feedback(engine: Engine) -> list[tuple[str, str, str | None, str | None]]:
    with Session(engine) as session:
        rows = session.exec(select(Feedback).order_by(Feedback.id))
        return [(f.outcome, f.reason or "", f.actor, f.campaign_id) for f in rows]  # type: ignore[misc]


def test_drip_feedback_each_outcome_and_the_one_line_errors(
    folder: Path, site_engine: Engine, tmp_path: Path
) -> None:
    for email in ("jane@acme.example", "bob@acme.example", "ann@acme.example"):
        handed_back(site_engine, tmp_path, email)
    code, out, err = drip("feedback", "jane@acme.example", "--accepted", "--actor", "sam")
    assert (code, err) == (0, "")
    assert out == "jane@acme.example: accepted recorded; MQL -> SAL\n"
    code, out, _ = drip("feedback", "jane@acme.example", "--won", "--format", "json")
    assert code == 0 and json.loads(out)["stage"] == "customer"
    code, out, _ = drip(
        "feedback", "bob@acme.example", "--rejected", "--reason", "no_budget", "--note", "Q3"
    )
    assert code == 0
    assert 'recycled from MQL (no_budget) into "Rejected MQL nurture"' in out
    code, _, err = drip("feedback", "ann@acme.example", "--rejected", "--reason", "budget")
    assert code == 1
    assert err == (
        'Error: "budget" is not a recycle reason in the SLA (use one of: no_budget, bad_timing, '
        "no_authority, no_need_yet, not_a_fit)\n"
    )
    code, _, err = drip("feedback", "ghost@acme.example", "--accepted")
    assert code == 1 and err.count("\n") == 1 and "no lead ghost@acme.example" in err
    code, _, err = drip(
        "recycle", "max@acme.example", "--from", "sql", "--reason", "no_budget", "--create"
    )
    assert code == 0, err
    code, _, err = drip("feedback", "max@acme.example", "--accepted")
    assert code == 1
    assert err == (
        "Error: max@acme.example was never handed back by dripengine: feedback is for requalified "
        "leads (`drip leads list --requalified` lists them)\n"
    )
    code, _, err = drip("feedback", "bob@acme.example", "--won")
    assert code == 1 and "was rejected (no_budget)" in err
    code, _, err = drip("feedback", "ann@acme.example")
    assert code == 2 and "--accepted, --rejected, --won or --lost" in err
    stages = _leads(site_engine)
    assert (
        stages["jane@acme.example"],
        stages["bob@acme.example"],
        stages["ann@acme.example"],
    ) == (
        "customer",
        "recycled",
        "mql",
    )
    assert [row[:2] for row in _feedback(site_engine)] == [
        ("accepted", ""),
        ("won", ""),
        ("rejected", "no_budget"),
    ]


# --- over HTTP --------------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class Server:
    def __init__(self, folder: Path, env: dict[str, str]) -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = folder / "serve.log"
        command = [sys.executable, "-m", "dripengine", "--now", LATER.isoformat(), "serve"]
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(
                [*command, "--port", str(self.port)],
                cwd=folder,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        process = self.process

        def healthy() -> bool:
            assert process.poll() is None, self.log.read_text()
            try:
                with urllib.request.urlopen(self.url + "/healthz", timeout=2) as response:
                    return bool(response.status == 200)
            except OSError:
                return False

        try:
            wait_for(healthy, timeout=30, what="drip serve to answer /healthz")
        except AssertionError:
            self.stop()
            raise

    def post(self, body: Any, token: str | None = TOKEN) -> tuple[int, dict[str, Any], Any]:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        headers = {"Content-Type": "application/json"}
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        request = urllib.request.Request(
            self.url + "/api/feedback", data=data, headers=headers, method="POST"
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, json.loads(response.read()), response.headers
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read()), error.headers

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DRIP_") or k == PG_ENV}
    if "DRIP_DATABASE_URL" in os.environ:  # the folder fixture's PostgreSQL database
        env["DRIP_DATABASE_URL"] = os.environ["DRIP_DATABASE_URL"]
    return {**env, **extra}


@pytest.fixture
def server(folder: Path, site_engine: Engine, tmp_path: Path) -> Iterator[Server]:
    for email in ("jane@acme.example", "bob@acme.example"):
        handed_back(site_engine, tmp_path, email)
    running = Server(folder, _env(DRIP_API_TOKEN=TOKEN))
    yield running
    running.stop()


@pytest.mark.slow  # a `drip serve` subprocess
def test_post_api_feedback_records_and_recycles(server: Server, site_engine: Engine) -> None:
    status, body, _ = server.post({"email": "jane@acme.example", "outcome": "accepted"})
    assert (status, body["stage"], body["noop"]) == (201, "sal", False)
    status, body, _ = server.post({"email": "jane@acme.example", "outcome": "accepted"})
    assert (status, body["noop"]) == (200, True)
    status, body, _ = server.post(
        {
            "email": "bob@acme.example",
            "outcome": "rejected",
            "reason": "no_authority",
            "note": "talk to the CFO",
            "actor": "crm",
        }
    )
    assert status == 201, body
    assert body["recycle"]["campaign_id"] == "rejected-mql-nurture"
    assert body["recycle"]["outcome"] == "enrolled"
    with Session(site_engine) as session:
        active = session.exec(select(Enrollment).where(Enrollment.status == "active")).all()
        assert [e.campaign_id for e in active] == ["rejected-mql-nurture"]
    assert _feedback(site_engine) == [
        ("accepted", "", "api", "lost-sql-winback"),
        ("rejected", "no_authority", "crm", "lost-sql-winback"),
    ]


@pytest.mark.slow  # a `drip serve` subprocess
def test_post_api_feedback_refusals(server: Server, site_engine: Engine) -> None:
    status, body, headers = server.post({"email": "jane@acme.example", "outcome": "won"}, None)
    assert status == 401 and headers["WWW-Authenticate"] == "Bearer"
    status, _, _ = server.post({"email": "jane@acme.example", "outcome": "won"}, TOKEN + "x")
    assert status == 401
    status, body, _ = server.post({"email": "nobody@acme.example", "outcome": "accepted"})
    assert (status, body["error"]) == (
        404,
        "no lead nobody@acme.example (`drip leads list` shows them)",
    )
    status, body, _ = server.post(
        {"email": "jane@acme.example", "outcome": "rejected", "reason": "meh"}
    )
    assert status == 422 and "use one of: no_budget, bad_timing" in body["error"]
    status, body, _ = server.post({"email": "jane@acme.example", "outcome": "maybe"})
    assert status == 422 and '"maybe" is not a feedback outcome' in body["error"]
    status, body, _ = server.post({"email": "jane@acme.example", "outcome": "lost"})
    assert status == 409 and "was not accepted" in body["error"]
    status, body, _ = server.post({"email": "jane@acme.example"})
    assert status == 422 and body["error"].startswith("outcome: Field required")
    status, body, _ = server.post(b"[1, 2")
    assert status == 400 and body["error"].startswith("the body is not JSON")
    status, body, _ = server.post([{"email": "jane@acme.example", "outcome": "won"}])
    assert status == 400
    assert _feedback(site_engine) == []
    assert _leads(site_engine)["jane@acme.example"] == "mql"


@pytest.mark.slow  # a `drip serve` subprocess
def test_without_a_configured_token_the_api_is_closed(
    folder: Path, site_engine: Engine, tmp_path: Path
) -> None:
    handed_back(site_engine, tmp_path, "jane@acme.example")
    running = Server(folder, _env())
    try:
        status, body, _ = running.post({"email": "jane@acme.example", "outcome": "won"}, "x" * 20)
    finally:
        running.stop()
    assert status == 503 and "set DRIP_API_TOKEN" in body["error"]
    assert _feedback(site_engine) == []
