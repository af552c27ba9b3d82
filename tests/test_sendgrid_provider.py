"""The SendGrid provider against the stand-in, over real HTTP on loopback."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dripengine.exceptions import ConfigError
from dripengine.mail.message import OutgoingEmail, as_test
from dripengine.providers.sendgrid.provider import SendGridProvider
from dripengine.testing import SendGridStandIn

NOW = 1_800_000_000.0


def email(n: int = 1, **changes: object) -> OutgoingEmail:
    values: dict[str, object] = {
        "uid": f"m-{n:04d}",
        "sender": "Acme Sales <sales@acme.example>",
        "to": f"Jane Doe <jane{n}@example.com>",
        "subject": "About your trial",
        "html": "<p>Hello Jane</p>",
        "text": "Hello Jane",
        "created_at": datetime(2026, 11, 23, 10, 0, tzinfo=UTC),
        "reply_to": "Ann <ann@acme.example>",
        "unsubscribe_url": f"https://acme.example/u/token-{n}",
        "categories": ("campaign:lost-sql", "step:checkin"),
    }
    values.update(changes)
    return OutgoingEmail(**values)  # type: ignore[arg-type]


@pytest.fixture
def sendgrid() -> Iterator[SendGridStandIn]:
    with SendGridStandIn(clock=lambda: NOW) as standin:
        yield standin


@pytest.fixture
def provider(sendgrid: SendGridStandIn) -> Iterator[SendGridProvider]:
    p = SendGridProvider(sendgrid.api_key, host=sendgrid.url, max_in_flight=8, clock=lambda: NOW)
    yield p
    p.close()


def test_the_payload_is_accepted_and_carries_our_id_categories_and_headers(
    sendgrid: SendGridStandIn, provider: SendGridProvider
) -> None:
    [result] = provider.send([email()])
    [accepted] = sendgrid.accepted
    assert result.status == "sent" and result.uid == "m-0001"
    assert result.provider_message_id == accepted.message_id
    body = accepted.payload
    assert body["from"] == {"email": "sales@acme.example", "name": "Acme Sales"}
    assert body["personalizations"] == [
        {"to": [{"email": "jane1@example.com", "name": "Jane Doe"}]}
    ]
    assert body["reply_to"] == {"email": "ann@acme.example", "name": "Ann"}
    assert body["subject"] == "About your trial"
    assert [c["type"] for c in body["content"]] == ["text/plain", "text/html"]
    assert body["custom_args"] == {"drip_uid": "m-0001"}  # our id, nothing personal
    assert body["categories"] == ["campaign:lost-sql", "step:checkin"]
    assert body["headers"] == {
        "Message-ID": "<m-0001@acme.example>",
        "List-Unsubscribe": "<https://acme.example/u/token-1>",
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
    }


def test_extra_headers_go_along(sendgrid: SendGridStandIn, provider: SendGridProvider) -> None:
    [result] = provider.send([as_test(email())])
    assert result.status == "sent"
    assert sendgrid.accepted[0].payload["headers"]["X-Drip-Test"] == "yes"


def test_a_name_with_a_comma_is_quoted_so_sendgrid_takes_it(
    sendgrid: SendGridStandIn, provider: SendGridProvider
) -> None:
    [result] = provider.send([email(to='"Doe, Jane" <jane@example.com>')])
    assert result.status == "sent", result.error
    assert sendgrid.accepted[0].payload["personalizations"][0]["to"][0]["name"] == '"Doe, Jane"'


def test_html_only_is_sent_without_an_empty_text_part(
    sendgrid: SendGridStandIn, provider: SendGridProvider
) -> None:
    [result] = provider.send([email(text="")])
    assert result.status == "sent"
    assert [c["type"] for c in sendgrid.accepted[0].payload["content"]] == ["text/html"]


FAITHFUL_CASES: list[dict[str, object]] = [
    {},
    {"to": "jane@example.com"},  # no name
    {"to": "Chloé Ünal-Øster <chloe@exämple.com>", "subject": "Ça va? 日本語 🚀"},
    {"to": '"Doe, Jane" <jane@example.com>'},  # quoted: a comma in the name
    {"to": "Jane (Sales) Doe <jane@example.com>"},
    {"sender": "sales@acme.example", "reply_to": None},
    {"reply_to": "replies@acme.example", "categories": ()},
    {"categories": ("one",)},
    {"categories": ("c-ä", "step:é", "third")},
    {"text": "", "html": "<p>only HTML</p>"},
    {"text": "only text", "html": ""},
    {"subject": ""},
    {"unsubscribe_url": None},
    {"headers": {"X-Drip-Test": "yes", "X-Campaign": "winback ✓"}},
    {"headers": {"Message-ID": "<override@acme.example>", "X-A": "1"}},  # ours replaced in place
    {"html": "<p>" + 'Ünïcödé & <b>markup</b> "quotes" \\ ' * 200 + "</p>"},
    {"uid": "ffffffffffffffffffffffffffffffff"},
]


def test_the_fast_payload_is_the_mail_helpers_payload() -> None:
    """payload() reuses a frame built once with the Mail helper; the JSON is the helper's own."""
    provider = SendGridProvider("SG.key", host="http://127.0.0.1:9")
    try:
        emails = [email(n, **changes) for n, changes in enumerate(FAITHFUL_CASES * 2)]
        for message in emails:  # the second round reuses every frame the first one built
            fast, full = provider.payload(message), provider.mail_payload(message)
            assert json.dumps(fast, ensure_ascii=False) == json.dumps(full, ensure_ascii=False)
        assert len(provider._frames) < len(emails) / 2  # frames were reused
    finally:
        provider.close()


