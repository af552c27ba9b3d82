"""Wait for a condition with a deadline, not for a fixed time.

``wait_for(condition, timeout=30, what="...")`` calls ``condition()`` until it returns something
truthy and returns that value. It checks again after a short pause that grows (1 ms, 2 ms, 4 ms …)
up to ``interval``, so a fast condition costs next to nothing and a slow one does not spin. Past the
deadline it raises an :class:`AssertionError` naming ``what`` and the last value seen; an exception
raised by ``condition`` is not caught (a daemon that died says so at once, not after the deadline).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_for(
    condition: Callable[[], T],
    timeout: float = 30.0,
    what: str = "the condition",
    interval: float = 0.1,
) -> T:
    """The first truthy value of ``condition()``; AssertionError past ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    pause = min(0.001, interval)
    while True:
        value = condition()
        if value:
            return value
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError(
                f"timed out after {timeout:g} s waiting for {what}; last: {value!r}"
            )
        time.sleep(min(pause, left))
        pause = min(pause * 2, interval)
