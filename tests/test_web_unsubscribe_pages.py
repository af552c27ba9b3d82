"""The unsubscribe and preferences pages over real HTTP against `drip serve` (SQLite and
PostgreSQL): they speak for the sender in its language, name the series the person is leaving,
and let a mistaken unsubscribe be undone within the grace period, on the app's clock."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import text

from dripengine import vocabulary as v
from dripengine.cli import main
from dripengine.clock import FixedClock
from dripengine.config import load_settings
from dripengine.engagement.ingest import Engagement
from dripengine.funnel.sla import load_sla
from dripengine.storage.engine import make_engine
from dripengine.vocabulary import IncomingEvent
from tests.clirun import drip
from tests.served import Answer, drip_serve, free_port, request, sent_emails

pytestmark = pytest.mark.slow  # a `drip serve` subprocess per test

SENT_AT = "2026-11-26T15:00:00+00:00"  # Thursday 15:00 UTC: inside the example windows
LATER = datetime.fromisoformat("2026-11-26T18:00:00+00:00")  # the lead reads the email
FORM = {"Content-Type": "application/x-www-form-urlencoded"}


def rows(sql: str, **params: Any) -> list[dict[str, Any]]:
    engine = make_engine(load_settings().database_url)
    try:
        with engine.connect() as connection:
            return [dict(r._mapping) for r in connection.execute(text(sql), params)]
    finally:
        engine.dispose()


class Site:
    """The sample lost deals recycled and their first emails in the outbox; `drip serve` is
    started (and restarted) at a chosen time on one port, as the links in the emails name it."""

    def __init__(self, folder: Path, port: int, env: dict[str, str]) -> None:
        self.folder, self.port, self.env = folder, port, env

    @contextmanager
    def serve(self, at: datetime) -> Iterator[str]:
        with drip_serve(self.folder, self.port, now=at.isoformat(), env=self.env) as base:
            yield base

    def email(self, campaign: str = "lost-sql-winback") -> EmailMessage:
        uids = {
            r["uid"] for r in rows("SELECT uid FROM message WHERE campaign_id = :c", c=campaign)
        }
        return next(m for m in sent_emails(self.folder) if uid(m) in uids)

    def path(self, message: EmailMessage) -> str:
        header = str(message["List-Unsubscribe"]).strip("<>")
        return header.removeprefix(f"http://127.0.0.1:{self.port}")


def uid(message: EmailMessage) -> str:
    return str(message["Message-ID"]).strip("<>").split("@")[0]


def make_site(folder: Path, monkeypatch: pytest.MonkeyPatch, **env: str) -> Site:
    port = free_port()
    monkeypatch.setenv("DRIP_BASE_URL", f"http://127.0.0.1:{port}")
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    code, _, err = drip("recycle", "--csv", "lost-deals.csv", "--create")
    assert code == 0, err
    result = CliRunner().invoke(main, ["--now", SENT_AT, "run", "--once"])
    assert result.exit_code == 0, result.output
    return Site(folder, port, env)


@pytest.fixture
def site(folder: Path, monkeypatch: pytest.MonkeyPatch) -> Site:
    return make_site(folder, monkeypatch)


def lead_of(message: EmailMessage) -> dict[str, Any]:
    [lead] = rows(
        "SELECT l.id, l.email FROM lead l JOIN message m ON m.lead_id = l.id WHERE m.uid = :u",
        u=uid(message),
    )
    return lead


def enrollments(lead_id: int) -> list[dict[str, Any]]:
    return rows(
        "SELECT id, campaign_id, status, exit_reason, current_step, next_due_at, ended_at "
        "FROM enrollment WHERE lead_id = :l ORDER BY id",
        l=lead_id,
    )


def events(message: EmailMessage) -> list[dict[str, Any]]:
    return rows(
        "SELECT e.type, e.provider, e.detail FROM event e JOIN message m ON m.id = e.message_id "
        "WHERE m.uid = :u ORDER BY e.id",
        u=uid(message),
    )


def post(base: str, path: str, body: bytes) -> Answer:
    return request(base, "POST", path, body=body, headers=FORM)


def visible(html: str) -> str:
    """The page's text, tags and the style sheet left out, entities as typed."""
    body = html.split("</style>", 1)[1]
    words = re.sub(r"<[^>]+>", " ", body)
    return re.sub(r"\s+", " ", words.replace("&#x27;", "'").replace("&amp;", "&"))


