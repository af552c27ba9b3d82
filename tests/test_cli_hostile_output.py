"""Lead data is never a spreadsheet formula or a terminal escape in what drip prints (issue 12,
finding 11). A lead imported with hostile fields goes through every export and text view."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from sqlalchemy import update

from dripengine.cli.output import csv_safe, terminal_safe
from dripengine.config import load_settings
from dripengine.storage.engine import make_engine
from tests.clirun import drip
from tests.rows import LEAD

FORMULA = '=HYPERLINK("http://x.example","click")'
OSC_LINK = "\x1b]8;;http://x.example\x07evil\x1b]8;;\x07\x1b[2J"
CONTROL = ("\x1b", "\x07", "\x9b", "\u202e")


@pytest.fixture
def hostile(folder: Path) -> str:
    """A lead whose fields are a formula and terminal escapes. The import takes the formula (it is
    printable text); the edge check refuses control characters today, so the escapes are written
    into the row as data stored before that check (or by another program) would be."""
    rows = [
        ["email", "first_name", "last_name", "company", "title"],
        ["evil@x.example", FORMULA, "Lee", "Acme", "-2+3"],
    ]
    buffer = io.StringIO()
    csv.writer(buffer).writerows(rows)
    (folder / "evil.csv").write_text(buffer.getvalue())
    assert drip("leads", "import", "evil.csv")[0] == 0
    code, _, err = drip(
        "recycle", "evil@x.example", "--from", "sql", "--reason", "no_budget", "--note", "[bold]x"
    )
    assert code == 0, err
    engine = make_engine(load_settings().database_url)
    try:
        with engine.begin() as connection:
            connection.execute(
                update(LEAD)
                .where(LEAD.c.email == "evil@x.example")
                .values(last_name="Lee\u202egnp.exe", company=OSC_LINK)
            )
    finally:
        engine.dispose()
    code, out, _ = drip("leads", "list", "--format", "json")
    [stored] = [r for r in json.loads(out) if r["email"] == "evil@x.example"]
    assert (stored["first_name"], stored["company"]) == (FORMULA, OSC_LINK)
    return "evil@x.example"


def test_csv_exports_never_start_a_formula(hostile: str) -> None:
    code, out, _ = drip("leads", "list", "--format", "csv")
    assert code == 0
    [row] = [r for r in csv.DictReader(io.StringIO(out)) if r["email"] == hostile]
    assert row["first_name"] == "'" + FORMULA
    assert row["title"] == "'-2+3"
    # CSV is data for scripts: kept as stored, only formulas defused (click drops CSI sequences
    # when stdout is not a terminal, so the trailing clear-screen is not compared)
    assert row["company"].startswith("\x1b]8;;http://x.example\x07evil")
    assert row["score"] == "0.0"  # a number we computed stays a number
    for cell in row.values():
        assert not cell.startswith(("=", "+", "-", "@", "\t", "\r"))


@pytest.mark.parametrize(
    "command",
    [
        ("leads", "list"),
        ("leads", "list", "--stage", "recycled"),
        ("leads", "show", "evil@x.example"),
        ("scoring", "explain", "evil@x.example"),
        ("campaigns", "simulate", "lost-sql-winback", "--lead", "evil@x.example"),
        ("campaigns", "preview", "lost-sql-winback", "--lead", "evil@x.example"),
        ("leads", "forget", "evil@x.example", "--yes"),
    ],
)
def test_text_output_carries_no_terminal_control(hostile: str, command: tuple[str, ...]) -> None:
    code, out, err = drip(*command)
    assert code == 0, err
    assert not any(c in out + err for c in CONTROL), repr(out)


def test_leads_show_prints_the_data_as_text(hostile: str) -> None:
    _, out, _ = drip("leads", "show", hostile)
    assert "Leegnp.exe" in out and "-2+3" in out and "Acme" not in out
    # the OSC 8 link keeps its text, loses the link and the clear-screen; the bidi override goes;
    # a formula is harmless on a terminal and is shown as written
    assert out.splitlines()[0] == f"evil@x.example  {FORMULA} Leegnp.exe  evil"
    assert "[bold]x" in out  # the note: rich markup in lead data stays text


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("=1+1", "'=1+1"),
        ("+1", "'+1"),
        ("-1", "'-1"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\tx", "'\tx"),
        ("\rx", "'\rx"),
        ("Ann", "Ann"),
        (-5, -5),
        (2.5, 2.5),
    ],
)
def test_csv_safe(value: object, expected: object) -> None:
    assert csv_safe(value) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (OSC_LINK, "evil"),
        ("\x1b[31mRed\x1b[0m", "Red"),
        ("\x9b31mX", "X"),
        ("\x1bPq#0\x1b\\ok", "ok"),
        ("a\u202eb\u2066c", "abc"),
        ("two\nlines\r\n", "two lines "),
        ("Jürgen Ölaf", "Jürgen Ölaf"),
    ],
)
def test_terminal_safe(text: str, expected: str) -> None:
    assert terminal_safe(text) == expected


def test_recycle_summary_quoting_lead_data_is_terminal_safe(hostile: str, folder: Path) -> None:
    """A campaign whose attribute filter the lead fails says what the lead has: its company."""
    path = folder / "campaigns" / "lost-sql-winback.yaml"
    text = path.read_text(encoding="utf-8")
    path.write_text(
        text.replace(
            "  reasons: [no_budget,", "  attributes: {company: Globex}\n  reasons: [no_budget,"
        ),
        encoding="utf-8",
    )
    code, out, err = drip("recycle", hostile, "--from", "sql", "--reason", "no_budget")
    assert code == 0, err
    assert out.endswith('wants company Globex, the lead has "evil"\n')
    assert not any(c in out + err for c in CONTROL), repr(out)


def test_an_error_quoting_what_it_refused_is_terminal_safe(folder: Path) -> None:
    """Every DripError goes through one handler: what it quotes loses its escapes."""
    code, _, err = drip("campaigns", "preview", "x\x1b]0;owned\x07y\x1b[2J")
    assert code == 1
    assert err == 'Error: no campaign "xy" (known: lost-sql-winback, rejected-mql-nurture)\n'
