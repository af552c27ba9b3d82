"""``drip run --once``: the summary line on stdout; progress on stderr: a bar on a terminal,
otherwise a line every N seconds."""

from __future__ import annotations

import json
import os
import re
import select
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

import dripengine
from dripengine.cli import main
from dripengine.testing import SendGridStandIn
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


PROGRESS = re.compile(r"run: (\d+) of (\d+) done, (\d+) sent \((\d+(?:\.\d)?)/s\), 0 failed, \d+ s")


def test_run_once_without_a_terminal_prints_the_summary_on_stdout(folder: Path) -> None:
    """stdout is the summary alone, for scripts; a run shorter than the progress interval
    (10 s by default) prints no progress line on stderr either."""
    recycled()
    result = CliRunner().invoke(main, ["--now", LATER, "run", "--once"])
    assert result.exit_code == 0, result.output
    assert result.stderr == ""
    assert summary(result.stdout) == len(list((folder / "outbox").rglob("*.eml"))) > 0


@pytest.mark.slow  # runs long enough for progress lines
def test_a_long_run_without_a_terminal_logs_progress_lines_on_stderr(
    folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A provider that takes 0.3 s an email, one email a batch: progress every 0.2 s on stderr."""
    due = recycled()
    with SendGridStandIn(api_key="SG.test-key") as standin:
        standin.set_latency(per_request=0.3)
        for name, value in {
            "DRIP_PROVIDER": "sendgrid",
            "SENDGRID_API_KEY": "SG.test-key",
            "DRIP_SENDGRID_HOST": standin.url,
            "DRIP_SENDGRID_MAX_IN_FLIGHT": "1",
            "DRIP_SENDING_BATCH_SIZE": "1",
        }.items():
            monkeypatch.setenv(name, value)
        result = CliRunner().invoke(
            main, ["--now", LATER, "run", "--once", "--progress-every", "0.2"]
        )
        accepted = len(standin.accepted)
    assert result.exit_code == 0, result.output
    [line] = result.stdout.splitlines()  # stdout: the summary alone, as before
    assert line.startswith(f"{accepted} sent, 0 skipped") and accepted > 1, line
    progress = [PROGRESS.fullmatch(line) for line in result.stderr.splitlines()]
    assert len(progress) >= 3 and all(progress), result.stderr
    done = [int(match[1]) for match in progress if match]
    sent = [int(match[3]) for match in progress if match]
    assert done == sorted(done) and sent == sorted(sent) and sent[-1] > sent[0]
    assert {int(match[2]) for match in progress if match} == {due}


@pytest.mark.slow  # `drip run` on a pseudo-terminal
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
