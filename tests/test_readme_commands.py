"""Every command in the README's ```sh blocks runs, in order, as a new user types it, and works.

Each block runs in a fresh temporary folder (HOME and the working folder there, every DRIP_*
setting cleared, SQLite) with the real ``drip`` console script of this venv first on PATH, through
bash, so quoting and ``&&`` behave as in the user's shell. A command must exit 0; where the README
shows its output in ``#`` lines under it, the words of that output (dates and numbers aside, which
depend on the day) must be in what it printed. ``drip ... run --once`` must really send something:
an example that sends nothing on the day someone runs it is a broken example.

Nothing is skipped silently: the commands the test does not run as written are listed in
``NOT_RUN`` and ``INSTEAD`` with the reason, and a README command that is neither run nor listed
cannot exist (every line is accounted for).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import urllib3

from dripengine.testing.serve_process import free_port
from tests.waiting import wait_for

# the README's command blocks run in a shell, `drip serve` among them
pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parent.parent
README = REPO / "README.md"
BIN = Path(sys.executable).parent  # the venv's bin: its `drip` is the console script pip made

# Commands not run as written, and why. Each must still be in the README (see the test below).
NOT_RUN = {
    "./scripts/test": "the whole test suite, which this test is part of: running it here recurses",
    "python3 -m venv .venv && .venv/bin/pip install -e .": (
        "installs the package: this test runs inside that installed venv"
    ),
    ". .venv/bin/activate": "puts the venv's drip on PATH: the test puts it first on PATH itself",
}
# Commands run in another form, and why.
INSTEAD = {
    "./scripts/demo": (
        "drip demo",
        "the script makes .venv and pip-installs (done: the test runs in that venv), then runs "
        "`drip demo demo` in the repository; the test runs `drip demo` in its own folder",
    ),
}
# A command that stays running: started in the background, checked live, stopped after the block.
BACKGROUND = {"drip serve &": "/healthz"}

_DAYS_AND_MONTHS = re.compile(
    r"(mon|tue|wed|thu|fri|sat|sun|jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*", re.I
)


@dataclass
class Command:
    line: int
    text: str  # the command, its trailing comment taken off
    comment: str = ""
    shown: list[str] = field(default_factory=list)  # the output the README shows under it


def _split_comment(line: str) -> tuple[str, str]:
    """``cmd  # comment`` -> (cmd, comment); a ``#`` inside quotes is not a comment."""
    quote = ""
    for i, char in enumerate(line):
        if quote:
            quote = "" if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char == "#" and (i == 0 or line[i - 1].isspace()):
            return line[:i].rstrip(), line[i + 1 :].strip()
    return line.rstrip(), ""


def sh_blocks(text: str) -> list[list[Command]]:
    blocks: list[list[Command]] = []
    current: list[Command] | None = None
    for number, raw in enumerate(text.splitlines(), start=1):
        if current is None:
            if raw.strip() == "```sh":
                current = []
            continue
        if raw.strip() == "```":
            blocks.append(current)
            current = None
            continue
        command, comment = _split_comment(raw)
        if not command:
            if comment and current:  # a comment line under a command: its output
                current[-1].shown.append(comment)
            continue
        current.append(Command(number, command, comment))
    return blocks


BLOCKS = sh_blocks(README.read_text(encoding="utf-8"))


def _words(shown: str) -> list[str]:
    """The words of shown output a run on another day prints alike: no dates, times or counts."""
    words = re.findall(r"[A-Za-z_][\w@.\-]*[\w]", shown)
    return [w for w in words if not _DAYS_AND_MONTHS.fullmatch(w)]


