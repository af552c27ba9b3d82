"""`drip recycle --csv --strict` says what really happened (issue 15, item 4): a run rolled back
for one refused row recycled nothing, and its output must not say "recycled" for the others."""

from __future__ import annotations

import json
from pathlib import Path

from tests.clirun import drip

ROWS = "email,from_stage,reason\nk1@x.example,sql,no_budget\nk2@x.example,sql,nope\n"


def test_a_rolled_back_strict_run_says_nothing_was_recycled(folder: Path) -> None:
    (folder / "s.csv").write_text(ROWS)
    code, out, err = drip("recycle", "--csv", "s.csv", "--strict", "--create", "--verbose")
    assert code == 1
    assert "recycled from" not in out
    assert "k1@x.example: not recycled (rolled back)" in out
    assert "nothing recycled, 1 refused (without them: 1 enrolled)" in out
    assert "--strict: nothing recycled, 1 row(s) refused" in err
    assert drip("leads", "show", "k1@x.example")[0] == 1  # and indeed nothing is there

    code, out, _ = drip("recycle", "--csv", "s.csv", "--strict", "--create", "--format", "json")
    report = json.loads(out)
    assert report["committed"] is False and report["outcomes"] == {} and report["results"] == []
    assert report["rolled_back"] == {"enrolled": 1}


def test_without_strict_the_good_row_is_recycled_and_said(folder: Path) -> None:
    (folder / "s.csv").write_text(ROWS)
    code, out, _ = drip("recycle", "--csv", "s.csv", "--create", "--verbose")
    assert code == 0
    assert "k1@x.example recycled from SQL" in out and "1 enrolled; 1 refused" in out
