"""Rules on the characters of names that clients choose: one place for what a name may hold."""

from __future__ import annotations

import unicodedata
from functools import cache

from dcman.domain.errors import InvalidInput


def unstorable_reason(value: str) -> str | None:
    """Why a text cannot be stored as it is (NUL, or a lone surrogate no database encodes), or None."""
    if "\x00" in value:
        return "must not contain NUL characters"
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return "must be valid Unicode text (it holds a lone surrogate)"
    return None


# The Unicode categories no name may hold: control and format characters, line and paragraph separators.
NOT_IN_NAMES = ("Cc", "Cf", "Zl", "Zp")


def check_name_characters(field: str, value: str) -> str:
    """A name holds no control character (NUL, newline, tab, ...) and no lone surrogate: it is
    shown on one line, stored in every database, and matched whole."""
    reason = unstorable_reason(value)
    if reason is None and any(unicodedata.category(ch) in NOT_IN_NAMES for ch in value):
        reason = "must not contain control characters such as newlines"
    if reason is not None:
        raise InvalidInput(f"The {field} {reason}.")
    return value


def reject_unstorable(value: object) -> None:
    """NUL and lone surrogates never belong in a stored text, and the databases cannot hold
    them: refuse them up front, at any depth of a parsed body."""
    if isinstance(value, str):
        reason = unstorable_reason(value)
        if reason is not None:
            raise InvalidInput(f"Text values {reason}.")
    elif isinstance(value, dict):
        for key, item in value.items():
            reject_unstorable(key)
            reject_unstorable(item)
    elif isinstance(value, list):
        for item in value:
            reject_unstorable(item)


@cache
def name_pattern() -> str:
    """The same rule as a regular expression, for /openapi.json: no character of those
    categories, nor a surrogate (built once, on first use: it walks the code points)."""
    ranges: list[tuple[int, int]] = []
    # The Basic Multilingual Plane only: a schema's patterns are ECMA-262, where a character
    # past it is two code units, which a character class cannot name (the few such format
    # characters, language tags mostly, are left to the site's own check).
    for point in range(0x10000):
        if unicodedata.category(chr(point)) in (*NOT_IN_NAMES, "Cs"):
            if ranges and ranges[-1][1] == point - 1:
                ranges[-1] = (ranges[-1][0], point)
            else:
                ranges.append((point, point))
    shown = "".join(_char(a) if a == b else f"{_char(a)}-{_char(b)}" for a, b in ranges)
    return f"^[^{shown}]*$"


def _char(point: int) -> str:
    return f"\\u{point:04x}"
