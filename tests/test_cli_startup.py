"""What ``drip`` imports to start: ``--help`` and ``sla`` answer without the database stack.

Timings live in ``benchmarks/bench_cli_startup.py``; these tests hold what makes them: the short
help of every command comes from a table (so ``--help`` imports no command module) that must say
what each command's own docstring says, and the commands that never touch the database do not
import SQLAlchemy, SQLModel, Alembic, Rich or Jinja.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from dripengine.cli import COMMANDS, main
from dripengine.cli.lazy import LazyGroup, load

pytestmark = pytest.mark.slow  # fresh interpreters, to see what `drip` imports

HEAVY = ("sqlalchemy", "sqlmodel", "alembic", "rich", "jinja2", "mjml", "starlette", "uvicorn")
WIDTH = 80  # COLUMNS for the subprocess; click's help is 2 narrower

# Runs the CLI in a fresh interpreter as the console script does, then writes which top-level
# packages it had imported (and its module names) to the file named by DRIP_PROBE_OUT.
PROBE = """
import json, os, sys
from dripengine.cli import main
try:
    main(sys.argv[1:], prog_name="drip")
except SystemExit as exc:
    code = exc.code
else:
    code = 0
with open(os.environ["DRIP_PROBE_OUT"], "w") as out:
    json.dump({"code": code, "modules": sorted(sys.modules)}, out)
"""


def probe(tmp_path: Path, *args: str, cwd: Path | None = None) -> tuple[int, str, list[str]]:
    """Exit code, stdout and the imported modules of ``drip *args`` in a fresh interpreter."""
    out = tmp_path / "probe.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DRIP_", "SENDGRID_"))}
    env.update(DRIP_PROBE_OUT=str(out), COLUMNS=str(WIDTH))
    result = subprocess.run(
        [sys.executable, "-c", PROBE, *args],
        cwd=cwd or tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert out.exists(), result.stderr
    found = json.loads(out.read_text())
    return found["code"], result.stdout, found["modules"]


def heavy_in(modules: list[str]) -> list[str]:
    return sorted({m.split(".")[0] for m in modules} & set(HEAVY))


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_each_short_help_in_the_table_is_the_commands_own(name: str) -> None:
    command = load(COMMANDS[name].where)
    assert COMMANDS[name].short_help == command.get_short_help_str(limit=10_000), (
        f"dripengine/cli/__init__.py COMMANDS[{name!r}] is out of date: copy the first sentence "
        f"of {COMMANDS[name].where}'s docstring"
    )


def test_help_lists_every_command_as_click_would_without_importing_one(tmp_path: Path) -> None:
    code, out, modules = probe(tmp_path, "--help")
    assert code == 0
    # what the same group prints with every command loaded, at the same width
    ctx = click.Context(main, info_name="drip")
    formatter = click.HelpFormatter(width=WIDTH - 2)
    group = LazyGroup("drip", commands={name: load(c.where) for name, c in COMMANDS.items()})
    group.format_commands(ctx, formatter)
    expected = formatter.getvalue()
    assert expected.startswith("Commands:\n") and expected in out, out
    assert all(f"\n  {name} " in out for name in COMMANDS)
    assert not [m for m in modules if m.startswith("dripengine.cli.") and m in _command_modules()]
    assert heavy_in(modules) == []


def _command_modules() -> set[str]:
    return {c.where.partition(":")[0] for c in COMMANDS.values()} - {"dripengine.cli.lazy"}


def test_sla_does_not_import_the_database_or_the_terminal_stack(tmp_path: Path) -> None:
    init = subprocess.run(
        [sys.executable, "-m", "dripengine", "init", str(tmp_path / "acme")],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert init.returncode == 0, init.stderr
    code, out, modules = probe(tmp_path, "sla", cwd=tmp_path / "acme")
    assert code == 0 and "recycle" in out.lower()
    assert heavy_in(modules) == []
    code, out, modules = probe(tmp_path, "sla", "--format", "json", cwd=tmp_path / "acme")
    assert code == 0 and "recycle_reasons" in json.loads(out)
    assert heavy_in(modules) == []


def test_a_single_recycle_leaves_out_the_csv_and_terminal_machinery(tmp_path: Path) -> None:
    """One address needs the database (SQLAlchemy), not Alembic, Rich's progress bar, the CSV
    reader, the web app or MJML."""
    init = subprocess.run(
        [sys.executable, "-m", "dripengine", "init", str(tmp_path / "acme")],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert init.returncode == 0, init.stderr
    args = ("recycle", "new@acme.example", "--from", "sql", "--reason", "no_budget", "--create")
    code, out, modules = probe(tmp_path, *args, cwd=tmp_path / "acme")
    assert code == 0 and "Lost SQL win-back" in out, out
    assert "sqlalchemy" in modules
    assert set(heavy_in(modules)) <= {"sqlalchemy", "sqlmodel", "jinja2"}
    for module in (
        "dripengine.funnel.recycle_csv",
        "dripengine.cli.progress",
        "dripengine.leads.importer",
    ):
        assert module not in modules


def test_a_database_error_still_becomes_one_line(tmp_path: Path) -> None:
    """DBAPIError is recognised without importing SQLAlchemy up front."""
    from sqlalchemy.exc import OperationalError

    @click.command()
    def broken() -> None:
        raise OperationalError("SELECT 1", {}, Exception("disk I/O error\nDETAIL: secret"))

    main.add_command(broken, "broken-for-test")
    try:
        result = CliRunner().invoke(main, ["broken-for-test"])
    finally:
        main.commands.pop("broken-for-test")
    assert result.exit_code == 1
    assert result.stderr == "Error: database error: disk I/O error\n"
