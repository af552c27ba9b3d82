"""Did you mean …? The nearest valid name for a typo, wherever a name is chosen from a list.

``no-budget`` finds ``no_budget`` (case, ``-``, ``_`` and spaces are compared alike first), then
difflib's closest match finds ``lost-sql-winbak`` -> ``lost-sql-winback``. Pure.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

_SEPARATORS = re.compile(r"[\s_\-.]+")
CUTOFF = 0.6  # difflib's own default: close enough that a person meant it


def _key(name: str) -> str:
    return _SEPARATORS.sub("_", name.strip().lower())


def closest(value: str, choices: Iterable[str]) -> str | None:
    """The valid name ``value`` most likely meant, or None when none is close."""
    options = [c for c in choices if c]
    wanted = _key(value)
    same = [c for c in options if _key(c) == wanted]
    if same:
        return same[0]
    import difflib  # only when a name was wrong: not on every command's start-up

    keyed = {_key(c): c for c in options}
    match = difflib.get_close_matches(wanted, list(keyed), n=1, cutoff=CUTOFF)
    return keyed[match[0]] if match else None


def did_you_mean(value: str, choices: Iterable[str]) -> str:
    """``' (did you mean "x"?)'`` for the closest choice, or ``""``."""
    match = closest(value, choices)
    return f' (did you mean "{match}"?)' if match is not None and match != value else ""


def nearest(value: str, choices: Iterable[str], n: int = 3, cutoff: float = 0.8) -> list[str]:
    """Up to ``n`` choices closest to ``value``, closest first: for long values such as addresses,
    where a typo leaves most of the text as it was (hence the higher cut-off)."""
    import difflib

    options = sorted({c for c in choices if c and c != value})
    return difflib.get_close_matches(value, options, n=n, cutoff=cutoff)


def did_you_mean_any(matches: Iterable[str]) -> str:
    """``' (did you mean a@x.example or b@x.example?)'``, or ``""``."""
    shown = list(matches)
    return f" (did you mean {' or '.join(shown)}?)" if shown else ""


__all__ = ["closest", "did_you_mean", "did_you_mean_any", "nearest"]
