"""Narrowing one untrusted request value to the type a rule takes: one integer, one text and one
boolean reader for every field of every request, so each is refused the same way, with its field
named in one sentence. They take `object`: what a JSON body or a form holds is not yet typed."""

from __future__ import annotations

from enum import Enum
from typing import TypeVar

from dcman.domain.errors import InvalidInput

MAX_TEXT = 255
_E = TypeVar("_E", bound=Enum)


def as_integer(value: object, *, signed: bool = False, floats: bool = True) -> int | None:
    """`value` as an int, or None when it is none: an int (never a boolean), a string of at most
    30 decimal digits (signed only when asked), or, when `floats`, JSON's 60.0 for 60."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value) if floats and value.is_integer() else None
    if isinstance(value, str):
        text = value.strip()
        digits = text[1:] if signed and text[:1] in ("+", "-") else text
        if digits.isascii() and digits.isdigit() and len(digits) <= 30:
            return int(text)
    return None


def shown_briefly(value: object) -> object:
    """What an error message shows of a value: a string cut to 32 characters."""
    return value[:32] if isinstance(value, str) else value


def integer(field: str, value: object, low: int, high: int) -> int:
    """An integer from `low` to `high`, given as a number or a string of digits."""
    number = as_integer(value)
    if number is None or not low <= number <= high:
        raise InvalidInput(f"Invalid {field} {shown_briefly(value)!r}; it must be an integer from {low} to {high}.")
    return number


def text(field: str, value: object, max_length: int = MAX_TEXT, *, blank: bool = False) -> str:
    """A string of at most `max_length` characters; unless `blank`, not empty nor white space only."""
    if not isinstance(value, str) or (not blank and not value.strip()):
        raise InvalidInput(f"The {field} must be {'a' if blank else 'a non-empty'} string.")
    if len(value) > max_length:
        raise InvalidInput(f"The {field} must be at most {max_length} characters long.")
    return value


def as_bool(value: object, true: tuple[str, ...] = ("true",), false: tuple[str, ...] = ("false",)) -> bool | None:
    """A JSON boolean, or a word of `true` or `false` in any case, as a form sends it; None otherwise."""
    if isinstance(value, bool):
        return value
    word = value.strip().lower() if isinstance(value, str) else None
    if word in true or word in false:
        return word in true
    return None


def flag(field: str, value: object) -> bool:
    """A boolean field: true or false, as JSON or the strings a multipart form sends."""
    parsed = as_bool(value)
    if parsed is None:
        raise InvalidInput(f"The {field} value must be true or false.")
    return parsed


def choice(kind: type[_E], value: object, refusal: str) -> _E:
    """One of an enum's values, or `refusal` (a whole sentence) as the error."""
    try:
        return kind(value)
    except (ValueError, TypeError):
        raise InvalidInput(refusal) from None
