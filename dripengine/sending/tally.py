"""What a dispatch did: the totals (:class:`Tally`) and the running count a progress bar shows."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class Tally:
    claimed: int = 0
    sent: int = 0
    retried: int = 0
    failed: int = 0
    skipped: int = 0
    waiting: int = 0
    held_back: int = 0  # steps of holdout enrollments that fell due: nothing sent
    exited: int = 0
    completed: int = 0
    recovered: int = 0
    errors: list[str] = field(default_factory=list)

    def add(self, other: Tally) -> None:
        for name in (
            "claimed",
            "sent",
            "retried",
            "failed",
            "skipped",
            "waiting",
            "held_back",
            "exited",
            "completed",
            "recovered",
        ):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.errors += other.errors


@dataclass(frozen=True)
class RunCounts:
    """How far ``run_once`` is: claimed enrollments whose outcome is committed, emails sent and
    failed so far (recorded), for ``run_once(on_counts=…)``."""

    done: int
    sent: int
    failed: int


class ProgressHook:
    """The running count for ``run_once(on_progress=…, on_counts=…)``; called under a lock (two
    threads add)."""

    def __init__(
        self,
        callback: Callable[[int], None] | None = None,
        counts: Callable[[RunCounts], None] | None = None,
    ) -> None:
        self.callback = callback
        self.counts = counts
        self.done = self.sent = self.failed = 0
        self.lock = threading.Lock()

    def add(self, count: int, *, sent: int = 0, failed: int = 0) -> None:
        if (self.callback is None and self.counts is None) or count <= 0:
            return
        with self.lock:
            self.done += count
            self.sent += sent
            self.failed += failed
            if self.callback is not None:
                self.callback(self.done)
            if self.counts is not None:
                self.counts(RunCounts(self.done, self.sent, self.failed))


__all__ = ["ProgressHook", "RunCounts", "Tally"]
