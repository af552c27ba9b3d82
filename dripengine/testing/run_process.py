"""`drip run` as a subprocess in a `drip init` folder, as an operator starts a worker.

    with RunProcess(folder, env=env, now="2026-11-24T10:00:00+00:00") as worker:
        ...                      # the daemon dispatches every sending.tick_seconds
    assert worker.returncode == 0  # stopped with SIGTERM: the batch in flight finished

``args=("--once",)`` runs one pass and exits by itself (:meth:`RunProcess.wait`). The log goes to
``log_name`` in the folder (never a pipe that could fill up and block the worker).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType

from dripengine.testing.serve_process import wait_or_kill


class RunProcess:
    def __init__(
        self,
        folder: Path,
        env: Mapping[str, str] | None = None,
        args: tuple[str, ...] = (),
        *,
        now: str | None = None,  # drip --now NOW run: the worker's clock
        log_name: str = "run.log",
        clean_env: bool = False,  # drop the caller's DRIP_* / SENDGRID_* settings first
    ) -> None:
        self.folder = folder
        inherited = {
            k: v
            for k, v in os.environ.items()
            if not (clean_env and k.startswith(("DRIP_", "SENDGRID_")))
        }
        self.env = {**inherited, **(env or {})}
        self.args = args
        self.now = now
        self.log_path = folder / log_name
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> RunProcess:
        command = [sys.executable, "-m", "dripengine"]
        command += ["--now", self.now] if self.now else []
        with open(self.log_path, "ab") as log:  # the child keeps its own copy
            self.process = subprocess.Popen(
                [*command, "run", *self.args],
                cwd=self.folder,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        return self

    @property
    def returncode(self) -> int | None:
        return None if self.process is None else self.process.poll()

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def wait(self, timeout: float) -> int:
        """The exit code; the process is killed when it has not exited after ``timeout`` s."""
        assert self.process is not None, "start() first"
        if not wait_or_kill(self.process, timeout):
            raise subprocess.TimeoutExpired(self.process.args, timeout)
        return self.process.returncode

    def stop(self, timeout: float = 60.0) -> int | None:
        """SIGTERM (the daemon finishes the batch in flight, then exits 0) and wait; SIGKILL
        after ``timeout`` s. The exit code (None when it was never started)."""
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            wait_or_kill(self.process, timeout)
        return self.process.returncode

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")[-4000:]

    def __enter__(self) -> RunProcess:
        return self.start()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