# --- the sender, its brand and its language -----------------------------------------------------


def test_the_pages_speak_in_the_senders_name_brand_and_language(
    folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    site = make_site(
        folder,
        monkeypatch,
        DRIP_SENDER_BRAND_NAME="Northwind Analytics",
        DRIP_SENDER_LOGO_URL="https://cdn.northwind.example/logo.png",
        DRIP_SENDER_BRAND_COLOR="#FFCC00",
        DRIP_SENDER_LANGUAGE="de-CH",
    )
    path = site.path(site.email())
    with site.serve(LATER) as base:
        answers = [
            request(base, "GET", path),
            request(base, "GET", path.replace("/u/", "/p/", 1)),
            request(base, "GET", path[:-2] + "xx"),  # a link that is not ours: 404, same brand
        ]
    for answer in answers:
        assert answer.status in (200, 404)
        assert '<html lang="de-CH">' in answer.text and 'lang="und"' not in answer.text
        assert "<title>" in answer.text and "· Northwind Analytics</title>" in answer.text
        assert '<img src="https://cdn.northwind.example/logo.png" alt="Northwind Analytics">' in (
            answer.text
        )
        # the logo's origin, and only it, may be loaded
        assert answer.headers["content-security-policy"].endswith(
            "; img-src https://cdn.northwind.example"
        )
        # the brand colour on the buttons, with dark text: white on yellow cannot be read
        assert "button{background:#ffcc00;color:#111}" in answer.text
    assert "Northwind Analytics" in visible(answers[0].text)
    assert "every email from Northwind Analytics" in visible(answers[0].text)


def test_without_a_brand_the_pages_name_the_organisation_of_the_postal_address(
    folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    site = make_site(
        folder, monkeypatch, DRIP_POSTAL_ADDRESS="Globex Ltd, 1 Main Street, Springfield"
    )
    path = site.path(site.email())
    with site.serve(LATER) as base:
        page = request(base, "GET", path)
        done = post(base, path, b"action=unsubscribe")
    for answer in (page, done):
        assert answer.status == 200 and '<html lang="en">' in answer.text
        assert "Globex Ltd" in visible(answer.text) and "from us" not in answer.text
        assert "<img" not in answer.text  # no logo set: none shown, nothing fetched
        assert "img-src" not in answer.headers["content-security-policy"]


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("language", "und", "'und' is not a language tag (e.g. en, de, en-GB, pt-BR)"),
        ("language", "english please", "is not a language tag"),
        ("brand_color", "red", "'red' is not a colour written #rrggbb or #rgb"),
        ("logo_url", "http://acme.example/logo.png", "is not an https:// URL of an image"),
        ("logo_url", 'https://acme.example/"><script>', "is not an https:// URL of an image"),
    ],
)
def test_brand_settings_are_checked_with_the_key_to_change(
    tmp_path: Path, name: str, value: str, message: str
) -> None:
    config = tmp_path / "drip.toml"
    config.write_text(f"[sender]\n{name} = {json.dumps(value)}\n", encoding="utf-8")
    code, _, err = drip("--config", str(config), "status")
    assert code == 1 and f"sender.{name}: " in err and message in err, err
    assert f"DRIP_SENDER_{name.upper()}" in err
    config.write_text("[sender]\nbrand_colour = '#fff'\n", encoding="utf-8")
    code, _, err = drip("--config", str(config), "status")
    assert (
        code == 1
        and 'sender.brand_colour: unknown setting (did you mean "sender.brand_color"?)' in err
    )


# --- which series, and what each choice means ----------------------------------------------------


def test_the_pages_name_the_series_being_left_and_what_each_choice_stops(site: Site) -> None:
    message = site.email()
    path = site.path(message)
    preferences = path.replace("/u/", "/p/", 1)
    with site.serve(LATER) as base:
        unsubscribe = visible(request(base, "GET", path).text)
        choices = visible(request(base, "GET", preferences).text)
        left = visible(post(base, preferences, b"action=leave_campaign").text)
    series = "“Check-ins from the Acme Growth Team”"  # the campaign's public_name
    assert f"part of {series} from Acme GmbH" in unsubscribe
    assert f"stops every email from Acme GmbH to this address: {series} and anything else" in (
        unsubscribe
    )
    assert f"Stop only {series} instead, and keep other emails from Acme GmbH" in unsubscribe
    assert "Lost SQL win-back" not in unsubscribe + choices  # the team's name stays internal
    assert f"Stop {series} only: Acme GmbH may still write to you about other things." in choices
    assert "Or stop every email from Acme GmbH." in choices
    assert f"You will get no more emails from {series}; Acme GmbH may still write" in left