@settings(max_examples=200, deadline=None)
@given(
    name=st.text(max_size=30),
    subject=st.text(max_size=60),
    text=st.text(max_size=80),
    html=st.text(max_size=80),
    header=st.text(max_size=30),
    category=st.text(min_size=1, max_size=20),
)
def test_the_fast_payload_matches_the_helper_on_any_text(
    name: str, subject: str, text: str, html: str, header: str, category: str
) -> None:
    """Same JSON, or both refuse (a control character, an API key at the start of a body)."""
    provider = SendGridProvider("SG.key", host="http://127.0.0.1:9")
    message = email(
        to=f"{name} <lead@example.com>",
        subject=subject,
        text=text,
        html=html,
        headers={"X-Note": header},
        categories=("lost-sql", category),
    )
    try:
        for attempt in range(2):  # a new frame, then the kept one
            try:
                fast = json.dumps(provider.payload(message), ensure_ascii=False)
            except Exception:  # the provider fails any such email as "not a valid message"
                with pytest.raises(Exception):  # noqa: B017
                    provider.mail_payload(message)
                return
            assert fast == json.dumps(provider.mail_payload(message), ensure_ascii=False), attempt
    finally:
        provider.close()


@pytest.mark.parametrize(
    "changes", [{"to": "no address here"}, {"text": "SG.abc123.def456 is our key"}]
)
def test_what_the_helper_refuses_the_fast_payload_refuses(changes: dict[str, object]) -> None:
    provider = SendGridProvider("SG.key", host="http://127.0.0.1:9")
    try:
        provider.payload(email())  # the frame exists already
        with pytest.raises(Exception):  # noqa: B017
            provider.mail_payload(email(**changes))
        with pytest.raises(Exception):  # noqa: B017
            provider.payload(email(**changes))
    finally:
        provider.close()


def test_a_body_that_starts_with_an_api_key_is_refused_as_the_helper_does(
    sendgrid: SendGridStandIn, provider: SendGridProvider
) -> None:
    [result] = provider.send([email(text="SG.abc123.def456 is our key")])
    assert result.status == "failed" and "not a valid message" in (result.error or "")
    assert sendgrid.requests == 0


@pytest.mark.parametrize(
    "changes",
    [
        {"subject": "Hi\r\nBcc: victim@example.com"},
        {"to": "Jane\nX <jane@example.com>"},
        {"headers": {"X-Note": "a\rb"}},
        # encoded words that decode to a line break (issue 12): refused, whatever SendGrid decodes
        {"to": "=?utf-8?q?Jane=0D=0ABcc=3A_victim=40example.com?= <jane@example.com>"},
        {"subject": "Hi =?UTF-8?B?SmFuZQ0KQmNjOiB2aWN0aW1AZXhhbXBsZS5jb20=?="},
    ],
)
def test_a_line_break_never_reaches_a_header(
    sendgrid: SendGridStandIn, provider: SendGridProvider, changes: dict[str, object]
) -> None:
    [result] = provider.send([email(**changes)])
    assert result.status == "failed" and "line break" in (result.error or "")
    assert sendgrid.requests == 0


def test_429_is_a_retry_with_the_wait_from_retry_after(
    sendgrid: SendGridStandIn, provider: SendGridProvider
) -> None:
    sendgrid.rate_limit(retry_after=7)
    [result] = provider.send([email()])
    assert result.status == "retry" and result.retry_after == 7.0
    assert "429" in (result.error or "")
    assert provider.send([email()])[0].status == "sent"


def test_429_without_retry_after_waits_until_the_rate_limit_reset(
    sendgrid: SendGridStandIn, provider: SendGridProvider
) -> None:
    sendgrid.rate_limit(retry_after=12, header=False)
    [result] = provider.send([email()])
    assert result.status == "retry" and result.retry_after == 12.0


