"""A click group whose subcommands are imported when they are used, not when ``drip`` starts.

Importing every command module up front cost ~1.1 s of CPU at each start (SQLAlchemy, Alembic,
Starlette, Rich, the report's assets…), paid by every ``drip run --once`` from cron and by each
worker process. This is click's documented pattern for lazily loaded subcommands
(https://click.palletsprojects.com/en/stable/complex/#lazily-loading-subcommands): the group knows
each command's name and where it lives (``"module:attribute"``) and imports it on first use;
``drip --help`` still lists them all (it imports them to read their short help).
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any

import click


class LazyGroup(click.Group):
    def __init__(self, *args: Any, lazy: Mapping[str, str] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lazy = dict(lazy or {})

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self.lazy})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.lazy and cmd_name not in self.commands:
            self.add_command(load(self.lazy[cmd_name]), cmd_name)
        return super().get_command(ctx, cmd_name)


def load(where: str) -> click.Command:
    """The command at ``"module:attribute"``."""
    module_name, _, attribute = where.partition(":")
    command = getattr(importlib.import_module(module_name), attribute)
    if not isinstance(command, click.Command):
        raise TypeError(f"{where} is not a click command")
    return command
