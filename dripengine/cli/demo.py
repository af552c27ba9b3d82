"""``drip demo [DIR]``: the whole product end to end on the embedded defaults, step by step."""

from __future__ import annotations

from pathlib import Path

import click

from dripengine.clock import SystemClock
from dripengine.exceptions import DripError


@click.command()
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path), default="demo")
def demo(directory: Path) -> None:
    """Run the whole loop in a fresh folder DIRECTORY (default: ./demo).

    Scaffold, sample leads, recycle, send into the outbox, then engagement through `drip serve`
    on a loopback port (clicks, a reply, an unsubscribe, a bounce), a time jump, the rescoring,
    one lead requalified and handed back, the opted-out ones suppressed for good.
    """
    from dripengine.cli import main
    from dripengine.demo import Demo

    if directory.exists() and any(directory.iterdir()):
        raise DripError(
            f"{directory} exists and is not empty: the demo needs a fresh folder "
            f"(remove it, or name another: drip demo DIR)"
        )

    def run_cli(argv: list[str]) -> None:
        try:
            main.main(argv, prog_name="drip", standalone_mode=False)
        except click.ClickException as exc:
            exc.show()
            raise DripError(f"the demo stopped at `drip {' '.join(argv)}`") from None

    Demo(directory.resolve(), click.echo, run_cli).run(SystemClock().now())
