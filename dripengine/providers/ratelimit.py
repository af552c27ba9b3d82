"""Rate and daily cap per provider: a :class:`Provider` wrapper that paces, never drops.

:class:`RateLimitedProvider` sits between the dispatcher and a real provider:

- a **token bucket** (``rate`` emails a second, ``burst`` at once) hands the inner provider only as
  many emails as there are tokens, in chunks of up to ``burst``, sleeping between chunks for at most
  ``max_sleep`` seconds a batch; the rest of the batch is answered ``retry`` with ``retry_after`` =
  the time its token will be there;
- a **daily cap** (UTC day): ``sent_today(now, uids)`` says how many emails this provider was
  handed today, not counting ``uids`` (the batch in hand); over the cap, the rest of the batch is
  ``retry`` with ``retry_after`` = the next 00:00 UTC plus a little jitter;
- a provider's own rate limit (a ``retry`` answer with ``retry_after``, such as an HTTP 429) empties
  the bucket and pauses this wrapper for that long: the rest of the batch is not handed over.

Pure logic: the clock, the sleep and the count are injected. :func:`count_sent_today` is the count
against the ``message`` table (:func:`dripengine.storage.messages.count_handed`);
:func:`sent_today_query` binds it to an engine and a provider.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable, Collection, Sequence
from datetime import datetime, timedelta

from dripengine.clock import Clock, ensure_utc
from dripengine.mail.message import OutgoingEmail
from dripengine.providers.base import Evidence, Provider, SendResult
from dripengine.storage import Engine
from dripengine.storage.messages import count_handed

MIN_RETRY_AFTER = 0.001  # seconds; the dispatcher reads 0 as "no wait given" and backs off instead
MIDNIGHT_JITTER = 60.0  # seconds after 00:00 UTC over which capped emails are spread
DEFAULT_MAX_SLEEP = 5.0  # seconds one send() may sleep waiting for tokens
MAX_LAG = 300.0  # seconds; an email's created_at older than this is not its batch's time

SentToday = Callable[[datetime, Collection[str]], int]


class RateLimitedProvider(Provider):
    """``inner`` behind a token bucket and a daily cap; ``name``, ``check``, ``evidence``, ``close``
    are the inner provider's."""

    def __init__(
        self,
        inner: Provider,
        *,
        rate: float | None,
        burst: int,
        daily_cap: int | None,
        sent_today: SentToday,
        clock: Clock,
        sleep: Callable[[float], None] = time.sleep,
        max_sleep: float = DEFAULT_MAX_SLEEP,
        rng: random.Random | None = None,
        jitter: float = MIDNIGHT_JITTER,
    ) -> None:
        if rate is not None and rate <= 0:
            raise ValueError("rate must be positive (None: unlimited)")
        if burst < 1:
            raise ValueError("burst must be at least 1")
        if daily_cap is not None and daily_cap < 0:
            raise ValueError("daily_cap must not be negative (None: no cap)")
        self.inner = inner
        self.name = inner.name
        self.rate = rate
        self.burst = burst
        self.daily_cap = daily_cap
        self.sent_today = sent_today
        self.clock = clock
        self.sleep = sleep
        self.max_sleep = max_sleep
        self.rng = rng or random.Random()
        self.jitter = jitter
        self._tokens = float(burst)  # a fresh bucket is full
        self._refilled_at: datetime | None = None
        self._paused_until: datetime | None = None  # the provider's own 429 asked us to wait

    # -- delegated ------------------------------------------------------------------------------

    def check(self) -> None:
        self.inner.check()

    def evidence(self, uid: str, created_at: datetime) -> Evidence:
        return self.inner.evidence(uid, created_at)

    def close(self) -> None:
        self.inner.close()

    # -- sending --------------------------------------------------------------------------------

    def send(self, emails: Sequence[OutgoingEmail]) -> list[SendResult]:
        if not emails:
            return []
        now = ensure_utc(self.clock.now())
        results: dict[str, SendResult] = {}
        allowed = len(emails)
        if self.daily_cap is not None:
            already = self.sent_today(now, [e.uid for e in emails])
            allowed = max(0, min(allowed, self.daily_cap - already))
            if allowed < len(emails):
                midnight = _day_start(now) + timedelta(days=1)
                until = (midnight - now).total_seconds()
                error = (
                    f"daily cap of {self.daily_cap} for {self.name} reached ({already} today); "
                    f"waits for {midnight:%Y-%m-%d} 00:00 UTC"
                )
                for email in emails[allowed:]:
                    results[email.uid] = SendResult(
                        email.uid,
                        "retry",
                        error=error,
                        retry_after=until + _lag(email, now) + self.rng.uniform(0, self.jitter),
                    )
        for result in self._paced(emails[:allowed]):
            results[result.uid] = result
        return [results[email.uid] for email in emails]

    def _paced(self, emails: Sequence[OutgoingEmail]) -> list[SendResult]:
        """Hand ``emails`` to the inner provider as tokens allow; ``retry`` the rest."""
        results: list[SendResult] = []
        pending = list(emails)
        slept = 0.0
        while pending:
            now = ensure_utc(self.clock.now())
            paused = self._pause_left(now)
            if paused is not None:
                return results + self._deferred(pending, paused, "paused: the provider asked")
            if self.rate is None:
                return results + self._handed(pending, now)
            self._refill(now)
            slack = 1e-6 * self.rate + 1e-9  # the clock counts microseconds
            # the biggest chunk (up to a burst) whose tokens are there within the sleep left
            reachable = self._tokens + self.rate * max(0.0, self.max_sleep - slept) + slack
            chunk = min(len(pending), self.burst, math.floor(reachable))
            if chunk <= 0:
                break
            if self._tokens + slack < chunk:
                wait = (chunk - self._tokens) / self.rate
                self.sleep(wait)
                slept += wait
                continue  # the clock says how many tokens the sleep brought
            self._tokens = max(0.0, self._tokens - chunk)
            results += self._handed(pending[:chunk], now)
            pending = pending[chunk:]
        if not pending:
            return results
        return results + self._deferred(pending, 0.0, f"rate limit of {self.rate:g}/s")

    def _handed(self, emails: Sequence[OutgoingEmail], now: datetime) -> list[SendResult]:
        answered = self.inner.send(emails)
        waits = [r.retry_after for r in answered if r.status == "retry" and r.retry_after]
        if waits:  # the provider's own rate limit: stop handing it emails for that long
            self._tokens = 0.0
            pause = now + timedelta(seconds=max(waits))
            self._paused_until = max(pause, self._paused_until or pause)
        return answered

    def _deferred(
        self, emails: Sequence[OutgoingEmail], after: float, reason: str
    ) -> list[SendResult]:
        """``retry`` each email, due when its token will be there (``after`` seconds from now)."""
        rate = self.rate
        tokens = self._tokens if after == 0.0 else 0.0
        results = []
        for position, email in enumerate(emails):
            wait = after + ((position + 1 - tokens) / rate if rate is not None else 0.0)
            wait += _lag(email, ensure_utc(self.clock.now()))
            wait = max(wait, MIN_RETRY_AFTER)
            results.append(
                SendResult(
                    email.uid,
                    "retry",
                    error=f"{reason} ({self.name}): waits {wait:.1f}s",
                    retry_after=wait,
                )
            )
        return results

    def _refill(self, now: datetime) -> None:
        assert self.rate is not None
        if self._refilled_at is not None and now > self._refilled_at:
            elapsed = (now - self._refilled_at).total_seconds()
            self._tokens = min(float(self.burst), self._tokens + elapsed * self.rate)
        if self._refilled_at is None or now > self._refilled_at:
            self._refilled_at = now

    def _pause_left(self, now: datetime) -> float | None:
        if self._paused_until is None or now >= self._paused_until:
            self._paused_until = None
            return None
        return (self._paused_until - now).total_seconds()


