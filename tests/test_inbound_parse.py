"""SendGrid Inbound Parse posts → reply or auto-reply events (pure)."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest

from dripengine import vocabulary as v
from dripengine.providers.sendgrid.inbound import (
    BadInbound,
    candidate_uids,
    parse_inbound,
    reply_event,
)

NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
PASSED = {"SPF": "pass", "dkim": "{@acme.example : pass}", "spam_score": "0.1"}  # as SendGrid posts
UID = "0123456789abcdef0123456789abcdef"
OWN = '{"to": ["sales@reply.acme.example"], "from": "jane@acme.example"}'  # the SMTP envelope


def headers(*lines: str, subject: str = "Re: About your trial") -> str:
    base = [
        "Received: by mx.sendgrid.net with SMTP id abc",
        'From: "Doe, Jane" <Jane@Acme.example>',
        "To: sales@reply.acme.example",
        f"Subject: {subject}",
        "Message-ID: <CAB123@mail.gmail.com>",
        f"In-Reply-To: <{UID}@acme.example>",
        f"References: <first@acme.example>\r\n <{UID}@acme.example>",
    ]
    return "\r\n".join(base + list(lines)) + "\r\n"


def test_a_default_mode_post_is_a_reply_to_our_message() -> None:
    email = parse_inbound({"headers": headers(), "text": "Yes, call me.", "subject": "x", **PASSED})
    assert email.sender == "jane@acme.example"
    assert email.subject == "Re: About your trial"
    assert email.candidates == [UID, "first"]
    assert email.auto_reason is None
    event = reply_event(email, NOW, UID)
    assert event.type == v.REPLY
    assert event.message_uid == UID
    assert event.email == "jane@acme.example"
    assert event.provider_event_id == "<CAB123@mail.gmail.com>"
    assert event.occurred_at == NOW
    assert event.raw["text"] == "Yes, call me."


def test_a_raw_mime_post_is_read_too() -> None:
    mime = headers() + "Content-Type: text/plain; charset=utf-8\r\n\r\nGerne, nächste Woche.\r\n"
    email = parse_inbound({"email": mime})
    assert email.candidates[0] == UID
    assert "nächste Woche" in email.text


@pytest.mark.parametrize(
    ("extra", "subject", "reason"),
    [
        (("Auto-Submitted: auto-replied",), "Re: x", "Auto-Submitted: auto-replied"),
        (("X-Autoreply: yes",), "Re: x", "x-autoreply header"),
        (("X-Autorespond: on vacation",), "Re: x", "x-autorespond header"),
        (("Precedence: auto_reply",), "Re: x", "Precedence: auto_reply"),
        (("Precedence: bulk",), "Re: x", "Precedence: bulk"),
        ((), "Out of Office: About your trial", 'subject starts with "out of office"'),
        ((), "Automatic reply: About your trial", 'subject starts with "automatic reply"'),
        ((), "Abwesenheitsnotiz: Ihr Test", 'subject starts with "abwesenheitsnotiz"'),
        (
            (),
            "=?utf-8?q?R=C3=A9ponse_automatique=3A?= x",
            'subject starts with "réponse automatique"',
        ),
    ],
)
def test_auto_replies_are_recognised(extra: tuple[str, ...], subject: str, reason: str) -> None:
    email = parse_inbound({"headers": headers(*extra, subject=subject), **PASSED})
    assert email.auto_reason == reason
    event = reply_event(email, NOW, UID)
    assert event.type == v.AUTO_REPLY
    assert reason in (event.detail or "")


def test_auto_submitted_no_is_a_person() -> None:
    assert parse_inbound({"headers": headers("Auto-Submitted: no")}).auto_reason is None


def test_candidates_prefer_in_reply_to_then_the_newest_reference() -> None:
    assert candidate_uids("<a@x>", "<c@x> <b@x> <a@x>") == ["a", "b", "c"]
    assert candidate_uids(None, None) == []
    assert candidate_uids("not an id", "<" + "y" * 40 + "@x>") == []  # too long to be our uid


def test_a_post_without_headers_or_email_is_refused() -> None:
    with pytest.raises(BadInbound, match="neither a 'headers' nor an 'email' field"):
        parse_inbound({"subject": "hello"})


def test_without_a_message_the_reply_is_matched_by_address() -> None:
    email = parse_inbound({"headers": "From: jane@acme.example\r\nSubject: hello\r\n"})
    event = reply_event(email, NOW)
    assert event.message_uid is None and event.email == "jane@acme.example"
    assert event.provider_event_id is None


# --- authenticity (issue 12, finding 7) --------------------------------------------------


@pytest.mark.parametrize(
    ("auth", "counted", "why"),
    [
        ({"SPF": "pass", "dkim": "none", "envelope": OWN}, True, "SPF pass for acme.example"),
        (
            {"SPF": "pass", "envelope": '{"from": "bounce@mail.acme.example"}'},
            True,
            "SPF pass for mail.acme.example",
        ),
        # SPF checks the return path: a pass for the attacker's own domain says nothing of From
        (
            {"SPF": "pass", "dkim": "none", "envelope": '{"from": "x@attacker.example"}'},
            False,
            "SPF pass for attacker.example, not aligned with acme.example",
        ),
        ({"SPF": "pass"}, False, "SPF pass for no envelope sender, not aligned"),
        ({"SPF": "pass", "envelope": "[not json"}, False, "SPF pass for no envelope sender"),
        ({"SPF": "softfail", "dkim": "{@acme.example : pass}"}, True, "DKIM pass for acme.example"),
        ({"SPF": "none", "dkim": "{@mail.acme.example : pass}"}, True, "DKIM pass for mail.acme"),
        ({"SPF": "fail", "dkim": "{@acme.example : fail}"}, False, "SPF fail"),
        ({"SPF": "softfail", "dkim": "{@evil.example : pass}"}, False, "no DKIM pass aligned"),
        (
            {"SPF": "pass", "envelope": OWN, "spam_score": "7.3"},
            False,
            "spam score 7.3 (limit 5)",
        ),
        ({"SPF": "pass", "envelope": OWN, "spam_score": "nan"}, False, "spam score nan"),
        ({}, False, "SPF missing"),
    ],
)
def test_only_authenticated_non_spam_replies_count(
    auth: dict[str, str], counted: bool, why: str
) -> None:
    email = parse_inbound({"headers": headers(), "text": "Yes", **auth})
    assert email.event_type == (v.REPLY if counted else v.UNVERIFIED_REPLY)
    assert why in email.raw["authentication"]
    assert email.raw["authentication"].startswith("counted" if counted else "not counted")
    event = reply_event(email, NOW, UID)
    assert event.type == email.event_type
    assert (why in (event.detail or "")) is not counted


def test_the_spam_limit_is_a_setting() -> None:
    fields = {"headers": headers(), "SPF": "pass", "envelope": OWN, "spam_score": "3.0"}
    assert parse_inbound(fields).event_type == v.REPLY
    assert parse_inbound(fields, max_spam_score=2.5).event_type == v.UNVERIFIED_REPLY


@pytest.mark.parametrize("dkim", ["a" * 40_000, "a." * 20_000, "{@acme.example : pass}" * 2_000])
def test_a_huge_dkim_field_is_read_in_linear_time(dkim: str) -> None:
    """The dkim pattern tried every position of a run of letters again: 40 KB took ~15 s of the
    server's event loop, 80 KB a minute (issue 12, finding 10). Now milliseconds."""
    started = time.perf_counter()
    email = parse_inbound({"headers": headers(), "SPF": "fail", "dkim": dkim})
    assert time.perf_counter() - started < 0.2
    assert email.event_type == (v.REPLY if dkim.startswith("{") else v.UNVERIFIED_REPLY)
