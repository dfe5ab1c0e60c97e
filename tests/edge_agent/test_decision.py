"""Decision units: each rule alone, stated from what the truck is, not from the code."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime

import pytest

from edge_agent.config.lane import GeometryConfig, PolicyConfig
from edge_agent.decision import decide
from edge_agent.domain import (
    ContainerRead,
    Passage,
    PlateRead,
    Reason,
    TagKind,
    TagSummary,
    Verdict,
    WimRecord,
)
from edge_agent.reference import PreArrival, ReferenceView, TrustedTrader

TRANSPONDER = "30" + "A" * 22
CARD = "35" + "B" * 22
SEAL = "3A" + "C" * 22
TODAY = date(2026, 11, 28)


def record(**over: object) -> PreArrival:
    base: dict[str, object] = dict(
        record_id="PA-1",
        carrier_id="CARR1",
        transponder=TRANSPONDER,
        plate="ABC1234",
        driver_fast_card=CARD,
        container="CSQU3054383",
        seals=(SEAL,),
        declared_gross_kg=30000.0,
        releasable=True,
    )
    base.update(over)
    return PreArrival.model_validate(base)


def view(*records: PreArrival, traders: tuple[TrustedTrader, ...] | None = None) -> ReferenceView:
    if traders is None:
        traders = (TrustedTrader(carrier_id="CARR1", program="FAST"),)
    return ReferenceView.build(1, list(records), list(traders))


def tag(epc: str, kind: TagKind) -> TagSummary:
    return TagSummary(epc, kind, 1.0, 2.0, 3, -50.0, frozenset({1}))


def passage(
    *,
    transponder: str | None = TRANSPONDER,
    card: str | None = CARD,
    seals: tuple[str, ...] = (SEAL,),
    plate: str | None = "ABC1234",
    container: str | None = "CSQU3054383",
    gross: float | None = 30100.0,
    speed: float = 10.0,
) -> Passage:
    from edge_agent.codes import container_valid

    tags = [tag(transponder, TagKind.CONVEYANCE)] if transponder else []
    tags += [tag(card, TagKind.FAST_CARD)] if card else []
    tags += [tag(s, TagKind.ESEAL) for s in seals]
    return Passage(
        "p1",
        0.0,
        datetime(2026, 11, 28, tzinfo=UTC),
        tags=tuple(tags),
        plates=(PlateRead(plate, 0.9, "front", 1.0),) if plate else (),
        containers=(ContainerRead(container, container_valid(container), 0.9, "box", 1.5),)
        if container
        else (),
        wim=None if gross is None else WimRecord(1, speed, (gross / 2, gross / 2), (0.0, 6.0), gross, 0, 2.0),
        speed_kmh=speed,
    )


def run(p: Passage, v: ReferenceView, **policy: object) -> tuple[Verdict, set[Reason]]:
    d = decide(p, v, PolicyConfig.model_validate(policy), GeometryConfig(), TODAY).decision
    return d.verdict, set(d.reasons)


def test_clean_declared_trusted_truck_is_released() -> None:
    verdict, reasons = run(passage(), view(record()))
    assert verdict is Verdict.RELEASE and not reasons


def test_declared_empty_truck_without_container_or_seal_is_released() -> None:
    verdict, _ = run(passage(container=None, seals=()), view(record(container=None, seals=())))
    assert verdict is Verdict.RELEASE


def test_unknown_truck_refers_no_prearrival() -> None:
    verdict, reasons = run(passage(), view())
    assert verdict is Verdict.REFER and Reason.NO_PREARRIVAL in reasons


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (dict(seals=("3A" + "D" * 22,)), Reason.SEAL_MISMATCH),
        (dict(seals=()), Reason.SEAL_MISSING),
        (dict(gross=36000.0), Reason.WEIGHT_MISMATCH),
        (dict(gross=None), Reason.WEIGHT_MISSING),
        (dict(plate=None), Reason.PLATE_UNREAD),
        (dict(plate="ZZZ999"), Reason.PLATE_MISMATCH),
        (dict(card=None), Reason.DRIVER_MISSING),
        (dict(card="35" + "E" * 22), Reason.DRIVER_MISMATCH),
        (dict(transponder=None), Reason.CONVEYANCE_MISSING),
        (dict(container=None), Reason.CONTAINER_UNREAD),
        (dict(container="CSQU3054384"), Reason.CONTAINER_CHECK_DIGIT),
        (dict(container="MWCU6059784"), Reason.CONTAINER_MISMATCH),
        (dict(speed=25.0), Reason.SPEED_OUT_OF_RANGE),
    ],
)
def test_each_failing_check_refers_with_its_reason(change: dict[str, object], reason: Reason) -> None:
    verdict, reasons = run(passage(**change), view(record()))  # type: ignore[arg-type]
    assert verdict is Verdict.REFER
    assert reason in reasons


def test_every_failing_reason_is_listed() -> None:
    _, reasons = run(passage(seals=(), gross=40000.0, card=None), view(record()))
    assert {Reason.SEAL_MISSING, Reason.WEIGHT_MISMATCH, Reason.DRIVER_MISSING} <= reasons


def test_weight_within_tolerance_is_accepted_and_floor_applies() -> None:
    assert run(passage(gross=31400.0), view(record()))[0] is Verdict.RELEASE  # +4.7 %
    assert (
        run(passage(gross=1400.0), view(record(declared_gross_kg=1000.0)))[0] is Verdict.RELEASE
    )  # 500 kg floor


def test_not_releasable_record_refers() -> None:
    assert Reason.NOT_RELEASABLE in run(passage(), view(record(releasable=False)))[1]


def test_carrier_must_be_trusted_in_an_accepted_programme_and_current() -> None:
    expired = (TrustedTrader(carrier_id="CARR1", program="FAST", valid_until=date(2026, 1, 1)),)
    assert Reason.CARRIER_NOT_TRUSTED in run(passage(), view(record(), traders=expired))[1]
    assert Reason.CARRIER_NOT_TRUSTED in run(passage(), view(record(), traders=()))[1]
    other = (TrustedTrader(carrier_id="CARR1", program="AEO"),)
    assert Reason.CARRIER_NOT_TRUSTED in run(passage(), view(record(), traders=other))[1]
    assert run(passage(), view(record(), traders=other), accepted_programs=("AEO",))[0] is Verdict.RELEASE


def test_conveyance_policy_transponder_only_accepts_an_unread_plate() -> None:
    assert run(passage(plate=None), view(record()), conveyance="transponder")[0] is Verdict.RELEASE
    # a plate that is read must still agree
    assert Reason.PLATE_MISMATCH in run(passage(plate="ZZZ9"), view(record()), conveyance="transponder")[1]


def test_two_transponders_in_one_passage_are_ambiguous() -> None:
    p = passage()
    other = "30" + "F" * 22
    p = replace(p, tags=(*p.tags, tag(other, TagKind.CONVEYANCE)))
    assert Reason.AMBIGUOUS_READS in run(p, view(record()))[1]


def test_tracker_flags_always_refer() -> None:
    p = replace(passage(), flags=frozenset({Reason.TAILGATING}))
    verdict, reasons = run(p, view(record()))
    assert verdict is Verdict.REFER and reasons == {Reason.TAILGATING}


def test_low_confidence_plate_is_ignored() -> None:
    p = replace(passage(), plates=(PlateRead("ABC1234", 0.3, "front", 1.0),))
    assert Reason.PLATE_UNREAD in run(p, view(record()))[1]
