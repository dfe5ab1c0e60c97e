"""What a UHF tag means in the lane: classification by EPC pattern, cross-read rejection, aggregation.

Pure functions, no I/O. The RFID source drops reads of a length their kind never has
(:func:`length_problem`); the passage tracker calls :func:`is_cross_read` on every read, then
:func:`classify` and :func:`summarise` to fold repeated reads of one tag into one
:class:`~edge_agent.domain.TagSummary` per passage.
"""

from __future__ import annotations

from dataclasses import replace

from edge_agent.config.rfid import CrossReadRule, TagLengths, TagPatterns
from edge_agent.domain import TagKind, TagRead, TagSummary


def matches(epc: str, pattern: str) -> bool:
    """Return True when ``epc`` starts with ``pattern`` (``?`` matches any one hex digit)."""
    if len(pattern) > len(epc):
        return False
    return all(p in ("?", e) for p, e in zip(pattern, epc.upper(), strict=False))


def classify(epc: str, patterns: TagPatterns) -> TagKind:
    """Return the kind of tag ``epc`` is; the longest matching pattern wins, ties in declaration order."""
    best: tuple[int, TagKind] | None = None
    for kind, group in (
        (TagKind.FAST_CARD, patterns.fast_card),
        (TagKind.CONVEYANCE, patterns.conveyance),
        (TagKind.ESEAL, patterns.eseal),
    ):
        for pattern in group:
            if matches(epc, pattern) and (best is None or len(pattern) > best[0]):
                best = (len(pattern), kind)
    return best[1] if best is not None else TagKind.UNKNOWN


def allowed_bits(kind: TagKind, lengths: TagLengths) -> tuple[int, ...]:
    """The EPC lengths (bits) a tag of ``kind`` may have."""
    return {
        TagKind.FAST_CARD: lengths.fast_card,
        TagKind.CONVEYANCE: lengths.conveyance,
        TagKind.ESEAL: lengths.eseal,
    }.get(kind, lengths.unknown)


def length_problem(epc: str, patterns: TagPatterns) -> str | None:
    """Why ``epc`` cannot be a tag of the kind its pattern says (a length that kind never has), or None."""
    kind = classify(epc, patterns)
    bits = len(epc) * 4
    allowed = allowed_bits(kind, patterns.epc_bits)
    if bits in allowed:
        return None
    sizes = f"{min(allowed)} to {max(allowed)}" if len(allowed) > 3 else "/".join(map(str, allowed))
    return f"{kind.value} EPC of {bits} bits; this kind has {sizes} bits"


def seal_id(epc: str) -> str:
    """Return the seal id an e-seal's EPC carries: the EPC hex itself (layouts are not public)."""
    return epc.upper()


def is_cross_read(read: TagRead, rule: CrossReadRule) -> bool:
    """Return True when ``read`` must come from the adjacent lane (too weak, or an adjacent antenna)."""
    return read.rssi_dbm < rule.min_rssi_dbm or read.antenna in rule.adjacent_antennas


def summarise(summary: TagSummary | None, read: TagRead, kind: TagKind) -> TagSummary:
    """Fold ``read`` into ``summary`` (``None`` for the first read); returns a new summary.

    Reads may arrive out of order: first/last seen are the min/max of the reads' times.
    """
    if summary is None:
        return TagSummary(
            epc=read.epc,
            kind=kind,
            first_mono=read.mono,
            last_mono=read.mono,
            count=1,
            peak_rssi_dbm=read.rssi_dbm,
            antennas=frozenset({read.antenna}),
            seal_id=seal_id(read.epc) if kind is TagKind.ESEAL else None,
        )
    if summary.epc != read.epc:
        raise ValueError(f"read of {read.epc} folded into the summary of {summary.epc}")
    return replace(
        summary,
        first_mono=min(summary.first_mono, read.mono),
        last_mono=max(summary.last_mono, read.mono),
        count=summary.count + 1,
        peak_rssi_dbm=max(summary.peak_rssi_dbm, read.rssi_dbm),
        antennas=summary.antennas | {read.antenna},
    )
