"""The SLA enforced by the daemon's job: each clock that passes alerts once (``sla_alert``), the
CRM is reminded through a signed webhook (a real receiver on loopback), and a lead with no
decision in time is renurtured with reason sla_no_decision; on both databases, with --now."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.engine import Engine

from dripengine.cli.scaffold import SKELETON
from dripengine.clock import FixedClock
from dripengine.config import Settings
from dripengine.daemon.housekeeping import run_housekeeping, run_sla
from dripengine.funnel.sla import load_sla
from dripengine.handoff.reminders import ALERT_HEADER, MAX_ATTEMPTS
from dripengine.storage.models import SLA_ALERT
from dripengine.testing.crm_receiver import CRMReceiver
from tests import rows
from tests.test_sla_breaches import DECISION_DUE, FIRST_TOUCH_DUE, drip_at, handed_back

SECRET = "crm-shared-secret-0123456789"
SLA = load_sla(SKELETON / "sla.yaml")  # 24 working hours, 10 working days, Europe/Berlin
AFTER_FIRST_TOUCH = FIRST_TOUCH_DUE + timedelta(hours=18)  # Thursday 10:30 in Berlin
AFTER_DECISION = DECISION_DUE + timedelta(days=3)  # Monday 7 December


def settings(url: str | None = None, secret: str | None = SECRET) -> Settings:
    return Settings.model_validate({"crm": {"sla_reminder_url": url, "webhook_secret": secret}})


def alerts(engine: Engine) -> list[dict[str, Any]]:
    with engine.connect() as connection:
        found = connection.execute(select(SLA_ALERT).order_by(SLA_ALERT.c.id))
        return [dict(row._mapping) for row in found]


def test_each_clock_that_passes_alerts_once(engine: Engine) -> None:
    handed_back(engine, "jane@acme.example")
    assert run_sla(engine, settings(), FixedClock(FIRST_TOUCH_DUE), SLA, []).lines() == []
    clock = FixedClock(AFTER_FIRST_TOUCH)
    done = run_housekeeping(engine, settings(), clock, SLA, [])
    assert done.lines() == [
        "SLA: jane@acme.example: first touch overdue since 2026-11-25 16:30 Europe/Berlin"
    ]
    assert run_sla(engine, settings(), clock, SLA, []).lines() == [], "once per clock"
    [alert] = alerts(engine)
    assert (alert["clock"], alert["status"], alert["due_at"]) == (
        "first_touch",
        "unconfigured",
        FIRST_TOUCH_DUE,
    )
    assert alert["next_attempt_at"] is None and alert["action"] is None
    later = run_sla(engine, settings(), FixedClock(AFTER_DECISION), SLA, [])
    assert [a.clock for a in later.swept.alerted] == ["decision"]
    assert [a["clock"] for a in alerts(engine)] == ["first_touch", "decision"]
    assert later.swept.alerted[0].action is None, "on_no_decision: none leaves it with sales"
    with engine.connect() as connection:
        stage = connection.execute(select(rows.LEAD.c.stage)).scalar_one()
    assert stage == "mql"


def test_a_touch_before_the_due_time_means_no_alert(engine: Engine) -> None:
    from tests.test_sla_breaches import touch

    lead_id = handed_back(engine, "jane@acme.example")
    touch(engine, lead_id, FIRST_TOUCH_DUE - timedelta(hours=1))
    assert run_sla(engine, settings(), FixedClock(AFTER_FIRST_TOUCH), SLA, []).lines() == []
    assert alerts(engine) == []


def test_reminders_are_signed_retried_and_delivered_once(engine: Engine) -> None:
    handed_back(engine, "jane@acme.example")
    with engine.connect() as connection:
        handoff_uid = connection.execute(select(rows.HANDOFF.c.uid)).scalar_one()
    clock = FixedClock(AFTER_FIRST_TOUCH)
    with CRMReceiver(SECRET, path="/drip/sla") as crm:
        crm.answers.append(500)
        first = run_sla(engine, settings(crm.url), clock, SLA, [])
        assert first.swept.lines() == [
            "SLA: jane@acme.example: first touch overdue since 2026-11-25 16:30 Europe/Berlin; "
            "reminder queued for the CRM"
        ]
        assert (first.reminders.delivered, first.reminders.failed) == (0, 1)
        [alert] = alerts(engine)
        assert alert["status"] == "pending" and "HTTP 500" in str(alert["last_error"])
        assert run_sla(engine, settings(crm.url), clock, SLA, []).reminders.failed == 0, (
            "not tried again before its backoff"
        )
        clock.advance(timedelta(hours=2))
        again = run_sla(engine, settings(crm.url), clock, SLA, [])
        assert again.reminders.delivered == 1 and again.lines() == [
            "SLA reminders to the CRM: 1 delivered, 0 failed"
        ]
        clock.advance(timedelta(hours=2))
        assert run_sla(engine, settings(crm.url), clock, SLA, []).reminders.delivered == 0
    assert [r.status for r in crm.requests] == [500, 200]
    [body] = crm.accepted
    [alert] = alerts(engine)
    assert body["event"] == "sla.overdue" and body["clock"] == "first_touch"
    assert body["alert_id"] == alert["uid"] and body["handoff_id"] == handoff_uid
    assert datetime.fromisoformat(body["due_at"]) == FIRST_TOUCH_DUE
    assert body["lead"]["email"] == "jane@acme.example" and body["action"] is None
    assert crm.requests[1].headers[ALERT_HEADER] == alert["uid"]
    assert (alert["status"], alert["attempts"]) == ("delivered", 2)
    assert alert["delivered_at"] == AFTER_FIRST_TOUCH + timedelta(hours=2)


def test_a_reminder_the_crm_never_takes_fails_after_the_last_attempt(engine: Engine) -> None:
    handed_back(engine, "jane@acme.example")
    clock = FixedClock(AFTER_FIRST_TOUCH)
    with CRMReceiver("the-crm-has-another-secret") as crm:
        for _ in range(MAX_ATTEMPTS + 2):
            run_sla(engine, settings(crm.url), clock, SLA, [])
            clock.advance(timedelta(hours=3))
    assert len(crm.requests) == MAX_ATTEMPTS and not crm.accepted
    [alert] = alerts(engine)
    assert (alert["status"], alert["attempts"]) == ("failed", MAX_ATTEMPTS)
    assert "HTTP 401" in str(alert["last_error"]) and alert["next_attempt_at"] is None


def test_a_url_without_a_secret_is_said(engine: Engine) -> None:
    handed_back(engine, "jane@acme.example")
    done = run_sla(
        engine, settings("http://127.0.0.1:9/x", None), FixedClock(AFTER_FIRST_TOUCH), SLA, []
    )
    assert done.lines()[-1].startswith("SLA reminders not sent: crm.webhook_secret is not set")
    assert alerts(engine)[0]["status"] == "pending", "sent once a secret is set"


# --- renurture -----------------------------------------------------------------------------------


def renurture(folder: Path, *, campaign_takes_it: bool = True) -> None:
    sla = folder / "sla.yaml"
    sla.write_text(
        sla.read_text(encoding="utf-8").replace(
            "on_no_decision: none", "on_no_decision: renurture"
        ),
        encoding="utf-8",
    )
    # the shipped rejected-MQL campaign takes the SLA's reason; without it no campaign does
    campaign = folder / "campaigns" / "rejected-mql-nurture.yaml"
    text = campaign.read_text(encoding="utf-8")
    assert ", sla_no_decision]" in text
    if not campaign_takes_it:
        campaign.write_text(text.replace(", sla_no_decision]", "]"), encoding="utf-8")


def recycles(engine: Engine) -> list[tuple[Any, ...]]:
    with engine.connect() as connection:
        return [
            tuple(row)
            for row in connection.execute(
                select(
                    rows.RECYCLE.c.reason,
                    rows.RECYCLE.c.from_stage,
                    rows.RECYCLE.c.actor,
                    rows.RECYCLE.c.outcome,
                    rows.RECYCLE.c.campaign_id,
                )
            )
        ]


def test_no_decision_renurtures_the_lead(folder: Path, folder_engine: Engine) -> None:
    renurture(folder)
    code, out, err = drip_at(AFTER_DECISION.isoformat(), "campaigns", "validate")
    assert code == 0, out + err
    handed_back(folder_engine, "jane@acme.example")
    code, out, err = drip_at(AFTER_DECISION.isoformat(), "run", "--once")
    assert code == 0, err
    assert "SLA: jane@acme.example: first touch overdue since 2026-11-25 16:30 Europe/Berlin" in out
    assert (
        "SLA: jane@acme.example: decision overdue since 2026-12-04 16:30 Europe/Berlin; renurtured: "
        'jane@acme.example recycled from MQL (sla_no_decision) into "Rejected MQL nurture"'
    ) in out
    assert recycles(folder_engine) == [
        ("sla_no_decision", "mql", "dripengine-sla", "enrolled", "rejected-mql-nurture")
    ]
    with folder_engine.connect() as connection:
        stage = connection.execute(select(rows.LEAD.c.stage)).scalar_one()
        enrolled = connection.execute(select(rows.ENROLLMENT.c.campaign_id)).scalars().all()
    assert stage == "recycled" and enrolled == ["rejected-mql-nurture"]
    assert [(a["clock"], a["action"]) for a in alerts(folder_engine)] == [
        ("first_touch", None),
        ("decision", "renurtured"),
    ]
    code, out, _ = drip_at((AFTER_DECISION + timedelta(hours=1)).isoformat(), "run", "--once")
    assert "SLA:" not in out and len(recycles(folder_engine)) == 1, "once"
    # the hand-back is over: nothing open, and --all says the recycle stopped its clocks
    code, out, _ = drip_at(AFTER_DECISION.isoformat(), "sla", "breaches", "--format", "json")
    assert json.loads(out) == []
    code, out, _ = drip_at(
        AFTER_DECISION.isoformat(), "sla", "breaches", "--all", "--format", "json"
    )
    assert {(b["clock"], b["stopped_by"]) for b in json.loads(out)} == {
        ("first_touch", "recycle"),
        ("decision", "recycle"),
    }


def test_no_campaign_for_the_reason_is_said(folder: Path, folder_engine: Engine) -> None:
    renurture(folder, campaign_takes_it=False)
    handed_back(folder_engine, "jane@acme.example")
    code, out, err = drip_at(AFTER_DECISION.isoformat(), "run", "--once")
    assert code == 0, err
    assert (
        "unmatched: jane@acme.example recycled from MQL (sla_no_decision); not enrolled: "
        'no campaign takes stage "mql" with reason "sla_no_decision"'
    ) in out
    assert [a["action"] for a in alerts(folder_engine)] == [None, "unmatched"]


def test_a_suppressed_lead_is_never_renurtured(folder: Path, folder_engine: Engine) -> None:
    renurture(folder)
    handed_back(folder_engine, "jane@acme.example")
    assert drip_at(AFTER_DECISION.isoformat(), "suppress", "add", "jane@acme.example")[0] == 0
    code, out, err = drip_at(AFTER_DECISION.isoformat(), "run", "--once")
    assert code == 0, err
    assert "not renurtured: the address is suppressed (manual)" in out
    assert recycles(folder_engine) == []
    assert [a["action"] for a in alerts(folder_engine)] == [None, "suppressed"]


def test_sales_cannot_give_the_sla_reason(folder: Path, folder_engine: Engine) -> None:
    renurture(folder)
    handed_back(folder_engine, "jane@acme.example")
    code, _, err = drip_at(
        AFTER_DECISION.isoformat(), "recycle", "jane@acme.example", "--reason", "sla_no_decision"
    )
    assert code == 1 and "not a recycle reason in the SLA" in err


@pytest.mark.parametrize("db_url", ["postgres"], indirect=True)
def test_two_workers_alert_and_renurture_once(folder: Path, db_url: str) -> None:
    import threading

    from dripengine.campaigns.loader import load_campaigns
    from dripengine.storage.engine import make_engine

    renurture(folder)
    sla = load_sla(folder / "sla.yaml")
    campaigns = load_campaigns(folder / "campaigns", known_reasons=sla.known_reasons)
    engine = make_engine(db_url)
    for n in range(20):
        handed_back(engine, f"lead{n}@acme.example")
    barrier = threading.Barrier(2)
    done: list[int] = []

    def work() -> None:
        own = make_engine(db_url)
        barrier.wait()
        try:
            swept = run_sla(own, settings(), FixedClock(AFTER_DECISION), sla, campaigns)
            done.append(len(swept.swept.alerted))
        finally:
            own.dispose()

    threads = [threading.Thread(target=work) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(done) == 40, "20 leads, two clocks each, alerted by one worker or the other"
    assert len(alerts(engine)) == 40 and len(recycles(engine)) == 20
    engine.dispose()
