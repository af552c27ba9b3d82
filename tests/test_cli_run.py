"""``drip run --once``: the summary line, and a progress bar only on a terminal."""

from __future__ import annotations

import json
import os
import re
import select
import subprocess
import sys
import time
from pathlib import Path

from click.testing import CliRunner

import dripengine
from dripengine.cli import main
from tests.clirun import drip

LATER = "2026-11-26T15:00:00+00:00"  # a Thursday, 15:00 UTC: inside the example windows
SUMMARY = re.compile(
    r"(\d+) sent \(see outbox/\), 0 skipped, 0 to retry, 0 failed, \d+ waiting for their "
    r"window, 0 completed, 0 exited"
)


def recycled() -> int:
    """The sample lost deals recycled (now); how many are due at LATER."""
    code, _, err = drip("recycle", "--csv", "lost-deals.csv", "--create")
    assert code == 0, err
    result = CliRunner().invoke(main, ["--now", LATER, "status", "--format", "json"])
    due = int(json.loads(result.stdout)["due_now"])
    assert due > 1
    return due


def summary(stdout: str) -> int:
    """The one line `drip run --once` prints; the number sent."""
    lines = stdout.splitlines()
    assert len(lines) == 1, stdout
    match = SUMMARY.fullmatch(lines[0])
    assert match, stdout
    return int(match[1])


def test_run_once_without_a_terminal_prints_the_summary_and_nothing_else(folder: Path) -> None:
    recycled()
    result = CliRunner().invoke(main, ["--now", LATER, "run", "--once"])
    assert result.exit_code == 0, result.output
    assert result.stderr == ""
    assert summary(result.stdout) == len(list((folder / "outbox").rglob("*.eml"))) > 0


def test_run_once_on_a_terminal_shows_a_bar_on_stderr_and_the_same_summary(
    folder: Path,
) -> None:
    """stderr on a pseudo-terminal, stdout piped: the bar goes to the terminal, stdout unchanged."""
    due = recycled()
    source = str(Path(dripengine.__file__).resolve().parents[1])  # the code under test
    env = {**os.environ, "PYTHONPATH": source, "TERM": "xterm-256color", "COLUMNS": "100"}
    controller, terminal = os.openpty()
    try:
        process = subprocess.Popen(
            [sys.executable, "-m", "dripengine", "--now", LATER, "run", "--once"],
            cwd=folder,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=terminal,
        )
        os.close(terminal)
        screen = b""
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            ready, _, _ = select.select([controller], [], [], 0.2)
            if ready:
                try:
                    chunk = os.read(controller, 65536)
                except OSError:  # the terminal closed (Linux: EIO once the child is gone)
                    break
                if not chunk:
                    break
                screen += chunk
            elif process.poll() is not None:
                break
        stdout, _ = process.communicate(timeout=60)
    finally:
        os.close(controller)
    assert process.returncode == 0, screen.decode(errors="replace")
    text = screen.decode(errors="replace")
    assert "sending" in text and f"{due}/{due}" in text, text
    assert summary(stdout.decode()) == len(list((folder / "outbox").rglob("*.eml"))) > 0
