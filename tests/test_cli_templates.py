"""`drip campaigns validate` renders every step's template and reports template problems."""

from __future__ import annotations

from pathlib import Path

from tests.clirun import drip


def test_validate_renders_the_example_templates(folder: Path) -> None:
    code, out, err = drip("campaigns", "validate")
    assert code == 0, err
    assert "2 campaign(s) valid" in out and "step template(s) render" in out


def test_validate_names_the_template_file_and_line(folder: Path) -> None:
    path = folder / "templates" / "lost-sql" / "checkin.mjml"
    lines = path.read_text().splitlines()
    number = next(i for i, line in enumerate(lines) if "lead.first_name" in line)
    lines[number] = lines[number].replace("lead.first_name", "lead.frist_name")
    path.write_text("\n".join(lines) + "\n")
    code, _, err = drip("campaigns", "validate")
    assert code == 1
    assert f"templates/lost-sql/checkin.mjml:{number + 1}: {{{{ lead.frist_name | default(" in err
    assert '"frist_name" is undefined' in err
    assert "1 problem(s)" in err


def test_validate_reports_a_missing_postal_address_in_the_layout(folder: Path) -> None:
    layout = folder / "templates" / "layouts" / "base.mjml"
    layout.write_text(layout.read_text().replace("{{ postal_address }}", ""))
    code, _, err = drip("campaigns", "validate")
    assert code == 1
    assert (
        "templates/lost-sql/checkin.mjml:1: the email does not show the sender's postal address"
        in err
    )


def test_validate_points_at_the_subject_in_the_campaign_file(folder: Path) -> None:
    path = folder / "campaigns" / "lost-sql-winback.yaml"
    lines = path.read_text().splitlines()
    number = next(i for i, line in enumerate(lines) if "subject:" in line)
    lines[number] = lines[number].split("subject:")[0] + 'subject: "Hi {{ lead.frist_name }}"'
    path.write_text("\n".join(lines) + "\n")
    code, _, err = drip("campaigns", "validate")
    assert code == 1
    assert f"campaigns/lost-sql-winback.yaml:{number + 1}: tracks.cold.steps[0].subject:" in err


def test_validate_names_a_template_reaching_for_the_server(folder: Path) -> None:
    """Issue 12 item 8: the sandbox's refusal is one file:line problem, not a traceback."""
    path = folder / "templates" / "lost-sql" / "checkin.mjml"
    lines = path.read_text().splitlines()
    number = next(i for i, line in enumerate(lines) if "lead.first_name" in line)
    marker = folder / "pwned"
    escape = f"{{{{ cycler.__init__.__globals__.os.popen('touch {marker}').read() }}}}"
    lines[number] += escape
    path.write_text("\n".join(lines) + "\n")
    code, _, err = drip("campaigns", "validate")
    assert code == 1
    assert (
        f"templates/lost-sql/checkin.mjml:{number + 1}: {escape}: access to attribute "
        "'__init__' of 'type' object is unsafe" in err
    )
    assert "Traceback" not in err and not marker.exists()