class Shell:
    """Runs README lines one after another in one folder, the way a user's shell would."""

    def __init__(self, home: Path) -> None:
        assert (BIN / "drip").is_file(), f"no drip console script in {BIN}: pip install -e . first"
        self.cwd = home
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(("DRIP_", "SENDGRID"))}
        self.env.update(HOME=str(home), PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}")
        self.env.pop("VIRTUAL_ENV", None)
        self.background: list[subprocess.Popen[bytes]] = []

    def run(self, command: Command) -> str:
        text = command.text
        if text in INSTEAD:
            text = INSTEAD[text][0]
        output = ""
        for part in text.split(" && "):
            if part.startswith("cd "):
                self.cwd = (self.cwd / part[3:].strip()).resolve()
                continue
            if part.startswith("export "):
                name, _, value = part[len("export ") :].partition("=")
                self.env[name] = self.exported(name, value)
                continue
            done = subprocess.run(
                ["bash", "-c", part],
                cwd=self.cwd,
                env=self.env,
                capture_output=True,
                text=True,
                timeout=300,
                stdin=subprocess.DEVNULL,
            )
            assert done.returncode == 0, (
                f"README.md:{command.line}: `{part}` exited {done.returncode}\n"
                f"{done.stdout[-3000:]}{done.stderr[-3000:]}"
            )
            output += done.stdout + done.stderr
        return output

    def exported(self, name: str, value: str) -> str:
        if name == "DRIP_DATABASE_URL" and value.startswith("postgresql"):
            return self.postgres_database()
        return value

    def postgres_database(self) -> str:
        """A database of its own on the test server, standing in for the README's ``drip`` one."""
        from sqlalchemy import create_engine, text
        from sqlalchemy.engine import make_url

        admin_url = os.environ.get("DRIP_TEST_POSTGRES_URL")
        if not admin_url:  # checked before the block starts; here for mypy and clarity
            pytest.fail("DRIP_TEST_POSTGRES_URL is not set")
        name = f"drip_readme_{uuid.uuid4().hex[:10]}"
        admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
        with admin.connect() as db:
            db.execute(text(f'CREATE DATABASE "{name}"'))
        admin.dispose()
        self.drop_database = (admin_url, name)
        return make_url(admin_url).set(database=name).render_as_string(hide_password=False)

    def start(self, command: Command, health: str) -> None:
        port = free_port()  # not 8080: other things on this machine may be listening there
        self.env["DRIP_WEB_PORT"] = str(port)
        with open(self.cwd / "serve.log", "wb") as log:  # the child keeps its own handle
            process = subprocess.Popen(
                ["bash", "-c", f"exec {command.text.removesuffix('&').strip()}"],
                cwd=self.cwd,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        self.background.append(process)
        http = urllib3.PoolManager(retries=False, timeout=2.0)

        def answers() -> bool:
            assert process.poll() is None, (
                f"README.md:{command.line}: `{command.text}` exited {process.returncode}: "
                + (self.cwd / "serve.log").read_text()
            )
            try:
                return http.request("GET", f"http://127.0.0.1:{port}{health}").status == 200
            except urllib3.exceptions.HTTPError:
                return False

        wait_for(
            answers,
            timeout=60,
            what=f"README.md:{command.line}: `{command.text}` to answer on port {port}",
        )

    def close(self) -> None:
        for process in self.background:
            still_serving = process.poll() is None
            process.terminate()
            process.wait(timeout=30)
            assert still_serving, "drip serve stopped while the README's commands ran"
        drop = getattr(self, "drop_database", None)
        if drop:
            from sqlalchemy import create_engine, text

            admin = create_engine(drop[0], isolation_level="AUTOCOMMIT")
            with admin.connect() as db:
                db.execute(text(f'DROP DATABASE IF EXISTS "{drop[1]}" WITH (FORCE)'))
            admin.dispose()


@pytest.fixture
def shell(tmp_path: Path) -> Iterator[Shell]:
    runner = Shell(tmp_path)
    try:
        yield runner
    finally:
        runner.close()


def check_shown(command: Command, output: str) -> None:
    for shown in command.shown:
        for word in _words(shown):
            assert word in output, (
                f"README.md:{command.line}: `{command.text}` shows {shown!r}, "
                f"but printed no {word!r}:\n{output}"
            )


def check_sends(command: Command, output: str) -> None:
    """The README runs ``drip run --once`` to show emails going out: it must send some."""
    if re.search(r"\brun --once\b", command.text):
        sent = re.search(r"(\d+) sent", output)
        assert sent and int(sent[1]) > 0, (
            f"README.md:{command.line}: `{command.text}` sent nothing today, so the example "
            f"shows nothing (a fixed date that went stale?):\n{output}"
        )


@pytest.mark.parametrize(
    "block", BLOCKS, ids=[f"README.md:{block[0].line - 1}" for block in BLOCKS]
)
def test_readme_block_runs(block: list[Command], shell: Shell) -> None:
    if any(c.text.startswith("export DRIP_DATABASE_URL=postgresql") for c in block):
        if not os.environ.get("DRIP_TEST_POSTGRES_URL"):
            pytest.skip("the PostgreSQL example needs DRIP_TEST_POSTGRES_URL (a server to use)")
        # the block sits in the settings section: it runs in a working folder, as after drip init
        shell.run(Command(0, "drip init work && cd work"))
    ran = 0
    for command in block:
        if command.text in NOT_RUN:
            continue
        if command.text in BACKGROUND:
            shell.start(command, BACKGROUND[command.text])
            ran += 1
            continue
        output = shell.run(command)
        check_shown(command, output)
        check_sends(command, output)
        ran += 1
    assert ran, "a README block with no command the test runs"


def test_every_listed_exception_is_in_the_readme() -> None:
    """The lists above name real README lines: a stale entry would hide nothing, but mislead."""
    lines = {command.text for block in BLOCKS for command in block}
    for text, reason in [*NOT_RUN.items(), *((k, v[1]) for k, v in INSTEAD.items())]:
        assert text in lines, f"{text!r} is listed ({reason}) but the README has no such command"
    for text in BACKGROUND:
        assert text in lines


def test_readme_shows_the_commands_it_runs() -> None:
    """The README's first lines are the two commands a new user types; the test found its blocks."""
    assert [c.text for c in BLOCKS[0]] == ["./scripts/demo", "./scripts/test"]
    assert any("run --once" in c.text for block in BLOCKS for c in block)
