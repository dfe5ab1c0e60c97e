"""Seeded truck scenarios with ground truth stated from intent.

Each truck is generated *as* a case ("clean and declared", "wrong seal", "overweight", ...), and its
expected decision and reasons follow from that case alone: this module never calls the agent's decision
code. The policy assumed by the cases is stated in :data:`ASSUMED_POLICY`; the demo configures the agent
with exactly that policy.
"""

from __future__ import annotations

import random
import string
from dataclasses import dataclass, field
from enum import StrEnum

from hw_sim.world import AxleLoad

ASSUMED_POLICY = {
    "conveyance": "both",  # transponder and plate must both match
    "require_driver": True,
    "require_seal": True,
    "weight_tolerance_pct": 5.0,
    "min_gap_m": 6.0,
}
"""The decision policy the cases' expectations are written against."""


class Case(StrEnum):
    """What kind of truck this is, and so what must happen to it."""

    CLEAN = "clean"  # declared, trusted, everything matches -> release
    CLEAN_EMPTY = "clean_empty"  # declared empty (no container), trusted -> release
    UNKNOWN = "unknown"  # no pre-arrival record -> refer
    WRONG_SEAL = "wrong_seal"  # container carries another seal -> refer
    OVERWEIGHT = "overweight"  # 25 % above declared gross -> refer
    TAILGATER = "tailgater"  # follows its leader 1.5-3 m behind -> refer
    UNREADABLE_PLATE = "unreadable_plate"  # plate illegible; policy needs the plate -> refer
    NO_FAST_CARD = "no_fast_card"  # driver carries no FAST card -> refer
    NOT_TRUSTED = "not_trusted"  # carrier not in any accepted programme -> refer
    HELD = "held"  # central marked the record not releasable -> refer


EXPECTED_REASONS: dict[Case, frozenset[str]] = {
    Case.CLEAN: frozenset(),
    Case.CLEAN_EMPTY: frozenset(),
    Case.UNKNOWN: frozenset({"no_prearrival"}),
    Case.WRONG_SEAL: frozenset({"seal_mismatch"}),
    Case.OVERWEIGHT: frozenset({"weight_mismatch"}),
    Case.TAILGATER: frozenset({"tailgating"}),
    Case.UNREADABLE_PLATE: frozenset({"plate_unread"}),
    Case.NO_FAST_CARD: frozenset({"driver_missing"}),
    Case.NOT_TRUSTED: frozenset({"carrier_not_trusted"}),
    Case.HELD: frozenset({"not_releasable"}),
}
"""Reasons each case must at least produce (a referral may list more)."""

_MIX: tuple[tuple[Case, float], ...] = (
    (Case.CLEAN, 0.40),
    (Case.CLEAN_EMPTY, 0.08),
    (Case.UNKNOWN, 0.08),
    (Case.WRONG_SEAL, 0.08),
    (Case.OVERWEIGHT, 0.08),
    (Case.TAILGATER, 0.08),
    (Case.UNREADABLE_PLATE, 0.06),
    (Case.NO_FAST_CARD, 0.06),
    (Case.NOT_TRUSTED, 0.04),
    (Case.HELD, 0.04),
)

_LETTER_VALUES = {
    c: v
    for c, v in zip(string.ascii_uppercase, [10, *range(12, 22), *range(23, 33), *range(34, 39)], strict=True)
}


def iso6346_check_digit(code10: str) -> int:
    """Check digit of the first ten characters of an ISO 6346 code (independent of the agent's copy)."""
    total = 0
    for i, ch in enumerate(code10):
        value = _LETTER_VALUES[ch] if ch.isalpha() else int(ch)
        total += value * (2**i)
    return total % 11 % 10


@dataclass(frozen=True, slots=True)
class Truck:
    """One truck of a scenario, with everything the world needs and the expected outcome."""

    index: int
    case: Case
    carrier_id: str
    plate: str
    plate_legible: bool
    transponder_epc: str
    fast_card_epc: str | None
    container: str | None
    seal_epcs: tuple[str, ...]
    axles: tuple[AxleLoad, ...]
    length_m: float
    speed_kmh: float
    enter_s: float  # scenario time the front reaches the entry loop
    record_id: str | None  # pre-arrival record id, if one was filed

    @property
    def expected(self) -> str:
        """``release`` or ``refer``, from the case alone."""
        return "release" if self.case in (Case.CLEAN, Case.CLEAN_EMPTY) else "refer"

    @property
    def expected_reasons(self) -> frozenset[str]:
        """Reasons the referral must include."""
        return EXPECTED_REASONS[self.case]

    @property
    def gross_kg(self) -> float:
        """Actual gross weight."""
        return sum(a.weight_kg for a in self.axles)

    @property
    def speed_ms(self) -> float:
        """Speed in metres per second."""
        return self.speed_kmh / 3.6


@dataclass(frozen=True, slots=True)
class AdjacentRead:
    """A tag in the adjacent lane that the reader will also hear (must be ignored)."""

    at_s: float
    epc: str
    antenna: int
    rssi_dbm: float
    duration_s: float


@dataclass(slots=True)
class Scenario:
    """A seeded list of trucks plus the reference data central pushes before they arrive."""

    seed: int
    trucks: list[Truck]
    prearrivals: list[dict[str, object]] = field(default_factory=list)
    trusted_traders: list[dict[str, object]] = field(default_factory=list)
    adjacent: list[AdjacentRead] = field(default_factory=list)

    @property
    def duration_s(self) -> float:
        """Scenario time until the last truck has left a 60 m stretch."""
        if not self.trucks:
            return 0.0
        return max(t.enter_s + (60.0 + t.length_m) / t.speed_ms for t in self.trucks)

    def reference_snapshot(self, version: int = 1) -> dict[str, object]:
        """The reference-data snapshot body central sends (see the command contract)."""
        return {"version": version, "prearrivals": self.prearrivals, "trusted_traders": self.trusted_traders}


