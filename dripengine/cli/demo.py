"""``drip demo [DIR]``: the whole product end to end on the embedded defaults, step by step."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from dripengine.clock import SystemClock
from dripengine.exceptions import DripError


@click.command()
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path), default="demo")
@click.option(
    "--keep-serving/--no-keep-serving",
    default=None,
    help=(
        "At the end, keep drip serve running so the links the demo prints (and those in its "
        "emails) work, until Ctrl-C. Default: on a terminal yes, otherwise no (scripts end)."
    ),
)
def demo(directory: Path, keep_serving: bool | None) -> None:
    """Run the whole loop in a fresh folder DIRECTORY (default: ./demo).

    Scaffold, sample leads, recycle, send into the outbox, then engagement through `drip serve`
    on a loopback port (clicks, a reply, an unsubscribe, a bounce), a time jump, the rescoring,
    one lead requalified and handed back, the opted-out ones suppressed for good.

    Run it again on the same folder to start over: a folder an earlier demo made is emptied
    first; any other folder with something in it is refused.
    """
    from dripengine.cli import main
    from dripengine.demo.folder import prepare_folder
    from dripengine.demo.run import Demo

    folder = directory.resolve()
    if keep_serving is None:
        keep_serving = sys.stdin.isatty() and sys.stdout.isatty()
    if prepare_folder(folder):
        click.echo(f"Starting over: {folder} holds an earlier drip demo; its files were removed.")

    def run_cli(argv: list[str]) -> None:
        try:
            main.main(argv, prog_name="drip", standalone_mode=False)
        except click.ClickException as exc:
            exc.show()
            raise DripError(f"the demo stopped at `drip {' '.join(argv)}`") from None

    Demo(folder, click.echo, run_cli).run(SystemClock().now(), keep_serving=keep_serving)
