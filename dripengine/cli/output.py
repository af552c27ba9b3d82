"""Listings as a table for people, or JSON / CSV for scripts (keys are the model's field names)."""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

import click

from dripengine.cli.choice import Choice

if TYPE_CHECKING:  # rich is imported when a table is printed, not by every command that prints
    from rich.console import Console

FORMATS = ("text", "json", "csv")  # every command's --format: the same three
FORMAT_ALIASES = {"table": "text", "markdown": "text"}  # the names some commands used before


class FormatChoice(Choice):
    """``--format text|json|csv``; the earlier ``table`` and ``markdown`` still mean ``text``."""

    def __init__(self) -> None:
        super().__init__(FORMATS, case_sensitive=False)

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, str) and value.lower() in FORMAT_ALIASES:
            return FORMAT_ALIASES[value.lower()]
        return super().convert(value, param, ctx)


# OWASP "CSV injection": a cell a spreadsheet would run as a formula (or that Excel/LibreOffice
# split on tab/CR) is written with a leading ' so it is shown as the text it is.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
# Terminal control in lead data: escape sequences (CSI "\x1b[2J", OSC 8 hyperlinks and titles
# "\x1b]…\x07", DCS/APC/PM strings, two-character escapes), then any other C0/C1 control and the
# bidirectional overrides that reorder what a reader sees ("Trojan Source").
_TERMINAL = re.compile(
    r"(?:\x1b\[|\x9b)[0-?]*[ -/]*[@-~]?"
    r"|(?:\x1b[\]PX^_]|[\x9d\x90\x98\x9e\x9f])[^\x07\x1b\x9c]*(?:\x07|\x1b\\|\x9c)?"
    r"|\x1b.?"
    r"|[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]"
)
_LINE_BREAKS = re.compile(r"[\t\n\r]+")


def terminal_safe(text: str) -> str:
    """``text`` as a terminal may show it: escape sequences and control characters removed,
    line breaks and tabs made spaces (one line of lead data never forges another line)."""
    if text.isprintable():
        return text
    return _LINE_BREAKS.sub(" ", _TERMINAL.sub("", text))


def shown(value: object) -> str:
    """Lead data for a rich console: terminal-safe, and ``[bold]`` stays text, not markup."""
    from rich.markup import escape

    return escape(terminal_safe("" if value is None else str(value)))


# what click.echo strips from output that is not a terminal (its own strip_ansi): a cell that
# starts a formula only once they are gone is a formula in the file all the same
_CLICK_STRIPS = re.compile(r"\033\[[;?0-9]*[a-zA-Z]")


def csv_safe(value: Any) -> Any:
    """A text cell that would start a formula gets a leading ``'``; numbers stay numbers."""
    if isinstance(value, str) and _CLICK_STRIPS.sub("", value).startswith(FORMULA_START):
        return "'" + value
    return value


class SafeDictWriter(csv.DictWriter):
    """``csv.DictWriter`` whose every text cell goes through :func:`csv_safe`: every CSV export."""

    def writerow(self, rowdict: Mapping[str, Any]) -> Any:
        return super().writerow({k: csv_safe(v) for k, v in rowdict.items()})


format_option = click.option(
    "--format",
    "fmt",
    type=FormatChoice(),
    default="text",
    show_default=True,
    help="text for people; json or csv for scripts.",
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
        writer = SafeDictWriter(buffer, fieldnames=list(columns), extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            writer.writerow({c: _csv_cell(row.get(c)) for c in columns})
        click.echo(buffer.getvalue(), nl=False)
        return
    if not rows:
        click.echo(empty)
        return
    # a cell is data, never rich markup: "[Acme]" or "click [pricing]" shows as written
    cells = [[shown(_cell(row.get(c))) for c in columns] for row in rows]
    out = console()
    key_width = max(len(columns[0]), *(len(line[0]) for line in cells))
    if key_width + 4 + (len(columns) - 1) * MIN_OTHER_COLUMN > out.width:
        _records(out, title, columns, cells)  # too narrow for a table that keeps the key whole
        return
    from rich.table import Table

    table = Table(title=title, show_lines=False)
    # the key (an address, an id) is never cut: the other columns wrap instead
    table.add_column(columns[0], no_wrap=True, min_width=key_width)
    for column in columns[1:]:
        table.add_column(column, overflow="fold")
    for line in cells:
        table.add_row(*line)
    out.print(table)


MIN_OTHER_COLUMN = 7  # a column narrower than this (with its borders) is not worth reading


def _records(
    out: Console, title: str | None, columns: Sequence[str], cells: list[list[str]]
) -> None:
    """One block a row, ``column  value`` a line: for a terminal too narrow for the table."""
    if title:
        out.print(title)
    width = max(len(c) for c in columns)
    for row in cells:
        out.print(f"[bold]{row[0]}[/bold]", soft_wrap=True)  # copied whole from a terminal
        for column, value in zip(columns[1:], row[1:], strict=True):
            if value:
                out.print(f"  {column:<{width}}  {value}")


def _csv_cell(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False)
    return value


def emit_object(
    obj: Mapping[str, Any],
    fmt: str,
    rows: tuple[Sequence[str], Sequence[Mapping[str, Any]]] | None = None,
) -> bool:
    """Print ``obj`` as JSON, or as CSV, when asked for; False when the caller should print the
    text view. The CSV is ``rows`` (``(columns, rows)``: the list the object is about, such as a
    lead's score changes) when given, else ``obj`` as one row (nested values as JSON cells)."""
    if fmt == "json":
        click.echo(json.dumps(_plain(dict(obj)), indent=2, ensure_ascii=False))
        return True
    if fmt == "csv":
        columns, lines = rows if rows is not None else (list(obj), [obj])
        emit_rows([_plain(dict(line)) for line in lines], "csv", columns)
        return True
    return False


PIPE_WIDTH = 160  # rich wraps at 80 columns when output is not a terminal: too narrow for tables


def console() -> Console:
    from rich.console import Console

    probe = Console()
    width = None if probe.is_terminal else PIPE_WIDTH
    return Console(soft_wrap=False, highlight=False, width=width)
