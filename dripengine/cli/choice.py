"""``click.Choice`` that names the nearest choice: ``--from sqll`` -> did you mean "sql"?"""

from __future__ import annotations

from typing import Any

import click

from dripengine.suggest import did_you_mean


class Choice(click.Choice):
    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        try:
            return super().convert(value, param, ctx)
        except click.BadParameter:
            hint = did_you_mean(str(value), [str(c) for c in self.choices])
            if not hint:
                raise
            choices = ", ".join(repr(str(c)) for c in self.choices)
            self.fail(f"{str(value)!r} is not one of {choices}{hint}.", param, ctx)


__all__ = ["Choice"]