def count_sent_today(
    engine: Engine,
    provider_name: str,
    now: datetime,
    exclude: Collection[str] = (),
    *,
    lookback_days: int = 7,
) -> int:
    """How many emails ``provider_name`` was handed since today's 00:00 UTC, not counting the
    messages ``exclude`` (the batch in hand, already recorded as ``sending``).

    Counted: ``sent`` rows by ``sent_at`` (a retry created yesterday and sent today is today's),
    ``unknown`` rows by ``created_at``, and every ``sending`` row (in flight now, at another
    worker). One aggregate in SQL; ``created_at`` is bounded by ``lookback_days`` so the
    (status, created_at) index serves it: a message retried for longer than that is not counted.
    """
    start = _day_start(ensure_utc(now))
    return count_handed(
        engine, provider_name, start, start - timedelta(days=lookback_days), exclude
    )


def sent_today_query(engine: Engine, provider_name: str, *, lookback_days: int = 7) -> SentToday:
    """The ``sent_today`` count for :class:`RateLimitedProvider`, against this database."""

    def count(now: datetime, exclude: Collection[str]) -> int:
        return count_sent_today(engine, provider_name, now, exclude, lookback_days=lookback_days)

    return count


def _lag(email: OutgoingEmail, now: datetime) -> float:
    """Seconds since the dispatcher made ``email`` (its batch time, which ``retry_after`` counts
    from): the time spent rendering and waiting for tokens, at most :data:`MAX_LAG`."""
    lag = (now - ensure_utc(email.created_at)).total_seconds()
    return min(max(0.0, lag), MAX_LAG)


def _day_start(now: datetime) -> datetime:
    """00:00 UTC of ``now``'s UTC day."""
    return ensure_utc(now).replace(hour=0, minute=0, second=0, microsecond=0)
