"""drip stats over a hand-built history, on SQLite and PostgreSQL: every count and rate worked out
by hand from the rows below, human and machine opens apart, a lead requalified and what sales said.

Campaign lost-sql-winback (A), four leads recycled into it in early November 2026; campaign
rejected-mql-nurture (B), one. The clock is Monday 23 November 2026, 10:00 UTC.

    A  jane  checkin 9 Nov: delivered, machine open, human open twice, human click, scanner click
             value  16 Nov: delivered, reply                      -> requalified 17 Nov, accepted, won
       bob   checkin 9 Nov: delivered, machine open only
             value  16 Nov: no event at all                       -> requalified 18 Nov, rejected,
                                                                     recycled again (not_a_fit) 19 Nov
       carl  checkin 9 Nov: bounce;  a send recorded for 24 Nov (after now) and not counted
       dana  checkin 10 Nov: delivered, unsubscribe, complaint;  a failed send, not counted
    B  erin  checkin 10 Nov: soft bounce
    jane was recycled once before (competitor, 1 Sep) and opened a page of ours on 5 Sep.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import insert
from sqlalchemy.engine import Engine

from dripengine.reports import stats
from dripengine.storage.engine import make_engine
from dripengine.storage.models import Feedback, StageChange
from tests import rows
from tests.clirun import drip

NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
A, B = "lost-sql-winback", "rejected-mql-nurture"
FEEDBACK = Feedback.__table__  # type: ignore[attr-defined]
STAGE_CHANGE = StageChange.__table__  # type: ignore[attr-defined]


def day(d: int, month: int = 11, hour: int = 9) -> datetime:
    return datetime(2026, month, d, hour, 0, tzinfo=UTC)


def feedback(engine: Engine, lead_id: int, outcome: str, at: datetime, **values: object) -> None:
    with engine.begin() as connection:
        connection.execute(
            insert(FEEDBACK).values(lead_id=lead_id, outcome=outcome, at=at, **values)
        )


def requalify(engine: Engine, lead_id: int, campaign: str, at: datetime) -> int:
    """What ingest writes when a lead requalifies: the stage change, the time, the handoff."""
    with engine.begin() as connection:
        connection.execute(
            insert(STAGE_CHANGE).values(
                lead_id=lead_id,
                from_stage="recycled",
                to_stage="mql",
                reason=f"requalified by {campaign}",
                actor="dripengine",
                at=at,
            )
        )
    handoff_id, _ = rows.handoff(engine, lead_id, at, campaign_id=campaign)
    return handoff_id


@pytest.fixture
def history(engine: Engine) -> Engine:
    return build_history(engine)


def build_history(engine: Engine) -> Engine:
    jane = rows.lead(engine, "jane@acme.example", day(1, 9), stage="mql", requalified_at=day(17))
    bob = rows.lead(engine, "bob@acme.example", day(1, 9))
    carl = rows.lead(engine, "carl@acme.example", day(1, 9))
    dana = rows.lead(engine, "dana@acme.example", day(1, 9))
    erin = rows.lead(engine, "erin@acme.example", day(1, 9))

    rows.recycle_record(engine, jane, day(1, 9), reason="competitor", campaign_id=A)
    rows.event(engine, "site_visit", day(5, 9), lead_id=jane)  # engaged in that first recycle
    rows.recycle_record(engine, jane, day(2), reason="no_budget", campaign_id=A)
    rows.recycle_record(engine, bob, day(2), reason="no_budget", campaign_id=A)
    rows.recycle_record(engine, carl, day(3), reason="bad_timing", campaign_id=A)
    rows.recycle_record(engine, dana, day(3), reason="bad_timing", campaign_id=A)
    rows.recycle_record(engine, erin, day(4), reason="not_a_fit", campaign_id=B)
    enrolled = {
        who: rows.enrollment(engine, who, A, day(n))
        for who, n in ((jane, 2), (bob, 2), (carl, 3), (dana, 3))
    }
    enrolled[erin] = rows.enrollment(engine, erin, B, day(4))

    def send(who: int, campaign: str, step: str, at: datetime, **values: object) -> int:
        return rows.message(
            engine, who, campaign, at, step_id=step, track="cold", enrollment_id=enrolled[who],
            **values,
        )  # fmt: skip

    def events(message_id: int, lead_id: int, *kinds: str, machine: bool = False) -> None:
        for i, kind in enumerate(kinds):
            at = rows_at[message_id] + timedelta(minutes=10 + i)
            rows.event(engine, kind, at, message_id=message_id, lead_id=lead_id, machine=machine)

    rows_at: dict[int, datetime] = {}
    for who, campaign, step, at, extra in (
        (jane, A, "checkin", day(9), {}),
        (bob, A, "checkin", day(9), {}),
        (carl, A, "checkin", day(9), {}),
        (dana, A, "checkin", day(10), {}),
        (jane, A, "value", day(16), {}),
        (bob, A, "value", day(16), {}),
        (erin, B, "checkin", day(10), {}),
    ):
        rows_at[send(who, campaign, step, at, **extra)] = at
    m_jane1, m_bob1, m_carl1, m_dana1, m_jane2, _m_bob2, m_erin1 = rows_at
    send(dana, A, "value", day(17), status="failed", sent_at=None)
    send(carl, A, "value", day(24), round=2)  # recorded as sent after now: not counted yet

    events(m_jane1, jane, "delivered")
    events(m_jane1, jane, "open", machine=True)
    events(m_jane1, jane, "open", "open", "click")
    events(m_jane1, jane, "click", machine=True)
    events(m_jane2, jane, "delivered", "reply")
    events(m_bob1, bob, "delivered")
    events(m_bob1, bob, "open", machine=True)
    events(m_carl1, carl, "bounce")
    events(m_dana1, dana, "delivered", "unsubscribe", "complaint")
    events(m_erin1, erin, "soft_bounce")

    jane_handoff = requalify(engine, jane, A, day(17))
    feedback(engine, jane, "accepted", day(18), handoff_id=jane_handoff, campaign_id=A)
    feedback(engine, jane, "won", day(20), handoff_id=jane_handoff, campaign_id=A)
    bob_handoff = requalify(engine, bob, A, day(18))
    feedback(engine, bob, "rejected", day(19), handoff_id=bob_handoff, reason="not_a_fit")
    rows.recycle_record(engine, bob, day(19), reason="not_a_fit", campaign_id=A, recycle_count=2)
    return engine


def read(engine: Engine, by: str, since: datetime | None = None, campaign: str | None = None):  # type: ignore[no-untyped-def]
    with engine.connect() as connection:
        return [r.as_dict() for r in stats.read(connection, by, stats.Window(NOW, since), campaign)]


def test_by_campaign_counts_each_email_once_per_outcome(history: Engine) -> None:
    a, b = read(history, "campaign")
    assert a == {
        "campaign": A,
        "enrolled": 4,
        "sent": 6,  # not the failed one, not the one after now
        "delivered": 5,  # carl's bounced
        "human_opens": 1,  # jane's, opened twice and by a proxy too
        "machine_opens": 1,  # bob's: a proxy only
        "clicks": 1,  # jane's; the scanner's click is not one
        "replies": 1,
        "unsubscribes": 1,
        "bounces": 1,
        "complaints": 1,
        "requalified": 2,
        "delivery_rate": round(5 / 6, 4),
        "open_rate": 0.2,
        "machine_open_rate": 0.2,
        "click_rate": 0.2,
        "reply_rate": 0.2,
        "unsubscribe_rate": 0.2,
        "bounce_rate": round(1 / 6, 4),
        "complaint_rate": 0.2,
        "requalification_rate": 0.5,
    }
    assert b["campaign"] == B
    assert (b["sent"], b["delivered"], b["bounces"], b["enrolled"]) == (1, 0, 1, 1)
    assert b["open_rate"] is None  # nothing delivered: no rate, not a division error


def test_one_campaign_and_a_window(history: Engine) -> None:
    assert [r["campaign"] for r in read(history, "campaign", campaign=B)] == [B]
    (a,) = read(history, "campaign", since=day(12), campaign=A)
    # emails sent since 12 Nov: jane's and bob's "value"; no enrolment in the window
    assert (a["enrolled"], a["sent"], a["delivered"], a["replies"], a["requalified"]) == (
        0,
        2,
        2,
        1,
        2,
    )
    assert a["requalification_rate"] is None


def test_by_step_in_sending_order_with_reach(history: Engine) -> None:
    steps = read(history, "step", campaign=A)
    assert [(s["step"], s["sent"], s["reach_rate"]) for s in steps] == [
        ("checkin", 4, 1.0),
        ("value", 2, 0.5),
    ]
    checkin = steps[0]
    assert (checkin["human_opens"], checkin["machine_opens"], checkin["bounces"]) == (1, 1, 1)
    assert checkin["track"] == "cold" and checkin["first_step_sent"] == 4


def test_by_week_mondays(history: Engine) -> None:
    weeks = {w["week"]: w for w in read(history, "week")}
    assert sorted(weeks) == ["2026-11-02", "2026-11-09", "2026-11-16"]
    assert weeks["2026-11-02"]["enrolled"] == 5 and weeks["2026-11-02"]["sent"] == 0
    assert weeks["2026-11-09"]["sent"] == 5 and weeks["2026-11-09"]["bounces"] == 2
    assert weeks["2026-11-16"]["sent"] == 2 and weeks["2026-11-16"]["requalified"] == 2


@pytest.mark.parametrize("since", [None, 12])
@pytest.mark.parametrize("campaign", [None, A])
def test_the_reports_one_pass_gives_the_three_email_views(
    history: Engine, since: int | None, campaign: str | None
) -> None:
    window = stats.Window(NOW, None if since is None else day(since))
    with history.connect() as connection:
        views = stats.email_views(connection, window, campaign)
        for rows, by in (
            (views.campaigns, "campaign"),
            (views.steps, "step"),
            (views.weeks, "week"),
        ):
            expected = [r.as_dict() for r in stats.read(connection, by, window, campaign)]
            assert [r.as_dict() for r in rows] == expected, by
            assert expected or (since and campaign)  # the history has rows to compare


def test_by_reason_is_the_closed_loop(history: Engine) -> None:
    reasons = {r["reason"]: r for r in read(history, "reason")}
    assert reasons["no_budget"] == {
        "reason": "no_budget",
        "recycled": 2,
        "engaged": 1,  # jane opened as a person; bob only by a proxy
        "requalified": 2,
        "accepted": 1,  # jane (accepted, then won); bob was rejected
        "won": 1,
        "engaged_rate": 0.5,
        "requalification_rate": 1.0,
        "acceptance_rate": 0.5,
        "win_rate": 0.5,
    }
    # jane's first recycle: engaged then, but her hand-back belongs to the later recycle
    assert reasons["competitor"]["engaged"] == 1 and reasons["competitor"]["requalified"] == 0
    assert reasons["bad_timing"]["engaged"] == 0  # a bounce and an unsubscribe are no interest
    # bob's second recycle (after the rejection) and erin: nothing since
    assert (reasons["not_a_fit"]["recycled"], reasons["not_a_fit"]["requalified"]) == (2, 0)
    assert reasons["not_a_fit"]["acceptance_rate"] is None

    recent = {r["reason"] for r in read(history, "reason", since=NOW - timedelta(days=30))}
    assert recent == {"no_budget", "bad_timing", "not_a_fit"}  # not September's


def test_an_empty_database_is_zeros(engine: Engine) -> None:
    for by in stats.BY:
        assert read(engine, by) == []


@pytest.fixture
def cli_history(folder: Path, db_url: str) -> Iterator[Path]:
    """The history in the database of a `drip init` folder (the current folder), for the CLI."""
    url = f"sqlite:///{folder / 'drip.db'}" if db_url.startswith("sqlite") else db_url
    engine = make_engine(url)
    try:
        build_history(engine)
    finally:
        engine.dispose()
    return folder


def test_cli_table_rates_beside_counts_and_denominators(cli_history: Path) -> None:
    code, out, err = drip("stats")
    assert code == 0, err
    assert (
        "drip stats by campaign: every campaign, emails sent ever up to 2026-11-23 10:00 UTC" in out
    )
    line = next(x for x in out.splitlines() if x.strip().startswith(A))
    assert "5 (83%)" in line and "1 (17%)" in line and "2 (50%)" in line
    assert next(x for x in out.splitlines() if x.strip().startswith("all"))
    assert "rates: delivered / sent; human opens, machine opens" in out
    assert "requalified / enrolled" in out

    code, out, err = drip("stats", "--by", "reason", "--since", "30d")
    assert code == 0, err
    assert "recycles made since 2026-10-24 10:00 (30d)" in out
    assert "accepted and won / requalified" in out


def test_cli_json_and_csv(cli_history: Path) -> None:
    code, out, _ = drip("stats", A, "--by", "step", "--format", "json")
    assert code == 0
    assert [(s["step"], s["sent"], s["reach_rate"]) for s in json.loads(out)] == [
        ("checkin", 4, 1.0),
        ("value", 2, 0.5),
    ]
    code, out, _ = drip("stats", "--format", "csv")
    header, first, *_ = out.splitlines()
    assert header.startswith("campaign,enrolled,sent,delivered,human_opens,machine_opens,clicks")
    assert header.endswith("complaint_rate,requalification_rate")
    assert first.startswith(f"{A},4,6,5,1,1,1,1,1,1,1,2,0.8333,0.2,")


def test_cli_empty_database_zeros_and_a_hint(folder: Path) -> None:
    code, out, err = drip("stats")
    assert code == 0, err
    assert "all " in out and "hint: nothing counted yet" in out
    code, out, _ = drip("stats", "--by", "reason")
    assert code == 0 and "hint: no recycles in this window" in out
    code, out, _ = drip("stats", "--format", "json")
    assert code == 0 and json.loads(out) == []


def test_cli_wrong_since_names_the_accepted_forms(folder: Path) -> None:
    code, out, err = drip("stats", "--since", "3 days")
    assert code == 1 and out == ""
    assert err.strip().startswith('Error: --since: "3 days"')
    assert "7d, 12h or 2w" in err and "2026-11-01" in err
    assert len(err.strip().splitlines()) == 1


def test_cli_unknown_campaign_names_the_known_ones(folder: Path) -> None:
    code, _, err = drip("stats", "no-such-campaign")
    assert code == 1
    assert (
        'no campaign "no-such-campaign" (campaigns: lost-sql-winback, rejected-mql-nurture)' in err
    )
    code, _, err = drip("stats", A)  # a campaign file with no history yet: zeros
    assert code == 0, err
