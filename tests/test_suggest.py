"""Did you mean …? wherever a name is chosen from a list (issue 15, item 3)."""

from __future__ import annotations

from pathlib import Path

import pytest

from dripengine.suggest import closest, did_you_mean
from tests.clirun import drip


@pytest.mark.parametrize(
    ("typed", "choices", "meant"),
    [
        ("no-budget", ["bad_timing", "no_budget"], "no_budget"),
        ("No Budget", ["bad_timing", "no_budget"], "no_budget"),
        ("lost-sql-winbak", ["lost-sql-winback", "rejected-mql-nurture"], "lost-sql-winback"),
        ("sqll", ["mql", "sal", "sql", "opportunity"], "sql"),
        ("zzz", ["mql", "sal", "sql"], None),
        ("", ["a"], None),
    ],
)
def test_closest(typed: str, choices: list[str], meant: str | None) -> None:
    assert closest(typed, choices) == meant


def test_did_you_mean_says_nothing_when_nothing_is_close_or_it_is_exact() -> None:
    assert did_you_mean("zzz", ["abc"]) == ""
    assert did_you_mean("sql", ["sql"]) == ""
    assert did_you_mean("sqll", ["sql"]) == ' (did you mean "sql"?)'


@pytest.mark.parametrize(
    ("command", "hint"),
    [
        (("recycle", "jane@acme.example", "--from", "sql", "--reason", "no-budget"), '"no_budget"'),
        (("recycle", "jane@acme.example", "--from", "sqll", "--reason", "no_budget"), '"sql"'),
        (("campaigns", "show", "lost-sql-winbak"), '"lost-sql-winback"'),
        (("campaigns", "preview", "lost-sql-winback", "--step", "chekin", "--sample"), '"checkin"'),
        (("stats", "lost-sql-winbak"), '"lost-sql-winback"'),
        (("leads", "list", "--format", "jsn"), '"json"'),
    ],
)
def test_a_typo_is_refused_with_the_nearest_name(
    folder: Path, command: tuple[str, ...], hint: str
) -> None:
    assert drip("leads", "import", "leads.csv")[0] == 0
    code, _, err = drip(*command)
    assert code in (1, 2), err
    assert f"did you mean {hint}?" in err, err


def test_a_misspelt_setting_names_the_one_meant(folder: Path) -> None:
    text = (folder / "drip.toml").read_text()
    (folder / "drip.toml").write_text(
        text.replace("[sending]\n", "[sending]\nbatch_sise = 10\n", 1)
    )
    code, _, err = drip("sla")
    assert code == 1
    assert 'sending.batch_sise: unknown setting (did you mean "sending.batch_size"?)' in err
