"""Physically impossible reads are bad data: the pure rules, then both backends on a real pty."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from drivers.rfid import r2000
from drivers.rfid.gen2 import RSSI_MAX_DBM, RSSI_MIN_DBM, read_problem
from drivers.rfid.reader import TagSeen
from hw_sim.world import FieldTag
from tests.drivers.rfid.support import run, until
from tests.drivers.rfid.test_reader import CAR, lane

GOOD = "3A00000000000000000000AB"


@pytest.mark.parametrize(
    ("epc", "antenna", "rssi", "problem"),
    [
        (GOOD, 1, 0xFF - 129, "above 0 dBm"),  # the R2000 RSSI byte 0xFF
        (GOOD, 1, 0x00 - 129, "below -100 dBm"),  # the R2000 RSSI byte 0x00
        (GOOD, 1, float("nan"), "not a number"),
        (GOOD, 3, -50.0, "antenna 3 is not one of the reader's ports in use (1, 2)"),
        ("3A0000", 1, -50.0, "not whole 16-bit words"),
        ("3A" + "0" * 126, 1, -50.0, "longer than Gen2's 496"),
    ],
)
def test_impossible_reads_say_why(epc: str, antenna: int, rssi: float, problem: str) -> None:
    found = read_problem(epc, antenna, rssi, antennas=(1, 2))
    assert found is not None and problem in found


@given(
    st.integers(1, 31).flatmap(lambda w: st.binary(min_size=2 * w, max_size=2 * w)),
    st.integers(1, 4),
    st.floats(RSSI_MIN_DBM, RSSI_MAX_DBM),
)
def test_every_possible_read_passes(epc: bytes, antenna: int, rssi: float) -> None:
    assert read_problem(epc.hex().upper(), antenna, rssi, antennas=(1, 2, 3, 4)) is None
    assert read_problem(epc.hex().upper(), None, None) is None  # a reader that does not say is not judged


def _report(antenna: int, epc_hex: str, rssi_byte: int) -> bytes:
    epc = bytes.fromhex(epc_hex)
    data = bytes((antenna - 1,)) + r2000.pc_for(epc).to_bytes(2, "big") + epc + bytes((rssi_byte,))
    return r2000.encode_frame(0x01, r2000.Cmd.REAL_TIME_INVENTORY, data)


def test_r2000_impossible_reports_are_counted_not_heard(tmp_path: Path) -> None:
    async def main() -> None:
        async with lane(tmp_path) as (sim, h):  # inventories antenna 1 only
            sim.set_tags([FieldTag(CAR, 1, -50.0)])
            await until(lambda: bool(h.of(TagSeen)), what="a genuine read")
            sim.inject_junk(_report(1, GOOD, 0xFF))  # +126 dBm
            sim.inject_junk(_report(1, GOOD, 0x00))  # -129 dBm
            sim.inject_junk(_report(3, GOOD, 0x50))  # an antenna that is not being inventoried
            await until(lambda: h.reader.stats["bad_reads"] == 3, what="three bad reads")
            assert {e.epc for e in h.of(TagSeen)} == {CAR}
            assert h.reader.stats["reads"] == len(h.of(TagSeen))

    run(main())


def test_ascii_impossible_lines_are_counted_not_heard(tmp_path: Path) -> None:
    async def main() -> None:
        async with lane(tmp_path, protocol="ascii", ports=(1, 2)) as (sim, h):
            await until(lambda: h.reader.up, what="the line open")
            sim.inject_junk(
                f"{GOOD},1,5\n"  # +5 dBm
                f"{GOOD},4,-50\n"  # a port this reader does not have
                "3A00000000000000000000AB00,1,-50\n"  # 13 bytes: not whole words
                f"{CAR},2,-61.5\n".encode()
            )
            await until(lambda: bool(h.of(TagSeen)), what="the genuine line")
            assert h.of(TagSeen) == [TagSeen(CAR, 2, -61.5)]
            assert h.reader.stats["bad_reads"] == 3

    run(main())
