"""Run the drip command in-process, as a user would type it, at a fixed time."""

from __future__ import annotations

from click.testing import CliRunner

from dripengine.cli import main

NOW = "2026-11-23T10:00:00+00:00"  # Monday, 11:00 in Berlin


def drip(*args: str) -> tuple[int, str, str]:
    """Exit code, stdout and stderr of ``drip --now NOW *args``; a crash is re-raised."""
    result = CliRunner().invoke(main, ["--now", NOW, *args])
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout, result.stderr
