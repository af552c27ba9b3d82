"""drip campaigns preview / simulate and drip send-test, in a folder made by drip init."""

from __future__ import annotations

import json
from email import message_from_bytes
from email.policy import default
from pathlib import Path

import pytest

from tests.clirun import drip


def test_preview_for_a_real_lead_and_the_sample(folder: Path) -> None:
    assert drip("leads", "import", "leads.csv")[0] == 0
    code, out, err = drip(
        "campaigns", "preview", "lost-sql-winback", "--lead", "jane@acme.example", "--out", "p.html"
    )
    assert code == 0, err
    assert "subject    Still thinking about Acme Corp?" in out
    html = (folder / "p.html").read_text()
    assert "Jane" in html and "Acme GmbH, Example Street 1" in html and "/u/preview" in html
    code, out, _ = drip(
        "campaigns", "preview", "lost-sql-winback", "--step", "checkin", "--sample", "--text"
    )
    assert code == 0 and "Hi Jane," in out and "<" not in out.split("Unsubscribe")[0]
    code, _, err = drip("campaigns", "preview", "lost-sql-winback", "--step", "nope")
    assert code == 1 and 'has no step "nope" (steps: checkin' in err
    code, _, err = drip("campaigns", "preview", "lost-sql-winback", "--lead", "ghost@acme.example")
    assert code == 1 and "no lead ghost@acme.example" in err


def test_preview_names_a_broken_template_by_file_and_line(folder: Path) -> None:
    path = folder / "templates" / "lost-sql" / "checkin.mjml"
    lines = path.read_text().splitlines()
    lines.insert(3, "{{ lead.first_name | no_such_filter }}")
    path.write_text("\n".join(lines) + "\n")
    code, _, err = drip("campaigns", "preview", "lost-sql-winback", "--step", "checkin")
    assert code == 1
    assert "lost-sql/checkin.mjml:4" in err and "no_such_filter" in err


def test_simulate_writes_nothing_and_shows_the_timeline(folder: Path) -> None:
    code, out, err = drip(
        "campaigns",
        "simulate",
        "lost-sql-winback",
        "--sample",
        "--engagement",
        "clicks",
        "--format",
        "json",
    )
    assert code == 0, err
    timeline = json.loads(out)
    assert timeline["timezone"] == "Europe/Berlin"
    sends = [e for e in timeline["entries"] if e["kind"] == "send"]
    assert sends[0]["step"] == "checkin" and sends[0]["at"].startswith("2026-11-24")
    assert "Globex Corporation" in sends[0]["subject"]
    code, out, _ = drip("campaigns", "simulate", "lost-sql-winback", "--score", "80")
    assert code == 0 and "send  [hot]" in out
    code, out, _ = drip("campaigns", "simulate", "lost-sql-winback")
    assert code == 0 and out.startswith(
        '"Lost SQL win-back" for jane.doe@example.com, engagement: none'
    )
    code, out, _ = drip("leads", "list", "--format", "json")
    assert json.loads(out) == []
    assert not (folder / "outbox").exists()


def test_send_test_goes_through_the_outbox_marked_and_unrecorded(folder: Path) -> None:
    code, out, err = drip(
        "send-test", "lost-sql-winback", "--step", "checkin", "--to", "me@acme.example"
    )
    assert code == 0, err
    [eml] = list((folder / "outbox" / "test").glob("*.eml"))
    message = message_from_bytes(eml.read_bytes(), policy=default)
    assert message["Subject"].startswith("[TEST] ")
    assert message["To"] == "me@acme.example"
    assert message["X-Drip-Test"] == "yes"
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    code, out, _ = drip("leads", "list", "--format", "json")
    assert json.loads(out) == []


def test_send_test_with_an_unreachable_provider_names_the_setting(
    folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DRIP_PROVIDER", "smtp")
    monkeypatch.setenv("DRIP_SMTP_PORT", "1")  # nothing listens on loopback port 1
    code, _, err = drip("send-test", "lost-sql-winback", "--to", "me@acme.example")
    assert code == 1 and "cannot reach the SMTP server at 127.0.0.1:" in err
    assert "DRIP_SMTP_HOST" in err and err.count("\n") == 1


UTM_CAMPAIGN = """\
id: utm-test
name: UTM test
priority: 900
audience: {stages: [sql], reasons: [no_budget]}
send:
  from: "Acme <hello@acme.example>"
  utm: {source: drip, campaign: winback-q4}
tracks:
  cold:
    min_score: 0
    steps:
      - {id: one, wait: 1d, template: utm/one.mjml, subject: "Hello"}
"""
UTM_TEMPLATE = """\
<mjml><mj-body><mj-section><mj-column>
  <mj-button href="{{ link('https://acme.example/pricing?plan=team', tag='pricing') }}">Pricing</mj-button>
  <mj-text><a href="mailto:sales@acme.example">Mail us</a></mj-text>
  <mj-text><a href="{{ unsubscribe_url }}">Unsubscribe</a> {{ postal_address }}</mj-text>
</mj-column></mj-section></mj-body></mjml>
"""


def test_campaign_utm_setting_tags_links_in_preview(folder: Path) -> None:
    (folder / "templates" / "utm").mkdir()
    (folder / "templates" / "utm" / "one.mjml").write_text(UTM_TEMPLATE)
    path = folder / "campaigns" / "utm-test.yaml"
    path.write_text(UTM_CAMPAIGN)
    code, out, err = drip("campaigns", "preview", "utm-test")
    assert code == 0, err
    assert "link       https://acme.example/pricing?plan=team  [pricing]" in out
    code, out, _ = drip("campaigns", "preview", "utm-test", "--html")
    assert (
        'href="https://acme.example/pricing?plan=team&amp;utm_source=drip&amp;utm_medium=email'
        '&amp;utm_campaign=winback-q4&amp;utm_content=one"' in out
    )
    assert 'href="mailto:sales@acme.example"' in out
    assert "/u/preview?" not in out and "/u/preview" in out  # the unsubscribe link is never tagged
    path.write_text(UTM_CAMPAIGN.replace("source: drip", "sorce: drip"))
    code, _, err = drip("campaigns", "validate")
    assert code == 1 and 'send.utm.sorce: unknown field (did you mean "source"?)' in err
