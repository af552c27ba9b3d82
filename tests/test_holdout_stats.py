"""Holdout groups end to end, on SQLite and PostgreSQL, with time travel (``--now``).

A `drip init` folder whose lost-sql-winback campaign says ``holdout: 50%``; 24 lost deals recycled
into it on Monday 23 November 2026. `drip run --once` on 26 November and 10 December sends the
treated leads their first two steps through the outbox and the holdout leads nothing; then three
holdout and five treated leads ask for a demo three times through the API events path (3 x 30
points: requalified), sales accepts one holdout lead and accepts one treated lead and wins another.
`drip stats --format json` must give the exact counts, rates and the lift of
:func:`dripengine.campaigns.significance.compare`.
"""

from __future__ import annotations

import csv
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import select
from sqlalchemy.engine import Engine

from dripengine import vocabulary as v
from dripengine.campaigns.experiment import in_holdout
from dripengine.campaigns.significance import compare
from dripengine.cli import main
from dripengine.clock import FixedClock
from dripengine.config import load_settings
from dripengine.engagement.ingest import Engagement
from dripengine.funnel.sla import load_sla
from dripengine.storage.models import ENROLLMENT, LEAD, MESSAGE
from dripengine.vocabulary import IncomingEvent

CAMPAIGN = "lost-sql-winback"
EMAILS = [f"buyer{i:02d}@firm{i:02d}.example" for i in range(24)]
HELD = [e for e in EMAILS if in_holdout(e, CAMPAIGN, 0.5)]
TREATED = [e for e in EMAILS if e not in HELD]
ENROLLED = "2026-11-23T10:00:00+00:00"  # Monday
FIRST_RUN = "2026-11-26T15:00:00+00:00"  # Thursday, 16:00 Berlin: checkin is due
SECOND_RUN = "2026-12-10T14:00:00+00:00"  # Thursday: whats-new (10 days later) is due
DEMO_AT = datetime(2026, 12, 11, 10, 0, tzinfo=UTC)
AFTER = "2026-12-12T10:00:00+00:00"


def drip(now: str, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["--now", now, *args])
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout + result.stderr


def test_the_assignment_gives_both_groups_here() -> None:
    assert 6 <= len(HELD) <= 18 and len(HELD) + len(TREATED) == 24


@pytest.fixture
def enrolled(folder: Path, folder_engine: Engine) -> Engine:
    path = folder / "campaigns" / f"{CAMPAIGN}.yaml"
    shipped = path.read_text()
    assert "\nholdout: 10%\n" in shipped
    path.write_text(shipped.replace("\nholdout: 10%\n", "\nholdout: 50%\n"))
    with (folder / "deals.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(
            ["email", "from_stage", "reason", "first_name", "company", "title", "industry",
             "employees"]
        )  # fmt: skip
        for i, email in enumerate(EMAILS):
            writer.writerow([email, "sql", "no_budget", f"Buyer{i}", f"Firm {i}", "Head of IT",
                             "software", "300"])  # fmt: skip
    code, out = drip(ENROLLED, "recycle", "--csv", "deals.csv", "--create")
    assert code == 0, out
    return folder_engine


def _rows(engine: Engine, query: Any) -> list[Any]:
    with engine.connect() as connection:
        return list(connection.execute(query))


def _enrollments(engine: Engine) -> dict[str, Any]:
    query = select(LEAD.c.email, ENROLLMENT).join(ENROLLMENT, ENROLLMENT.c.lead_id == LEAD.c.id)
    return {row.email: row for row in _rows(engine, query)}


def _messages(engine: Engine) -> dict[str, list[str]]:
    query = select(LEAD.c.email, MESSAGE.c.step_id, MESSAGE.c.status).join(
        MESSAGE, MESSAGE.c.lead_id == LEAD.c.id
    )
    out: dict[str, list[str]] = {}
    for email, step, status in _rows(engine, query):
        out.setdefault(email, []).append(f"{step}:{status}")
    return out


def _outbox_text(folder: Path) -> str:
    return "".join(p.read_text(errors="replace") for p in (folder / "outbox").rglob("*.eml"))


