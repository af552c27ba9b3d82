"""Rate and daily cap: the token bucket and the cap in front of a provider, and with the dispatcher."""

from __future__ import annotations

import random
from collections.abc import Collection, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from dripengine.clock import FixedClock
from dripengine.config import load_settings
from dripengine.exceptions import ConfigError
from dripengine.mail.message import OutgoingEmail
from dripengine.providers import OutboxProvider, build_provider
from dripengine.providers.base import Evidence, Provider, SendResult
from dripengine.providers.ratelimit import RateLimitedProvider, count_sent_today
from dripengine.storage.engine import session_scope
from dripengine.storage.models import Enrollment, Lead, Message
from tests.test_dispatcher import MONDAY, dispatcher, enroll, make_settings, messages

T0 = datetime(2026, 11, 24, 22, 0, tzinfo=UTC)  # two hours before a UTC midnight


def email(n: int) -> OutgoingEmail:
    return OutgoingEmail(
        uid=f"uid{n:03d}",
        sender="Acme <hello@acme.example>",
        to=f"lead{n}@example.com",
        subject="Hello",
        html="<p>Hello</p>",
        text="Hello",
        created_at=T0,
    )


def emails(count: int) -> list[OutgoingEmail]:
    return [email(n) for n in range(count)]


class FakeProvider(Provider):
    """Records each call (when, which uids); answers ``sent``, or what ``answer`` says."""

    name = "fake"

    def __init__(self, clock: FixedClock, answer: SendResult | None = None) -> None:
        self.clock = clock
        self.answer = answer
        self.calls: list[tuple[datetime, list[str]]] = []
        self.checked = self.closed = False

    def send(self, emails: Sequence[OutgoingEmail]) -> list[SendResult]:
        self.calls.append((self.clock.now(), [e.uid for e in emails]))
        if self.answer is not None:
            return [
                SendResult(e.uid, self.answer.status, retry_after=self.answer.retry_after)
                for e in emails
            ]
        return [SendResult(e.uid, "sent", provider_message_id=f"pm-{e.uid}") for e in emails]

    def check(self) -> None:
        self.checked = True

    def evidence(self, uid: str, created_at: datetime) -> Evidence:
        return "sent" if uid == "known" else "not_sent"

    def close(self) -> None:
        self.closed = True

    @property
    def handed(self) -> list[str]:
        return [uid for _, batch in self.calls for uid in batch]


class Counter:
    """A ``sent_today`` stand-in: a fixed count, and what it was asked."""

    def __init__(self, count: int) -> None:
        self.count = count
        self.asked: list[tuple[datetime, list[str]]] = []

    def __call__(self, now: datetime, exclude: Collection[str]) -> int:
        self.asked.append((now, list(exclude)))
        return self.count


def limited(
    clock: FixedClock,
    inner: Provider,
    *,
    rate: float | None = None,
    burst: int = 5,
    daily_cap: int | None = None,
    sent_today: Counter | None = None,
    max_sleep: float = 1.0,
    moving_sleep: bool = True,
) -> tuple[RateLimitedProvider, list[float]]:
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        if moving_sleep:
            clock.advance(timedelta(seconds=seconds))

    provider = RateLimitedProvider(
        inner,
        rate=rate,
        burst=burst,
        daily_cap=daily_cap,
        sent_today=sent_today or Counter(0),
        clock=clock,
        sleep=sleep,
        max_sleep=max_sleep,
        rng=random.Random(7),
    )
    return provider, slept


# -- the token bucket ------------------------------------------------------------------------------


def test_a_burst_goes_at_once_then_chunks_follow_at_the_rate() -> None:
    clock = FixedClock(T0)
    inner = FakeProvider(clock)
    provider, slept = limited(clock, inner, rate=10, burst=5, max_sleep=1.0)
    results = provider.send(emails(15))
    assert [r.status for r in results] == ["sent"] * 15
    assert [r.uid for r in results] == [e.uid for e in emails(15)]  # one each, in order
    assert [(when - T0).total_seconds() for when, _ in inner.calls] == [0.0, 0.5, 1.0]
    assert [len(batch) for _, batch in inner.calls] == [5, 5, 5]
    assert sum(slept) == pytest.approx(1.0)


def test_what_the_sleep_bound_does_not_cover_is_retried_when_its_token_comes() -> None:
    clock = FixedClock(T0)
    inner = FakeProvider(clock)
    provider, slept = limited(clock, inner, rate=10, burst=5, max_sleep=0.25)
    results = provider.send(emails(12))
    # 5 at once, 2 more after 0.2 s (as many as 0.25 s brings), the other 5 retried, none dropped
    assert [len(batch) for _, batch in inner.calls] == [5, 2]
    assert sum(slept) == pytest.approx(0.2)
    assert [r.uid for r in results] == [e.uid for e in emails(12)]
    assert [r.status for r in results] == ["sent"] * 7 + ["retry"] * 5
    waits = [r.retry_after for r in results[7:]]
    # from the batch time (T0, the emails' created_at): the 0.2 s slept, then 0.1 s a token
    assert waits == pytest.approx([0.3, 0.4, 0.5, 0.6, 0.7])
    assert all("rate limit of 10/s" in (r.error or "") for r in results[7:])


