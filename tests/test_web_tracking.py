"""Tracking and unsubscribe over real HTTP: emails sent to the outbox by `drip run --once`, their
links followed against `drip serve` running as a subprocess, the database checked after."""

from __future__ import annotations

import re
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from click.testing import CliRunner
from sqlalchemy import text

from dripengine.cli import main
from dripengine.config import load_settings
from dripengine.engagement.tracking import PIXEL_GIF, click_token
from dripengine.storage.engine import make_engine
from tests.clirun import drip
from tests.served import drip_serve, free_port, html_of, request, sent_emails

pytestmark = pytest.mark.slow  # `drip serve` subprocesses

SENT_AT = "2026-11-26T15:00:00+00:00"  # Thursday 15:00 UTC: inside the example windows
LATER = "2026-11-26T18:00:00+00:00"  # the lead reads the email three hours later
FORM = {"Content-Type": "application/x-www-form-urlencoded"}
BROWSER = {"User-Agent": "Mozilla/5.0 (X11; Linux x86_64) Gecko/20100101 Firefox/128.0"}


@pytest.fixture
def served(folder: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, Path]]:
    """The sample lost deals recycled, their first emails in the outbox, `drip serve` up."""
    port = free_port()
    monkeypatch.setenv("DRIP_BASE_URL", f"http://127.0.0.1:{port}")
    campaign = folder / "campaigns" / "lost-sql-winback.yaml"
    campaign.write_text(
        campaign.read_text().replace("\nsend:\n", "\nsend:\n  utm:\n    source: drip\n", 1)
    )
    code, _, err = drip("recycle", "--csv", "lost-deals.csv", "--create")
    assert code == 0, err
    result = CliRunner().invoke(main, ["--now", SENT_AT, "run", "--once"])
    assert result.exit_code == 0, result.output
    with drip_serve(folder, port, now=LATER) as base:
        yield base, folder


def rows(sql: str, **params: Any) -> list[dict[str, Any]]:
    engine = make_engine(load_settings().database_url)
    try:
        with engine.connect() as connection:
            return [dict(r._mapping) for r in connection.execute(text(sql), params)]
    finally:
        engine.dispose()


def links(message: EmailMessage, base: str, kind: str) -> list[str]:
    """The paths of the ``/kind/…`` links in the email's HTML, in order."""
    pattern = re.escape(base) + f"(/{kind}/[A-Za-z0-9_.=-]+)"
    return list(dict.fromkeys(re.findall(pattern, html_of(message))))


def winback(folder: Path) -> EmailMessage:
    """An email of the lost-SQL campaign (its links carry UTM parameters in this folder)."""
    uids = {
        r["uid"] for r in rows("SELECT uid FROM message WHERE campaign_id = 'lost-sql-winback'")
    }
    return next(m for m in sent_emails(folder) if uid_of(m) in uids)


def uid_of(message: EmailMessage) -> str:
    return str(message["Message-ID"]).strip("<>").split("@")[0]


def events(uid: str) -> list[dict[str, Any]]:
    return rows(
        "SELECT e.type, e.provider, e.url, e.tag, e.machine FROM event e "
        "JOIN message m ON m.id = e.message_id WHERE m.uid = :uid ORDER BY e.id",
        uid=uid,
    )


def test_a_click_redirects_to_the_link_with_its_utm_and_is_recorded_with_its_tag(
    served: tuple[str, Path],
) -> None:
    base, folder = served
    clicked = [m for m in sent_emails(folder) if links(m, base, "c")]
    assert clicked, "no tracked link in any email"
    tagged = 0
    for message in clicked:
        uid = uid_of(message)
        for path in links(message, base, "c"):
            answer = request(base, "GET", path, headers=BROWSER)
            assert answer.status == 302, answer.text
            location = answer.headers["location"]
            assert location.startswith("https://") and "/c/" not in location
            assert answer.headers["cache-control"].startswith("no-store")
        recorded = events(uid)
        assert {e["type"] for e in recorded} == {"click"} and all(
            e["provider"] == "drip" and not e["machine"] for e in recorded
        )
        tagged += sum(e["tag"] is not None for e in recorded)
    assert tagged > 0  # the templates' tagged links keep their tag through the redirect
    # the lost-SQL campaign has UTM parameters: the redirect keeps them
    utm = [
        parse_qs(urlsplit(e["url"]).query)
        for m in clicked
        for e in events(uid_of(m))
        if "utm_source" in (e["url"] or "")
    ]
    assert utm and all(
        q["utm_source"] == ["drip"] and q["utm_medium"] == ["email"] and q["utm_content"]
        for q in utm
    )
    # the plain-text part has the same tracked links as the HTML
    message = clicked[0]
    text_part = message.get_body(preferencelist=("plain",))
    assert text_part is not None and f"{base}/c/" in str(text_part.get_content())  # type: ignore[attr-defined]


def test_an_altered_or_unsigned_click_token_is_a_404_and_records_nothing(
    served: tuple[str, Path],
) -> None:
    base, folder = served
    message = next(m for m in sent_emails(folder) if links(m, base, "c"))
    path = links(message, base, "c")[0]
    token = path.removeprefix("/c/")
    middle = len(token) // 2
    altered = token[:middle] + ("A" if token[middle] != "A" else "B") + token[middle + 1 :]
    # a URL that was never in the message: signed with another key, or spliced onto our signature
    forged = click_token("not-the-server-key-123", uid_of(message), "https://evil.example/", None)
    spliced = forged.split(".")[0] + "." + token.split(".")[1]
    # the unsubscribe token of the same message is ours, but not a click token
    unsubscribe = str(message["List-Unsubscribe"]).strip("<>").rsplit("/", 1)[1]
    for bad in (altered, token[:-1], token + "x", forged, spliced, unsubscribe):
        answer = request(base, "GET", f"/c/{bad}")
        assert answer.status == 404, (bad, answer.status)
        assert "location" not in answer.headers
        assert "not valid" in answer.text and "<!doctype html>" in answer.text
    assert events(uid_of(message)) == []


