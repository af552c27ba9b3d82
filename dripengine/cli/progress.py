"""A progress bar on a terminal; for ``drip run --once`` off a terminal, a line every N seconds."""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn


@contextmanager
def progress_bar(label: str, total: int | None) -> Iterator[Callable[[int], None]]:
    """Yield a callback taking the number of rows (or emails) done so far.

    The bar is drawn on stderr, and only when stderr is a terminal: stdout keeps exactly what the
    command prints, piped or not.
    """
    if not sys.stderr.isatty():
        yield lambda _done: None
        return
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, transient=True, console=Console(stderr=True)) as bar:
        task = bar.add_task(label, total=total)
        yield lambda done: bar.update(task, completed=done)


@contextmanager
def progress_lines(every: float, line: Callable[[float], str]) -> Iterator[None]:
    """While the block runs, print ``line(seconds_elapsed)`` on stderr every ``every`` seconds.

    For logs (cron, systemd, CI) where a bar cannot be drawn: a long run still says how far it
    is. Nothing is printed by a block shorter than ``every``; ``every`` <= 0 prints nothing.
    The elapsed time is read from the monotonic clock: it is presentation, not the app's time.
    """
    if every <= 0:
        yield
        return
    started = time.monotonic()
    stop = threading.Event()

    def beat() -> None:
        while not stop.wait(every):
            click.echo(line(time.monotonic() - started), err=True)

    thread = threading.Thread(target=beat, name="drip-progress", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def count_data_lines(path: str) -> int:
    """Rough row count for the bar (physical lines minus the header)."""
    with open(path, "rb") as handle:
        return max(sum(1 for _ in handle) - 1, 0)