def test_a_campaign_without_a_public_name_is_named_by_the_subject_the_person_got(
    site: Site,
) -> None:
    campaign = site.folder / "campaigns" / "lost-sql-winback.yaml"
    campaign.write_text(re.sub(r"\npublic_name: .*\n", "\n", campaign.read_text()))
    message = site.email()
    subject = str(message["Subject"])
    with site.serve(LATER) as base:
        page = visible(request(base, "GET", site.path(message)).text)
    assert f"part of the series that sent you “{subject}” from Acme GmbH" in page


# --- undo -----------------------------------------------------------------------------------------


def test_a_mistaken_unsubscribe_is_undone_and_both_stay_on_record(site: Site) -> None:
    message = site.email()
    path = site.path(message)
    lead = lead_of(message)
    before = enrollments(lead["id"])
    assert before and all(e["status"] == "active" and e["next_due_at"] for e in before)
    with site.serve(LATER) as base:
        done = post(base, path, b"action=unsubscribe")
        assert done.status == 200 and "You are unsubscribed" in done.text
        # the confirmation offers the undo: a POST form to the signed link, with its deadline
        assert f'<form method="post" action="{path}/undo">' in done.text
        assert 'name="action" value="undo"' in done.text
        assert "undo this until 19:30 on 26 Nov 2026 (Europe/Berlin)" in visible(done.text)
        assert rows("SELECT reason FROM suppression") == [{"reason": "unsubscribe"}]
        assert all(e["status"] == "exited" for e in enrollments(lead["id"]))
        # the page shown afterwards offers it too; a GET of the undo changes nothing
        assert f'action="{path}/undo"' in request(base, "GET", path).text
        assert request(base, "GET", f"{path}/undo").status == 405
        assert post(base, f"{path}/undo", b"action=nothing").status == 400
        assert post(base, f"{path[:-2]}xx/undo", b"action=undo").status == 404
        assert rows("SELECT reason FROM suppression") == [{"reason": "unsubscribe"}]

        undone = post(base, f"{path}/undo", b"action=undo")
        assert undone.status == 200 and "You are subscribed again" in undone.text
        # exactly what the click took away is back: mailable, enrollments due as before
        assert rows("SELECT * FROM suppression") == []
        assert enrollments(lead["id"]) == before
        assert "Unsubscribe?" in request(base, "GET", path).text
        again = post(base, f"{path}/undo", b"action=undo")
        assert again.status == 200 and "already undone" in again.text
    audit = events(message)
    assert [(e["type"], e["provider"]) for e in audit] == [
        ("unsubscribe", "drip"),
        ("resubscribe", "drip"),
    ]
    assert audit[1]["detail"] == (
        "undid the unsubscribe of 2026-11-26T18:00:00+00:00 within the grace period: "
        f"suppression lifted, {len(before)} enrollment(s) resumed"
    )


def test_one_click_unsubscribe_is_unchanged_and_can_be_undone_from_the_page(site: Site) -> None:
    message = site.email()
    path = site.path(message)
    lead = lead_of(message)
    before = enrollments(lead["id"])
    with site.serve(LATER) as base:
        answer = post(base, path, b"List-Unsubscribe=One-Click")  # RFC 8058, as before
        assert answer.status == 200 and "You are unsubscribed" in answer.text
        assert rows("SELECT email, reason FROM suppression") == [
            {"email": lead["email"], "reason": "unsubscribe"}
        ]
        assert [e["detail"] for e in events(message)] == ["one-click (RFC 8058)"]
        # the person opens the link afterwards and sees they can still undo it
        assert f'action="{path}/undo"' in request(base, "GET", path).text
        assert post(base, f"{path}/undo", b"action=undo").status == 200
    assert rows("SELECT * FROM suppression") == []
    assert enrollments(lead["id"]) == before


