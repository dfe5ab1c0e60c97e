"""Release or refer: a pure function of a passage, the reference data and the policy.

A release needs every one of: a pre-arrival record that central marked releasable, a trusted carrier,
a matching conveyance (transponder and/or plate, by policy), a matching driver FAST card, matching cargo
(container code and e-seals, or declared empty) and a WIM gross within tolerance of the declared gross,
at an allowed speed, with no tracker flag. Anything else refers, listing *every* failing reason.
"""

from __future__ import annotations

from datetime import date

from edge_agent.config.lane import GeometryConfig, PolicyConfig
from edge_agent.domain import DecidedPassage, Decision, Passage, Reason, TagKind, Verdict
from edge_agent.reference import PreArrival, ReferenceView


def _single(passage: Passage, kind: TagKind, reasons: list[Reason]) -> str | None:
    tags = passage.tags_of(kind)
    if len(tags) > 1:
        reasons.append(Reason.AMBIGUOUS_READS)
        return None
    return tags[0].epc if tags else None


def _choose(
    candidates: list[PreArrival], transponder: str | None, plate: str | None, fast_card: str | None
) -> PreArrival | None:
    def score(r: PreArrival) -> tuple[int, int, int]:
        return (
            int(r.transponder == transponder),
            int(r.plate == plate),
            int(r.driver_fast_card == fast_card),
        )

    return max(candidates, key=score, default=None)


def _conveyance(
    policy: PolicyConfig,
    record: PreArrival,
    transponder: str | None,
    plate: str | None,
    reasons: list[Reason],
) -> None:
    t_ok = transponder is not None and transponder == record.transponder
    p_ok = plate is not None and plate == record.plate
    if transponder is not None and not t_ok:
        reasons.append(Reason.CONVEYANCE_MISMATCH)
    if plate is not None and not p_ok:
        reasons.append(Reason.PLATE_MISMATCH)
    need_t = policy.conveyance in ("both", "transponder")
    need_p = policy.conveyance in ("both", "plate")
    if need_t and transponder is None:
        reasons.append(Reason.CONVEYANCE_MISSING)
    if need_p and plate is None:
        reasons.append(Reason.PLATE_UNREAD)
    if policy.conveyance == "either" and not (t_ok or p_ok) and transponder is None and plate is None:
        reasons.append(Reason.CONVEYANCE_MISSING)


def _cargo(policy: PolicyConfig, record: PreArrival, passage: Passage, reasons: list[Reason]) -> None:
    read = passage.best_container
    seals = {t.seal_id or t.epc for t in passage.tags_of(TagKind.ESEAL)}
    if record.container is None:  # declared empty
        if read is not None and read.check_ok:
            reasons.append(Reason.CONTAINER_MISMATCH)
        if seals:
            reasons.append(Reason.SEAL_MISMATCH)
        return
    if read is None:
        reasons.append(Reason.CONTAINER_UNREAD)
    elif not read.check_ok:
        reasons.append(Reason.CONTAINER_CHECK_DIGIT)
    elif read.code != record.container:
        reasons.append(Reason.CONTAINER_MISMATCH)
    if policy.require_seal:
        declared = set(record.seals)
        if not seals:
            reasons.append(Reason.SEAL_MISSING)
        elif seals != declared:
            reasons.append(Reason.SEAL_MISMATCH)


def _weight(policy: PolicyConfig, record: PreArrival, passage: Passage, reasons: list[Reason]) -> None:
    wim = passage.wim
    if wim is None:
        reasons.append(Reason.WEIGHT_MISSING)
        return
    if wim.flags:
        reasons.append(Reason.WIM_FAULT)
    band = max(record.declared_gross_kg * policy.weight_tolerance_pct / 100.0, policy.weight_tolerance_kg)
    if abs(wim.gross_kg - record.declared_gross_kg) > band:
        reasons.append(Reason.WEIGHT_MISMATCH)


def decide(
    passage: Passage, view: ReferenceView, policy: PolicyConfig, geometry: GeometryConfig, today: date
) -> DecidedPassage:
    """Decide one passage. Pure: the same inputs always give the same decided passage."""
    return DecidedPassage(passage, _decision(passage, view, policy, geometry, today))


def _decision(
    passage: Passage, view: ReferenceView, policy: PolicyConfig, geometry: GeometryConfig, today: date
) -> Decision:
    reasons: list[Reason] = sorted(passage.flags)
    transponder = _single(passage, TagKind.CONVEYANCE, reasons)
    fast_card = _single(passage, TagKind.FAST_CARD, reasons)
    plate_read = passage.best_plate
    plate = plate_read.text if plate_read and plate_read.confidence >= policy.min_plate_confidence else None
    if (
        passage.speed_kmh is not None
        and not geometry.min_speed_kmh <= passage.speed_kmh <= geometry.max_speed_kmh
    ):
        reasons.append(Reason.SPEED_OUT_OF_RANGE)

    record = _choose(
        view.candidates(transponder=transponder, plate=plate, fast_card=fast_card),
        transponder,
        plate,
        fast_card,
    )
    if record is None:
        reasons.append(Reason.NO_PREARRIVAL)
        if passage.wim is None:
            reasons.append(Reason.WEIGHT_MISSING)
        return Decision.refer(*reasons)

    if not record.releasable:
        reasons.append(Reason.NOT_RELEASABLE)
    if not view.trusted(record.carrier_id, policy.accepted_programs, today):
        reasons.append(Reason.CARRIER_NOT_TRUSTED)
    _conveyance(policy, record, transponder, plate, reasons)
    if fast_card is None:
        if policy.require_driver:
            reasons.append(Reason.DRIVER_MISSING)
    elif fast_card != record.driver_fast_card:
        reasons.append(Reason.DRIVER_MISMATCH)
    _cargo(policy, record, passage, reasons)
    _weight(policy, record, passage, reasons)
    if reasons:
        return Decision.refer(*reasons, matched_record=record.record_id)
    return Decision(Verdict.RELEASE, (), record.record_id)
