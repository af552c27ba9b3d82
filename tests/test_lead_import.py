"""``import_leads_file`` / ``import_leads_rows`` end to end, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from dripengine.exceptions import ImportFileError
from dripengine.leads import import_leads_file, import_leads_rows
from dripengine.storage.models import Lead

T0 = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
T1 = T0 + timedelta(days=3)


def write(tmp_path: Path, text: str, name: str = "leads.csv", encoding: str = "utf-8") -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode(encoding))
    return path


def lead(engine: Engine, email: str) -> Lead:
    with Session(engine) as session:
        found = session.exec(select(Lead).where(Lead.email == email)).one()
        session.expunge(found)
        return found


def count(engine: Engine) -> int:
    with Session(engine) as session:
        return session.exec(select(func.count()).select_from(Lead)).one()


def test_insert_new_leads(engine: Engine, tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "Email,First Name,Company,Time Zone,Stage,Industry\n"
        "Jane@Acme.example,Jane,Acme,Europe/Berlin,,saas\n"
        "max@globex.example,Max,Globex,,customer,\n",
    )
    report = import_leads_file(engine, path, now=T0)
    assert (report.rows_read, report.inserted, report.updated, report.errors) == (2, 2, 0, [])
    jane = lead(engine, "jane@acme.example")
    assert (jane.first_name, jane.company, jane.timezone, jane.stage) == (
        "Jane",
        "Acme",
        "Europe/Berlin",
        "lead",
    )
    assert jane.attributes == {"industry": "saas"}
    assert jane.created_at == jane.updated_at == T0
    assert (jane.score, jane.recycle_count, jane.last_name) == (0.0, 0, None)
    assert lead(engine, "max@globex.example").stage == "customer"


def test_update_merges_attributes_keeps_created_at_and_empty_values(
    engine: Engine, tmp_path: Path
) -> None:
    first = write(
        tmp_path,
        "email,first_name,last_name,industry,owner\njane@acme.example,Jane,Doe,saas,rep1\n",
        "first.csv",
    )
    import_leads_file(engine, first, now=T0)
    second = write(
        tmp_path,
        "email,first_name,last_name,owner,lost_reason\nJANE@acme.example,Janet,,rep2,timing\n",
        "second.csv",
    )
    report = import_leads_file(engine, second, now=T1)
    assert (report.inserted, report.updated) == (0, 1)
    jane = lead(engine, "jane@acme.example")
    assert (jane.first_name, jane.last_name) == ("Janet", "Doe")  # empty CSV value: kept
    assert jane.attributes == {"industry": "saas", "owner": "rep2", "lost_reason": "timing"}
    assert (jane.created_at, jane.updated_at) == (T0, T1)


def test_stage_of_an_existing_lead_is_never_changed(engine: Engine, tmp_path: Path) -> None:
    import_leads_file(
        engine,
        write(tmp_path, "email,stage\na@acme.example,sql\nb@acme.example,mql\n", "one.csv"),
        now=T0,
    )
    report = import_leads_file(
        engine,
        write(
            tmp_path,
            "email,stage\na@acme.example,customer\nb@acme.example,mql\nc@acme.example,sal\n",
            "two.csv",
        ),
        now=T1,
    )
    assert (report.inserted, report.updated, report.ignored_stage) == (1, 2, 1)
    assert [lead(engine, e).stage for e in ("a", "b", "c") for e in [f"{e}@acme.example"]] == [
        "sql",
        "mql",
        "sal",
    ]
    assert "stage column ignored for 1 existing leads" in " ".join(report.summary())


def test_bom_and_semicolons(engine: Engine, tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "\ufeffE-Mail;Vorname;Firma\njürgen@münchen.example;Jürgen;Acme, GmbH\n",
        "excel.csv",
    )
    report = import_leads_file(engine, path, now=T0)
    assert (report.inserted, report.errors) == (1, [])
    jurgen = lead(engine, "jürgen@münchen.example")
    assert jurgen.attributes == {"vorname": "Jürgen", "firma": "Acme, GmbH"}


def test_row_errors_are_reported_and_good_rows_kept(engine: Engine, tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "email,timezone,stage,note\n"
        "a@acme.example,,,\n"
        "not-an-address,,,\n"
        ",,,no address\n"
        "A@acme.example,,,\n"
        "b@acme.example,Mars/Base,,\n"
        "c@acme.example,,prospect,\n"
        'd@acme.example,,,"multi\nline"\n'
        "e@acme.example,,,x,y\n"
        "f@acme.example,UTC,,\n",
    )
    report = import_leads_file(engine, path, now=T0)
    assert [(e.line, e.email) for e in report.errors] == [
        (3, "not-an-address"),
        (4, ""),
        (5, "a@acme.example"),
        (6, "b@acme.example"),
        (7, "c@acme.example"),
        (10, ""),
    ]
    assert "already appears on line 2" in report.errors[2].message
    assert (report.rows_read, report.inserted) == (9, 3)
    assert count(engine) == 3


def test_strict_mode_imports_nothing_if_a_row_is_bad(engine: Engine, tmp_path: Path) -> None:
    rows = "".join(f"p{i}@acme.example\n" for i in range(25))
    path = write(tmp_path, f"email\n{rows}bad@\n{rows.replace('p', 'q')}")
    report = import_leads_file(engine, path, now=T0, strict=True, batch_size=10)
    assert report.aborted
    assert (report.inserted, report.updated, len(report.errors)) == (0, 0, 1)
    assert report.errors[0].line == 27
    assert count(engine) == 0
    assert "strict mode: nothing imported" in report.summary()[-1]


def test_strict_mode_imports_a_clean_file(engine: Engine, tmp_path: Path) -> None:
    path = write(tmp_path, "email\n" + "".join(f"p{i}@acme.example\n" for i in range(25)))
    report = import_leads_file(engine, path, now=T0, strict=True, batch_size=10)
    assert (report.aborted, report.inserted, count(engine)) == (False, 25, 25)


def test_missing_email_column(engine: Engine, tmp_path: Path) -> None:
    path = write(tmp_path, "name,mail_addr,company\nJane,jane@acme.example,Acme\n")
    with pytest.raises(ImportFileError) as info:
        import_leads_file(engine, path, now=T0)
    assert info.value.message == f"{path}: no email column; found columns: name, mail_addr, company"


def test_round_trip_of_2000_rows_in_batches(engine: Engine, tmp_path: Path) -> None:
    lines = [f"user{i}@company{i % 37}.example,User {i},seg{i % 5}" for i in range(2000)]
    path = write(tmp_path, "email,first_name,segment\n" + "\n".join(lines) + "\n")
    seen: list[int] = []
    report = import_leads_file(engine, path, now=T0, batch_size=300, progress=seen.append)
    assert (report.rows_read, report.inserted, report.updated) == (2000, 2000, 0)
    assert seen == [*range(300, 2000, 300), 2000]
    assert count(engine) == 2000
    assert lead(engine, "user1999@company1.example").attributes == {"segment": "seg4"}

    again = import_leads_file(engine, path, now=T1, batch_size=700)
    assert (again.inserted, again.updated, again.ignored_stage) == (0, 2000, 0)
    assert count(engine) == 2000
    assert lead(engine, "user7@company7.example").updated_at == T1


def test_import_rows_from_a_stream(engine: Engine) -> None:
    rows = [
        {"Email": "a@acme.example", "Company": "Acme", "Employees": 50},
        {"Email": "b@"},
        {"Email": "c@acme.example", "Stage": "mql"},
    ]
    report = import_leads_rows(engine, rows, now=T0, first_line=1)
    assert (report.inserted, [e.line for e in report.errors]) == (2, [2])
    assert lead(engine, "a@acme.example").attributes == {"employees": "50"}
    assert lead(engine, "c@acme.example").stage == "mql"


def test_time_must_be_aware(engine: Engine) -> None:
    with pytest.raises(ValueError, match="naive datetime"):
        import_leads_rows(engine, [{"email": "a@acme.example"}], now=datetime(2026, 1, 1))
