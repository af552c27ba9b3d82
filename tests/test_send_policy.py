from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from hypothesis import given
from hypothesis import strategies as st

from dripengine.campaigns.sequence import Progress
from dripengine.campaigns.window import in_window
from dripengine.sending.policy import DueLead, decide
from tests.test_sequence import make, step

BERLIN = ZoneInfo("Europe/Berlin")
TUESDAY_10 = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)  # 10:00 in Berlin
CAMPAIGN = make(
    cold={
        "min_score": 0,
        "steps": [
            step("a", "1d"),
            step("b", "2d", condition={"event": "opened", "step": "a"}),
            step("c", "1d"),
        ],
    },
    warm={"min_score": 30, "steps": [step("w", "1h")]},
)
CAMPAIGN = CAMPAIGN.model_copy(
    update={"send": CAMPAIGN.send.model_copy(update={"timezone": "Europe/Berlin"})}
)
LEAD = DueLead("jane@acme.example", 0, BERLIN)
START = TUESDAY_10 - timedelta(days=1)


def run(
    progress: Progress | None = None,
    *,
    lead: DueLead = LEAD,
    now: datetime = TUESDAY_10,
    recent: list[datetime] | None = None,
    cap: int = 3,
    campaign=CAMPAIGN,
):  # type: ignore[no-untyped-def]
    return decide(
        campaign,
        lead,
        progress or Progress(last_at=START),
        entered_at=START,
        recent_sends=recent or [],
        cap=cap,
        now=now,
    )


def test_due_step_is_sent() -> None:
    decision = run()
    assert (decision.kind, decision.track, decision.step.id if decision.step else None) == (
        "send",
        "cold",
        "a",
    )


def test_suppression_and_reply_exit_first() -> None:
    assert run(lead=DueLead("x@acme.example", 0, BERLIN, suppressed="unsubscribe")).kind == "exit"
    replied = (
        Progress(last_at=START).after("a", START, sent=True).with_engagement([("a", "replied")])
    )
    decision = run(replied)
    assert (decision.kind, decision.reason) == ("exit", "replied")


def test_time_limit_exit() -> None:
    limited = make(exit={"after_days": 1}, cold={"min_score": 0, "steps": [step("a", "3d")]})
    assert (
        run(campaign=limited, now=START + timedelta(days=2)).reason
        == "campaign time limit (1 days)"
    )


def test_outside_window_waits_for_the_opening() -> None:
    saturday = datetime(2026, 11, 28, 12, tzinfo=UTC)
    decision = run(now=saturday)
    assert decision.kind == "wait" and decision.reason == "outside the send window"
    assert (
        decision.until is not None
        and decision.until.astimezone(BERLIN).strftime("%a %H") == "Mon 09"
    )


def test_not_due_yet_and_track_by_score() -> None:
    decision = run(Progress(last_at=TUESDAY_10))
    assert (
        decision.kind == "wait"
        and decision.until is not None
        and decision.until >= TUESDAY_10 + timedelta(days=1)
    )
    warm = run(lead=DueLead("jane@acme.example", 45, BERLIN), now=TUESDAY_10 + timedelta(hours=2))
    assert (warm.kind, warm.track) == ("send", "warm")


def test_failed_condition_skips() -> None:
    progress = Progress(last_at=START - timedelta(days=2)).after(
        "a", START - timedelta(days=2), sent=True
    )
    decision = run(progress)
    assert (decision.kind, decision.step.id if decision.step else None) == ("skip", "b")
    assert run(progress.with_engagement([("a", "opened")])).kind == "send"


def test_frequency_cap_waits_until_the_oldest_leaves_the_week() -> None:
    recent = [
        TUESDAY_10 - timedelta(days=6),
        TUESDAY_10 - timedelta(days=3),
        TUESDAY_10 - timedelta(hours=5),
    ]
    decision = run(recent=recent, cap=3)
    assert (
        decision.kind == "wait" and "frequency cap: 3 emails in 7 days (max 3)" in decision.reason
    )
    assert decision.until is not None and decision.until >= recent[0] + timedelta(days=7)
    assert run(recent=recent, cap=4).kind == "send"
    assert run(recent=[TUESDAY_10 - timedelta(days=8)] * 5, cap=1).kind == "send"


@given(
    now=st.datetimes(
        min_value=datetime(2026, 1, 1), max_value=datetime(2027, 12, 31), timezones=st.just(UTC)
    ),
    zone=st.sampled_from(
        ["Europe/Berlin", "America/New_York", "Asia/Kolkata", "Australia/Sydney", "UTC"]
    ),
    sends=st.integers(min_value=0, max_value=6),
)
def test_never_sends_outside_the_window_and_waits_into_it(
    now: datetime, zone: str, sends: int
) -> None:
    tz = ZoneInfo(zone)
    lead = DueLead("p@acme.example", 0, tz)
    recent = [now - timedelta(hours=20 * (i + 1)) for i in range(sends)]
    decision = decide(
        CAMPAIGN,
        lead,
        Progress(last_at=now - timedelta(days=30)),
        entered_at=now - timedelta(days=30),
        recent_sends=recent,
        cap=3,
        now=now,
    )
    if decision.kind == "send":
        assert in_window(now, CAMPAIGN.send.window, tz)
    if decision.kind == "wait":
        assert decision.until is not None and decision.until > now
        assert in_window(decision.until, CAMPAIGN.send.window, tz)
