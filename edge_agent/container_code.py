"""ISO 6346 container codes read from camera text: right or absent, then voted across a passage's frames.

A wrong container code that passes its check digit is the worst outcome a read can have: it can match a
declaration. So a read is accepted only when it is a well-formed code whose check digit agrees, and the
corrector never guesses:

* :func:`normalise` upper-cases and drops spaces, dashes, dots, slashes and the box drawn round the check
  digit; exactly 11 characters must be left: owner code (3 letters), category (``U`` freight container,
  ``J`` detachable equipment, ``Z`` trailer or chassis), serial (6 digits), check digit.
* Only the five unambiguous confusions are corrected (``O``/``0``, ``I``/``1``, ``B``/``8``, ``S``/``5``,
  ``Z``/``2``), and only where the character read is of a kind the position cannot hold (a digit in the
  owner code or category, a letter in the serial or check digit). A well-formed character is never
  changed: trying substitutions until the check digit agrees would manufacture a valid wrong code.
* At most one character is corrected, and only when exactly one character of the kind its position allows
  makes the check digit agree. A single misread character can then only be corrected back to what was
  painted, never into another valid code. In practice a letter read in the serial or check digit, or a
  ``2`` read as the category, can be corrected; a digit in the owner code never is, because the check digit
  cannot tell letters 11 apart in value (``O`` from ``E`` and ``Y``, ``S`` from ``I``).
* Anything else is :class:`Rejected`, with a reason naming the position (positions count from 1).

The check digit is ``sum % 11 % 10`` as in :func:`edge_agent.codes.check_digit` (a sum giving 10 checks as
0; owners should avoid such serials). What it cannot see, nothing here can: a substitution or an adjacent
transposition that turns one valid code into another (letters whose values differ by 11 or 22, such as
``A``/``K``, or a code whose check digit 0 stands for a remainder of 10) reads as the other code.

:func:`validate_size_type` reads the separate 4-character size/type code (``45G1``) the same way, without a
check digit to confirm anything, so it corrects only a letter in the last (digit) position.

:func:`vote` picks one code per passage from its frames' reads (:class:`~edge_agent.domain.ContainerRead`):
the valid code read by most frames above the confidence floor; two valid codes read equally often is unread.
"""

from __future__ import annotations

import string
import unicodedata
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from edge_agent.codes import check_digit, container_valid
from edge_agent.domain import ContainerRead

LETTER_FOR_DIGIT: Mapping[str, str] = {"0": "O", "1": "I", "8": "B", "5": "S", "2": "Z"}
"""The unambiguous confusions: a digit read where only a letter can be, and the letter it stands for."""
DIGIT_FOR_LETTER: Mapping[str, str] = {letter: digit for digit, letter in LETTER_FOR_DIGIT.items()}
"""The same pairs the other way: a letter read where only a digit can be, and the digit it stands for."""
CATEGORIES = "UJZ"
"""Equipment category: U freight container, J detachable equipment, Z trailer or chassis."""

_DROP = frozenset(" \t\r\n-./_|[]()□▢▭▯")  # separators, and the box drawn round the check digit


def normalise(raw: str) -> str:
    """``raw`` upper-cased, without separators, spaces or box-drawing characters (nothing else dropped)."""
    return "".join(
        ch
        for ch in raw.upper()
        if ch not in _DROP and not ch.isspace() and not unicodedata.name(ch, "").startswith("BOX DRAWINGS")
    )


@dataclass(frozen=True, slots=True)
class Correction:
    """One character changed by a forced confusion: ``read`` at ``position`` (from 1) became ``corrected``."""

    position: int
    read: str
    corrected: str


@dataclass(frozen=True, slots=True)
class ContainerCode:
    """An accepted container code (11 characters, check digit agrees) and the correction it needed, if any."""

    code: str
    correction: Correction | None = None

    @property
    def owner(self) -> str:
        """The 3-letter owner code."""
        return self.code[:3]

    @property
    def category(self) -> str:
        """The category letter (``U``, ``J`` or ``Z``)."""
        return self.code[3]

    @property
    def serial(self) -> str:
        """The 6-digit serial number."""
        return self.code[4:10]


@dataclass(frozen=True, slots=True)
class Rejected:
    """A read that is not a container code: ``reason`` says why, ``normalised`` is what was judged."""

    reason: str
    normalised: str


@dataclass(frozen=True, slots=True)
class _Field:
    name: str
    allowed: str  # every character the position can hold: the alternatives the check digit must rule out
    forced: Mapping[str, str]  # wrong-kind character read -> the one character it can stand for


_LETTERS = string.ascii_uppercase
_OWNER = _Field("owner code must be a letter", _LETTERS, LETTER_FOR_DIGIT)
_CATEGORY = _Field(
    "category must be U, J or Z",
    CATEGORIES,
    {d: c for d, c in LETTER_FOR_DIGIT.items() if c in CATEGORIES},
)
_SERIAL = _Field("serial must be a digit", string.digits, DIGIT_FOR_LETTER)
_CHECK = _Field("check digit must be a digit", string.digits, DIGIT_FOR_LETTER)
_FIELDS = (_OWNER, _OWNER, _OWNER, _CATEGORY, *[_SERIAL] * 6, _CHECK)


def _agrees(code: str) -> bool:
    return check_digit(code[:10]) == int(code[10])


