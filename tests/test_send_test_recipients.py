"""`drip send-test --to` takes one valid address or a short list (issue 15, item 10)."""

from __future__ import annotations

from email import message_from_bytes
from email.policy import default
from pathlib import Path

import pytest

from tests.clirun import drip


@pytest.mark.parametrize(
    ("to", "message"),
    [
        ("garbage", '"garbage" is not an email address'),
        ("me@acme.example, nope", '"nope" is not an email address'),
        (",", "give an address"),
        (",".join(f"u{i}@acme.example" for i in range(11)), "at most 10"),
    ],
)
def test_a_bad_recipient_is_refused_before_anything_is_sent(
    folder: Path, to: str, message: str
) -> None:
    code, _, err = drip("send-test", "lost-sql-winback", "--to", to)
    assert code == 2 and message in err, err
    assert not (folder / "outbox" / "test").exists()


def test_a_list_gets_one_test_email_each(folder: Path) -> None:
    code, out, err = drip(
        "send-test", "lost-sql-winback", "--to", "Me@Acme.example, you@acme.example"
    )
    assert code == 0, err
    assert out.count("sent to") == 2
    sent = sorted(
        message_from_bytes(p.read_bytes(), policy=default)["To"]
        for p in (folder / "outbox" / "test").glob("*.eml")
    )
    assert sent == ["me@acme.example", "you@acme.example"]
