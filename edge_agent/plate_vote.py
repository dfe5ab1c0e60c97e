"""One plate per passage, voted across the plate camera's frames.

Reading one "best" frame loses plates: per-character confidence saturates on motion blur, so a single
confident read is often a confident misread. Consensus wins instead: each accepted read (text, at or
above ``min_confidence``) supports every candidate text within one character of it (one substitution,
insertion or deletion), and the candidate with the most support is the plate. Ties go to the candidate
read exactly most often, then to the higher mean confidence of its exact reads.

The voted confidence is the mean confidence of the reads of exactly the voted text: agreement picks
the text, it does not inflate how sure any frame was. No accepted read means no plate (``text`` is
``None``): below the floor the passage is unread, never a guess.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from edge_agent.domain import PlateRead, PlateVote


def within_one(a: str, b: str) -> bool:
    """Whether ``a`` and ``b`` differ by at most one substitution, insertion or deletion."""
    if a == b:
        return True
    if abs(len(a) - len(b)) > 1:
        return False
    if len(a) == len(b):
        return sum(x != y for x, y in zip(a, b, strict=True)) == 1
    short, long = (a, b) if len(a) < len(b) else (b, a)
    i = next((k for k, (x, y) in enumerate(zip(short, long, strict=False)) if x != y), len(short))
    return short[i:] == long[i + 1 :]


def vote(reads: Iterable[PlateRead], min_confidence: float) -> PlateVote:
    """The passage's plate from its frames' ``reads`` (empty-text reads are frames with nothing legible)."""
    frames = list(reads)
    accepted = [r for r in frames if r.text and r.confidence >= min_confidence]
    rejected = len(frames) - len(accepted)
    if not accepted:
        return PlateVote(None, None, len(frames), 0, rejected, 0)

    def score(text: str) -> tuple[int, int, float]:
        exact = [r.confidence for r in accepted if r.text == text]
        support = sum(1 for r in accepted if within_one(r.text, text))
        return support, len(exact), sum(exact) / len(exact)

    candidates = sorted({r.text for r in accepted})  # sorted: the same reads always give the same vote
    winner = max(candidates, key=score)
    support, _, mean = score(winner)
    best = max((r for r in accepted if r.text == winner), key=lambda r: r.confidence)
    return PlateVote(winner, round(mean, 4), len(frames), len(accepted), rejected, support, best)


def vote_payload(vote_: PlateVote | None) -> dict[str, Any] | None:
    """The ``plate_vote`` object of the passage message (``None`` when no vote was taken)."""
    if vote_ is None:
        return None
    return {
        "frames": vote_.frames,
        "accepted": vote_.accepted,
        "rejected": vote_.rejected,
        "agreed": vote_.agreed,
    }