def _epc(rng: random.Random, prefix: str) -> str:
    return prefix + "".join(rng.choice("0123456789ABCDEF") for _ in range(24 - len(prefix)))


def _plate(rng: random.Random) -> str:
    letters = "ABCDEFGHJKLMNPRSTUVWXYZ"
    shape = rng.choice(["LLLDDDD", "DLLLDDD", "LLDDDDD", "DDDDLL", "LLLDDD"])
    return "".join(rng.choice(letters) if c == "L" else rng.choice("0123456789") for c in shape)


def _container(rng: random.Random) -> str:
    owner = "".join(rng.choice(string.ascii_uppercase) for _ in range(3)) + "U"
    serial = "".join(rng.choice("0123456789") for _ in range(6))
    return owner + serial + str(iso6346_check_digit(owner + serial))


def _axles(rng: random.Random, loaded: bool) -> tuple[AxleLoad, ...]:
    steer = rng.uniform(5200, 6000)
    per = rng.uniform(6500, 8000) if loaded else rng.uniform(2600, 3400)
    drive = [rng.uniform(0.9, 1.1) * per for _ in range(2)]
    trailer = [rng.uniform(0.9, 1.1) * per for _ in range(2)]
    spacings = [0.0, rng.uniform(5.5, 6.2), 1.3, rng.uniform(9.5, 11.5), 1.25]
    weights = [steer, *drive, *trailer]
    return tuple(AxleLoad(round(w, 0), round(s, 2)) for w, s in zip(weights, spacings, strict=True))


def generate(trucks: int = 30, seed: int = 1, lane_length_m: float = 40.0) -> Scenario:
    """Make ``trucks`` trucks with a fixed case mix (tailgaters come as the follower of a pair)."""
    rng = random.Random(seed)
    cases = [rng.choices([c for c, _ in _MIX], weights=[w for _, w in _MIX])[0] for _ in range(trucks)]
    if trucks and cases[0] is Case.TAILGATER:
        cases[0] = Case.CLEAN  # the first truck has no leader to tailgate
    scenario = Scenario(seed=seed, trucks=[])
    leader_tail_clear: tuple[float, float, float] | None = None  # (enter_s, length, speed) of previous truck
    for i, case in enumerate(cases):
        carrier = f"CARR{rng.randrange(10_000):04d}"
        loaded = case is Case.WRONG_SEAL or (case is not Case.CLEAN_EMPTY and rng.random() > 0.05)
        container = _container(rng) if loaded else None
        seals = (_epc(rng, "3A"),) if container else ()
        axles = _axles(rng, loaded)
        declared = sum(a.weight_kg for a in axles)
        if case is Case.OVERWEIGHT:
            axles = tuple(AxleLoad(round(a.weight_kg * 1.25, 0), a.spacing_m) for a in axles)
        length = round(rng.uniform(16.0, 22.0), 1)
        speed = round(rng.uniform(5.0, 15.0), 1)
        if case is Case.TAILGATER and leader_tail_clear is not None:
            speed = leader_tail_clear[2]  # keeps its short gap all the way through
            gap = rng.uniform(1.5, 3.0)
        else:
            gap = rng.uniform(8.0, 20.0)
        enter = 2.0
        if leader_tail_clear is not None:
            l_enter, l_len, l_speed = leader_tail_clear
            v_l, v_f = l_speed / 3.6, speed / 3.6
            x_end = lane_length_m + 2.0
            enter = max(l_enter + (x + l_len) / v_l + gap / v_f - x / v_f for x in (0.0, x_end))
        truck = Truck(
            index=i,
            case=case,
            carrier_id=carrier,
            plate=_plate(rng),
            plate_legible=case is not Case.UNREADABLE_PLATE,
            transponder_epc=_epc(rng, "30"),
            fast_card_epc=None if case is Case.NO_FAST_CARD else _epc(rng, "35"),
            container=container,
            seal_epcs=seals,
            axles=axles,
            length_m=length,
            speed_kmh=speed,
            enter_s=round(enter, 3),
            record_id=None if case is Case.UNKNOWN else f"PA-{seed}-{i:05d}",
        )
        if case is Case.WRONG_SEAL and truck.container:
            declared_seals: tuple[str, ...] = (
                _epc(rng, "3A"),
            )  # the declared seal is not the one on the box
        else:
            declared_seals = truck.seal_epcs
        if truck.record_id is not None:
            scenario.prearrivals.append(
                {
                    "record_id": truck.record_id,
                    "carrier_id": carrier,
                    "transponder": truck.transponder_epc,
                    "plate": truck.plate,
                    "driver_fast_card": truck.fast_card_epc or _epc(rng, "35"),
                    "container": truck.container,
                    "seals": list(declared_seals),
                    "declared_gross_kg": round(declared, 0),
                    "releasable": case is not Case.HELD,
                }
            )
        if case is not Case.NOT_TRUSTED:
            program = rng.choice(["FAST", "FAST", "PIP", "CTPAT"])
            scenario.trusted_traders.append({"carrier_id": carrier, "program": program, "valid_until": None})
        scenario.trucks.append(truck)
        leader_tail_clear = (truck.enter_s, truck.length_m, truck.speed_kmh)
    end = scenario.duration_s
    for _ in range(max(1, trucks // 5)):
        scenario.adjacent.append(
            AdjacentRead(
                at_s=rng.uniform(0, end),
                epc=_epc(rng, rng.choice(["30", "35", "3A"])),
                antenna=1,
                rssi_dbm=rng.uniform(-82.0, -72.0),
                duration_s=rng.uniform(1.0, 4.0),
            )
        )
    return scenario
