"""The drip command as a user runs it: a fresh folder from `drip init`, then the commands in turn."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from dripengine.cli import main
from tests.clirun import drip


def test_init_writes_the_working_folder(folder: Path) -> None:
    for name in ("drip.toml", "sla.yaml", "leads.csv", "lost-deals.csv"):
        assert (folder / name).is_file()
    assert list((folder / "campaigns").glob("*.yaml"))
    assert list((folder / "templates").rglob("*.mjml"))
    code, out, _ = drip("db", "status")
    assert code == 0 and "up to date" in out
    secret = [
        line
        for line in (folder / "drip.toml").read_text().splitlines()
        if line.startswith("secret_key")
    ]
    assert len(secret) == 1 and len(secret[0]) > 40
    again = CliRunner().invoke(main, ["init", str(folder)])
    assert again.exit_code == 0 and "kept" in again.output


def test_campaigns_validate_list_show(folder: Path) -> None:
    code, out, err = drip("campaigns", "validate")
    assert code == 0, err
    assert "2 campaign(s) valid" in out
    code, out, _ = drip("campaigns", "list", "--format", "json")
    rows = json.loads(out)
    assert [r["id"] for r in rows] == ["rejected-mql-nurture", "lost-sql-winback"]
    code, out, _ = drip("campaigns", "show", "lost-sql-winback")
    assert code == 0 and "Lost SQL win-back" in out and "checkin" in out
    code, _, err = drip("campaigns", "show", "nope")
    assert code == 1 and 'no campaign "nope"' in err


def test_campaigns_validate_reports_file_line_field(folder: Path) -> None:
    path = folder / "campaigns" / "lost-sql-winback.yaml"
    lines = path.read_text().splitlines()
    number = next(i for i, line in enumerate(lines) if "wait:" in line)
    lines[number] = lines[number].split("wait:")[0] + 'wait: "3 dayz"'
    path.write_text("\n".join(lines) + "\n")
    code, _, err = drip("campaigns", "validate")
    assert code == 1
    assert f"campaigns/lost-sql-winback.yaml:{number + 1}: tracks." in err
    assert '"3 dayz" is not a duration' in err
    # one broken file pauses its campaign, not the command (tests/test_broken_campaign.py)
    code, out, err = drip(
        "recycle", "jane@acme.example", "--from", "sql", "--reason", "no_budget", "--create"
    )
    assert code == 0 and 'campaign "lost-sql-winback" is paused' in err
    assert "drip campaigns validate" in err and "not enrolled" in out


def test_campaigns_validate_reports_sla_problems_too(folder: Path) -> None:
    sla = folder / "sla.yaml"
    sla.write_text(
        sla.read_text().replace("    label: Chose a competitor", "    lable: Chose a competitor")
    )
    code, _, err = drip("campaigns", "validate")
    assert code == 1
    assert 'recycle_reasons.chose_competitor.lable: unknown field (did you mean "label"?)' in err
    # the campaigns are still checked, and reported valid in the summary
    assert "2 of 2 campaign file(s) valid" in err


def test_import_recycle_show_list(folder: Path) -> None:
    code, out, err = drip("leads", "import", "leads.csv")
    assert code == 0, err
    assert "8 new, 0 updated, 0 not taken" in out
    code, out, err = drip(
        "recycle",
        "jane@acme.example",
        "--from",
        "sql",
        "--reason",
        "no_budget",
        "--note",
        "revisit in Q3",
    )
    assert code == 0, err
    assert out.startswith(
        'jane@acme.example recycled from SQL (no_budget) into "Lost SQL win-back" (track cold); first email "checkin" due Tue 24 Nov'
    )
    assert "Europe/Berlin" in out
    code, out, err = drip("recycle", "--csv", "lost-deals.csv")
    assert code == 0, err
    assert "6 rows" in out and "0 refused" in out
    assert (
        'tom.becker@kontor.example recycled from MQL (not_a_fit) into "Rejected MQL nurture"'
        not in out
    )
    code, out, _ = drip("leads", "show", "jane@acme.example", "--format", "json")
    profile = json.loads(out)
    assert profile["stage"] == "recycled"
    assert profile["recycles"][0]["note"] == "revisit in Q3"
    assert profile["enrollments"][0]["campaign_id"] == "lost-sql-winback"
    assert profile["attributes"] == {"industry": "manufacturing", "employees": "450"}
    code, out, _ = drip("leads", "show", "jane@acme.example")
    assert "Stage history" in out and "Enrollments" in out
    code, out, _ = drip("leads", "list", "--stage", "recycled", "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(out)))
    assert len(rows) == 7
    assert {r["stage"] for r in rows} == {"recycled"}


def test_user_errors_are_one_line_exit_1(folder: Path) -> None:
    code, _, err = drip("leads", "show", "nobody@acme.example")
    assert (
        code == 1
        and err.strip()
        == "Error: no lead nobody@acme.example (import it with `drip leads import` or recycle it)"
    )
    code, _, err = drip("recycle", "x@acme.example", "--from", "sql", "--reason", "broke")
    assert code == 1 and '"broke" is not a recycle reason' in err and "Traceback" not in err
    code, _, err = drip("recycle", "x@acme.example", "--from", "customer", "--reason", "no_budget")
    assert code == 2  # usage: not one of the choices
    (folder / "bad.csv").write_text("name,mail_addr\nJane,jane@acme.example\n")
    code, _, err = drip("leads", "import", "bad.csv")
    assert code == 1 and "no email column; found columns: name, mail_addr" in err


def test_bulk_recycle_reports_refused_rows_by_line(folder: Path) -> None:
    (folder / "deals.csv").write_text(
        "email,from_stage,reason\n"
        "ok@acme.example,sql,no_budget\n"
        "bad-address,sql,no_budget\n"
        "ok2@acme.example,sql,unheard_of\n"
        "OK@Acme.example,sql,no_budget\n"
        "ok3@acme.example,opportunity,went_silent\n"
        "ok4@acme.example,sql,no_budget,extra\n"
    )
    code, out, err = drip("recycle", "--csv", "deals.csv", "--create")
    assert code == 0
    assert "6 rows" in out and "4 refused" in out
    assert "deals.csv:3: 'bad-address' is not a valid email address" in err
    assert 'deals.csv:4: "unheard_of" is not a recycle reason' in err
    assert "deals.csv:5: ok@acme.example already appears on line 2" in err
    assert "deals.csv:7: 1 more field(s) than the header has columns" in err
    code, out, _ = drip("leads", "list", "--format", "json")
    assert sorted(r["email"] for r in json.loads(out)) == ["ok3@acme.example", "ok@acme.example"]
    code, out, err = drip("recycle", "--csv", "deals.csv", "--strict")
    assert code == 1 and "--strict: nothing recycled" in err


def test_sla_prints_markdown(folder: Path) -> None:
    code, out, _ = drip("sla")
    assert code == 0 and out.startswith("# ") and "| `no_budget` |" in out


def test_database_not_migrated_names_the_fix(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("DRIP_DATABASE_URL", raising=False)
    code, _, err = drip("leads", "list")
    assert code == 1 and "run `drip db upgrade`" in err
    code, out, _ = drip("db", "upgrade")
    assert code == 0 and "upgraded from empty to" in out


def test_every_command_has_help_and_a_place_in_the_docs() -> None:
    readme = (Path(__file__).parent.parent / "README.md").read_text()
    import click

    def walk(command: click.Command, prefix: list[str]):  # type: ignore[no-untyped-def]
        yield prefix, command
        if isinstance(command, click.Group):
            ctx = click.Context(command)
            for name in command.list_commands(ctx):  # lazily loaded ones too
                sub = command.get_command(ctx, name)
                assert sub is not None, f"drip {' '.join([*prefix, name])} does not load"
                yield from walk(sub, [*prefix, name])

    paths = []
    for path, command in walk(main, []):
        paths.append(" ".join(path))
        assert command.help, f"drip {' '.join(path)} has no help text"
        if path:
            assert f"drip {path[0]}" in readme, f"README does not mention drip {path[0]}"
    assert {"run", "campaigns preview", "campaigns simulate", "scoring review"} <= set(paths)


@pytest.mark.slow  # a fresh interpreter per command
def test_a_command_imports_only_what_it_uses() -> None:
    """`drip run` (cron, every worker) does not pay for the web app or the report at start-up."""
    probe = (
        "import sys; from dripengine.cli import main; main(['run', '--help'], standalone_mode=False);"
        "print(sorted(m for m in ('starlette', 'uvicorn', 'dripengine.reports.html', 'dripengine.web')"
        " if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=True
    )
    assert result.stdout.strip().endswith("[]"), result.stdout


@pytest.mark.slow  # the installed `drip` script in subprocesses
def test_console_script_end_to_end(tmp_path: Path) -> None:
    """The installed `drip` entry point, as a subprocess."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DRIP_")}
    exe = Path(sys.executable).with_name("drip")
    command = [str(exe)] if exe.exists() else [sys.executable, "-m", "dripengine"]

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*command, *args], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
        )

    assert run("init", "demo").returncode == 0
    result = subprocess.run(
        [
            *command,
            "recycle",
            "jane@acme.example",
            "--from",
            "sql",
            "--reason",
            "no_budget",
            "--create",
        ],
        cwd=tmp_path / "demo",
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "Lost SQL win-back" in result.stdout
    failed = subprocess.run(
        [*command, "leads", "show", "x@acme.example"],
        cwd=tmp_path / "demo",
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert (
        failed.returncode == 1
        and failed.stderr.count("\n") == 1
        and "Traceback" not in failed.stderr
    )


def test_bulk_recycle_columns_fill_the_same_fields_as_import(folder: Path) -> None:
    (folder / "deals.csv").write_text(
        "email,from_stage,reason,source,company,industry\n"
        "new@acme.example,sql,no_budget,trade show,Acme,saas\n"
    )
    assert drip("recycle", "--csv", "deals.csv", "--create")[0] == 0
    _, out, _ = drip("leads", "show", "new@acme.example", "--format", "json")
    profile = json.loads(out)
    assert (profile["source"], profile["company"]) == ("trade show", "Acme")
    assert profile["attributes"] == {"industry": "saas"}


def test_table_cells_show_brackets_as_written() -> None:
    from dripengine.cli.output import emit_rows

    runner = CliRunner()

    @click.command()
    def show() -> None:
        rows = [{"company": "[Acme] Holdings", "reason": "click [pricing]"}]
        emit_rows(rows, "table", ["company", "reason"])

    result = runner.invoke(show, [])
    assert "[Acme] Holdings" in result.output
    assert "click [pricing]" in result.output
