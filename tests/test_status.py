"""`drip status` on SQLite and PostgreSQL, against rows the tests write themselves."""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import insert
from sqlalchemy.engine import Engine

from dripengine.reports.status import read_status
from dripengine.storage.status import ENROLLMENT, LEAD, MESSAGE, WORKER
from tests.clirun import NOW, drip

T = datetime.fromisoformat(NOW)  # Monday 23 November 2026, 10:00 UTC


def _lead(i: int) -> dict[str, Any]:
    return {
        "email": f"lead{i}@acme.example",
        "attributes": {},
        "stage": "recycled",
        "score": 0.0,
        "recycle_count": 1,
        "created_at": T - timedelta(days=3),
        "updated_at": T - timedelta(days=3),
    }


def _enrollment(lead_id: int, status: str, due: datetime | None) -> dict[str, Any]:
    return {
        "lead_id": lead_id,
        "campaign_id": "lost-sql-winback",
        "campaign_version": 1,
        "status": status,
        "track": "cold",
        "current_step": "checkin",
        "step_index": 0,
        "round": 1,
        "next_due_at": due,
        "enrolled_at": T - timedelta(days=3),
        "updated_at": T - timedelta(days=3),
    }


def _message(
    lead_id: int,
    step: str,
    status: str,
    created: datetime,
    *,
    sent: datetime | None = None,
    error: str | None = None,
    provider: str | None = "outbox",
) -> dict[str, Any]:
    return {
        "uid": uuid.uuid4().hex,
        "enrollment_id": None,
        "lead_id": lead_id,
        "campaign_id": "lost-sql-winback",
        "round": 1,
        "step_id": step,
        "status": status,
        "error": error,
        "provider": provider,
        "attempts": 1,
        "created_at": created,
        "sent_at": sent,
    }


def _worker(
    wid: str,
    heartbeat: datetime,
    *,
    stopped: datetime | None = None,
    sent: int = 0,
    kind: str = "run",
) -> dict[str, Any]:
    return {
        "id": wid,
        "kind": kind,
        "host": "box",
        "pid": 100,
        "provider": "outbox" if kind == "run" else None,
        "started_at": heartbeat - timedelta(minutes=10),
        "heartbeat_at": heartbeat,
        "stopped_at": stopped,
        "sent": sent,
        "failed": 1 if sent else 0,
    }


