"""`drip sla breaches`: the hand-backs whose first touch or decision is overdue, on real rows of
both databases, asked at several times with --now (the shipped sla.yaml: 24 working hours, 10
working days, Mon-Fri 09:00-17:00 Europe/Berlin)."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import insert
from sqlalchemy.engine import Engine

from dripengine.cli import main
from dripengine.storage.models import SalesTouch
from tests import rows

TOUCH = SalesTouch.__table__  # type: ignore[attr-defined]
# Friday 20 November 2026, 16:30 in Berlin: first touch due Wednesday 25th 16:30 (24 working
# hours: half an hour on Friday, Monday, Tuesday, seven and a half on Wednesday); the decision
# ten working days later, Friday 4 December 16:30 (15:30 UTC)
HANDED_BACK = datetime(2026, 11, 20, 15, 30, tzinfo=UTC)
FIRST_TOUCH_DUE = datetime(2026, 11, 25, 15, 30, tzinfo=UTC)
DECISION_DUE = datetime(2026, 12, 4, 15, 30, tzinfo=UTC)


def drip_at(now: str, *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, ["--now", now, *args])
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout, result.stderr


def handed_back(
    engine: Engine, email: str, at: datetime = HANDED_BACK, reason: str = "no_budget", **lead: Any
) -> int:
    lead_id = rows.lead(engine, email, at - timedelta(days=60), stage="mql", **lead)
    rows.handoff(engine, lead_id, at, payload={"recycle": {"reason": reason}})
    return lead_id


def touch(engine: Engine, lead_id: int, at: datetime, actor: str | None = "anna.rep") -> None:
    with engine.begin() as connection:
        connection.execute(
            insert(TOUCH).values(
                lead_id=lead_id, kind="call", at=at, actor=actor, source="api", created_at=at
            )
        )


def feedback(engine: Engine, lead_id: int, at: datetime, outcome: str, actor: str) -> None:
    rows._insert(
        engine, rows.FEEDBACK, {"lead_id": lead_id, "outcome": outcome, "actor": actor, "at": at}
    )


@pytest.fixture
def desk(folder: Path, folder_engine: Engine) -> Engine:
    """Five hand-backs on Friday 16:30, each a different story."""
    handed_back(folder_engine, "jane@acme.example", attributes={"owner": "sam.rep"})
    bob = handed_back(folder_engine, "bob@acme.example", reason="bad_timing")
    touch(folder_engine, bob, datetime(2026, 11, 23, 9, 0, tzinfo=UTC))  # Monday, in time
    carol = handed_back(folder_engine, "carol@acme.example")
    feedback(folder_engine, carol, datetime(2026, 11, 24, 9, tzinfo=UTC), "accepted", "lee.rep")
    with folder_engine.begin() as connection:
        connection.execute(rows.LEAD.update().where(rows.LEAD.c.id == carol).values(stage="sal"))
    dave = handed_back(folder_engine, "dave@acme.example")
    touch(folder_engine, dave, datetime(2026, 11, 26, 9, 30, tzinfo=UTC), "kim.rep")  # late
    # requalified twice: the first hand-back was decided in time, the second is open
    erin = rows.lead(
        folder_engine, "erin@acme.example", HANDED_BACK - timedelta(days=90), stage="mql"
    )
    first = HANDED_BACK - timedelta(days=50)
    rows.handoff(folder_engine, erin, first, payload={"recycle": {"reason": "no_need_yet"}})
    feedback(folder_engine, erin, first + timedelta(hours=2), "rejected", "lee.rep")
    rows.recycle_record(folder_engine, erin, first + timedelta(hours=2), reason="no_budget")
    rows.handoff(folder_engine, erin, HANDED_BACK, payload={"recycle": {"reason": "no_budget"}})
    return folder_engine


def test_overdue_first_touches_on_thursday(desk: Engine) -> None:
    code, out, err = drip_at("2026-11-26T10:00:00+00:00", "sla", "breaches", "--format", "json")
    assert code == 0, err
    found = json.loads(out)
    # Wednesday 16:30 to Thursday 11:00 in Berlin: half an hour and two hours of work
    assert [(b["email"], b["clock"], b["overdue_hours"]) for b in found] == [
        ("erin@acme.example", "first_touch", 2.5),
        ("jane@acme.example", "first_touch", 2.5),
    ]
    jane = found[1]
    assert {"email", "handed_back_at", "clock", "due_at", "overdue_hours"} <= set(jane)
    assert datetime.fromisoformat(jane["handed_back_at"]) == HANDED_BACK
    assert datetime.fromisoformat(jane["due_at"]) == FIRST_TOUCH_DUE
    assert jane["owner"] == "sam.rep" and jane["reason"] == "no_budget"
    assert jane["stopped_at"] is None and found[0]["owner"] == "lee.rep"  # erin: the last word


def test_all_adds_the_clocks_stopped_late(desk: Engine) -> None:
    code, out, _ = drip_at(
        "2026-11-26T10:00:00+00:00", "sla", "breaches", "--all", "--format", "csv"
    )
    assert code == 0
    table = list(csv.DictReader(io.StringIO(out)))
    dave = next(r for r in table if r["email"] == "dave@acme.example")
    # due Wednesday 16:30, touched Thursday 10:30: half an hour and an hour and a half late
    assert (dave["clock"], dave["overdue_hours"], dave["stopped_by"]) == (
        "first_touch",
        "2.0",
        "touch",
    )
    assert dave["owner"] == "kim.rep"
    assert {r["email"] for r in table} == {
        "jane@acme.example",
        "erin@acme.example",
        "dave@acme.example",
    }, "bob and carol were on time, erin's first hand-back too"


def test_before_the_due_time_nothing_is_overdue_and_the_weekend_does_not_count(
    desk: Engine,
) -> None:
    code, out, _ = drip_at("2026-11-25T15:00:00+00:00", "sla", "breaches")
    assert code == 0 and "no SLA breach open" in out
    # due 16:30 in Berlin: half an hour late at 17:00, and still at 08:30 the next morning
    for now in ("2026-11-25T16:00:00+00:00", "2026-11-26T07:30:00+00:00"):
        code, out, _ = drip_at(now, "sla", "breaches", "--format", "json")
        found = json.loads(out)
        assert [b["overdue_hours"] for b in found] == [0.5, 0.5, 0.5]
        assert {b["email"] for b in found} == {
            "jane@acme.example",
            "erin@acme.example",
            "dave@acme.example",  # touched only on Thursday
        }


def test_the_decision_clock_runs_in_working_days(desk: Engine) -> None:
    code, out, _ = drip_at("2026-12-07T09:00:00+00:00", "sla", "breaches", "--format", "json")
    assert code == 0
    decisions = {b["email"]: b for b in json.loads(out) if b["clock"] == "decision"}
    # bob was touched, not decided; dave too; carol was accepted
    assert set(decisions) == {
        "jane@acme.example",
        "bob@acme.example",
        "dave@acme.example",
        "erin@acme.example",
    }
    jane = decisions["jane@acme.example"]
    assert datetime.fromisoformat(jane["due_at"]) == DECISION_DUE
    assert jane["overdue_hours"] == 1.5  # Friday 16:30-17:00 and Monday 09:00-10:00
    code, out, _ = drip_at("2026-12-07T09:00:00+00:00", "sla", "breaches")
    assert "jane@acme.example" in out and "decision" in out and "Europe/Berlin" in out
    assert "2026-12-04 16:30" in out, "text shows the SLA's local time"


def test_a_word_from_sales_stops_both_clocks(desk: Engine) -> None:
    code, _, err = drip_at(
        "2026-11-30T09:00:00+00:00",
        "feedback",
        "jane@acme.example",
        "--accepted",
        "--actor",
        "sam.rep",
    )
    assert code == 0, err
    _, out, _ = drip_at("2026-12-07T09:00:00+00:00", "sla", "breaches", "--all", "--format", "json")
    mine = [b for b in json.loads(out) if b["email"] == "jane@acme.example"]
    # the first touch was late (due Wednesday 25th), the decision on time
    assert [(b["clock"], b["stopped_by"], b["overdue_hours"]) for b in mine] == [
        ("first_touch", "feedback", 17.5)  # Wed 16:30 to Mon 10:00 in Berlin
    ]
    # time travel: asked before the word came, the clock still ran
    _, out, _ = drip_at("2026-11-27T09:00:00+00:00", "sla", "breaches", "--format", "json")
    assert "jane@acme.example" in {b["email"] for b in json.loads(out)}


def test_hostile_owner_names_stay_text(folder: Path, folder_engine: Engine) -> None:
    handed_back(
        folder_engine, "jane@acme.example", attributes={"owner": "\x1b[2J=cmd|' /C calc'!A0\nx"}
    )
    lead = handed_back(folder_engine, "bob@acme.example")
    touch(folder_engine, lead, datetime(2026, 11, 10, tzinfo=UTC), actor="r" * 200)
    code, out, err = drip_at("2026-11-26T10:00:00+00:00", "sla", "breaches")
    assert code == 0, err
    assert "\x1b" not in out and "=cmd|" in out
    _, out, _ = drip_at("2026-11-26T10:00:00+00:00", "sla", "breaches", "--format", "csv")
    jane = next(r for r in csv.DictReader(io.StringIO(out)) if r["email"] == "jane@acme.example")
    assert jane["owner"].startswith("'"), "a formula is written as text"
    _, out, _ = drip_at("2026-11-26T10:00:00+00:00", "sla", "breaches", "--format", "json")
    owners = {b["email"]: b["owner"] for b in json.loads(out)}
    assert owners["bob@acme.example"] == "r" * 200
    assert owners["jane@acme.example"].startswith("\x1b[2J")


def test_sla_yaml_problems_are_said_at_their_line(folder: Path, folder_engine: Engine) -> None:
    text = (folder / "sla.yaml").read_text(encoding="utf-8")
    text = text.replace("timezone: Europe/Berlin", "timezone: Europe/Berln")
    text = text.replace("days: [mon, tue, wed, thu, fri]", "dayz: [mon, tue]")
    (folder / "sla.yaml").write_text(text, encoding="utf-8")
    code, _, err = drip_at("2026-11-26T10:00:00+00:00", "sla", "breaches")
    lines = text.splitlines()
    zone = next(i for i, line in enumerate(lines) if "Europe/Berln" in line) + 1
    days = next(i for i, line in enumerate(lines) if "dayz" in line) + 1
    assert code == 1
    assert f'sla.yaml:{days}: working_time.dayz: unknown field (did you mean "days"?)' in err
    assert "(and 1 more)" in err
    (folder / "sla.yaml").write_text(text.replace("dayz", "days"), encoding="utf-8")
    code, _, err = drip_at("2026-11-26T10:00:00+00:00", "sla", "breaches")
    assert code == 1 and f"sla.yaml:{zone}: working_time.timezone" in err
    assert 'did you mean "Europe/Berlin"?' in err


def test_no_commitments_no_clock(folder: Path, folder_engine: Engine) -> None:
    text = (folder / "sla.yaml").read_text(encoding="utf-8")
    text = text.replace("  first_touch_hours: 24", "  # first_touch_hours: 24")
    text = text.replace("  decision_days: 10", "  # decision_days: 10")
    (folder / "sla.yaml").write_text(text, encoding="utf-8")
    code, _, err = drip_at("2026-11-26T10:00:00+00:00", "sla", "breaches")
    assert code == 1 and "no clock runs" in err


def test_the_report_has_an_sla_section(desk: Engine, folder: Path) -> None:
    import re

    code, _, err = drip_at("2026-12-07T09:00:00+00:00", "report", "--since", "30d")
    assert code == 0, err
    page = (folder / "report.html").read_text(encoding="utf-8")
    section = page.split('<section id="sla">', 1)[1].split("</section>", 1)[0]
    cells = [
        re.findall(r"<td>([^<]*)</td>", line) for line in section.split("<tr>") if "<td>" in line
    ]
    assert "The 5 hand-back(s) made since" in section, "erin's first is older than 30 days"
    # by the week each clock was due: first touches on Wed 25 Nov, decisions on Fri 4 Dec
    assert ["2026-11-23", "3", "0", "2"] in cells  # jane, erin open; dave touched late
    assert ["2026-11-30", "0", "4", "4"] in cells  # jane, bob, dave, erin: no decision
    # by the reason the lead had been recycled for before it was handed back
    assert ["no_budget", "4", "3", "3", "5"] in cells  # jane, carol, dave, erin
    assert ["bad_timing", "1", "0", "1", "1"] in cells  # bob
