"""Per-row problems of an import, printed so a person can fix the file."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

import click

from dripengine.cli.output import terminal_safe

SHOWN = 20


class Problem(Protocol):
    @property
    def line(self) -> int: ...
    @property
    def message(self) -> str: ...


def print_row_problems(
    problems: Sequence[Problem], path: Path, more_hint: str = "--format json"
) -> None:
    for problem in problems[:SHOWN]:
        click.echo(f"{path}:{problem.line}: {terminal_safe(problem.message)}", err=True)
    if len(problems) > SHOWN:
        click.echo(
            f"… and {len(problems) - SHOWN} more (use {more_hint} for the full list)", err=True
        )
