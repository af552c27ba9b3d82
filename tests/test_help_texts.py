"""Help texts are never cut (issue 15, item 13): every group's command list shows each command's
first sentence whole, wrapped to the terminal, at every level and width; click would end a long
one in "..." at the column's width."""

from __future__ import annotations

import click
import pytest
from click.testing import CliRunner

from dripengine.cli import main


def _groups(group: click.Group, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    found = [path]
    ctx = click.Context(group)
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        if isinstance(command, click.Group):
            found += _groups(command, (*path, name))
    return found


@pytest.mark.parametrize("width", [60, 80, 120])
@pytest.mark.parametrize("path", _groups(main), ids=lambda p: " ".join(p) or "drip")
def test_no_command_list_is_cut(path: tuple[str, ...], width: int) -> None:
    result = CliRunner().invoke(main, [*path, "--help"], terminal_width=width)
    assert result.exit_code == 0, result.output
    listing = result.output.split("Commands:\n", 1)[1]
    assert "..." not in listing and "…" not in listing, listing
    assert all(len(line) <= width for line in listing.splitlines()), listing
    # each command's short help appears in full: the words of its first sentence, in order
    group = main
    ctx = click.Context(main)
    for name in path:
        group = group.get_command(ctx, name)  # type: ignore[assignment]
    flat = "".join(listing.split())  # the wrap may break a line at a hyphen or a space
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        assert command is not None
        assert "".join(command.get_short_help_str(10_000).split()) in flat, name
