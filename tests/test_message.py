"""``dripengine.sending.message``: the recipient's mailbox survives any name a lead has."""

from __future__ import annotations

from email.utils import parseaddr

from hypothesis import given
from hypothesis import strategies as st

from dripengine.sending.message import mailbox
from dripengine.templates.text import one_line


@given(st.text(max_size=40))
def test_a_lead_name_never_changes_the_address(text: str) -> None:
    name = one_line(text)  # what the dispatcher makes of first and last name
    assert parseaddr(mailbox(name, "lead@example.com")) == (name, "lead@example.com")


def test_specials_are_quoted_and_plain_names_are_not() -> None:
    assert mailbox("Jane Doe", "j@example.com") == "Jane Doe <j@example.com>"
    assert mailbox("Doe, Jane", "j@example.com") == '"Doe, Jane" <j@example.com>'
    assert mailbox('Jane "JJ" Doe', "j@example.com") == '"Jane \\"JJ\\" Doe" <j@example.com>'
    assert mailbox("", "j@example.com") == "j@example.com"
