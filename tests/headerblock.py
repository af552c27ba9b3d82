"""Reading a serialised email's top-level header block the way a receiving server does.

Independent of dripengine's own code: the block is split on CRLF, unfolded by RFC 5322's rule
(a line starting with a space or tab continues the one before) and encoded words are decoded with
the stdlib's RFC 2047 decoder, which joins adjacent encoded words as the RFC says.
"""

from __future__ import annotations

from email.header import decode_header, make_header

TOP_LEVEL = [
    "From",
    "To",
    "Subject",
    "Date",
    "Message-ID",
    "List-Unsubscribe",
    "List-Unsubscribe-Post",
    "MIME-Version",
    "Content-Type",
]


def header_lines(raw: bytes) -> list[str]:
    """The physical lines of the header block (before the first empty line)."""
    head, separator, _ = raw.partition(b"\r\n\r\n")
    assert separator, "no end of the header block"
    return head.decode("utf-8").split("\r\n")


def lines_of(raw: bytes, *wanted: str) -> list[str]:
    """The physical lines (first and continuations) of the named headers."""
    found: list[str] = []
    keep = False
    for line in header_lines(raw):
        if line[:1] not in (" ", "\t"):
            keep = line.partition(":")[0] in wanted
        if keep:
            found.append(line)
    return found


def headers(raw: bytes) -> list[tuple[str, str]]:
    """(name, value) per header, unfolded, values as written (still encoded)."""
    fields: list[tuple[str, str]] = []
    for line in header_lines(raw):
        if line[:1] in (" ", "\t"):
            name, value = fields[-1]
            fields[-1] = (name, value + line)
        else:
            name, colon, value = line.partition(":")
            assert colon and name and " " not in name, f"not a header line: {line!r}"
            fields.append((name, value.strip()))
    return fields


def names(raw: bytes) -> list[str]:
    return [name for name, _ in headers(raw)]


def value(raw: bytes, name: str) -> str:
    [found] = [v for n, v in headers(raw) if n.lower() == name.lower()]
    return found


def decoded(text: str) -> str:
    """An unstructured value or a display name as a reader shows it (RFC 2047 decoded)."""
    return str(make_header(decode_header(text)))


def display_name(raw: bytes, name: str = "To") -> tuple[str, str]:
    """(display name as shown, address) of a one-mailbox header."""
    text = value(raw, name)
    if not text.endswith(">"):
        return "", text
    phrase, _, address = text.rpartition(" <")
    phrase = phrase.strip()
    if phrase.startswith('"') and phrase.endswith('"'):
        phrase = phrase[1:-1].replace('\\"', '"').replace("\\\\", "\\")
        return phrase, address[:-1]
    return decoded(phrase), address[:-1]
