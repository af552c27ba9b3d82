"""Hostile CSV files through `drip recycle --csv` and `drip leads import` (issue 12, findings 5
and 10): every bad row named by its line, every good row stored, no traceback and no other lead's
data in the output, the same on SQLite and PostgreSQL. Then a property test over arbitrary files.
"""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from dripengine.config import load_settings
from dripengine.storage.engine import make_engine
from dripengine.storage.models import Lead
from tests.clirun import drip


def write_csv(path: Path, rows: list[list[str]]) -> None:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(rows)
    path.write_text(buffer.getvalue(), encoding="utf-8")


def stored_emails() -> set[str]:
    engine = make_engine(load_settings().database_url)
    try:
        with engine.connect() as connection:
            return set(connection.scalars(select(Lead.email)))  # type: ignore[arg-type]
    finally:
        engine.dispose()


def test_bulk_recycle_names_each_bad_row_and_keeps_the_rest(folder: Path) -> None:
    write_csv(
        folder / "deals.csv",
        [
            ["email", "from_stage", "reason", "note", "first_name", "company"],
            ["ann@x.example", "sql", "no_budget", "n\x00ote", "Ann", "Acme"],
            ["bob@x.example", "sql", "no_budget", "ok", "B" * 201, "Acme"],
            ["cat@x.example", "sql", "no_budget", "ok", "Cat", "Acme"],
            ["dan@x.example", "sql", "no_budget", "x" * 200_000, "Dan", "Acme"],
            ["eve@x.example", "sql", "no_budget", "ok", "Eve\x1b[2J", "Acme"],
            ["fay@x.example", "sql", "no_budget", "ok", "Fay", "Acme"],
        ],
    )
    code, out, err = drip("recycle", "--csv", "deals.csv", "--create")
    assert code == 0, err
    assert err.splitlines() == [
        "deals.csv:2: note contains a NUL character; remove it",
        "deals.csv:3: first_name is 201 characters long; the limit is 200",
        "deals.csv:5: a field is longer than 131,072 characters; shorten it (or check for an "
        "unclosed double quote)",
        "deals.csv:6: first_name contains a control character (0x1b); remove it",
    ]
    assert "Traceback" not in out + err and "BBBB" not in out + err
    assert stored_emails() == {"cat@x.example", "fay@x.example"}
    assert "2 enrolled; 4 refused" in out


def test_lead_import_names_each_bad_row_and_keeps_the_rest(folder: Path) -> None:
    write_csv(
        folder / "more.csv",
        [
            ["email", "first_name", "company"],
            ["ann@x.example", "Ann", "A\x00cme"],
            ["bob@x.example", "Bob", "x" * 200_000],
            ["cat@x.example", "Cat", "C" * 301],
            ["dan@x.example", "Dan", "Acme"],
        ],
    )
    code, out, err = drip("leads", "import", "more.csv")
    assert code == 0, err
    assert [line.split(": ", 1)[0] for line in err.splitlines()] == [
        "more.csv:2",
        "more.csv:3",
        "more.csv:4",
    ]
    assert "Traceback" not in out + err
    assert stored_emails() == {"dan@x.example"}


cell = st.one_of(
    st.text(max_size=30),
    st.sampled_from(
        ["\x00", "a\x00", "x" * 300, "\x1b[31m", '"', "jane@acme.example", "no_budget"]
    ),
)


@pytest.mark.slow  # hypothesis through the CLI and the database
@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    rows=st.lists(st.lists(cell, min_size=0, max_size=6), max_size=6),
    raw=st.binary(max_size=200),
    use_raw=st.booleans(),
)
def test_any_csv_gives_line_errors_and_stores_exactly_the_valid_rows(
    folder: Path, rows: list[list[str]], raw: bytes, use_raw: bool
) -> None:
    path = folder / "any.csv"
    if use_raw:
        path.write_bytes(b"email,first_name,reason,from_stage\n" + raw)
    else:
        write_csv(path, [["email", "first_name", "reason", "from_stage"], *rows])
    before = stored_emails()
    for command in (("leads", "import", "any.csv"), ("recycle", "--csv", "any.csv")):
        code, out, err = drip(*command)  # a crash would raise here
        assert code in (0, 1), (command, out, err)
        assert "Traceback" not in out + err
        for line in err.splitlines():
            assert line.startswith(("any.csv:", "Error: ", "… and")), line
        if command[0] == "leads" and code == 0:
            new = re.search(r"(\d+) new, (\d+) updated, (\d+) not taken", out)
            assert new is not None, out
            added = stored_emails() - before
            assert len(added) == int(new.group(1))  # the summary says what really happened
            assert int(new.group(3)) == len(
                [e for e in err.splitlines() if e.startswith("any.csv:")]
            )
    after = stored_emails()
    assert before <= after
    for email in after - before:
        assert "\x00" not in email and len(email) <= 320
