"""RfidSource: lane events and health from the reader on a real pty."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from pydantic import TypeAdapter, ValidationError

from edge_agent.config.rfid import AsciiRfidConfig, R2000RfidConfig, RfidConfig
from edge_agent.domain import DeviceFault, LaneEvent, TagRead
from edge_agent.health import DeviceState
from edge_agent.rfid import COUNTERS, RfidSource, reader_settings
from hw_sim.rfid import SimulatedRfidReader
from hw_sim.world import FieldTag
from tests.clocks import ManualClock
from tests.drivers.rfid.support import run, until

CAR = "300833B2DDD9014000000001"


def quick(port: str) -> R2000RfidConfig:
    return R2000RfidConfig(
        port=port, cadence_ms=20, reply_timeout_ms=150, backoff_initial_ms=20, backoff_max_s=0.1
    )


class Running:
    def __init__(self, cfg: RfidConfig) -> None:
        self.clock = ManualClock(500.0)
        self.events: list[LaneEvent] = []
        self.source = RfidSource(cfg, self.clock, name="rfid-lane1")
        self.task: asyncio.Task[None] | None = None

    def faults(self) -> list[tuple[str, bool]]:
        return [(e.kind, e.active) for e in self.events if isinstance(e, DeviceFault)]

    def reads(self) -> list[TagRead]:
        return [e for e in self.events if isinstance(e, TagRead)]


@contextlib.asynccontextmanager
async def running(cfg: RfidConfig) -> AsyncIterator[Running]:
    r = Running(cfg)
    async with r.source:
        r.task = asyncio.create_task(r.source.run(r.events.append))
        yield r
    assert r.task.done()


def test_tag_reads_carry_lane_time_and_health_counts(tmp_path: Path) -> None:
    async def main() -> None:
        async with SimulatedRfidReader(link_path=tmp_path / "rfid") as sim:
            sim.set_tags([FieldTag(CAR, 1, -51.0)])
            async with running(quick(sim.port)) as r:
                assert r.source.health().state is DeviceState.STARTING
                await until(lambda: len(r.reads()) >= 2)
                r.clock.advance(5.0)
                await until(lambda: r.reads()[-1].mono == 505.0)
                assert r.reads()[0] == TagRead(CAR, 1, -51.0, 500.0, reader="rfid-lane1")
                h = r.source.health()
                assert h.state is DeviceState.UP
                assert h.name == "rfid-lane1"
                assert h.kind == "rfid"
                assert set(COUNTERS) <= set(h.counters)
                assert h.counters["reads"] >= 2
                assert h.last_ok_mono == 505.0
                assert not r.faults()
                await r.source.close()  # stops run; a second close at exit is harmless

    run(main())


def test_unplug_is_one_fault_and_replug_clears_it(tmp_path: Path) -> None:
    async def main() -> None:
        async with SimulatedRfidReader(link_path=tmp_path / "rfid") as sim, running(quick(sim.port)) as r:
            await until(lambda: r.source.health().state is DeviceState.UP)
            sim.unplug()
            await until(lambda: r.source.health().counters["reconnects"] >= 3, what="several retries")
            assert r.faults() == [("disconnected", True)]
            assert r.source.health().state is DeviceState.DOWN
            assert "No such file" in r.source.health().detail
            sim.replug()
            await until(lambda: r.source.health().state is DeviceState.UP)
            assert r.faults() == [("disconnected", True), ("disconnected", False)]
            sim.silent = True
            await until(lambda: len(r.faults()) == 3, what="silent")
            assert r.faults()[-1] == ("silent", True)
            sim.silent = False
            await until(lambda: len(r.faults()) == 4)
            assert r.faults()[-1] == ("silent", False)

    run(main())


def test_reader_absent_from_the_start_is_down(tmp_path: Path) -> None:
    async def main() -> None:
        async with running(quick(str(tmp_path / "absent"))) as r:
            await until(lambda: bool(r.faults()))
            assert r.faults() == [("disconnected", True)]
            assert r.source.health().state is DeviceState.DOWN

    run(main())


def test_reader_error_degrades_then_clears(tmp_path: Path) -> None:
    async def main() -> None:
        async with SimulatedRfidReader(link_path=tmp_path / "rfid") as sim, running(quick(sim.port)) as r:
            await until(lambda: r.source.health().state is DeviceState.UP)
            sim.fail_inventory(0x22)
            await until(lambda: r.source.health().state is DeviceState.DEGRADED)
            assert r.faults() == [("reader_error", True)]
            assert "antenna_missing" in r.source.health().detail
            sim.fail_inventory(None)
            await until(lambda: r.source.health().state is DeviceState.UP)
            assert r.faults() == [("reader_error", True), ("reader_error", False)]
            assert r.source.health().counters["reader_errors"] >= 1

    run(main())


def test_ascii_backend_fills_in_missing_antenna_and_rssi(tmp_path: Path) -> None:
    async def main() -> None:
        async with SimulatedRfidReader(protocol="ascii", link_path=tmp_path / "rfid") as sim:
            cfg = AsciiRfidConfig(port=sim.port, default_antenna=3, default_rssi_dbm=-44.0)
            async with running(cfg) as r:
                await until(lambda: r.source.health().state is DeviceState.UP)
                sim.inject_junk(b"aabbccdd00000000000000ee\nnot-a-tag\n")
                await until(lambda: bool(r.reads()))
                epc = "AABBCCDD00000000000000EE"
                assert r.reads() == [TagRead(epc, 3, -44.0, 500.0, reader="rfid-lane1")]
                await until(lambda: r.source.health().counters["bad_lines"] == 1)

    run(main())


def test_config_union_and_settings_mapping() -> None:
    union: TypeAdapter[RfidConfig] = TypeAdapter(RfidConfig)
    cfg = union.validate_python(
        {
            "backend": "r2000",
            "port": "/dev/serial/by-id/usb-reader",
            "antennas": [1, 2],
            "inventory": "session",
            "session": 2,
            "target": "B",
            "cadence_ms": 100,
        }
    )
    s = reader_settings(cfg)
    assert (s.port, s.antennas, s.inventory, s.session, s.target, s.cadence_s) == (
        "/dev/serial/by-id/usb-reader",
        (1, 2),
        "session",
        2,
        "B",
        0.1,
    )
    assert reader_settings(AsciiRfidConfig(port="socket://h:1", idle_timeout_ms=2500)).idle_timeout_s == 2.5
    assert isinstance(union.validate_python({"backend": "ascii", "port": "loop://"}), AsciiRfidConfig)
    with pytest.raises(ValidationError, match="backend"):
        union.validate_python({"backend": "sim"})
    with pytest.raises(ValidationError, match="antena"):
        union.validate_python({"backend": "r2000", "port": "p", "antena": [1]})
    bads: list[dict[str, object]] = [
        {"antennas": [5]},
        {"baud": 12345},
        {"session": 4},
        {"antennas": []},
        {"rf_power_dbm": 40},
    ]
    for bad in bads:
        with pytest.raises(ValidationError):
            union.validate_python({"backend": "r2000", "port": "/dev/ttyUSB0", **bad})