def populate(engine: Engine, now: datetime) -> None:
    """A day of sending, with every figure `drip status` shows at a different, known value."""
    minute, hour = timedelta(minutes=1), timedelta(hours=1)
    with engine.begin() as connection:
        connection.execute(insert(LEAD), [_lead(i) for i in range(12)])
        connection.execute(
            insert(ENROLLMENT),
            [
                _enrollment(1, "active", now - hour),  # due now
                _enrollment(2, "active", now),  # due now: next_due_at <= now
                _enrollment(3, "active", now - timedelta(days=2)),  # due now
                _enrollment(4, "active", now + hour),  # later, within 24 h
                _enrollment(5, "active", now + timedelta(hours=24)),  # the edge: within
                _enrollment(6, "active", now + timedelta(hours=25)),  # later than 24 h
                _enrollment(7, "completed", None),
                _enrollment(8, "exited", now - hour),  # not active: never due
            ],
        )
        steps = iter(f"s{i}" for i in range(100))

        def message(lead: int, status: str, created: datetime, **kw: Any) -> dict[str, Any]:
            return _message(lead, next(steps), status, created, **kw)

        connection.execute(
            insert(MESSAGE),
            [
                message(1, "sending", now - minute),
                message(2, "sending", now - minute),
                message(3, "retry", now - hour, error="503 from provider"),
                message(4, "unknown", now - hour, provider="sendgrid"),
                # failed in the last 24 h: 3 reasons, counted 3, 2, 1, plus a fourth reason
                *(message(5, "failed", now - hour, error="template error: x") for _ in range(3)),
                *(message(6, "failed", now - 2 * hour, error="550 mailbox unknown") for _ in "ab"),
                message(7, "failed", now - 3 * hour, error="gave up after 5 attempts: 503"),
                message(7, "failed", now - timedelta(hours=25), error="too old: not counted"),
                message(8, "failed", now + hour, error="after now: not counted"),
                # sent: 2 in the last 5 minutes by sendgrid, 1 more in the hour by outbox …
                message(9, "sent", now - minute, sent=now - minute, provider="sendgrid"),
                message(9, "sent", now - 4 * minute, sent=now, provider="sendgrid"),
                message(9, "sent", now - 30 * minute, sent=now - 30 * minute),
                # … 2 more within 24 h, one older than 24 h, one sent "after" now
                message(10, "sent", now - 3 * hour, sent=now - 3 * hour),
                message(10, "sent", now - 23 * hour, sent=now - 23 * hour, provider="sendgrid"),
                message(10, "sent", now - 30 * hour, sent=now - 30 * hour),
                message(11, "sent", now, sent=now + minute),
                message(11, "skipped", now - minute, provider=None),
            ],
        )
        connection.execute(
            insert(WORKER),
            [
                _worker("box:1:alive", now - timedelta(seconds=10), sent=40),
                _worker("box:2:edge", now - timedelta(seconds=45)),  # just alive
                _worker("box:3:dead", now - timedelta(seconds=46), sent=7),
                _worker("box:4:stopped", now - hour, stopped=now - hour, sent=3),
                _worker("box:5:old", now - timedelta(days=3), stopped=now - timedelta(days=3)),
                # `drip serve` processes: counted apart from the workers
                _worker("web:1:serve", now - timedelta(seconds=5), kind="serve"),
                _worker("web:2:serve", now - timedelta(seconds=20), kind="serve"),
                _worker("web:3:serve", now - timedelta(minutes=5), kind="serve"),
                _worker("web:4:serve", now - hour, stopped=now - hour, kind="serve"),
            ],
        )


def test_every_figure_is_counted_at_now(engine: Engine) -> None:
    populate(engine, T)
    status = read_status(engine, T)
    assert (status.due_now, status.scheduled_24h) == (3, 2)
    assert (status.in_flight, status.retrying, status.unknown) == (2, 1, 1)
    assert status.failed_24h == 6
    assert [(r.reason, r.count) for r in status.failed_reasons] == [
        ("template error: x", 3),
        ("550 mailbox unknown", 2),
        ("gave up after 5 attempts: 503", 1),
    ]
    assert (status.sent_1h, status.sent_24h) == (3, 5)
    rates = {p.provider: (p.sent_5m, p.rate_per_second, p.sent_24h) for p in status.providers}
    assert rates == {"outbox": (0, 0.0, 2), "sendgrid": (2, round(2 / 300, 4), 3)}
    states = {w.id: (w.state, w.sent) for w in status.workers}
    assert states == {
        "box:1:alive": ("alive", 40),
        "box:2:edge": ("alive", 0),
        "box:3:dead": ("dead", 7),
        "box:4:stopped": ("stopped", 3),  # a worker stopped 3 days ago is counted, not listed
    }
    assert [w.state for w in status.workers] == ["alive", "alive", "dead", "stopped"]
    assert (status.workers_alive, status.workers_dead, status.workers_stopped) == (2, 1, 2)
    assert (status.serve_alive, status.serve_dead, status.serve_stopped) == (2, 1, 1)
    assert [(p.id, p.state, p.provider) for p in status.serve_processes] == [
        ("web:1:serve", "alive", None),
        ("web:2:serve", "alive", None),
        ("web:3:serve", "dead", None),
        ("web:4:serve", "stopped", None),
    ]
    assert any("1 worker(s) stopped beating" in hint for hint in status.hints)
    assert any("1 drip serve process(es) stopped beating" in hint for hint in status.hints)
    assert any("1 message(s) interrupted" in hint for hint in status.hints)


