"""A/B variants end to end, on SQLite and PostgreSQL: `drip run --once --now …` through the
outbox sends each lead its variant and records it; events come in through the ingest path; the
step switches to its winner exactly when every variant has ``min_sends`` and the best is
significantly better, once; bot opens and scanner clicks never count."""

from __future__ import annotations

import csv
import json
from collections import Counter
from datetime import datetime
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import select
from sqlalchemy.engine import Engine

from dripengine.cli import main
from dripengine.clock import FixedClock
from dripengine.config import load_settings
from dripengine.engagement.ingest import Engagement
from dripengine.funnel.sla import load_sla
from dripengine.storage.models import MESSAGE, VARIANT_WINNER
from dripengine.vocabulary import IncomingEvent

CAMPAIGN = """\
id: ab-test
name: A/B test
audience:
  stages: [sql]
send:
  from: "Acme <hello@acme.example>"
  timezone: UTC
  window:
    days: [mon, tue, wed, thu, fri, sat, sun]
    start: "00:00"
    end: "23:59"
tracks:
  cold:
    min_score: 0
    steps:
      - id: hello
        wait: 1h
        template: lost-sql/checkin.mjml
        subject: "Checking in"
        variants:
          - id: control
          - id: question
            subject: "A quick question, {{ lead.first_name | default('there') }}"
        pick_winner: {metric: human_click_rate, min_sends: 30, confidence: 0.95}
exit:
  on: [unsubscribed, bounced, complained]
"""


def drip_at(when: str, *args: str) -> tuple[int, str, str]:
    """Exit code, stdout and stderr of ``drip --now WHEN *args``; a crash is re-raised."""
    result = CliRunner().invoke(main, ["--now", when, *args])
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout, result.stderr


def at(day: int, hour: int = 10) -> str:
    return datetime(2026, 11, day, hour).isoformat() + "+00:00"


def setup_campaign(folder: Path) -> None:
    for path in (folder / "campaigns").glob("*.yaml"):
        path.unlink()
    (folder / "campaigns" / "ab-test.yaml").write_text(CAMPAIGN, encoding="utf-8")


def recycle(folder: Path, when: str, first: int, count: int) -> None:
    path = folder / f"leads-{first}.csv"
    with path.open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(["email", "from_stage", "reason", "first_name"])
        for i in range(first, first + count):
            writer.writerow([f"lead{i}@buyer{i % 7}.example", "sql", "no_budget", f"Lee{i}"])
    code, out, err = drip_at(when, "recycle", "--csv", str(path), "--create")
    assert code == 0, out + err


def run_once(when: str) -> list[str]:
    code, out, err = drip_at(when, "run", "--once")
    assert code == 0, out + err
    return out.splitlines()


def messages(engine: Engine) -> list[dict[str, object]]:
    m = MESSAGE.c
    with engine.connect() as connection:
        rows = connection.execute(
            select(m.uid, m.lead_id, m.variant, m.subject, m.status, m.sent_at).order_by(m.id)
        )
        return [dict(r._mapping) for r in rows]


def winner_rows(engine: Engine) -> list[dict[str, object]]:
    with engine.connect() as connection:
        return [dict(r._mapping) for r in connection.execute(select(VARIANT_WINNER))]


def ingest(engine: Engine, when: str, events: list[IncomingEvent]) -> None:
    settings = load_settings()
    clock = FixedClock(datetime.fromisoformat(when))
    result = Engagement(engine, settings, load_sla(settings.path("sla")), clock).ingest(events)
    assert result.stored == len(events), result


def clicks(
    rows: list[dict[str, object]], when: str, *, machine: bool, times: int = 1
) -> list[IncomingEvent]:
    moment = datetime.fromisoformat(when)
    return [
        IncomingEvent(
            type="click",
            occurred_at=moment.replace(second=n),
            provider="api",
            message_uid=str(row["uid"]),
            url=f"https://acme.example/pricing?n={n}",
            provider_event_id=f"{row['uid']}-{'m' if machine else 'h'}-{n}",
            machine=machine,
        )
        for row in rows
        for n in range(times)
    ]


