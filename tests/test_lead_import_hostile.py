"""Hostile text through ``drip leads import`` comes back exactly, the same on SQLite and PostgreSQL.

PostgreSQL's rows travel by binary ``COPY`` into a staging table and one ``INSERT … SELECT … ON
CONFLICT``; SQLite's by an ``executemany``. Whatever a cell holds — tabs, line breaks, backslashes,
``\\N``, quotes, the delimiter, emoji, right-to-left text, an encoded-word, JSON-looking text, the
most characters its column takes — is stored as it was read, and an existing lead is updated by the
same rules on both.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DataError
from sqlmodel import Session, select

from dripengine.leads import import_leads_file, import_leads_rows
from dripengine.storage.models import Lead

T0 = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
T1 = T0 + timedelta(days=3)
# 254 characters, the most an address may have
LONGEST_EMAIL = "l" * 64 + "@" + ".".join(["d" * 61, "d" * 61, "d" * 57]) + ".example"

HEADER = [
    "Email",
    "First Name",
    "Last Name",
    "Company",
    "Title",
    "Phone",
    "Country",
    "Time Zone",
    "Source",
    "Consent",
    "Stage",
    "Notes",
    'He said "hi"',
    "Größe",
]
FIELDS = ("first_name", "last_name", "company", "title", "phone", "country", "timezone")
FIELDS += ("source", "consent")
ATTRIBUTES = ("notes", 'he_said_"hi"', "größe")

ROWS = [
    [
        "tab@hostile.example",
        "Ann\tMarie",
        'O\'Brien "the" \\ Smith',
        "\\N",
        "مدير المبيعات \u202eRLO\u202c",
        "+49 (30) 123\t456",
        "NULL",
        "europe/berlin",  # the time zone's case is corrected, as always
        "=?utf-8?b?SsO8cmdlbg==?=",
        "\\.",
        "",
        '{"a": "b \\"c\\"", "d": [1, {"e": "\'"}]}',
        "tab\there, comma",
        "日本語 👩‍💻",
    ],
    [
        "Lines@Hostile.example",
        "line1\nline2\r\nline3",
        "back\\\\slash\\",
        "C:\\temp\\new,a;b|c",
        "\\u0000 is text here",
        "",
        "",
        "",
        "\\N",
        "",
        "mql",
        "null",
        "[1, 2]",
        '"quoted"',
    ],
    [
        LONGEST_EMAIL,
        "é" * 200,
        "🙂" * 200,
        "x" * 299 + "🙂",
        "ß" * 300,
        "9" * 64,
        "C" * 64,
        "America/Argentina/ComodRivadavia",
        "s" * 200,
        "c" * 64,
        "customer",
        "\\" * 500 + '"' * 500,
        "\t\\N\t",
        "",
    ],
]


def write_csv(path: Path, header: list[str], rows: list[list[str]]) -> Path:
    with path.open("w", encoding="utf-8", newline="") as handle:
        csv.writer(handle).writerows([header, *rows])
    return path


def expected(row: list[str]) -> dict[str, Any]:
    """What a row stores: stripped non-empty values, None for empty fields, the stage given."""
    cells = [cell.strip() for cell in row]
    fields = dict(zip(FIELDS, cells[1:10], strict=True))
    if fields["timezone"] == "europe/berlin":
        fields["timezone"] = "Europe/Berlin"
    return {
        "email": cells[0].lower(),
        **{name: value or None for name, value in fields.items()},
        "stage": cells[10] or "lead",
        "attributes": {k: v for k, v in zip(ATTRIBUTES, cells[11:], strict=True) if v},
    }


def stored(engine: Engine) -> dict[str, dict[str, object]]:
    with Session(engine) as session:
        leads = session.exec(select(Lead)).all()
    return {
        lead.email: {
            "email": lead.email,
            **{name: getattr(lead, name) for name in FIELDS},
            "stage": lead.stage,
            "attributes": lead.attributes,
            "times": (lead.created_at, lead.updated_at),
            "counters": (lead.score, lead.recycle_count, lead.soft_bounces),
        }
        for lead in leads
    }


def without(values: Mapping[str, object], *names: str) -> dict[str, object]:
    return {k: v for k, v in values.items() if k not in names}


@pytest.mark.parametrize("batch_size", [5000, 1])
def test_hostile_cells_come_back_exactly(engine: Engine, tmp_path: Path, batch_size: int) -> None:
    path = write_csv(tmp_path / "hostile.csv", HEADER, ROWS)
    report = import_leads_file(engine, path, now=T0, batch_size=batch_size)
    assert (report.inserted, report.updated, report.errors) == (3, 0, [])
    leads = stored(engine)
    assert {email: without(lead, "times", "counters") for email, lead in leads.items()} == {
        row["email"]: row for row in map(expected, ROWS)
    }
    assert {(lead["times"], lead["counters"]) for lead in leads.values()} == {((T0, T0), (0, 0, 0))}


@pytest.mark.parametrize("strict", [False, True])
def test_reimport_updates_by_the_same_rules(engine: Engine, tmp_path: Path, strict: bool) -> None:
    import_leads_file(engine, write_csv(tmp_path / "one.csv", HEADER, ROWS), now=T0)
    again = [
        # every field empty: all kept; attributes: one replaced, one added, the others kept
        ["TAB@hostile.example", *[""] * 10, "\\N", "", "neu\n2"],
        # a stage that differs from the stored one: ignored; values that look like NULL stored
        ["lines@hostile.example", "\\N", "", "", "", "", "", "", "", "", "sql", "", "\\N", ""],
        # the stage it has: not counted as ignored; the longest values replaced by short ones
        [LONGEST_EMAIL, "Z", "", "", "", "", "", "UTC", "", "", "customer", "", "", "x"],
        ["new@hostile.example", "", "", "", "", "", "", "", "", "", "sal", "", "", ""],
    ]
    report = import_leads_file(
        engine, write_csv(tmp_path / "two.csv", HEADER, again), now=T1, strict=strict, batch_size=2
    )
    assert (report.inserted, report.updated, report.ignored_stage) == (1, 3, 1)
    leads = stored(engine)
    first, second, third = (expected(row) for row in ROWS)
    assert without(leads["tab@hostile.example"], "times", "counters") == {
        **first,
        "attributes": {**first["attributes"], "notes": "\\N", "größe": "neu\n2"},
    }
    assert without(leads["lines@hostile.example"], "times", "counters") == {
        **second,
        "first_name": "\\N",
        "attributes": {**second["attributes"], 'he_said_"hi"': "\\N"},
    }
    assert without(leads[LONGEST_EMAIL], "times", "counters") == {
        **third,
        "first_name": "Z",
        "timezone": "UTC",
        "attributes": {**third["attributes"], "größe": "x"},
    }
    assert leads["new@hostile.example"]["stage"] == "sal"
    assert leads["new@hostile.example"]["attributes"] == {}
    assert {e: lead["times"] for e, lead in leads.items()} == {
        "tab@hostile.example": (T0, T1),
        "lines@hostile.example": (T0, T1),
        LONGEST_EMAIL: (T0, T1),
        "new@hostile.example": (T1, T1),
    }


def test_a_nul_character_is_refused_and_the_other_rows_kept(engine: Engine, tmp_path: Path) -> None:
    rows = [list(ROWS[0]), ["ok@hostile.example", *[""] * 13]]
    rows[0][3] = "Ac\x00me"
    path = write_csv(tmp_path / "nul.csv", HEADER, rows)
    report = import_leads_file(engine, path, now=T0)
    assert [(e.line, e.message) for e in report.errors] == [
        (2, "company contains a NUL character; remove it")
    ]
    assert set(stored(engine)) == {"ok@hostile.example"}


def test_a_nul_in_an_attribute_name_is_what_each_database_makes_of_it(engine: Engine) -> None:
    """As before the COPY path: SQLite stores the name; PostgreSQL's JSONB refuses it, so the
    import fails with the driver's error and the batches committed before it stay."""
    rows = [{"email": f"p{i}@hostile.example"} for i in range(4)]
    rows[2]["odd\x00name"] = "v"
    if engine.dialect.name == "sqlite":
        assert import_leads_rows(engine, rows, now=T0, batch_size=2).inserted == 4
        assert stored(engine)["p2@hostile.example"]["attributes"] == {"odd\x00name": "v"}
        return
    with pytest.raises(DataError, match="unsupported Unicode escape sequence"):
        import_leads_rows(engine, rows, now=T0, batch_size=2)
    assert set(stored(engine)) == {"p0@hostile.example", "p1@hostile.example"}
    assert import_leads_rows(engine, rows[3:], now=T0).inserted == 1  # the engine still works


def test_rows_failing_to_arrive_keep_the_batches_before(engine: Engine) -> None:
    def rows() -> Iterator[dict[str, str]]:
        yield from ({"email": f"p{i}@hostile.example"} for i in range(5))
        raise OSError("the source went away")

    with pytest.raises(OSError, match="went away"):
        import_leads_rows(engine, rows(), now=T0, batch_size=2)
    with Session(engine) as session:
        assert session.exec(select(func.count()).select_from(Lead)).one() == 4
