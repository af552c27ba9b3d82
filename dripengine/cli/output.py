"""Listings as a table for people, or JSON / CSV for scripts (keys are the model's field names)."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import click
from rich.console import Console
from rich.markup import escape
from rich.table import Table

FORMATS = ("table", "json", "csv")

format_option = click.option(
    "--format",
    "fmt",
    type=click.Choice(FORMATS),
    default="table",
    show_default=True,
    help="table for people; json or csv for scripts.",
)


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M")
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, dict):
        return ", ".join(f"{k}={v}" for k, v in value.items())
    return str(value)


def emit_rows(
    rows: Sequence[Mapping[str, Any]],
    fmt: str,
    columns: Sequence[str],
    *,
    title: str | None = None,
    empty: str = "nothing to show",
) -> None:
    if fmt == "json":
        click.echo(json.dumps([_plain(dict(r)) for r in rows], indent=2, ensure_ascii=False))
        return
    if fmt == "csv":
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=list(columns), extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            writer.writerow({c: _csv_cell(row.get(c)) for c in columns})
        click.echo(buffer.getvalue(), nl=False)
        return
    if not rows:
        click.echo(empty)
        return
    table = Table(title=title, show_lines=False)
    for column in columns:
        table.add_column(column)
    for row in rows:
        # a cell is data, never rich markup: "[Acme]" or "click [pricing]" shows as written
        table.add_row(*(escape(_cell(row.get(c))) for c in columns))
    console().print(table)


def _csv_cell(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False)
    return value


def emit_object(obj: Mapping[str, Any], fmt: str) -> bool:
    """Print ``obj`` as JSON when asked for; return False when the caller should print a view."""
    if fmt == "json":
        click.echo(json.dumps(_plain(dict(obj)), indent=2, ensure_ascii=False))
        return True
    return False


PIPE_WIDTH = 160  # rich wraps at 80 columns when output is not a terminal: too narrow for tables


def console() -> Console:
    probe = Console()
    width = None if probe.is_terminal else PIPE_WIDTH
    return Console(soft_wrap=False, highlight=False, width=width)
