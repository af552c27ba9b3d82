"""A typo'd address never enrolls a ghost lead (issue 15, item 2), and a bulk recycle prints a
summary, with per-row detail on request (item 7).

``drip recycle`` refuses an address no lead has, naming the nearest stored ones; ``--create`` adds
it. ``--csv`` reports such rows by line and keeps the rest. The CRM API keeps creating leads (the
CRM is the source of truth there): tests/test_web_api.py covers that.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

from dripengine.leads.nearest import nearest_addresses
from dripengine.storage.engine import make_engine
from tests.clirun import drip


def _emails() -> list[str]:
    code, out, _ = drip("leads", "list", "--all", "--format", "json")
    assert code == 0
    return sorted(row["email"] for row in json.loads(out))


def test_a_typo_in_one_address_is_refused_with_the_nearest_known_one(folder: Path) -> None:
    assert drip("leads", "import", "leads.csv")[0] == 0
    before = _emails()
    for typed, meant in (
        ("jane@acme.exmaple", "jane@acme.example"),  # the domain
        ("jnae@acme.example", "jane@acme.example"),  # the local part
        ("Kenji.Sato@Sakura-Tech.exampel", "kenji.sato@sakura-tech.example"),
    ):
        code, out, err = drip("recycle", typed, "--from", "sql", "--reason", "no_budget")
        assert code == 1 and out == ""
        assert f"(did you mean {meant}?)" in err and "--create" in err
        assert err.count("\n") == 1
    assert _emails() == before  # no ghost lead
    code, _, err = drip("recycle", "someone.else@elsewhere.example", "--reason", "no_budget")
    assert code == 1 and "no lead someone.else@elsewhere.example;" in err
    assert "did you mean" not in err  # nothing is close: no guess


def test_create_adds_the_lead_and_a_wrong_reason_is_named_first(folder: Path) -> None:
    code, _, err = drip("recycle", "new@acme.example", "--from", "sql", "--reason", "no-budgte")
    assert code == 1 and '"no-budgte" is not a recycle reason' in err
    code, out, err = drip(
        "recycle", "new@acme.example", "--from", "sql", "--reason", "no_budget", "--create"
    )
    assert code == 0, err
    assert out.startswith("new@acme.example recycled from SQL (no_budget) into")
    assert _emails() == ["new@acme.example"]
    # now known: recycling it again needs no --create
    code, _, err = drip("recycle", "new@acme.example", "--from", "sql", "--reason", "bad_timing")
    assert code == 0, err


def test_a_suppressed_address_says_suppressed_not_unknown(folder: Path) -> None:
    assert drip("suppress", "add", "gone@acme.example")[0] == 0
    code, _, err = drip("recycle", "gone@acme.example", "--from", "sql", "--reason", "no_budget")
    assert code == 1 and "is suppressed" in err


DEALS = (
    "email,from_stage,reason,note\n"
    "bob.miller@northwind.example,opportunity,chose_competitor,renews in 12 months\n"
    "kenji.sato@sakura-tech.exampel,sql,went_silent,typo in the domain\n"
    "new.person@acme.example,sql,no_budget,not in the CRM export\n"
    "amelie.laurent@lumiere.example,mql,bad_timing,\n"
)


def test_csv_rows_for_unknown_addresses_are_refused_by_line_and_the_rest_kept(
    folder: Path,
) -> None:
    assert drip("leads", "import", "leads.csv")[0] == 0
    (folder / "deals.csv").write_text(DEALS)
    before = _emails()
    code, out, err = drip("recycle", "--csv", "deals.csv")
    assert code == 0
    assert out.splitlines() == [out.splitlines()[0]]  # the summary only, no line per row
    assert "4 rows" in out and "2 enrolled; 2 refused" in out
    assert (
        "deals.csv:3: no lead kenji.sato@sakura-tech.exampel "
        "(did you mean kenji.sato@sakura-tech.example?)"
    ) in err
    assert "deals.csv:4: no lead new.person@acme.example;" in err
    assert "2 row(s) name an address no lead has" in err and "--create" in err
    assert _emails() == before


def test_csv_with_create_adds_the_unknown_rows(folder: Path) -> None:
    assert drip("leads", "import", "leads.csv")[0] == 0
    (folder / "deals.csv").write_text(DEALS)
    code, out, err = drip("recycle", "--csv", "deals.csv", "--create", "--verbose")
    assert code == 0, err
    assert "4 enrolled; 0 refused" in out
    assert "new.person@acme.example recycled from SQL (no_budget) into" in out  # --verbose
    assert "kenji.sato@sakura-tech.exampel" in _emails()  # --create takes the row as written


def test_report_file_holds_every_row_in_file_order(folder: Path, tmp_path: Path) -> None:
    assert drip("leads", "import", "leads.csv")[0] == 0
    (folder / "deals.csv").write_text(DEALS + "=cmd|' /C calc'!A0,sql,no_budget,\n")
    report = tmp_path / "outcomes.csv"
    code, out, _ = drip("recycle", "--csv", "deals.csv", "--report", str(report))
    assert code == 0 and f"5 rows written to {report}" in out
    with report.open(encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["line"] for r in rows] == ["2", "3", "4", "5", "6"]
    assert [r["outcome"] for r in rows] == ["enrolled", "refused", "refused", "enrolled", "refused"]
    assert rows[0]["campaign"] == "lost-sql-winback" and rows[0]["next_due_at"]
    assert "did you mean kenji.sato@sakura-tech.example?" in rows[1]["detail"]
    assert rows[4]["email"].startswith("'=")  # a formula is never a formula in a spreadsheet


def test_verbose_and_report_need_csv(folder: Path) -> None:
    code, _, err = drip("recycle", "a@acme.example", "--reason", "no_budget", "--verbose")
    assert code == 2 and "--verbose and --report go with --csv FILE" in err


def test_leads_show_and_feedback_name_the_nearest_address(folder: Path) -> None:
    assert drip("leads", "import", "leads.csv")[0] == 0
    code, _, err = drip("leads", "show", "jane@acme.exampel")
    assert code == 1 and "no lead jane@acme.exampel (did you mean jane@acme.example?)" in err
    code, _, err = drip("feedback", "jane@acme.exampel", "--accepted")
    assert code == 1 and "(did you mean jane@acme.example?)" in err


def test_wildcards_in_a_typed_address_are_not_wildcards(tmp_path: Path) -> None:
    from dripengine.storage.engine import upgrade

    engine = make_engine(f"sqlite:///{tmp_path}/n.db")
    try:
        upgrade(engine)
        with engine.begin() as connection:
            for email in ("a_b@x.example", "axb@y.example", "a%b@z.example"):
                connection.exec_driver_sql(
                    "INSERT INTO lead (email, stage, score, recycle_count, attributes, "
                    "created_at, updated_at) VALUES (?, 'sql', 0, 0, '{}', "
                    "'2026-11-23 10:00:00', '2026-11-23 10:00:00')",
                    (email,),
                )
        with engine.connect() as connection:
            found = nearest_addresses(connection, ["a_b@x.exampel", "a%b@x.exampel"])
        # "a_b@%" must not match "axb@…", nor "a%b@%" "a_b@…" ("_" and "%" are LIKE wildcards)
        assert found == {"a_b@x.exampel": ["a_b@x.example"], "a%b@x.exampel": ["a%b@z.example"]}
    finally:
        engine.dispose()
