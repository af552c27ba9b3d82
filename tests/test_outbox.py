from datetime import UTC, datetime
from email import message_from_bytes
from email.policy import default
from pathlib import Path

from dripengine.mail.message import OutgoingEmail, as_test
from dripengine.providers.outbox import OutboxProvider
from tests import headerblock

AT = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)


def email(**overrides) -> OutgoingEmail:  # type: ignore[no-untyped-def]
    values = dict(
        uid="3f2a9c",
        sender="Acme Growth Team <hello@acme.example>",
        to="Jane Doe <jane@acme.example>",
        subject="Still thinking about Acme Corp? — ünïcode",
        html="<p>Hello Jane</p>",
        text="Hello Jane",
        created_at=AT,
        unsubscribe_url="http://127.0.0.1:8080/u/token",
        reply_to="sales@acme.example",
    )
    values.update(overrides)
    return OutgoingEmail(**values)


def test_writes_a_complete_rfc5322_message(tmp_path: Path) -> None:
    [result] = OutboxProvider(tmp_path).send([email()])
    assert result.status == "sent"
    path = Path(result.where or "")
    assert path == tmp_path / "2026-11-24" / "3f2a9c.eml"
    parsed = message_from_bytes(path.read_bytes(), policy=default)
    assert parsed["Message-ID"] == "<3f2a9c@acme.example>" == result.provider_message_id
    assert parsed["From"] == "Acme Growth Team <hello@acme.example>"
    assert parsed["Subject"] == "Still thinking about Acme Corp? — ünïcode"
    assert parsed["List-Unsubscribe"] == "<http://127.0.0.1:8080/u/token>"
    assert parsed["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert parsed["Reply-To"] == "sales@acme.example"
    assert parsed["Date"] == "Tue, 24 Nov 2026 09:00:00 +0000"
    parts = [p.get_content_type() for p in parsed.iter_parts()]
    assert parts == ["text/plain", "text/html"]
    assert not [p for p in path.parent.iterdir() if p.name.startswith(".")]  # no temp files left


def test_long_unsubscribe_url_stays_one_plain_header(tmp_path: Path) -> None:
    url = "http://127.0.0.1:8080/u/" + "A" * 120
    [result] = OutboxProvider(tmp_path).send([email(unsubscribe_url=url)])
    raw = Path(result.where or "").read_bytes()
    assert f"\r\nList-Unsubscribe: <{url}>\r\n".encode() in raw


def test_test_sends_are_marked_and_kept_apart(tmp_path: Path) -> None:
    [result] = OutboxProvider(tmp_path).send([as_test(email())])
    parsed = message_from_bytes(Path(result.where or "").read_bytes(), policy=default)
    assert parsed["Subject"].startswith("[TEST] Still thinking")
    assert parsed["X-Drip-Test"] == "yes"
    assert Path(result.where or "").parent.name == "test"
    assert as_test(as_test(email())).subject.count("[TEST]") == 1


def test_unwritable_folder_is_a_retry_not_a_crash(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    [result] = OutboxProvider(blocker).send([email()])
    assert result.status == "retry"
    assert result.error is not None and "cannot write" in result.error


def test_header_injection_fails_that_email_only(tmp_path: Path) -> None:
    bad, good = OutboxProvider(tmp_path).send(
        [email(uid="bad", subject="Hi\r\nBcc: evil@example.com"), email(uid="good")]
    )
    assert bad.status == "failed" and "not a valid message" in (bad.error or "")
    assert good.status == "sent"
    assert not list(tmp_path.rglob("bad.eml"))


def test_control_characters_in_any_header_fail_the_email(tmp_path: Path) -> None:
    cases = [
        email(uid="to", to="Jane\r\nBcc: x@y.example <jane@acme.example>"),
        email(uid="nul", subject="Hi\x00"),
        email(uid="hdr", headers={"X-Campaign": "a\nb"}),
    ]
    results = OutboxProvider(tmp_path).send(cases)
    assert [r.status for r in results] == ["failed"] * 3
    assert "the To header contains a control character" in (results[0].error or "")
    assert not list(tmp_path.rglob("*.eml"))


def test_an_encoded_line_break_in_lead_data_never_reaches_an_eml_file(tmp_path: Path) -> None:
    hostile = "=?utf-8?q?Jane=0D=0ABcc=3A_evil=40x.example?="
    results = OutboxProvider(tmp_path).send(
        [
            email(uid="name", to=f"{hostile} <jane@acme.example>"),
            email(uid="subject", subject=f"Hello {hostile}"),
        ]
    )
    assert [r.status for r in results] == ["failed", "failed"]
    assert all("inside an RFC 2047 encoded word" in (r.error or "") for r in results)
    assert not list(tmp_path.rglob("*.eml"))


def test_a_200_character_word_in_a_name_gives_a_readable_folded_header(tmp_path: Path) -> None:
    name = "Jane " + "x" * 200
    [result] = OutboxProvider(tmp_path).send([email(to=f"{name} <jane@acme.example>")])
    raw = Path(result.where or "").read_bytes()
    assert all(len(line) <= 78 for line in headerblock.lines_of(raw, "To"))
    assert headerblock.display_name(raw) == (name, "jane@acme.example")
    parsed = message_from_bytes(raw, policy=default)
    assert [a.addr_spec for a in parsed["To"].addresses] == ["jane@acme.example"]
    assert parsed["Reply-To"] == "sales@acme.example"


def test_an_international_address_is_written_as_utf8(tmp_path: Path) -> None:
    [result] = OutboxProvider(tmp_path).send([email(to="Jürgen <jürgen@acme.example>")])
    assert result.status == "sent"
    raw = Path(result.where or "").read_bytes()
    assert headerblock.display_name(raw) == ("Jürgen", "jürgen@acme.example")
