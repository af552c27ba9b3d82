"""The files in ``deploy/`` read as their programs read them, and run as written, for the tests.

- systemd units: ``[Section]`` and ``Key=Value`` lines; a key may repeat (``Environment=``);
  ``#`` and ``;`` start comments; a command line is split as systemd splits it (quotes, no shell).
- environment files (systemd's ``EnvironmentFile=``, Compose's ``env_file``): ``KEY=VALUE`` lines.
- Compose's interpolation: ``${VAR}``, ``${VAR:-default}``, ``${VAR:?message}``, ``$$``.
- the Dockerfile: one instruction a line once ``\\`` continuations are joined.

What the tests substitute is only what cannot be the same on a test machine: the paths
(``/opt/dripengine``, ``/srv/dripengine``, ``/etc/dripengine``), the database, the port, and the
``CHANGE_ME`` placeholders of ``drip.env.example`` (each by a value of its kind).
"""

from __future__ import annotations

import os
import re
import secrets
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import urllib3

REPO = Path(__file__).resolve().parent.parent
DEPLOY = REPO / "deploy"
PLACEHOLDER = "CHANGE_ME"


def read_unit(path: Path) -> dict[str, dict[str, list[str]]]:
    """``{section: {key: [values in order]}}`` of a systemd unit file."""
    sections: dict[str, dict[str, list[str]]] = {}
    current: dict[str, list[str]] | None = None
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], {})
            continue
        key, sep, value = line.partition("=")
        if current is None or not sep:
            raise AssertionError(f"{path.name}:{number}: not a Key=Value line in a section")
        current.setdefault(key.strip(), []).append(value.strip())
    return sections


def one(unit: dict[str, dict[str, list[str]]], section: str, key: str) -> str:
    values = unit.get(section, {}).get(key, [])
    assert len(values) == 1, f"[{section}] {key}= is set {len(values)} times, expected once"
    return values[0]


def seconds(value: str) -> float:
    """A systemd time span (``120s``, ``2min``, ``30min``, ``90``) or a Compose duration
    (``2m``, ``30s``, ``1m30s``) in seconds."""
    units = {"": 1, "s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600}
    total = 0.0
    parts = re.findall(r"(\d+(?:\.\d+)?)\s*([a-z]*)", value.strip())
    assert parts, f"{value!r} is not a time span"
    for number, unit in parts:
        total += float(number) * units[unit]
    return total


def read_env_file(text: str) -> dict[str, str]:
    """``KEY=VALUE`` lines as systemd and Compose read them (comments and blank lines skipped)."""
    env: dict[str, str] = {}
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith(("#", ";")):
            key, _, value = line.partition("=")
            env[key.strip()] = value.strip()
    return env


def fill_placeholders(env: Mapping[str, str], values: Mapping[str, str]) -> dict[str, str]:
    """Each variable that holds ``CHANGE_ME`` (whole or in part) given its value from ``values``,
    or else a fresh random secret."""
    filled = {}
    for key, value in env.items():
        if PLACEHOLDER in value:
            value = values.get(key) or secrets.token_hex(32)
        filled[key] = value
    return filled


_VARIABLE = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:-|:\?)([^}]*))?\}")


def interpolate(value: object, env: Mapping[str, str]) -> object:
    """Compose's interpolation over a parsed YAML document."""
    if isinstance(value, dict):
        return {key: interpolate(item, env) for key, item in value.items()}
    if isinstance(value, list):
        return [interpolate(item, env) for item in value]
    if not isinstance(value, str):
        return value

    def substitute(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name, operator, argument = match.groups()
        if env.get(name):
            return env[name]
        if operator == ":?":
            raise KeyError(f"{name}: {argument}")
        return argument if operator == ":-" else ""

    return _VARIABLE.sub(substitute, value)


def dockerfile(path: Path) -> list[tuple[str, str]]:
    """``[(INSTRUCTION, arguments)]`` of a Dockerfile, continuations joined, comments skipped."""
    instructions: list[tuple[str, str]] = []
    pending = ""
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line, pending = pending + line, ""
        word, _, rest = line.partition(" ")
        instructions.append((word.upper(), rest.strip()))
    return instructions


def command_line(value: str, paths: Mapping[str, str]) -> list[str]:
    """An ``Exec*=`` value with the deployment paths swapped for the test's, split as systemd does."""
    for deployed, local in paths.items():
        value = value.replace(deployed, local)
    return shlex.split(value)


@dataclass
class Running:
    """A command started as its service manager starts it, its output in a log file."""

    name: str
    process: subprocess.Popen[bytes]
    log: Path

    def output(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self, timeout: float) -> tuple[int, float]:
        """SIGTERM to the main process only (systemd's KillMode=mixed, Docker's stop), then its
        exit code and how long it took; past ``timeout`` it is killed and the test fails."""
        started = time.monotonic()
        self.process.send_signal(signal.SIGTERM)
        try:
            code = self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
            raise AssertionError(
                f"{self.name} did not stop within {timeout:g} s of SIGTERM: {self.output()[-2000:]}"
            ) from None
        return code, time.monotonic() - started

    def kill(self) -> None:
        """Whatever is left of it (the test failed half-way): its whole process group."""
        if self.alive():
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()


def start(name: str, argv: list[str], env: Mapping[str, str], cwd: Path, logs: Path) -> Running:
    """``argv`` in its own process group (a unit's control group), environment exactly ``env``."""
    log = logs / f"{name}.log"
    with open(log, "ab") as handle:
        process = subprocess.Popen(
            argv,
            cwd=cwd,
            env=dict(env),
            stdout=handle,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    return Running(name, process, log)


def healthz(port: int) -> bool:
    """``GET /healthz`` on loopback answers 200 ``{"status": "ok", …}``."""
    try:
        response = urllib3.request("GET", f"http://127.0.0.1:{port}/healthz", timeout=2.0)
    except urllib3.exceptions.HTTPError:
        return False
    return response.status == 200 and response.json()["status"] == "ok"


def group_gone(pgid: int) -> bool:
    """No process is left in the process group (uvicorn's worker processes included)."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return True
    return False


def working_folder(target: Path) -> Path:
    """A working folder as a team keeps it in git: `drip init`'s (its own SQLite file in it is
    never used: the deployment's DRIP_DATABASE_URL wins)."""
    result = subprocess.run(
        [str(Path(sys.executable).parent / "drip"), "init", str(target)],
        capture_output=True,
        text=True,
        env={k: v for k, v in os.environ.items() if not k.startswith(("DRIP_", "SENDGRID_"))},
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return target


@contextmanager
def empty_database(tmp_path: Path) -> Iterator[str]:
    """A database with nothing in it, for `drip db upgrade` to build: a new PostgreSQL database
    when DRIP_TEST_POSTGRES_URL is set (dropped afterwards), else a new SQLite file."""
    admin_url = os.environ.get("DRIP_TEST_POSTGRES_URL")
    if not admin_url:
        yield f"sqlite:///{tmp_path / 'deployed.db'}"
        return
    from tests.conftest import cloned_database

    with cloned_database(admin_url, None, "drip_deploy") as url:
        yield url


def workers(url: str) -> list[tuple[str, bool]]:
    """Each `drip run` worker row: its id and whether it said it stopped."""
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            query = "SELECT id, stopped_at FROM worker WHERE kind = 'run' ORDER BY id"
            rows = connection.execute(text(query))
            return [(row.id, row.stopped_at is not None) for row in rows]
    finally:
        engine.dispose()