def test_the_bucket_refills_while_idle_but_never_beyond_the_burst() -> None:
    clock = FixedClock(T0)
    inner = FakeProvider(clock)
    provider, _ = limited(clock, inner, rate=2, burst=4, max_sleep=0.0)
    assert [r.status for r in provider.send(emails(6))] == ["sent"] * 4 + ["retry"] * 2
    clock.advance(timedelta(seconds=1))  # two tokens
    assert [r.status for r in provider.send(emails(6))] == ["sent"] * 2 + ["retry"] * 4
    clock.advance(timedelta(hours=1))  # full again, and no more than full
    assert [r.status for r in provider.send(emails(6))] == ["sent"] * 4 + ["retry"] * 2


def test_a_sleep_that_brings_no_time_ends_the_wait_instead_of_spinning() -> None:
    clock = FixedClock(T0)
    inner = FakeProvider(clock)
    provider, slept = limited(clock, inner, rate=10, burst=5, max_sleep=2.0, moving_sleep=False)
    results = provider.send(emails(12))
    assert [r.status for r in results] == ["sent"] * 5 + ["retry"] * 7
    assert sum(slept) <= 2.0 and len(slept) < 10


def test_unlimited_rate_hands_the_whole_batch_in_one_call() -> None:
    clock = FixedClock(T0)
    inner = FakeProvider(clock)
    provider, slept = limited(clock, inner, rate=None, daily_cap=1000)
    assert [r.status for r in provider.send(emails(50))] == ["sent"] * 50
    assert len(inner.calls) == 1 and slept == []


# -- the daily cap ---------------------------------------------------------------------------------


def test_over_the_daily_cap_the_rest_waits_for_the_next_utc_midnight() -> None:
    clock = FixedClock(T0)
    inner = FakeProvider(clock)
    counter = Counter(7)
    provider, _ = limited(clock, inner, daily_cap=10, sent_today=counter)
    results = provider.send(emails(5))
    assert inner.handed == ["uid000", "uid001", "uid002"]
    assert [r.status for r in results] == ["sent"] * 3 + ["retry"] * 2
    for result in results[3:]:
        assert result.retry_after is not None
        assert 2 * 3600 <= result.retry_after <= 2 * 3600 + 60  # 00:00 UTC, plus some jitter
        assert "daily cap of 10 for fake reached (7 today)" in (result.error or "")
    # the count is asked for the batch in hand, so its own 'sending' rows are not counted
    assert counter.asked == [(T0, [e.uid for e in emails(5)])]


def test_at_the_cap_nothing_is_handed_over_and_the_wait_counts_from_the_batch_time() -> None:
    # the dispatcher made the batch at T0 (the emails' created_at) and counts retry_after from it
    clock = FixedClock(T0 + timedelta(seconds=20))
    inner = FakeProvider(clock)
    provider, _ = limited(clock, inner, rate=100, daily_cap=10, sent_today=Counter(12))
    results = provider.send(emails(4))
    assert inner.calls == []
    assert all(r.status == "retry" for r in results)
    assert all(7200 <= (r.retry_after or 0) <= 7260 for r in results)  # not before 00:00 UTC


# -- the provider's own rate limit -----------------------------------------------------------------


def test_a_providers_429_pauses_the_rest_of_the_batch_and_the_next_ones() -> None:
    clock = FixedClock(T0)
    inner = FakeProvider(clock, answer=SendResult("", "retry", retry_after=30.0))
    provider, _ = limited(clock, inner, rate=10, burst=2, max_sleep=5.0)
    results = provider.send(emails(6))
    assert inner.handed == ["uid000", "uid001"]  # not hammered with the rest
    assert [r.retry_after for r in results[:2]] == [30.0, 30.0]  # the provider's own answer
    assert all((r.retry_after or 0) >= 30.0 for r in results[2:])
    clock.advance(timedelta(seconds=10))
    assert all(r.status == "retry" for r in provider.send(emails(3)))
    assert len(inner.calls) == 1  # still paused
    inner.answer = None
    clock.advance(timedelta(seconds=21))
    assert [r.status for r in provider.send(emails(2))] == ["sent", "sent"]


# -- delegation and settings -----------------------------------------------------------------------


def test_name_check_evidence_and_close_are_the_inner_providers() -> None:
    clock = FixedClock(T0)
    inner = FakeProvider(clock)
    provider, _ = limited(clock, inner, rate=1)
    provider.check()
    provider.close()
    assert provider.name == "fake" and inner.checked and inner.closed
    assert provider.evidence("known", T0) == "sent"
    assert provider.evidence("other", T0) == "not_sent"