def test_the_undo_is_refused_after_the_grace_period(site: Site) -> None:
    message = site.email()
    path = site.path(message)
    with site.serve(LATER) as base:
        assert post(base, path, b"action=unsubscribe").status == 200
    with site.serve(LATER + timedelta(minutes=29)) as base:  # still inside the 30 minutes
        assert f'action="{path}/undo"' in request(base, "GET", path).text
    with site.serve(LATER + timedelta(minutes=31)) as base:
        page = request(base, "GET", path)
        assert "You are unsubscribed" in page.text and "/undo" not in page.text
        refused = post(base, f"{path}/undo", b"action=undo")
    assert refused.status == 409 and "Too late to undo" in refused.text
    assert (
        "The unsubscribe of 19:00 on 26 Nov 2026 (Europe/Berlin) could be undone until 19:30 on "
        "26 Nov 2026 (Europe/Berlin). You stay unsubscribed" in visible(refused.text)
    )
    assert rows("SELECT reason FROM suppression") == [{"reason": "unsubscribe"}]
    assert [e["type"] for e in events(message)] == ["unsubscribe"]


def test_the_grace_period_is_a_setting_and_zero_turns_the_undo_off(
    folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    site = make_site(folder, monkeypatch, DRIP_WEB_UNSUBSCRIBE_UNDO_MINUTES="0")
    path = site.path(site.email())
    with site.serve(LATER) as base:
        done = post(base, path, b"action=unsubscribe")
        assert done.status == 200 and "/undo" not in done.text
        assert post(base, f"{path}/undo", b"action=undo").status == 409
    assert rows("SELECT reason FROM suppression") == [{"reason": "unsubscribe"}]


def test_the_undo_never_lifts_a_suppression_the_click_did_not_make(site: Site) -> None:
    message = site.email()
    path = site.path(message)
    lead = lead_of(message)
    code, _, err = drip("suppress", "add", lead["email"], "--note", "asked on the phone")
    assert code == 0, err
    with site.serve(LATER) as base:
        assert post(base, path, b"List-Unsubscribe=One-Click").status == 200
        refused = post(base, f"{path}/undo", b"action=undo")
    assert refused.status == 409 and "Nothing to undo" in refused.text
    assert rows("SELECT reason, note FROM suppression") == [
        {"reason": "manual", "note": "asked on the phone"}
    ]


def test_a_complaint_after_the_click_keeps_the_address_off_the_list(site: Site) -> None:
    message = site.email()
    path = site.path(message)
    with site.serve(LATER) as base:
        assert post(base, path, b"action=unsubscribe").status == 200
        settings = load_settings()
        engine = make_engine(settings.database_url)
        try:
            complaint = IncomingEvent(
                type=v.COMPLAINT,
                occurred_at=LATER + timedelta(minutes=2),
                provider="sendgrid",
                message_uid=uid(message),
            )
            clock = FixedClock(LATER + timedelta(minutes=2))
            Engagement(engine, settings, load_sla(site.folder / "sla.yaml"), clock).ingest(
                [complaint]
            )
        finally:
            engine.dispose()
        refused = post(base, f"{path}/undo", b"action=undo")
    assert refused.status == 409 and "reported as spam" in refused.text
    assert len(rows("SELECT * FROM suppression")) == 1
    assert "resubscribe" not in [e["type"] for e in events(message)]


def test_an_erased_person_is_never_resubscribed(site: Site) -> None:
    message = site.email()
    path = site.path(message)
    lead = lead_of(message)
    with site.serve(LATER) as base:
        assert post(base, path, b"action=unsubscribe").status == 200
        code, _, err = drip("leads", "forget", lead["email"], "--yes")
        assert code == 0, err
        refused = post(base, f"{path}/undo", b"action=undo")
        page = request(base, "GET", path)
    assert refused.status == 409 and "erased" in refused.text
    assert "erased" in page.text and "/undo" not in page.text
    [entry] = rows("SELECT email, reason FROM suppression")
    assert entry["reason"] == "erased" and entry["email"].startswith("sha256:")
    assert (
        rows("SELECT status FROM enrollment WHERE lead_id = :l AND status = 'active'", l=lead["id"])
        == []
    )
    assert "resubscribe" not in [e["type"] for e in events(message)]
