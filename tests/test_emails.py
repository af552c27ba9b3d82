"""Email normalisation: the fast path never disagrees with email-validator."""

from __future__ import annotations

import pytest
from email_validator import EmailNotValidError, validate_email
from hypothesis import example, given, settings
from hypothesis import strategies as st

from dripengine import emails
from dripengine.emails import InvalidEmail, normalise_email


def reference(address: str) -> str | None:
    """What email-validator itself says, lower-cased; None if it refuses the address."""
    try:
        return validate_email(address.strip(), check_deliverability=False).normalized.lower()
    except EmailNotValidError:
        return None


ATEXT = "abcXYZ019!#$%&'*+/=?^_`{|}~-"
local_chars = st.sampled_from(
    [
        *ATEXT,
        ".",
        ".",
        '"',
        " ",
        "@",
        "\\",
        "(",
        ",",
        "é",
        "ß",
        "Ä",
        "\u0301",
        "\u00a0",
        "日",
        "\x00",
    ]
)
local_parts = st.one_of(
    st.text(local_chars, min_size=0, max_size=20),
    st.text(st.sampled_from(ATEXT + "."), min_size=55, max_size=80),  # around the 64 limit
    st.text(max_size=12),  # anything at all
    st.builds(lambda s: f'"{s}"', st.text(local_chars, max_size=10)),  # quoted
)
label_chars = st.sampled_from([*"abcXYZ0189-", "ü", "ß", "日", "\u0301", "_", " ", "İ", "Σ"])
labels = st.one_of(
    st.text(label_chars, min_size=0, max_size=12),
    st.text(st.sampled_from("abc0-"), min_size=60, max_size=66),  # around the 63 label limit
    st.sampled_from(["xn--mnchen-3ya", "xn--", "XN--MNCHEN-3YA", "example", "Acme"]),
)
tlds = st.sampled_from(["com", "DE", "example", "test", "local", "invalid", "onion", "x1", "ελ"])
domains = st.one_of(
    st.builds(lambda ls, tld: ".".join([*ls, tld]), st.lists(labels, min_size=0, max_size=4), tlds),
    st.builds(lambda ls: ".".join(ls), st.lists(labels, min_size=1, max_size=5)),
    st.builds(  # long domains, for the 253 and 254 limits
        lambda n, tld: ".".join(["a" * 60] * n + [tld]), st.integers(3, 4), tlds
    ),
    st.text(max_size=10),
)


def long_domain(length: int) -> str:
    """A valid-looking domain of exactly ``length`` characters, in labels of 62 or 63."""
    name = (("b" * 62 + ".") * 5)[: length - 4]
    if name.endswith("."):
        name = name[:-1] + "b"
    return name + ".com"


near_the_limit = st.builds(  # plain addresses of 250 to 258 octets in all: the fast path's edge
    lambda local, total: f"{'a' * local}@{long_domain(total - local - 1)}",
    st.integers(1, 70),
    st.integers(250, 258),
)
addresses = st.one_of(
    near_the_limit,
    st.builds(
        lambda lo, d, pad: f"{pad}{lo}@{d}{pad}",
        local_parts,
        domains,
        st.sampled_from(["", " ", "\t"]),
    ),
    st.builds(lambda lo, d: f"{lo}@@{d}", local_parts, domains),
    st.text(max_size=30),
)


@pytest.mark.slow  # a large hypothesis search
@settings(max_examples=3000, deadline=None)
@given(addresses)
@example("Jane.Doe@Acme.example")
@example("a" * 64 + "@acme.example")
@example("a" * 65 + "@acme.example")  # valid for email-validator (not strict): the slow path
@example("a" * 64 + "@" + long_domain(189))  # 254 octets exactly
@example("a" * 64 + "@" + long_domain(190))  # 255 octets
@example(".jane@acme.example")
@example("jane.@acme.example")
@example("ja..ne@acme.example")
@example("jane@xn--mnchen-3ya.de")
@example('"jane"@acme.example')
@example("Jane <jane@acme.example>")
@example("jane@acme.example>")
@example("info@ACME.example")
def test_normalise_email_agrees_with_email_validator(address: str) -> None:
    expected = reference(address)
    try:
        got: str | None = normalise_email(address)
    except InvalidEmail:
        got = None
    assert got == expected


def test_long_domain_helper() -> None:
    assert [len(long_domain(n)) for n in (189, 190, 200)] == [189, 190, 200]
    assert normalise_email("a" * 64 + "@" + long_domain(189))
    with pytest.raises(InvalidEmail, match="too long"):
        normalise_email("a" * 64 + "@" + long_domain(190))


def test_lower_cases_the_whole_address() -> None:
    assert normalise_email("  Jane.Doe@ACME.Example ") == "jane.doe@acme.example"
    assert normalise_email("Jürgen@München.DE") == "jürgen@münchen.de"
    assert normalise_email("jane@xn--mnchen-3ya.de") == "jane@münchen.de"


def test_invalid_email_carries_email_validators_message() -> None:
    with pytest.raises(InvalidEmail, match="two periods in a row") as info:
        normalise_email("ja..ne@acme.example")
    assert isinstance(info.value, ValueError)
    with pytest.raises(InvalidEmail, match="must have an @-sign"):
        normalise_email("jane.acme.example")
    with pytest.raises(InvalidEmail, match="should have a period"):
        normalise_email("jane@localhost")


def test_never_asks_dns() -> None:
    # a syntactically valid address on a domain that does not exist
    assert normalise_email("x@no-such-domain-3f9a1c.example") == "x@no-such-domain-3f9a1c.example"


def test_fast_path_validates_each_domain_once(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []

    def counting(address: str, **kwargs: object) -> object:
        calls.append(address)
        return validate_email(address, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(emails, "validate_email", counting)
    emails._check_domain.cache_clear()
    for i in range(100):
        normalise_email(f"person{i}@fast-path-{i % 3}.example")
    assert sorted(calls) == [f"postmaster@fast-path-{i}.example" for i in range(3)]
    with pytest.raises(InvalidEmail):  # not the fast path's shape: the full check
        normalise_email("ja..ne@fast-path-0.example")
    assert calls[-1] == "ja..ne@fast-path-0.example"
