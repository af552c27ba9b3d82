"""`--format` is the same on every command: text|json|csv (issue 15, item 13). The names some
commands used before (`table`, `markdown`) still mean text, so scripts written for them keep
working; csv gives the list a command is about, parsed back here."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import click

from dripengine.cli import main
from tests.clirun import drip


def _commands(
    group: click.Group, ctx: click.Context, prefix: str = ""
) -> list[tuple[str, click.Command]]:
    found = []
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        assert command is not None
        path = f"{prefix}{name}"
        if isinstance(command, click.Group):
            found += _commands(command, ctx, path + " ")
        else:
            found.append((path, command))
    return found


def test_every_format_option_offers_text_json_csv_with_text_the_default() -> None:
    ctx = click.Context(main)
    with_format = {}
    for path, command in _commands(main, ctx):
        for param in command.params:
            if "--format" in getattr(param, "opts", ()):
                assert isinstance(param.type, click.Choice), path
                with_format[path] = (tuple(param.type.choices), param.default)
    assert len(with_format) >= 12  # every listing and every command that reports a result
    assert set(with_format.values()) == {(("text", "json", "csv"), "text")}, with_format


def _csv(out: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(out)))


def test_csv_is_the_list_each_command_is_about(folder: Path) -> None:
    code, out, _ = drip("sla", "--format", "csv")
    assert code == 0 and "no_budget" in {r["reason"] for r in _csv(out)}
    code, out, _ = drip("campaigns", "show", "lost-sql-winback", "--format", "csv")
    rows = _csv(out)
    assert code == 0 and rows[0]["step"] == "checkin" and rows[0]["track"] == "cold"
    code, out, _ = drip("leads", "import", "leads.csv", "--format", "csv")
    assert code == 0 and out.splitlines() == ["line,email,message"]  # nothing refused
    (folder / "deals.csv").write_text(
        "email,from_stage,reason\njane@acme.example,sql,no_budget\nnobody@acme.example,sql,no_budget\n"
    )
    code, out, _ = drip("recycle", "--csv", "deals.csv", "--format", "csv")
    rows = _csv(out)
    assert code == 0 and [r["outcome"] for r in rows] == ["enrolled", "refused"]
    code, out, _ = drip(
        "recycle", "tom.becker@kontor.example", "--from", "mql", "--reason", "bad_timing",
        "--format", "csv",
    )  # fmt: skip
    (row,) = _csv(out)
    assert code == 0 and row["email"] == "tom.becker@kontor.example" and row["outcome"]
    code, out, _ = drip("scoring", "explain", "jane@acme.example", "--format", "csv")
    assert code == 0 and out.splitlines()[0].startswith("at,")


def test_the_earlier_names_still_work(folder: Path) -> None:
    code, out, _ = drip("sla", "--format", "markdown")
    assert code == 0 and out.startswith("# ")
    code, out, _ = drip("campaigns", "list", "--format", "table")
    assert code == 0 and "lost-sql-winback" in out
    code, out, err = drip("sla", "--format", "jsno")
    assert code == 2 and 'did you mean "json"?' in err
    code, out, _ = drip("sla", "--format", "json")
    assert json.loads(out)["recycle_reasons"]
