"""Listings never cut the key column (issue 15, item 8): at 80 columns the address is whole and
the other columns wrap; narrower than the key allows, each row becomes a block."""

from __future__ import annotations

import pytest

from dripengine.cli import output

LONG = "alexandra.konstantinopoulou-whitfield@very-long-company-domain.example"
COLUMNS = ["email", "name", "company", "stage", "score", "recycle_count", "updated_at"]
ROWS = [
    {
        "email": LONG,
        "name": "Alexandra K",
        "company": "Acme [EU] GmbH",
        "stage": "recycled",
        "score": 12.5,
        "recycle_count": 1,
    },
    {
        "email": "bo@x.example",
        "name": "Bo",
        "company": "X",
        "stage": "mql",
        "score": 1.0,
        "recycle_count": 0,
    },
]


@pytest.mark.parametrize("width", [60, 80, 100, 160])
def test_the_address_is_never_cut(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], width: int
) -> None:
    monkeypatch.setattr(output, "PIPE_WIDTH", width)
    output.emit_rows(ROWS, "table", COLUMNS)
    lines = capsys.readouterr().out.splitlines()
    assert any(LONG in line for line in lines)  # whole, on one line
    assert any("bo@x.example" in line for line in lines)
    assert not any("…" in line for line in lines)  # nothing cut, headers included


def test_a_narrow_terminal_gets_one_block_a_row(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(output, "PIPE_WIDTH", 80)
    output.emit_rows(ROWS, "table", COLUMNS)
    lines = capsys.readouterr().out.splitlines()
    assert LONG in lines
    assert "  company        Acme [EU] GmbH" in lines


def test_a_wide_enough_terminal_keeps_the_table(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(output, "PIPE_WIDTH", 160)
    output.emit_rows(ROWS, "table", COLUMNS)
    text = capsys.readouterr().out
    assert "┃ email" in text and LONG in text and "recycle_count" in text