@pytest.mark.parametrize("code", [500, 503])
def test_server_errors_are_a_retry(
    sendgrid: SendGridStandIn, provider: SendGridProvider, code: int
) -> None:
    sendgrid.fail(status=code)
    [result] = provider.send([email()])
    assert result.status == "retry" and str(code) in (result.error or "")
    assert result.retry_after is None


def test_a_refused_payload_fails_with_sendgrids_message(
    sendgrid: SendGridStandIn, provider: SendGridProvider
) -> None:
    [result] = provider.send([email(categories=tuple(f"c{i}" for i in range(11)))])
    assert result.status == "failed"
    assert result.error == (
        "SendGrid refused (400): You cannot have more than 10 categories associated with an "
        "email. (categories)"
    )
    assert sendgrid.accepted == []


def test_a_reserved_header_fails_at_once(provider: SendGridProvider) -> None:
    [result] = provider.send([email(headers={"X-SG-ID": "x"})])
    assert result.status == "failed" and "reserved" in (result.error or "")


def test_a_wrong_key_stops_the_batch_with_a_config_error(sendgrid: SendGridStandIn) -> None:
    provider = SendGridProvider("SG.wrong", host=sendgrid.url)
    try:
        with pytest.raises(ConfigError, match="SENDGRID_API_KEY"):
            provider.send([email(n) for n in range(20)])
    finally:
        provider.close()
    assert sendgrid.accepted == []


def test_check_names_the_missing_key_and_a_bad_host() -> None:
    for key in (None, "", "  "):
        with pytest.raises(ConfigError, match="SENDGRID_API_KEY is not set"):
            SendGridProvider(key).check()
    with pytest.raises(ConfigError, match="DRIP_SENDGRID_HOST"):
        SendGridProvider("SG.x", host="ftp://api.sendgrid.com").check()
    SendGridProvider("SG.x", host="https://api.eu.sendgrid.com").check()


def test_send_without_a_key_raises_before_any_request(sendgrid: SendGridStandIn) -> None:
    provider = SendGridProvider(None, host=sendgrid.url)
    try:
        with pytest.raises(ConfigError, match="SENDGRID_API_KEY"):
            provider.send([email()])
    finally:
        provider.close()
    assert sendgrid.requests == 0


def test_a_dropped_connection_is_a_retry_and_the_next_email_goes_through(
    sendgrid: SendGridStandIn, provider: SendGridProvider
) -> None:
    sendgrid.drop()
    [dropped] = provider.send([email(1)])
    assert dropped.status == "retry" and "connection" in (dropped.error or "")
    [sent] = provider.send([email(2)])
    assert sent.status == "sent"
    assert sendgrid.custom_arg_values("drip_uid") == ["m-0002"]


def test_a_timeout_is_a_retry(sendgrid: SendGridStandIn) -> None:
    provider = SendGridProvider(sendgrid.api_key, host=sendgrid.url, timeout=0.2)
    try:
        sendgrid.slow(seconds=1.0)
        [result] = provider.send([email()])
    finally:
        provider.close()
    assert result.status == "retry" and "timed out" in (result.error or "")


def test_a_refused_connection_is_a_retry() -> None:
    standin = SendGridStandIn()
    with standin:
        url = standin.url
    provider = SendGridProvider(standin.api_key, host=url)
    try:
        [result] = provider.send([email()])
    finally:
        provider.close()
    assert result.status == "retry"


def test_a_batch_of_200_reuses_few_connections_and_keeps_input_order(
    sendgrid: SendGridStandIn, provider: SendGridProvider
) -> None:
    batch = [email(n) for n in range(200)]
    sendgrid.fail(3, status=503)
    results = provider.send(batch)
    assert [r.uid for r in results] == [e.uid for e in batch]
    assert sum(r.status == "retry" for r in results) == 3
    assert sum(r.status == "sent" for r in results) == 197
    assert sendgrid.connections <= provider.max_in_flight  # kept alive, not one per email
    sent = sorted(r.uid for r in results if r.status == "sent")
    assert sorted(sendgrid.custom_arg_values("drip_uid")) == sent  # each exactly once
    ids = {r.provider_message_id for r in results if r.status == "sent"}
    assert ids == {a.message_id for a in sendgrid.accepted}


def test_requests_run_in_parallel_up_to_max_in_flight(sendgrid: SendGridStandIn) -> None:
    sendgrid.set_latency(per_request=0.1)
    provider = SendGridProvider(sendgrid.api_key, host=sendgrid.url, max_in_flight=16)
    try:
        results = provider.send([email(n) for n in range(32)])
    finally:
        provider.close()
    assert all(r.status == "sent" for r in results)
    assert sendgrid.connections <= 16
    # close() joined its loop thread (the stand-in's own connection threads may still run)
    assert not [t for t in threading.enumerate() if t.name == "sendgrid-io"]


def test_close_is_safe_twice(provider: SendGridProvider) -> None:
    provider.close()
    provider.close()
