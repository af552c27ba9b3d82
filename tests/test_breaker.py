"""The complaint breaker: the rule, the pauses it writes, and a dispatcher that respects them."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import insert, select
from sqlalchemy.engine import Engine

from dripengine.cli import main
from dripengine.config import ScoringSettings, Settings
from dripengine.engagement.breaker import Sample, check_breakers, trip
from dripengine.storage.engine import make_engine
from dripengine.storage.pauses import paused, resume
from dripengine.storage.rounds import claim
from tests import rows
from tests.clirun import drip

T = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
RULES = ScoringSettings()  # 0.1% complaints, 2% hard bounces, over at least 500 sends


@pytest.mark.parametrize(
    ("sample", "verdict"),
    [
        (Sample(499, 5, 0), None),  # 1% but too few sends to judge
        (Sample(500, 0, 0), None),
        (Sample(1000, 1, 0), None),  # 0.1%: at the limit, not over it
        (Sample(1000, 2, 0), "complaint rate 0.20% (2 of 1,000 sent) is over 0.10%"),
        (Sample(1000, 0, 20), None),  # 2%: at the limit
        (Sample(1000, 0, 21), "hard-bounce rate 2.10% (21 of 1,000 sent) is over 2.00%"),
    ],
)
def test_trip(sample: Sample, verdict: str | None) -> None:
    assert trip(sample, RULES) == verdict


def sends(engine: Engine, campaign: str, count: int, at: datetime) -> list[int]:
    """``count`` sent messages of ``campaign`` to one lead; their ids."""
    lead_id = rows.lead(engine, f"{uuid.uuid4().hex[:8]}@acme.example", at)
    with engine.begin() as connection:
        result = connection.execute(
            insert(rows.MESSAGE).returning(rows.MESSAGE.c.id),
            [
                {
                    "uid": uuid.uuid4().hex,
                    "lead_id": lead_id,
                    "campaign_id": campaign,
                    "round": 1,
                    "step_id": f"s{i}",
                    "status": "sent",
                    "attempts": 1,
                    "created_at": at,
                    "sent_at": at,
                }
                for i in range(count)
            ],
        )
        return [r.id for r in result]


def complain(engine: Engine, message_ids: list[int], kind: str = "complaint") -> None:
    for message_id in message_ids:
        rows.event(engine, kind, T, message_id=message_id)


def test_a_campaign_past_the_complaint_rate_pauses_itself(engine: Engine) -> None:
    bad = sends(engine, "bad-list", 600, T - timedelta(days=2))
    good = sends(engine, "good-list", 600, T - timedelta(days=2))
    complain(engine, bad[:2])  # 0.33%
    complain(engine, [bad[0]])  # a duplicate complaint about the same email counts once
    complain(engine, good[:12], "bounce")  # 2% of good-list bounced hard: at the limit
    complain(engine, [good[20]], "soft_bounce")  # soft bounces are no hard bounces
    settings = Settings()
    assert check_breakers(engine, settings, T) == ["bad-list"]
    assert check_breakers(engine, settings, T) == [], "already paused: not paused twice"
    with engine.connect() as connection:
        [pause] = paused(connection)
    assert pause.campaign_id == "bad-list" and pause.paused_at == T
    assert pause.reason == "complaint rate 0.33% (2 of 600 sent) is over 0.10%"


def test_old_sends_and_a_resume_start_a_new_sample(engine: Engine) -> None:
    old = sends(engine, "c", 600, T - timedelta(days=31))
    complain(engine, old[:10])
    settings = Settings()
    assert check_breakers(engine, settings, T) == [], "sends older than 30 days do not count"
    recent = sends(engine, "c", 600, T - timedelta(days=1))
    complain(engine, recent[:3])
    assert check_breakers(engine, settings, T) == ["c"]
    with engine.begin() as connection:
        assert resume(connection, "c", T + timedelta(hours=1)) is not None
        assert resume(connection, "c", T + timedelta(hours=1)) is None, "not paused any more"
    later = T + timedelta(hours=2)
    assert check_breakers(engine, settings, later) == [], "the sends that tripped it are behind"
    fresh = sends(engine, "c", 500, later)
    complain(engine, fresh[:1])  # 0.2% of what was sent since the resume
    assert check_breakers(engine, settings, later + timedelta(minutes=1)) == ["c"]


def test_the_claim_leaves_a_paused_campaign_alone(engine: Engine) -> None:
    lead_id = rows.lead(engine, "jane@acme.example", T)
    other = rows.lead(engine, "joe@acme.example", T)
    paused_one = rows.enrollment(engine, lead_id, "bad-list", T - timedelta(hours=1))
    running = rows.enrollment(engine, other, "good-list", T - timedelta(hours=1))
    with engine.begin() as connection:
        from dripengine.storage.pauses import pause

        pause(connection, "bad-list", "complaint rate 0.33%", T)
        assert claim(connection, "w", T, timedelta(minutes=5), 10) == [running]
        resume(connection, "bad-list", T)
        assert claim(connection, "w", T, timedelta(minutes=5), 10) == [paused_one]


def test_run_sends_nothing_from_a_paused_campaign_and_status_says_why(
    folder: Path, db_url: str
) -> None:
    later = "2026-11-26T15:00:00+00:00"
    assert drip("recycle", "--csv", "lost-deals.csv", "--create")[0] == 0
    engine = make_engine(
        db_url if not db_url.startswith("sqlite") else f"sqlite:///{folder}/drip.db"
    )
    try:
        with engine.connect() as connection:
            campaigns = sorted(
                set(connection.execute(select(rows.ENROLLMENT.c.campaign_id)).scalars())
            )
        with engine.begin() as connection:
            from dripengine.storage.pauses import pause

            for campaign in campaigns:
                pause(connection, campaign, "complaint rate 0.40% (2 of 500 sent) is over 0.10%", T)
        result = CliRunner().invoke(main, ["--now", later, "run", "--once"])
        assert result.exit_code == 0, result.output
        assert result.stdout.startswith("0 sent"), result.stdout
        assert not list((folder / "outbox").rglob("*.eml"))
        status = CliRunner().invoke(main, ["--now", later, "status", "--format", "json"])
        listed = json.loads(status.stdout)["paused_campaigns"]
        assert [p["campaign_id"] for p in listed] == campaigns
        text = CliRunner().invoke(main, ["--now", later, "status"]).stdout
        assert (
            f"{campaigns[0]}: paused by the complaint breaker since Mon 2026-11-23 11:00 CET "
            "(3 d 5 h ago): complaint rate 0.40%"
        ) in text
        for campaign in campaigns:
            code, out, err = drip("campaigns", "resume", campaign)
            assert code == 0 and "resumed" in out, err
        code, _, err = drip("campaigns", "resume", campaigns[0])
        assert code == 1 and "is not paused" in err
        result = CliRunner().invoke(main, ["--now", later, "run", "--once"])
        assert not result.stdout.startswith("0 sent"), result.stdout
        assert list((folder / "outbox").rglob("*.eml"))
    finally:
        engine.dispose()