def test_settings_from_the_environment() -> None:
    settings = load_settings(env={})
    assert (settings.sending.rate_per_second, settings.sending.burst) == (None, 10)
    assert settings.sending.daily_cap is None
    settings = load_settings(
        env={
            "DRIP_SENDING_RATE_PER_SECOND": "2.5",
            "DRIP_SENDING_BURST": "3",
            "DRIP_SENDING_DAILY_CAP": "100",
        }
    )
    assert (settings.sending.rate_per_second, settings.sending.burst) == (2.5, 3)
    assert settings.sending.daily_cap == 100
    with pytest.raises(ConfigError, match="DRIP_SENDING_RATE_PER_SECOND"):
        load_settings(env={"DRIP_SENDING_RATE_PER_SECOND": "0"})


def test_build_provider_wraps_only_when_a_rate_or_cap_is_set(
    engine: Engine, tmp_path: Path
) -> None:
    clock = FixedClock(T0)
    assert isinstance(build_provider(make_settings(tmp_path), engine, clock), OutboxProvider)
    capped = build_provider(make_settings(tmp_path, daily_cap=3), engine, clock)
    assert isinstance(capped, RateLimitedProvider) and capped.name == "outbox"
    paced = build_provider(make_settings(tmp_path, rate_per_second=5.0, burst=2), engine, clock)
    assert isinstance(paced, RateLimitedProvider) and (paced.rate, paced.burst) == (5.0, 2)


# -- the count in the database ---------------------------------------------------------------------


def test_count_sent_today_counts_this_providers_messages_of_the_utc_day(engine: Engine) -> None:
    now = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)
    today, yesterday = now - timedelta(hours=8), now - timedelta(hours=10)
    rows = [
        # (uid, provider, status, created_at, sent_at, counted?)
        ("a", "outbox", "sent", today, today, True),
        ("b", "outbox", "sent", yesterday, today, True),  # a retry that went out today
        ("c", "outbox", "sent", yesterday, yesterday, False),
        ("d", "outbox", "unknown", today, None, True),
        ("e", "outbox", "sending", today, None, True),  # in flight at another worker
        ("f", "outbox", "sending", today, None, False),  # the batch in hand: excluded
        ("g", "outbox", "retry", today, None, False),
        ("h", "outbox", "failed", today, None, False),
        ("i", "smtp", "sent", today, today, False),  # another provider
        ("j", "outbox", "skipped", today, None, False),
    ]
    with session_scope(engine) as session:
        lead = Lead(email="count@acme.example", stage="sql", created_at=now, updated_at=now)
        session.add(lead)
        session.flush()
        assert lead.id is not None
        for n, (uid, provider, status, created, sent, _) in enumerate(rows):
            session.add(
                Message(
                    uid=uid,
                    lead_id=lead.id,
                    step_id=f"s{n}",
                    provider=provider,
                    status=status,
                    created_at=created,
                    sent_at=sent,
                )
            )
    expected = sum(1 for row in rows if row[-1])
    assert count_sent_today(engine, "outbox", now, ["f"]) == expected == 4
    assert count_sent_today(engine, "outbox", now) == 5
    assert count_sent_today(engine, "outbox", now + timedelta(days=1), ["f"]) == 1  # 'e' only


# -- with the dispatcher ---------------------------------------------------------------------------


def test_daily_cap_with_the_dispatcher_sends_three_a_day_and_the_rest_later(
    engine: Engine, tmp_path: Path
) -> None:
    # batches of 2, so the cap is checked again within a day and across a batch
    settings = make_settings(tmp_path, daily_cap=3, batch_size=2)
    addresses = [f"cap{n}@acme.example" for n in range(8)]
    for address in addresses:
        enroll(engine, address)
    tuesday = MONDAY + timedelta(days=1, hours=1)  # the first step is due, inside the window
    clock = FixedClock(tuesday)

    def run() -> tuple[int, int]:
        tally = dispatcher(engine, settings, clock, build_provider(settings, engine, clock))
        result = tally.run_once()
        return result.sent, result.retried

    assert run() == (3, 5)
    assert len(list((tmp_path / "outbox").rglob("*.eml"))) == 3
    wednesday = datetime(2026, 11, 25, tzinfo=UTC)
    with Session(engine) as session:
        waiting = [e for e in session.exec(select(Enrollment)) if e.status == "active"]
        due = sorted(
            e.next_due_at
            for e in waiting
            if e.current_step == "checkin" and e.next_due_at is not None
        )
    assert len(due) == 5
    assert all(wednesday <= when <= wednesday + timedelta(minutes=1) for when in due)
    assert run() == (0, 0)  # nothing more today

    clock.current = tuesday + timedelta(days=1)  # Wednesday: the retries sent yesterday's count
    assert run() == (3, 2)
    clock.current = tuesday + timedelta(days=2)  # Thursday: the last two
    assert run() == (2, 0)

    rows = messages(engine)
    assert sorted(m.status for m in rows) == ["sent"] * 8  # none dropped, none twice
    assert len({m.uid for m in rows}) == 8
    assert len(list((tmp_path / "outbox").rglob("*.eml"))) == 8
    per_day: dict[str, int] = {}
    for m in rows:
        assert m.sent_at is not None
        per_day[m.sent_at.date().isoformat()] = per_day.get(m.sent_at.date().isoformat(), 0) + 1
    assert per_day == {"2026-11-24": 3, "2026-11-25": 3, "2026-11-26": 2}