def test_holdout_leads_are_enrolled_and_sent_nothing(folder: Path, enrolled: Engine) -> None:
    enrollments = _enrollments(enrolled)
    assert {e for e, row in enrollments.items() if row.holdout} == set(HELD)
    assert all(row.status == "active" for row in enrollments.values())

    code, out = drip(FIRST_RUN, "run", "--once")
    assert code == 0, out
    assert out.startswith(f"{len(TREATED)} sent (see outbox/)"), out
    assert f"; {len(HELD)} step(s) held back from holdout leads" in out
    code, out = drip(SECOND_RUN, "run", "--once")
    assert code == 0, out
    assert out.startswith(f"{len(TREATED)} sent"), out

    messages = _messages(enrolled)
    assert set(messages) == set(TREATED)  # no Message row at all for a holdout lead
    assert all(steps == ["checkin:sent", "whats-new:sent"] for steps in messages.values())
    mail = _outbox_text(folder)
    assert all(email in mail for email in TREATED)
    assert not any(email in mail for email in HELD)
    # both groups walked the same steps on the same schedule: next is the breakup email
    for row in _enrollments(enrolled).values():
        assert (row.status, row.current_step) == ("active", "breakup")
        assert row.next_due_at.date() >= datetime(2026, 12, 24).date()

    code, out = drip(SECOND_RUN, "leads", "show", HELD[0])
    assert code == 0, out
    assert f"in the holdout group of {CAMPAIGN}: enrolled, sent nothing" in out
    code, out = drip(SECOND_RUN, "leads", "show", HELD[0], "--format", "json")
    assert json.loads(out)["enrollments"][0]["holdout"] is True

    code, out = drip(SECOND_RUN, "send-test", CAMPAIGN, "--to", f"me@acme.example,{HELD[0]}")
    assert code == 1
    assert f"{HELD[0]}: in the holdout group of {CAMPAIGN}, which is sent nothing" in out
    assert HELD[0] not in _outbox_text(folder)
    code, out = drip(SECOND_RUN, "campaigns", "preview", CAMPAIGN, "--lead", HELD[0], "--text")
    assert code == 0, out  # looking is fine


def test_a_lead_recycled_again_keeps_its_group(enrolled: Engine) -> None:
    before = _enrollments(enrolled)
    later = "2027-03-01T10:00:00+00:00"  # past the 60-day cooldown: a restart
    for email in (HELD[0], TREATED[0]):
        code, out = drip(later, "recycle", email, "--from", "sql", "--reason", "bad_timing")
        assert code == 0, out
        said = "in its holdout group: enrolled, sent nothing" in " ".join(out.split())
        assert said == (email in HELD), out
    after = _enrollments(enrolled)
    for email in (HELD[0], TREATED[0]):
        assert after[email].round == before[email].round + 1
        assert after[email].holdout == before[email].holdout == (email in HELD)


def _demo_requests(folder: Path, engine: Engine, emails: list[str]) -> list[str]:
    settings = load_settings(folder / "drip.toml")
    engagement = Engagement(engine, settings, load_sla(folder / "sla.yaml"), FixedClock(DEMO_AT))
    events = [
        IncomingEvent(
            type=v.DEMO_REQUEST,
            occurred_at=DEMO_AT - timedelta(minutes=minutes),
            provider="api",
            email=email,
            provider_event_id=f"demo-{email}-{minutes}",
        )
        for email in emails
        for minutes in (30, 20, 10)
    ]
    result = engagement.ingest(events)
    return sorted(result.requalified)


