"""Pure validation of what cameras read: ISO 6346 container codes and licence plates."""

from __future__ import annotations

import re
import string

_VALUES = dict(zip(string.ascii_uppercase, [10, *range(12, 22), *range(23, 33), *range(34, 39)], strict=True))
_CONTAINER = re.compile(r"^[A-Z]{3}[UJZ][0-9]{6}[0-9]$")
_PLATE_DROP = re.compile(r"[^A-Z0-9]")


def check_digit(code10: str) -> int:
    """ISO 6346 check digit of owner code + category + serial (10 characters)."""
    if len(code10) != 10:
        raise ValueError("need the 10 characters before the check digit")
    total = 0
    for i, ch in enumerate(code10):
        if ch.isdigit():
            value = int(ch)
        elif ch in _VALUES:
            value = _VALUES[ch]
        else:
            raise ValueError(f"invalid character {ch!r}")
        total += value << i
    return total % 11 % 10


def normalise_container(raw: str) -> str:
    """Upper-case and drop spaces, dashes and the size/type suffix separators."""
    return "".join(ch for ch in raw.upper() if ch.isalnum())[:11]


def container_valid(code: str) -> bool:
    """Whether ``code`` is ``AAAU NNNNNN C`` with a correct check digit."""
    return bool(_CONTAINER.match(code)) and check_digit(code[:10]) == int(code[10])


def normalise_plate(raw: str) -> str | None:
    """``[A-Z0-9]{1,8}`` after dropping spaces, dashes and anything else; ``None`` when nothing is left."""
    text = _PLATE_DROP.sub("", raw.upper())
    return text[:8] if text else None