def _read_fields(text: str) -> tuple[str, list[Correction]] | Rejected:
    """Each character checked against its position; wrong-kind confusables mapped. No check digit yet."""
    chars: list[str] = []
    corrections: list[Correction] = []
    for i, (ch, field) in enumerate(zip(text, _FIELDS, strict=True)):
        if ch in field.allowed:
            chars.append(ch)
        elif ch in field.forced:
            corrections.append(Correction(i + 1, ch, field.forced[ch]))
            chars.append(field.forced[ch])
        else:
            return Rejected(f"position {i + 1}: {field.name}, read {ch!r}", text)
    return "".join(chars), corrections


def validate(raw: str) -> ContainerCode | Rejected:
    """The container code in ``raw`` if it is right, else why it is not (see the module's rules)."""
    text = normalise(raw)
    if len(text) != 11:
        return Rejected(f"length {len(text)}, need 11", text)
    fields = _read_fields(text)
    if isinstance(fields, Rejected):
        return fields
    code, corrections = fields
    if len(corrections) > 1:
        where = ", ".join(f"{c.position} ({c.read!r})" for c in corrections)
        return Rejected(f"positions {where}: more than one correction, the check digit confirms one", text)
    computed, read = check_digit(code[:10]), int(code[10])
    if not corrections:
        if computed != read:
            return Rejected(f"check digit: read {read}, computed {computed}", text)
        return ContainerCode(code)
    fix = corrections[0]
    if computed != read:
        return Rejected(
            f"check digit: read {read}, computed {computed} (with position {fix.position} "
            f"{fix.read!r} read as {fix.corrected!r})",
            text,
        )
    i = fix.position - 1
    rivals = [
        alt for alt in _FIELDS[i].allowed if alt != fix.corrected and _agrees(code[:i] + alt + code[i + 1 :])
    ]
    if rivals:
        return Rejected(
            f"position {fix.position}: read {fix.read!r}, the check digit agrees with {fix.corrected!r} "
            f"and also with {', '.join(map(repr, rivals))}",
            text,
        )
    return ContainerCode(code, fix)


SIZE_LENGTH = "1234ABCDEFGHKLMNP"
"""Size/type code, first character: the length code (ISO 6346:1995)."""
SIZE_HEIGHT = "0245689CDEFLMNP"
"""Size/type code, second character: the height and width code."""
TYPE_GROUPS = "GVBSRHUPTAK"
"""Size/type code, third character: the type group letter; the fourth is a digit (the type detail)."""


def validate_size_type(raw: str) -> str | None:
    """The 4-character size/type code in ``raw`` (``45G1``), or ``None`` when it is not one.

    With no check digit to confirm a correction, only a confusable letter in the last position (a digit)
    is corrected (``45GI`` -> ``45G1``). A digit in the group position is not: ``6`` for ``G`` is the
    commonest misread there and not one of the unambiguous pairs. The first two positions hold both
    letters and digits, so nothing read there is impossible and nothing is corrected. Letters in the
    fourth position (reduced-strength codes of later amendments) are not accepted.
    """
    text = normalise(raw)
    if len(text) != 4:
        return None
    code = text[:3] + DIGIT_FOR_LETTER.get(text[3], text[3])
    fits = zip(code, (SIZE_LENGTH, SIZE_HEIGHT, TYPE_GROUPS, string.digits), strict=True)
    return code if all(ch in allowed for ch, allowed in fits) else None


@dataclass(frozen=True, slots=True)
class ContainerVote:
    """The passage's container code, voted across the frames of the container camera.

    ``code`` is ``None`` (unread) unless one valid code was read by more counted frames than any other:
    never a guess. ``frames`` were read; ``rejected`` of them did not count (check digit not verified, or
    below the confidence floor); ``agreeing`` of the counted ones read ``code`` (0 when unread, so
    ``frames - rejected > 0`` with ``agreeing == 0`` is a tie between codes). ``confidence`` is the mean of
    the agreeing reads' confidences; ``best`` is the most confident of them (its crop is the evidence).
    """

    code: str | None
    confidence: float | None
    frames: int
    agreeing: int
    rejected: int
    best: ContainerRead | None = None

    def to_payload(self) -> dict[str, Any]:
        """The ``container_vote`` object of the passage message."""
        return {"frames": self.frames, "agreeing": self.agreeing, "rejected": self.rejected}


def vote(reads: Iterable[ContainerRead], min_confidence: float) -> ContainerVote:
    """The passage's container code from its frames' ``reads``.

    A read counts when ``check_ok``, its ``code`` is a valid ISO 6346 code (checked again here) and its
    confidence is at least ``min_confidence``. The code counted most often wins; a tie is unread.
    """
    frames = list(reads)
    counted = [r for r in frames if r.check_ok and r.confidence >= min_confidence and container_valid(r.code)]
    rejected = len(frames) - len(counted)
    ranking = Counter(r.code for r in counted).most_common(2)
    if not ranking or (len(ranking) == 2 and ranking[0][1] == ranking[1][1]):
        return ContainerVote(None, None, len(frames), 0, rejected)
    code, agreeing = ranking[0]
    agree = [r for r in counted if r.code == code]
    mean = sum(r.confidence for r in agree) / agreeing
    best = max(agree, key=lambda r: r.confidence)
    return ContainerVote(code, round(mean, 4), len(frames), agreeing, rejected, best)