def test_stats_give_each_group_and_the_lift_exactly(folder: Path, enrolled: Engine) -> None:
    assert drip(FIRST_RUN, "run", "--once")[0] == 0
    # another lead recycled again between these enrolments and their hand-backs must not hide
    # them (a nested EXISTS once read every lead's recycles against every lead's enrolments:
    # in a live database, where leads come back all the time, nobody counted as requalified)
    other = "someone.else@other.example"
    for at, stage, reason in ((ENROLLED, "mql", "bad_timing"), (FIRST_RUN, "mql", "no_budget")):
        code, out = drip(at, "recycle", other, "--from", stage, "--reason", reason, "--create")
        assert code == 0, out
    held, treated = HELD[:3], TREATED[:5]
    assert _demo_requests(folder, enrolled, held + treated) == sorted(held + treated)
    for email, outcome in ((held[0], "--accepted"), (treated[0], "--accepted"),
                           (treated[1], "--won")):  # fmt: skip
        code, out = drip(AFTER, "feedback", email, outcome)
        assert code == 0, out

    code, out = drip(AFTER, "stats", "--format", "json")
    assert code == 0, out
    (row,) = [r for r in json.loads(out) if r["campaign"] == CAMPAIGN]
    assert row["enrolled"] == 24 and row["requalified"] == 8  # the existing fields unchanged
    h, t = len(HELD), len(TREATED)
    assert row["holdout"] == {
        "leads": h, "requalified": 3, "requalification_rate": round(3 / h, 4),
        "handed_back": 3, "sql": 1, "handback_to_sql_rate": round(1 / 3, 4),
    }  # fmt: skip
    assert row["treated"] == {
        "leads": t, "requalified": 5, "requalification_rate": round(5 / t, 4),
        "handed_back": 5, "sql": 2, "handback_to_sql_rate": 0.4,
    }  # fmt: skip
    lift = row["lift"]
    expected = compare(5, t, 3, h)
    rate = lift["requalification_rate"]
    assert rate["difference"] == round(expected.difference or 0, 4)
    assert rate["ci95"] == [round(expected.low or 0, 4), round(expected.high or 0, 4)]
    assert rate["p_value"] == round(expected.p_value or 0, 4)
    assert (rate["method"], rate["p_value_method"]) == (
        "newcombe-wilson",
        "two-proportion z-test (pooled)",
    )
    assert rate["verdict"] == lift["verdict"] == "not yet significant"
    sql = compare(2, 5, 1, 3)
    assert lift["handback_to_sql_rate"]["difference"] == round(sql.difference or 0, 4)

    # time travel: before the demo requests nobody had come back; before the recycle, no row
    code, out = drip("2026-12-11T09:00:00+00:00", "stats", "--format", "json")
    (early,) = [r for r in json.loads(out) if r["campaign"] == CAMPAIGN]
    assert early["holdout"]["requalified"] == early["treated"]["requalified"] == 0
    assert early["holdout"]["handback_to_sql_rate"] is None  # nobody handed back: no rate
    code, out = drip("2026-11-22T10:00:00+00:00", "stats", "--format", "json")
    assert [r for r in json.loads(out) if r["campaign"] == CAMPAIGN] == []

    code, out = drip(AFTER, "stats")
    assert "holdout lift" in out and f"{CAMPAIGN}: " in out
    assert "Not enough data yet to say the emails made a difference." in " ".join(out.split())
    code, out = drip(AFTER, "report", "--out", "report.html")
    assert code == 0, out
    page = (folder / "report.html").read_text()
    assert "What the emails caused: the holdout lift" in page
    assert "mailed leads came back to sales against" in page


def test_a_campaign_without_holdout_says_so(folder: Path, folder_engine: Engine) -> None:
    code, out = drip(ENROLLED, "recycle", "x@firm.example", "--from", "sql", "--reason",
                     "no_budget", "--create")  # fmt: skip
    assert code == 0, out
    code, out = drip(AFTER, "stats", "--format", "json")
    (row,) = [r for r in json.loads(out) if r["campaign"] == CAMPAIGN]
    assert row["holdout"]["leads"] == 0 and row["holdout"]["requalification_rate"] is None
    assert row["treated"]["leads"] == 1
    assert row["lift"]["verdict"] == "no holdout"
    assert row["lift"]["requalification_rate"]["ci95"] is None


def test_campaigns_validate_names_the_line_of_a_wrong_holdout(folder: Path) -> None:
    path = folder / "campaigns" / f"{CAMPAIGN}.yaml"
    lines = path.read_text().splitlines()
    path.write_text("\n".join([*lines, "holdout: 80%"]) + "\n")
    code, out = drip(ENROLLED, "campaigns", "validate")
    assert code == 1
    assert f"campaigns/{CAMPAIGN}.yaml:{len(lines) + 1}: holdout: " in out
    assert "at most 50%, e.g. holdout: 10%" in out
