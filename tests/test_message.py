"""``dripengine.mail.message``: the recipient's mailbox survives any name a lead has."""

from __future__ import annotations

from datetime import UTC, datetime
from email import message_from_bytes
from email.policy import default
from email.utils import parseaddr
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dripengine.mail.message import OutgoingEmail, mailbox, wire_bytes
from dripengine.templates.text import one_line
from tests import headerblock


@given(st.text(max_size=40))
def test_a_lead_name_never_changes_the_address(text: str) -> None:
    name = one_line(text)  # what the dispatcher makes of first and last name
    assert parseaddr(mailbox(name, "lead@example.com")) == (name, "lead@example.com")


def test_specials_are_quoted_and_plain_names_are_not() -> None:
    assert mailbox("Jane Doe", "j@example.com") == "Jane Doe <j@example.com>"
    assert mailbox("Doe, Jane", "j@example.com") == '"Doe, Jane" <j@example.com>'
    assert mailbox('Jane "JJ" Doe', "j@example.com") == '"Jane \\"JJ\\" Doe" <j@example.com>'
    assert mailbox("", "j@example.com") == "j@example.com"


# -- the header block: lead data is data, never a header fragment (issue 12, findings 1-3) --------

AT = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
LONG_URL = "https://drip.example/u/" + "Zm9v" * 60  # a real token URL: ~260 characters, no space


def outgoing(name: str = "Jane Doe", subject: str = "Hello", **overrides: Any) -> OutgoingEmail:
    values: dict[str, Any] = dict(
        uid="3f2a9c",
        sender="Acme Growth Team <hello@acme.example>",
        to=mailbox(name, "jane@lead.example"),
        subject=subject,
        html="<p>Hello</p>",
        text="Hello",
        created_at=AT,
        unsubscribe_url=LONG_URL,
    )
    values.update(overrides)
    return OutgoingEmail(**values)


INJECTIONS = [
    "=?utf-8?q?Jane=0D=0ABcc=3A_evil=40x.example?=",
    "=?UTF-8?B?SmFuZQ0KQmNjOiBldmlsQHguZXhhbXBsZQ==?=",  # the same, base64
    "=?iso-8859-1?q?Jane=0ABcc:_evil=40x.example?=",
    "Jane =?utf-8?q?=00?=",
    # a word that decodes to another encoded word, which decodes to the line break
    "=?utf-8?q?=3D=3Futf-8=3Fq=3FJane=3D0D=3D0ABcc=3A=5Fevil=3F=3D?=",
]


@pytest.mark.parametrize("hostile", INJECTIONS)
@pytest.mark.parametrize("where", ["name", "subject", "reply_to"])
def test_an_encoded_line_break_in_lead_data_is_refused_on_every_python(
    hostile: str, where: str
) -> None:
    email = {
        "name": lambda: outgoing(name=hostile),
        "subject": lambda: outgoing(subject=f"Hi {hostile}, still interested?"),
        "reply_to": lambda: outgoing(reply_to=mailbox(hostile, "sales@acme.example")),
    }[where]()
    with pytest.raises(ValueError, match="control character inside an RFC 2047 encoded word"):
        wire_bytes(email)


def test_an_encoded_word_that_decodes_clean_is_shown_as_the_text_it_is() -> None:
    name = "=?utf-8?q?Jos=C3=A9?="  # what the lead typed, literally
    raw = wire_bytes(outgoing(name=name, subject=f"Hi {name}"))
    assert headerblock.display_name(raw) == (name, "jane@lead.example")
    assert headerblock.decoded(headerblock.value(raw, "Subject")) == f"Hi {name}"


def test_list_unsubscribe_and_message_id_go_out_verbatim_on_one_line() -> None:
    raw = wire_bytes(outgoing())
    assert f"\r\nList-Unsubscribe: <{LONG_URL}>\r\n".encode() in raw
    assert b"\r\nList-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n" in raw
    assert b"\r\nMessage-ID: <3f2a9c@acme.example>\r\n" in raw
    assert b"=?" not in raw.partition(b"\r\n\r\n")[0]


def test_a_200_character_word_in_a_name_is_encoded_and_folded_not_a_broken_line() -> None:
    name = "Jane " + "x" * 200 + " Doe"
    raw = wire_bytes(outgoing(name=name, subject="Hi " + "y" * 200))
    assert all(len(line) <= 78 for line in headerblock.lines_of(raw, "To", "Subject"))
    assert headerblock.names(raw) == headerblock.TOP_LEVEL
    assert headerblock.display_name(raw) == (name, "jane@lead.example")
    assert headerblock.decoded(headerblock.value(raw, "Subject")) == "Hi " + "y" * 200
    parsed = message_from_bytes(raw, policy=default)
    assert [a.addr_spec for a in parsed["To"].addresses] == ["jane@lead.example"]


lead_text = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
    max_size=300,
)


@settings(max_examples=300)
@given(name=lead_text, subject=lead_text)
def test_any_name_and_subject_give_exactly_our_headers_and_read_back_as_written(
    name: str, subject: str
) -> None:
    name, subject = one_line(name), one_line(subject)  # what the dispatcher makes of them
    try:
        raw = wire_bytes(outgoing(name=name, subject=subject or "x"))
    except ValueError as exc:  # only ever an encoded control character, and it says so
        assert "encoded word" in str(exc)
        return
    assert headerblock.names(raw) == headerblock.TOP_LEVEL  # no header added, none lost
    assert all(len(line) <= 78 for line in headerblock.lines_of(raw, "From", "To", "Subject"))
    assert all(len(line) <= 998 and line.isascii() for line in headerblock.header_lines(raw))
    assert headerblock.display_name(raw) == (name.strip(" "), "jane@lead.example") or (
        name.strip(" ") != name  # parseaddr trims the name's outer spaces
    )
    assert headerblock.decoded(headerblock.value(raw, "Subject")) == (subject or "x")
    assert headerblock.value(raw, "List-Unsubscribe") == f"<{LONG_URL}>"
    parsed = message_from_bytes(raw, policy=default)
    assert [a.addr_spec for a in parsed["To"].addresses] == ["jane@lead.example"]


def test_international_addresses_are_utf8_and_names_stay_encoded() -> None:
    raw = wire_bytes(outgoing(to=mailbox("Jürgen", "jürgen@lead.example")))
    assert headerblock.value(raw, "To").endswith("<jürgen@lead.example>")
    assert headerblock.display_name(raw) == ("Jürgen", "jürgen@lead.example")