def test_the_open_pixel_is_a_fresh_gif_and_proxies_are_machine_opens(
    served: tuple[str, Path],
) -> None:
    base, folder = served
    person, proxied = sent_emails(folder)[:2]
    [pixel] = links(person, base, "o")
    assert pixel.endswith(".gif")
    answer = request(base, "GET", pixel, headers=BROWSER)
    assert answer.status == 200 and answer.body == PIXEL_GIF
    assert answer.headers["content-type"] == "image/gif"
    assert "no-store" in answer.headers["cache-control"]
    assert [(e["type"], bool(e["machine"])) for e in events(uid_of(person))] == [("open", False)]
    google = (
        "Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 (via ggpht.com GoogleImageProxy)"
    )
    [other] = links(proxied, base, "o")
    assert request(base, "GET", other, headers={"User-Agent": google}).status == 200
    assert [(e["type"], bool(e["machine"])) for e in events(uid_of(proxied))] == [("open", True)]
    token = pixel.removeprefix("/o/").removesuffix(".gif")
    altered = token[:5] + ("A" if token[5] != "A" else "B") + token[6:]
    assert request(base, "GET", f"/o/{altered}.gif").status == 404
    assert len(events(uid_of(person))) == 1


def test_get_never_unsubscribes_one_click_post_does_in_the_same_request(
    served: tuple[str, Path],
) -> None:
    base, folder = served
    message = winback(folder)
    header = str(message["List-Unsubscribe"]).strip("<>")
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    path = header.removeprefix(base)
    email = rows(
        "SELECT l.email FROM lead l JOIN message m ON m.lead_id = l.id WHERE m.uid = :u",
        u=uid_of(message),
    )[0]["email"]

    page = request(base, "GET", path)  # what a link scanner does
    assert page.status == 200 and 'method="post"' in page.text and "Unsubscribe" in page.text
    assert email not in page.text  # shown masked
    assert rows("SELECT * FROM suppression") == []
    assert rows(
        "SELECT status FROM enrollment e JOIN lead l ON l.id = e.lead_id WHERE l.email = :e",
        e=email,
    ) == [{"status": "active"}]

    answer = request(base, "POST", path, body=b"List-Unsubscribe=One-Click", headers=FORM)
    assert answer.status == 200 and "unsubscribed" in answer.text
    [suppression] = rows("SELECT email, reason FROM suppression")
    assert suppression == {"email": email, "reason": "unsubscribe"}
    enrollments = rows(
        "SELECT status FROM enrollment e JOIN lead l ON l.id = e.lead_id WHERE l.email = :e",
        e=email,
    )
    assert enrollments and all(e["status"] == "exited" for e in enrollments)
    assert [e["type"] for e in events(uid_of(message))] == ["unsubscribe"]
    assert "unsubscribed" in request(base, "GET", path).text  # the page says so afterwards


def test_the_confirm_button_and_the_preferences_page(served: tuple[str, Path]) -> None:
    base, folder = served
    first, second = [m for m in sent_emails(folder)][:2]
    path = str(first["List-Unsubscribe"]).strip("<>").removeprefix(base)
    preferences = path.replace("/u/", "/p/")
    page = request(base, "GET", preferences)
    assert (
        page.status == 200 and "leave_campaign" in page.text and "Unsubscribe from all" in page.text
    )
    # leaving the campaign: that enrollment exits, the address is not suppressed
    answer = request(base, "POST", preferences, body=b"action=leave_campaign", headers=FORM)
    assert answer.status == 200 and "Series stopped" in answer.text
    assert rows(
        "SELECT e.status, e.exit_reason FROM enrollment e JOIN message m ON m.enrollment_id = e.id "
        "WHERE m.uid = :u",
        u=uid_of(first),
    ) == [{"status": "exited", "exit_reason": "left the campaign (preferences page)"}]
    assert rows("SELECT * FROM suppression") == []
    # the page's confirm button (a form POST) unsubscribes too
    other = str(second["List-Unsubscribe"]).strip("<>").removeprefix(base)
    answer = request(base, "POST", other, body=b"action=unsubscribe", headers=FORM)
    assert answer.status == 200 and "You are unsubscribed" in answer.text
    assert len(rows("SELECT * FROM suppression")) == 1
    # a POST that asks nothing, and an altered token, change nothing
    assert request(base, "POST", path, body=b"hello=1", headers=FORM).status == 400
    bad = path[:-3] + ("x" if path[-3] != "x" else "y") + path[-2:]
    for method in ("GET", "POST"):
        answer = request(base, method, bad, body=b"List-Unsubscribe=One-Click", headers=FORM)
        assert answer.status == 404 and "not valid" in answer.text
        answer = request(
            base, method, bad.replace("/u/", "/p/"), body=b"action=leave_campaign", headers=FORM
        )
        assert answer.status == 404
    assert len(rows("SELECT * FROM suppression")) == 1
