"""Header values written by us, byte for byte: lead data is data, never a header fragment. Pure.

Python's email package *parses* every string set as a header: an RFC 2047 encoded word in a lead's
name (``=?utf-8?q?Jane=0D=0ABcc=3A_evil=40x.example?=``) is decoded there, and the decoded line
break is then written out as a new header. Which words it decodes, and how it folds a long value
(into ``=?utf-8?q?=3Chttps...?=`` chunks no mail client reads as a URL), differs between Python
releases. So the values of the headers an email carries are made here, with rules that do not
depend on the Python version, and stored verbatim (:func:`dripengine.mail.message.to_mime`):

- :func:`check` refuses a control character in a value, raw *or* inside an encoded word, decoded
  here (all rounds, so a word that decodes to another word is looked at too);
- :func:`phrase` and :func:`unstructured` write a display name and a subject as they are when they
  are printable ASCII that nothing would read as an encoded word, and as UTF-8 encoded words
  otherwise: whatever the text, the reader's client shows exactly it;
- :func:`fold` folds only at spaces (RFC 5322 2.2.3); a token without a space (a URL, a Message-ID)
  stays whole on its line, up to RFC 5322's 998 characters.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import re

# What never goes into a header, whichever provider sends it: C0 controls but tab, and DEL.
HEADER_CONTROL = re.compile("[\x00-\x08\x0a-\x1f\x7f]")
FOLD_WIDTH = 78  # RFC 5322 2.1.1: a line SHOULD be at most 78 characters
MAX_LINE = 998  # ... and MUST be at most 998
_ENCODED_WORD = re.compile(r"=\?([^?\s]+)\?([bBqQ])\?([^?\s]*)\?=")
_PRINTABLE = re.compile(r"[\x20-\x7e]*")
SPECIALS = frozenset('()<>@,:;."[]\\')
# RFC 2047 5(3): in a phrase, a "Q"-encoded word may hold only these characters as themselves.
_Q_SAFE = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789!*+-/")
_WORD_BYTES = (
    42  # 42 bytes = 56 base64 characters: "=?utf-8?b?" + 56 + "?=" = 68: "Reply-To: " + 68 = 78
)
_LONGEST_PLAIN_WORD = FOLD_WIDTH - len("Reply-To: ")  # longer: encoded, so a fold can split it


def decoded(value: str, rounds: int = 4) -> list[str]:
    """``value`` and what it becomes when its RFC 2047 encoded words are decoded, round by round.

    Decoded here rather than by the email package, so what is checked does not depend on the
    Python release. An unknown charset is read as Latin-1 (every byte a character, none lost).
    """
    seen = [value]
    for _ in range(rounds):
        current = seen[-1]
        if "=?" not in current:
            break
        following = _ENCODED_WORD.sub(_decode_word, current)
        if following == current:
            break
        seen.append(following)
    return seen


def _decode_word(match: re.Match[str]) -> str:
    charset, encoding, text = match.group(1), match.group(2).lower(), match.group(3)
    try:
        if encoding == "b":
            data = base64.b64decode(text + "=" * (-len(text) % 4))
        else:
            data = re.sub(
                rb"=([0-9A-Fa-f]{2})",
                lambda m: bytes([int(m.group(1), 16)]),
                text.replace("_", " ").encode("ascii", "replace"),
            )
    except (binascii.Error, ValueError):
        return match.group(0)
    charset = charset.partition("*")[0]  # RFC 2231 language suffix
    try:
        codecs.lookup(charset)
    except LookupError:
        charset = "latin-1"
    return data.decode(charset, "replace")


def check(name: str, value: str) -> str:
    """``value``, or ValueError naming the header when it holds a control character, raw or
    encoded (``=?utf-8?q?Jane=0D=0ABcc...?=`` is refused as surely as ``Jane\\r\\nBcc...``)."""
    for round_, text in enumerate(decoded(value)):
        bad = HEADER_CONTROL.search(text)
        if bad is not None:
            where = "" if round_ == 0 else " inside an RFC 2047 encoded word"
            raise ValueError(
                f"the {name} header contains a control character{where} ({bad.group()!r}): "
                "a line break or control character never goes into a header"
            )
    return value


def _plain(text: str) -> bool:
    """Printable ASCII that no reader takes for an encoded word, and no word too long to fold."""
    return (
        _PRINTABLE.fullmatch(text) is not None
        and "=?" not in text
        and all(len(word) <= _LONGEST_PLAIN_WORD for word in text.split(" "))
    )


def encoded_words(text: str) -> str:
    """``text`` as UTF-8 "B" encoded words, each at most 75 characters, space-separated (a reader
    joins adjacent encoded words without the space, RFC 2047 6.2). Never splits a character."""
    words: list[str] = []
    chunk = b""
    for character in text:
        data = character.encode("utf-8", "surrogatepass")
        if chunk and len(chunk) + len(data) > _WORD_BYTES:
            words.append(_b_word(chunk))
            chunk = b""
        chunk += data
    if chunk or not words:
        words.append(_b_word(chunk))
    return " ".join(words)


def _b_word(data: bytes) -> str:
    return "=?utf-8?b?" + base64.b64encode(data).decode("ascii") + "?="


def phrase(name: str) -> str:
    """A display name as it goes into ``From``/``To``/``Reply-To``: as is, quoted when it holds a
    special, or encoded words when it is not plain (non-ASCII, ``=?``, a very long word)."""
    if _plain(name):
        if SPECIALS.intersection(name):
            return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'
        return name
    return encoded_words(name)


def mailbox_header(name: str, address: str) -> str:
    """``phrase <address>``, or the bare address; the address goes as is (SMTPUTF8 where needed)."""
    return f"{phrase(name)} <{address}>" if name else address


def unstructured(text: str) -> str:
    """A subject as it goes out: as is when plain, else encoded words."""
    return text if _plain(text) else encoded_words(text)


def fold(name: str, value: str) -> str:
    """``value`` folded at spaces so that ``name: value`` lines stay within 78 characters where a
    space allows it; continuation lines start with the space they were folded at. A token with no
    space in it stays whole (a URL of 300 characters is one line: RFC 5322 allows 998)."""
    if len(name) + 2 + len(value) <= FOLD_WIDTH:
        return value
    lines: list[str] = []
    line = ""
    width = len(name) + 2
    for index, word in enumerate(value.split(" ")):
        if index == 0:
            line = word
        elif word and width + len(line) + 1 + len(word) > FOLD_WIDTH and line.strip():
            lines.append(line)
            line, width = " " + word, 0
        else:
            line += " " + word
    lines.append(line)
    folded = "\n".join(lines)
    if any(len(part) > MAX_LINE for part in folded.split("\n")):
        raise ValueError(f"the {name} header has a word longer than {MAX_LINE} characters")
    return folded
