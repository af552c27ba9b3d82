"""A progress bar on a terminal, nothing when output is piped."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager

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


def count_data_lines(path: str) -> int:
    """Rough row count for the bar (physical lines minus the header)."""
    with open(path, "rb") as handle:
        return max(sum(1 for _ in handle) - 1, 0)
