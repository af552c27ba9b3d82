"""tests/waiting.py: the one way tests wait for something another process or thread does."""

import itertools
import time

import pytest

from tests.waiting import wait_for


def test_it_returns_the_first_truthy_value_as_soon_as_it_comes() -> None:
    values = iter([None, 0, "", [], ["done"]])
    started = time.monotonic()
    assert wait_for(lambda: next(values), timeout=5) == ["done"]
    assert time.monotonic() - started < 0.5  # short pauses at first: no fixed 0.1 s per check


def test_past_the_deadline_it_names_what_it_waited_for_and_the_last_value() -> None:
    started = time.monotonic()
    with pytest.raises(AssertionError) as raised:
        wait_for(lambda: [], timeout=0.2, what="the outbox to fill")
    waited = time.monotonic() - started
    assert str(raised.value) == "timed out after 0.2 s waiting for the outbox to fill; last: []"
    assert 0.2 <= waited < 1.0


def test_an_error_in_the_condition_is_raised_at_once_not_at_the_deadline() -> None:
    def died() -> bool:
        raise AssertionError("drip serve exited 1")

    started = time.monotonic()
    with pytest.raises(AssertionError, match="drip serve exited 1"):
        wait_for(died, timeout=30)
    assert time.monotonic() - started < 1.0


def test_pauses_grow_but_never_past_the_interval() -> None:
    calls: list[float] = []

    def never() -> bool:
        calls.append(time.monotonic())
        return False

    with pytest.raises(AssertionError):
        wait_for(never, timeout=0.5, interval=0.05)
    gaps = [b - a for a, b in itertools.pairwise(calls)]
    assert gaps[0] < 0.05  # the first re-check comes quickly
    assert (
        max(gaps) < 0.2
    )  # capped at the interval (50 ms) plus slack; doubling on would reach 0.26 s
    assert len(calls) >= 6  # 1, 2, 4, 8, 16, 32 ms, then every 50 ms
