"""`drip leads list` at volume (issue 15, item 7): a table shows the newest 50 and says how many
match; --all, --limit, --search; exports give everything; a mistyped --campaign is refused."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from tests.clirun import drip


def import_many(folder: Path, count: int = 75) -> None:
    lines = ["email,first_name,company"]
    lines += [f"p{i}@bulk{i % 5}.example,P{i},Bulk {i % 5}" for i in range(count)]
    (folder / "many.csv").write_text("\n".join(lines) + "\n")
    assert drip("leads", "import", "many.csv")[0] == 0


def table_emails(out: str) -> list[str]:
    return [line.split("│")[1].strip() for line in out.splitlines() if "@bulk" in line]


def test_a_table_shows_fifty_and_says_how_many_match(folder: Path) -> None:
    import_many(folder)
    code, out, _ = drip("leads", "list")
    assert code == 0
    assert len(table_emails(out)) == 50
    assert out.rstrip().endswith("showing 50 of 75 (use --limit N or --all; --search to narrow)")
    code, out, _ = drip("leads", "list", "--all")
    assert len(table_emails(out)) == 75 and "showing" not in out
    code, out, _ = drip("leads", "list", "--limit", "5")
    assert len(table_emails(out)) == 5 and "showing 5 of 75" in out


def test_search_finds_by_address_name_or_company_in_any_case(folder: Path) -> None:
    import_many(folder)
    _, out, _ = drip("leads", "list", "--search", "BULK3")
    assert sorted(table_emails(out)) == sorted(f"p{i}@bulk3.example" for i in range(3, 75, 5))
    _, out, _ = drip("leads", "list", "--search", "p7@")
    assert table_emails(out) == ["p7@bulk2.example"]
    _, out, _ = drip("leads", "list", "--search", "100%_")  # LIKE wildcards are text here
    assert "no leads match" in out


def test_exports_give_every_match(folder: Path) -> None:
    import_many(folder)
    _, out, _ = drip("leads", "list", "--format", "csv")
    assert len(list(csv.DictReader(io.StringIO(out)))) == 75


def test_an_unknown_campaign_is_refused_with_the_nearest(folder: Path) -> None:
    code, _, err = drip("leads", "list", "--campaign", "lost-sql-winbak")
    assert code == 2 and 'did you mean "lost-sql-winback"?' in err
