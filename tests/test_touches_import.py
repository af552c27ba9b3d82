"""``drip touches import FILE.csv`` and ``drip touches add``: each bad row named by its line with the
fix, the good rows around it kept, duplicates counted and not stored twice, ``--strict``, unknown
columns and addresses with did-you-mean, hostile cells; SQLite and PostgreSQL."""

from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.engine import Engine

from dripengine.storage.models import LEAD, SALES_TOUCH
from tests.clirun import drip


def leads(folder: Path) -> None:
    (folder / "leads.csv").write_text(
        "email,first_name\njane@acme.example,Jane\nbob@acme.example,Bob\n"
    )
    assert drip("leads", "import", "leads.csv")[0] == 0


def touches(engine: Engine) -> list[tuple[str, str, str, str | None, str, str | None]]:
    query = (
        select(
            LEAD.c.email,
            SALES_TOUCH.c.kind,
            SALES_TOUCH.c.at,
            SALES_TOUCH.c.actor,
            SALES_TOUCH.c.source,
            SALES_TOUCH.c.note,
        )
        .join(LEAD, LEAD.c.id == SALES_TOUCH.c.lead_id)
        .order_by(SALES_TOUCH.c.id)
    )
    with engine.connect() as connection:
        return [(e, k, a.isoformat(), r, s, n) for e, k, a, r, s, n in connection.execute(query)]


FILE = (
    "E-mail,Kind,At,Rep,Note\n"  # header names normalised as `drip leads import` does
    'jane@acme.example,call,2026-11-23T09:00:00+01:00,sam,"first call\r\nsecond line"\n'
    "jane@acme.exmaple,call,2026-11-23T09:00:00Z,sam,\n"  # line 4
    "bob@acme.example,cal,2026-11-23T09:00:00Z,sam,\n"
    "bob@acme.example,email,2026-11-23T09:00:00,sam,\n"
    "bob@acme.example,email,2026-11-24T09:00:00Z,sam,\n"  # after NOW
    "jane@acme.example,call,2026-11-23T08:00:00Z,sam,again\n"  # line 2's touch: a duplicate
    'bob@acme.example,meeting,,ann,"=?utf-8?b?SGk=?= <b>x</b>"\n'  # no time: now
    "bob@acme.example,email,2026-11-20T17:00:00-05:00,ann,too,many\n"
)


def test_import_keeps_the_good_rows_and_names_each_bad_one(
    folder: Path, folder_engine: Engine
) -> None:
    leads(folder)
    (folder / "touches.csv").write_text(FILE, newline="")
    code, out, err = drip("touches", "import", "touches.csv")
    assert code == 0, err
    assert out.startswith("8 rows in ")
    assert out.endswith(": 2 recorded, 1 duplicates (already recorded), 5 refused\n")
    assert err.splitlines() == [
        "touches.csv:4: no lead jane@acme.exmaple (did you mean jane@acme.example?); "
        "a touch is kept only for a lead dripengine has (import it first)",
        "touches.csv:5: kind: 'cal' is not a kind of touch (did you mean \"call\"?) "
        "(use one of: call, email, meeting)",
        "touches.csv:6: at: '2026-11-23T09:00:00' has no time zone; add its offset, e.g. "
        "2026-11-23T09:00:00Z for UTC or +01:00 for Berlin in winter",
        "touches.csv:7: at: 2026-11-24 09:00 UTC is in the future (now is 2026-11-23 10:00 "
        "UTC); report a touch once it happened, with the time it happened",
        "touches.csv:10: 1 more field(s) than the header has columns; quote values that "
        "contain the delimiter",
    ]
    assert touches(folder_engine) == [
        (
            "jane@acme.example",
            "call",
            "2026-11-23T08:00:00+00:00",
            "sam",
            "csv",
            "first call\r\nsecond line",
        ),
        (
            "bob@acme.example",
            "meeting",
            "2026-11-23T10:00:00+00:00",
            "ann",
            "csv",
            "=?utf-8?b?SGk=?= <b>x</b>",
        ),
    ]
    # the same file again: nothing new, the duplicates counted as such
    code, out, _ = drip("touches", "import", "touches.csv", "--format", "json")
    report = json.loads(out)
    assert (report["rows"], report["stored"], report["duplicates"], report["refused"]) == (
        8,
        0,
        3,
        5,
    )
    assert [r["line"] for r in report["results"]] == [2, 4, 5, 6, 7, 8, 9, 10]
    assert len(touches(folder_engine)) == 2


def test_the_refused_rows_as_csv_and_strict_keeps_nothing(
    folder: Path, folder_engine: Engine
) -> None:
    leads(folder)
    (folder / "touches.csv").write_text(FILE, newline="")
    code, out, err = drip("touches", "import", "touches.csv", "--strict")
    assert code == 1
    assert out.startswith("8 rows: nothing recorded, 5 refused (without them: 2 new")
    assert err.endswith("Error: --strict: nothing recorded, 5 row(s) refused\n")
    assert touches(folder_engine) == []
    code, out, _ = drip("touches", "import", "touches.csv", "--format", "csv")
    lines = out.splitlines()
    assert lines[0] == "line,email,kind,at,outcome,message"
    assert len(lines) == 6 and all(",refused," in line for line in lines[1:])


def test_the_file_is_refused_for_an_unknown_or_missing_column(folder: Path) -> None:
    leads(folder)
    (folder / "a.csv").write_text("email,knd,at\njane@acme.example,call,\n")
    code, _, err = drip("touches", "import", "a.csv")
    assert code == 1
    assert err == (
        "Error: a.csv: 'knd' is not a column of touches (did you mean \"kind\"?) "
        "(the columns: email, kind, at, rep, note)\n"
    )
    (folder / "b.csv").write_text("mail,at\njane@acme.example,\n")
    code, _, err = drip("touches", "import", "b.csv")
    assert code == 1 and err == (
        "Error: b.csv: no kind column; the columns: email, kind, at, rep, note\n"
    )
    (folder / "c.csv").write_bytes(b"email,kind\njane@acme.example,call\nbob@acme.example,\xff\n")
    code, _, err = drip("touches", "import", "c.csv")
    assert code == 1 and "line 3 is not UTF-8" in err


def test_touches_add_one_touch(folder: Path, folder_engine: Engine) -> None:
    leads(folder)
    code, out, err = drip(
        "touches", "add", "bob@acme.example", "--kind", "email", "--at", "2026-11-23T09:00:00Z"
    )
    assert (code, err) == (0, "")
    assert out == (
        "bob@acme.example: email at 2026-11-23 09:00 UTC recorded; marketing email held until "
        "2026-11-25 09:00 UTC\n"
    )
    code, out, _ = drip(
        "touches", "add", "bob@acme.example", "--kind", "email", "--at", "2026-11-23T10:00:00+01:00"
    )
    assert out == "bob@acme.example: email at 2026-11-23 09:00 UTC already recorded\n"
    code, _, err = drip("touches", "add", "bob@acme.exampel", "--kind", "call")
    assert code == 1 and "(did you mean bob@acme.example?)" in err and err.count("\n") == 1
    code, _, err = drip("touches", "add", "bob@acme.example", "--kind", "cal")
    assert code == 2 and "call" in err
    code, _, err = drip("touches", "add", "bob@acme.example", "--kind", "call", "--at", "noon")
    assert code == 1 and "not an ISO 8601 time" in err
    assert len(touches(folder_engine)) == 1