def test_an_earlier_now_sees_the_database_as_it_was(engine: Engine) -> None:
    populate(engine, T)
    earlier = read_status(engine, T - timedelta(hours=2))
    assert earlier.due_now == 1  # only the one due two days before T
    assert (earlier.sent_1h, earlier.sent_24h) == (0, 2)  # 3 h and 23 h before T
    assert earlier.failed_24h == 4  # 2 h (the edge: counted), 3 h and 25 h before T
    assert {w.id: w.state for w in earlier.workers}["box:3:dead"] == "alive"


def test_an_empty_database_is_zeros_and_a_hint(engine: Engine) -> None:
    status = read_status(engine, T)
    assert status.empty
    assert (status.due_now, status.in_flight, status.sent_24h, status.workers) == (0, 0, 0, [])
    assert status.providers == [] and status.failed_reasons == []
    assert len(status.hints) == 1 and "drip run" in status.hints[0]


def test_drip_status_json_uses_the_now_option(folder_engine: Engine) -> None:
    populate(folder_engine, T)
    code, out, err = drip("status", "--format", "json")
    assert code == 0, err
    data = json.loads(out)
    assert data["now"] == T.isoformat()
    assert {k: data[k] for k in ("due_now", "scheduled_24h", "in_flight", "retrying")} == {
        "due_now": 3,
        "scheduled_24h": 2,
        "in_flight": 2,
        "retrying": 1,
    }
    assert (data["failed_24h"], data["unknown"], data["sent_1h"], data["sent_24h"]) == (6, 1, 3, 5)
    assert data["failed_reasons"][0] == {"reason": "template error: x", "count": 3}
    assert {p["provider"]: p["rate_per_second"] for p in data["providers"]} == {
        "outbox": 0.0,
        "sendgrid": round(2 / 300, 4),
    }
    [alive, *_] = data["workers"]
    assert (alive["id"], alive["state"], alive["sent"], alive["failed"]) == (
        "box:1:alive",
        "alive",
        40,
        1,
    )
    assert alive["heartbeat_at"] == (T - timedelta(seconds=10)).isoformat()
    assert (data["serve_alive"], data["serve_dead"], data["serve_stopped"]) == (2, 1, 1)
    assert [p["id"] for p in data["serve_processes"]][:2] == ["web:1:serve", "web:2:serve"]
    assert {p["provider"] for p in data["serve_processes"]} == {None}


def test_drip_status_table(folder_engine: Engine) -> None:
    populate(folder_engine, T)
    code, out, err = drip("status")
    assert code == 0, err
    assert "drip status at 2026-11-23 10:00:00 UTC" in out
    lines = {line.split("  ")[0]: line for line in out.splitlines()}
    assert lines["due now"].split()[2] == "3"
    assert "template error: x" in out and "550 mailbox unknown" in out
    assert "sendgrid" in out and "0.0067" in out
    assert "workers: 2 alive, 1 dead, 2 stopped" in out
    assert "box:3:dead" in out and "box:5:old" not in out
    assert "serve processes: 2 alive, 1 dead, 1 stopped" in out
    assert "web:3:serve" in out


def test_drip_status_on_a_fresh_folder(folder: Path) -> None:
    code, out, err = drip("status")
    assert code == 0, err
    assert "due now" in out and "hint: nothing yet" in out
    code, out, _ = drip("status", "--format", "json")
    data = json.loads(out)
    assert (data["due_now"], data["sent_24h"], data["workers"]) == (0, 0, [])
    assert (data["serve_alive"], data["serve_processes"]) == (0, [])


def test_drip_status_needs_a_migrated_database(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("DRIP_CONFIG", raising=False)
    monkeypatch.setenv("DRIP_DATABASE_URL", f"sqlite:///{tmp_path / 'none.db'}")
    code, _out, err = drip("status")
    assert code == 1 and "drip db upgrade" in err