def test_the_step_switches_to_its_winner_when_significant_once_and_bots_never_count(
    folder: Path, folder_engine: Engine
) -> None:
    setup_campaign(folder)
    # batch 1: 40 leads, each variant about 20 emails (under min_sends 30)
    recycle(folder, at(23), 0, 40)
    assert run_once(at(23, 12))[0].startswith("40 sent")
    first = messages(folder_engine)
    split = Counter(str(r["variant"]) for r in first)
    assert set(split) == {"control", "question"} and max(split.values()) < 30
    by_variant = {
        name: [r for r in first if r["variant"] == name] for name in ("control", "question")
    }
    assert {r["subject"] for r in by_variant["control"]} == {"Checking in"}
    assert all(
        str(r["subject"]).startswith("A quick question, Lee") for r in by_variant["question"]
    )
    # outbox: each email's subject is its variant's
    subjects = {
        line.split(": ", 1)[1].strip()
        for path in (folder / "outbox").rglob("*.eml")
        for line in path.read_text(encoding="utf-8").splitlines()
        if line.startswith("Subject: ")
    }
    assert "Checking in" in subjects and any(s.startswith("A quick question") for s in subjects)
    # the same lead gets the same variant again: re-running changes nothing
    assert run_once(at(23, 13))[0].startswith("0 sent")

    # people click 'question' (each of 3 leads five times: a lead counts once); link scanners
    # click every 'control' email, which would make control the winner if they counted
    ingest(
        folder_engine,
        at(23, 14),
        clicks(by_variant["question"][:3], at(23, 14), machine=False, times=5),
    )
    ingest(
        folder_engine, at(23, 14), clicks(by_variant["control"], at(23, 14), machine=True, times=2)
    )

    # batch 2: recycled on the 24th, sent on the 25th; the run's look before sending finds
    # fewer than min_sends per variant: no winner, both variants sent
    recycle(folder, at(24), 100, 40)
    lines = run_once(at(25))
    assert lines[0].startswith("40 sent") and len(lines) == 1, lines
    assert winner_rows(folder_engine) == []
    both = messages(folder_engine)
    split = Counter(str(r["variant"]) for r in both)
    assert min(split.values()) >= 30, split
    # every variant has min_sends now, but 3 clickers against 0 is not significant
    assert run_once(at(25, 12)) == [
        "0 sent, 0 skipped, 0 to retry, 0 failed, 0 waiting for their window, 0 completed, 0 exited"
    ]
    assert winner_rows(folder_engine) == []
    code, out, _ = drip_at(at(25, 12), "stats", "--by", "variant", "--format", "json")
    assert code == 0
    undecided = {r["variant"]: r for r in json.loads(out)}
    assert undecided["question"]["winner"] is False
    assert undecided["question"]["status"].startswith("no winner yet: question leads with")

    # more people click 'question' in batch 2, scanners keep clicking 'control'
    second = [r for r in both if r not in first]
    question_2 = [r for r in second if r["variant"] == "question"]
    control_2 = [r for r in second if r["variant"] == "control"]
    ingest(
        folder_engine,
        at(25, 13),
        clicks(question_2[: len(question_2) // 2], at(25, 13), machine=False),
    )
    ingest(folder_engine, at(25, 13), clicks(control_2, at(25, 13), machine=True))
    # ...but an event after the run's --now is not seen by it (time travel sees the past only)
    assert len(run_once(at(25, 12))) == 1
    assert winner_rows(folder_engine) == []

    lines = run_once(at(25, 14))
    assert len(lines) == 2, lines
    assert lines[1].startswith(
        "campaign ab-test step hello: question wins on human_click_rate: "
    ) and lines[1].endswith("from now on the step sends only question"), lines[1]
    [row] = winner_rows(folder_engine)
    assert row["variant"] == "question" and row["metric"] == "human_click_rate"
    assert row["decided_at"] == datetime.fromisoformat(at(25, 14))
    detail = row["detail"]
    assert isinstance(detail, dict)
    clickers = 3 + len(question_2) // 2
    assert detail["variants"]["question"]["successes"] == clickers  # each lead once
    assert detail["variants"]["control"]["successes"] == 0  # the scanners' clicks left out
    assert detail["comparisons"][0]["p_value"] < 0.05 and detail["min_sends"] == 30
    assert detail["method"] == "newcombe-wilson" and detail["confidence"] == 0.95

    # batch 3: every new send is the winner; the decision is recorded once
    recycle(folder, at(26), 200, 20)
    lines = run_once(at(27))
    assert lines[0].startswith("20 sent") and len(lines) == 1, lines
    third = messages(folder_engine)[80:]
    assert {r["variant"] for r in third} == {"question"}
    assert len(winner_rows(folder_engine)) == 1

    code, out, _ = drip_at(at(27), "stats", "--by", "variant", "--format", "json")
    assert code == 0
    rows = {r["variant"]: r for r in json.loads(out)}
    assert rows["question"]["winner"] is True and rows["control"]["winner"] is False
    assert rows["question"]["decided_at"].startswith("2026-11-25T14:00:00")
    assert rows["question"]["sent"] == split["question"] + 20
    assert rows["control"]["clicks"] == 0 and rows["control"]["weight"] == 1.0
    code, out, _ = drip_at(at(27), "stats", "--by", "variant")
    assert "question" in out and "winner since 2026-11-25 14:00" in out
    assert (
        "ab-test / hello: question sent to everyone since 2026-11-25 14:00 UTC: question wins"
        in out
    )
    code, out, _ = drip_at(at(27), "stats", "--by", "variant", "--format", "csv")
    header, *lines = out.splitlines()
    assert header.startswith("campaign,track,step,variant,weight,sent,delivered,human_opens")
    assert header.endswith(",winner,decided_at,status") and len(lines) == 2
    code, out, _ = drip_at(at(27), "campaigns", "show", "ab-test")
    assert "question won on 2026-11-25 14:00 UTC and is sent to everyone" in out


def test_preview_and_send_test_render_the_variant_asked_for(folder: Path) -> None:
    setup_campaign(folder)
    code, out, err = drip_at(at(23), "campaigns", "preview", "ab-test", "--variant", "question")
    assert code == 0, err
    assert "  variant    question (asked for; variants: control, question; --variant ID)" in out
    assert "  subject    A quick question, " in out
    code, out, err = drip_at(at(23), "campaigns", "preview", "ab-test", "--variant", "questoin")
    assert code == 1
    assert (
        'Error: --variant: step "hello" has no variant "questoin" (did you mean "question"?) '
        "(variants: control, question)"
    ) in err
    code, out, err = drip_at(
        at(23), "send-test", "ab-test", "--variant", "control", "--to", "me@acme.example"
    )
    assert code == 0, err
    assert 'test of "ab-test" / hello (variant control) sent to me@acme.example' in out
    [sent] = (folder / "outbox" / "test").glob("*.eml")
    assert "Subject: [TEST] Checking in" in sent.read_text(encoding="utf-8")
    # no variant named: the sample lead's own, by its hash
    code, out, _ = drip_at(at(23), "campaigns", "preview", "ab-test")
    assert code == 0 and "(the lead's; variants: control, question; --variant ID)" in out


def test_validate_checks_each_variant_template_and_subject_with_its_line(folder: Path) -> None:
    setup_campaign(folder)
    text = CAMPAIGN.replace(
        "default('there') }}\"",
        "default('there') }} at {{ lead.compny }}\"\n"
        "          - id: bare\n            template: lost-sql/bare.mjml",
    )
    (folder / "campaigns" / "ab-test.yaml").write_text(text, encoding="utf-8")
    (folder / "templates" / "lost-sql" / "bare.mjml").write_text(
        "<mjml><mj-body><mj-section><mj-column><mj-text>Hi</mj-text></mj-column></mj-section>"
        "</mj-body></mjml>",
        encoding="utf-8",
    )
    code, _, err = drip_at(at(23), "campaigns", "validate")
    assert code == 1
    lines = err.splitlines()
    assert (
        'campaigns/ab-test.yaml:23: tracks.cold.steps[0].variants[1].subject: "compny" is '
        'undefined: did you mean "company"?'
    ) in lines, err
    assert any(
        line.startswith("templates/lost-sql/bare.mjml:1: the email has no unsubscribe link")
        for line in lines
    ), err


def test_the_daemon_job_records_the_winner_and_logs_the_switch(
    folder: Path, folder_engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    from types import SimpleNamespace

    from dripengine.campaigns import load_campaigns
    from dripengine.daemon.worker import Daemon

    setup_campaign(folder)
    text = CAMPAIGN.replace("min_sends: 30", "min_sends: 5")
    (folder / "campaigns" / "ab-test.yaml").write_text(text, encoding="utf-8")
    recycle(folder, at(23), 0, 30)
    assert run_once(at(23, 12))[0].startswith("30 sent")
    rows = messages(folder_engine)
    question = [r for r in rows if r["variant"] == "question"]
    ingest(folder_engine, at(23, 13), clicks(question, at(23, 13), machine=False))
    campaigns = load_campaigns(folder / "campaigns")
    dispatcher = SimpleNamespace(
        engine=folder_engine,
        campaigns={c.id: c for c in campaigns},
        clock=FixedClock(datetime.fromisoformat(at(23, 14))),
    )
    daemon = Daemon(dispatcher, load_settings())  # type: ignore[arg-type]
    with caplog.at_level("INFO", logger="dripengine.daemon.worker"):
        daemon._winners()
        daemon._winners()  # once: the second look finds the decision made
    [row] = winner_rows(folder_engine)
    assert row["variant"] == "question"
    switches = [r.message for r in caplog.records if "step hello" in r.message]
    assert len(switches) == 1 and switches[0].endswith("the step sends only question")
