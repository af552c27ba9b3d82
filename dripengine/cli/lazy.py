"""A click group whose subcommands are imported when they are used, not when ``drip`` starts.

Importing every command module up front cost ~1.1 s of CPU at each start (SQLAlchemy, Alembic,
Starlette, Rich, the report's assets…), paid by every ``drip run --once`` from cron and by each
worker process. This is click's documented pattern for lazily loaded subcommands
(https://click.palletsprojects.com/en/stable/complex/#lazily-loading-subcommands): the group knows
each command's name, where it lives (``"module:attribute"``) and its short help, and imports it on
first use. ``drip --help`` lists them all from the table without importing any of them (a test
holds each short help to the command's own docstring).
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any, NamedTuple

import click


class LazyCommand(NamedTuple):
    where: str  # "module:attribute"
    short_help: str  # what `--help` lists: the command's own get_short_help_str(), untruncated


FULL = 10_000  # a short help is never cut: the help formatter wraps it into its column


class LazyGroup(click.Group):
    def __init__(
        self, *args: Any, lazy: Mapping[str, str | LazyCommand] | None = None, **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        # a bare "module:attribute" has no short help of its own: --help imports it to read it
        self.lazy = {
            name: entry if isinstance(entry, LazyCommand) else LazyCommand(entry, "")
            for name, entry in (lazy or {}).items()
        }

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self.lazy})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.lazy and cmd_name not in self.commands:
            self.add_command(load(self.lazy[cmd_name].where), cmd_name)
        return super().get_command(ctx, cmd_name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """click's own listing, with the short help of a command not loaded yet from the table;
        each command's first sentence in full, wrapped (click would cut it at the width, "…")."""
        commands: list[tuple[str, click.Command]] = []
        for name in self.list_commands(ctx):
            command = self.commands.get(name)
            if command is None and self.lazy.get(name, LazyCommand("", "")).short_help:
                command = click.Command(name, help=self.lazy[name].short_help)
            elif command is None:
                command = self.get_command(ctx, name)
            if command is not None and not command.hidden:
                commands.append((name, command))
        if commands:
            rows = [(name, command.get_short_help_str(FULL)) for name, command in commands]
            with formatter.section("Commands"):
                formatter.write_dl(rows)


def load(where: str) -> click.Command:
    """The command at ``"module:attribute"``."""
    module_name, _, attribute = where.partition(":")
    command = getattr(importlib.import_module(module_name), attribute)
    if not isinstance(command, click.Command):
        raise TypeError(f"{where} is not a click command")
    return command
