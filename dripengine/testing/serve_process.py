"""`drip serve` as a subprocess on a free loopback port, for tests and benchmarks.

    with ServeProcess(folder, env={"DRIP_SENDGRID_WEBHOOK_PUBLIC_KEY": key}) as server:
        server.post("/webhooks/sendgrid", body, headers)

The log goes to ``serve.log`` in the folder (never a pipe that could fill up and block it);
``log_name`` gives each of several servers in one folder a file of its own.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType

import urllib3


def wait_or_kill(process: subprocess.Popen[bytes], timeout: float) -> bool:
    """Wait for ``process`` to exit; SIGKILL it when it has not after ``timeout`` s. True when it
    exited by itself."""
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        return False
    return True


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class ServeProcess:
    def __init__(
        self,
        folder: Path,
        env: Mapping[str, str] | None = None,
        args: tuple[str, ...] = (),
        startup_timeout: float = 60.0,  # a loaded 2-core CI machine
        *,
        now: str | None = None,  # drip --now NOW serve: the server's clock
        port: int | None = None,
        clean_env: bool = False,  # drop the caller's DRIP_* / SENDGRID_* settings first
        log_name: str = "serve.log",
    ) -> None:
        self.folder = folder
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        inherited = {
            k: v
            for k, v in os.environ.items()
            if not (clean_env and k.startswith(("DRIP_", "SENDGRID_")))
        }
        self.env = {**inherited, **(env or {})}
        self.args = args
        self.now = now
        self.startup_timeout = startup_timeout
        self.log_path = folder / log_name
        self.process: subprocess.Popen[bytes] | None = None
        self.http = urllib3.PoolManager(
            maxsize=8, retries=False, timeout=urllib3.Timeout(connect=5, read=120)
        )

    def start(self) -> ServeProcess:
        command = [sys.executable, "-m", "dripengine"]
        command += ["--now", self.now] if self.now else []
        command += ["serve", "--port", str(self.port)]
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                [*command, *self.args],
                cwd=self.folder,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"drip serve exited {self.process.returncode}: {self.log()}")
            if self.healthy():
                return self
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"drip serve did not answer /healthz in {self.startup_timeout} s")

    def healthy(self) -> bool:
        try:
            response = self.http.request("GET", self.url + "/healthz", timeout=2.0)
        except urllib3.exceptions.HTTPError:
            return False
        return response.status == 200

    def post(
        self,
        path: str,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
        **kw: object,
    ) -> urllib3.BaseHTTPResponse:
        return self.http.request("POST", self.url + path, body=body, headers=headers, **kw)  # type: ignore[arg-type]

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")[-4000:]

    def stop(self) -> None:
        self.http.clear()
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        wait_or_kill(self.process, 15)

    def __enter__(self) -> ServeProcess:
        return self.start()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
