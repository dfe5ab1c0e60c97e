"""The async reader against the simulated reader on a real pty: reads, faults, recovery."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import itertools
import logging
import os
from collections.abc import AsyncIterator
from functools import partial
from pathlib import Path

import pytest

from drivers.rfid import r2000
from drivers.rfid.reader import LinkDown, LinkUp, ReaderEvent, ReaderFault, ReaderSettings, TagReader, TagSeen
from hw_sim.rfid import SimulatedRfidReader
from hw_sim.world import FieldTag
from tests.drivers.rfid.support import run, until

CAR = "300833B2DDD9014000000001"
CARD = "350000000000000000000007"
FAST = ReaderSettings(
    port="", cadence_s=0.02, reply_timeout_s=0.15, silent_after=2, backoff_initial_s=0.02, backoff_max_s=0.1
)


class Harness:
    """A reader task plus everything it said."""

    def __init__(self, settings: ReaderSettings) -> None:
        self.events: list[ReaderEvent] = []
        self.reader = TagReader(settings, self.events.append)
        self.task: asyncio.Task[None] | None = None

    def of(self, kind: type) -> list:  # type: ignore[type-arg]
        return [e for e in self.events if isinstance(e, kind)]

    async def __aenter__(self) -> Harness:
        self.task = asyncio.create_task(self.reader.run())
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.task is not None
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.task


@contextlib.asynccontextmanager
async def lane(tmp_path: Path, **overrides: object) -> AsyncIterator[tuple[SimulatedRfidReader, Harness]]:
    sim_kw: dict[str, object] = {k: overrides.pop(k) for k in ("baud", "ascii_interval_s") if k in overrides}
    if "protocol" in overrides:
        sim_kw["protocol"] = overrides["protocol"]
    async with SimulatedRfidReader(link_path=tmp_path / "rfid", **sim_kw) as sim:  # type: ignore[arg-type]
        settings = dataclasses.replace(FAST, port=sim.port, **overrides)  # type: ignore[arg-type]
        async with Harness(settings) as h:
            yield sim, h


def _at_least(h: Harness, n: int) -> bool:
    return len(h.of(TagSeen)) >= n


def test_reads_tags_and_speaks_the_protocol(tmp_path: Path) -> None:
    async def main() -> None:
        async with lane(tmp_path, repeat=2) as (sim, h):
            sim.set_tags(
                [
                    FieldTag(CAR, 1, -52.0),
                    FieldTag(CARD, 1, -48.0),
                    FieldTag("3A00000000000000000000FF", 2, -40),
                ]
            )
            await until(lambda: len(h.of(TagSeen)) >= 8, what="tag reads")
            assert h.of(LinkUp) == [LinkUp(sim.tty_path, "firmware 1.9")]
            heard = {(e.epc, e.antenna, e.rssi_dbm) for e in h.of(TagSeen)}
            assert heard == {(CAR, 1, -52.0), (CARD, 1, -48.0)}  # antenna 2 is not inventoried
            cmds = [(f.cmd, f.data) for f in sim.commands]
            assert cmds[:4] == [(0x72, b""), (0x76, bytes([30])), (0x74, b"\x00"), (0x89, b"\x02")]
            assert all(f.addr == 0xFF for f in sim.commands)
            assert sim.rf_power_dbm == 30
            st = h.reader.stats
            assert st["reads"] == len(h.of(TagSeen))
            assert st["frames"] > st["reads"]
            assert st["junk_bytes"] == st["checksum_errors"] == st["timeouts"] == 0

    run(main())


def test_session_inventory_cycles_antennas(tmp_path: Path) -> None:
    async def main() -> None:
        async with lane(tmp_path, antennas=(1, 2), inventory="session", session=2, target="B") as (sim, h):
            sim.set_tags([FieldTag(CAR, 2, -45.0)])
            await until(lambda: len(h.of(TagSeen)) >= 3, what="reads on antenna 2")
            assert {e.antenna for e in h.of(TagSeen)} == {2}
            inv = [f for f in sim.commands if f.cmd == 0x8B]
            assert inv[0].data == bytes((2, 1, 1))
            ants = [f.data[0] for f in sim.commands if f.cmd == 0x74]
            assert ants[:4] == [0, 1, 0, 1]

    run(main())


def test_addressed_reader_ignores_other_addresses(tmp_path: Path) -> None:
    async def main() -> None:
        async with lane(tmp_path, address=0x01) as (sim, h):
            sim.set_tags([FieldTag(CAR, 1, -50.0)])
            await until(lambda: len(h.of(TagSeen)) >= 2)
            sim.address = 0x07  # now replies come from another address... and commands to 0x01 go unanswered
            await until(lambda: bool(h.of(LinkDown)), what="silence")
            assert h.of(LinkDown)[0].kind == "silent"

    run(main())


def test_junk_split_frames_and_bad_checksums_are_survived_and_logged_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async def main() -> None:
        async with lane(tmp_path) as (sim, h):
            sim.set_tags([FieldTag(CAR, 1, -50.0)])
            await until(lambda: len(h.of(TagSeen)) >= 2)
            sim.split_frames = True
            for _ in range(3):
                want = len(h.of(TagSeen)) + 3
                sim.inject_junk(b"\x00\x13garbage\xa0\x01")
                sim.corrupt_checksums(1)
                await until(partial(_at_least, h, want), what="reads after garbage")
            st = h.reader.stats
            assert st["junk_bytes"] >= 3 * 10
            assert st["checksum_errors"] >= 3
            assert not h.of(LinkDown)  # a lost frame costs at most one timeout, not the link

    with caplog.at_level(logging.WARNING, logger="drivers.rfid.reader"):
        run(main())
    junk_logs = [r for r in caplog.records if "junk bytes" in r.getMessage()]
    assert len(junk_logs) == 1
    assert "/dev/pts/" in junk_logs[0].getMessage()
    assert len([r for r in caplog.records if "bad checksum" in r.getMessage()]) == 1


def test_unplug_and_replug_under_a_new_device_name(tmp_path: Path) -> None:
    async def main() -> None:
        async with lane(tmp_path) as (sim, h):
            sim.set_tags([FieldTag(CAR, 1, -50.0)])
            await until(lambda: len(h.of(TagSeen)) >= 1)
            first = sim.tty_path
            sim.unplug()
            await until(lambda: bool(h.of(LinkDown)), what="disconnect")
            assert h.of(LinkDown)[0].kind == "disconnected"
            assert not h.reader.up
            await until(lambda: h.reader.port_in_use is None, what="port closed")
            hold_m, hold_s = os.openpty()  # occupy the old /dev/pts/N, like a kernel handing out ttyUSB1
            try:
                await asyncio.sleep(0.15)  # a few failed attempts against the dangling by-id link
                sim.replug()
                assert sim.tty_path != first
                await until(lambda: len(h.of(LinkUp)) == 2, what="reconnect")
            finally:
                os.close(hold_m)
                os.close(hold_s)
            assert h.of(LinkUp)[1].port == sim.tty_path
            n = len(h.of(TagSeen))
            await until(lambda: len(h.of(TagSeen)) > n, what="reads after replug")
            assert h.reader.stats["reconnects"] >= 2

    run(main())


def test_silent_reader_detected_then_recovered(tmp_path: Path) -> None:
    async def main() -> None:
        async with lane(tmp_path) as (sim, h):
            sim.set_tags([FieldTag(CAR, 1, -50.0)])
            await until(lambda: len(h.of(TagSeen)) >= 1)
            sim.silent = True
            await until(lambda: bool(h.of(LinkDown)), what="silence detected")
            assert h.of(LinkDown)[0].kind == "silent"
            assert h.reader.stats["timeouts"] >= 2
            sim.silent = False
            await until(lambda: len(h.of(LinkUp)) == 2, what="recovery")
            n = len(h.of(TagSeen))
            await until(lambda: len(h.of(TagSeen)) > n)

    run(main())


def test_slow_replies_within_timeout_are_fine_beyond_it_are_silence(tmp_path: Path) -> None:
    async def main() -> None:
        async with lane(tmp_path) as (sim, h):
            sim.set_tags([FieldTag(CAR, 1, -50.0)])
            sim.reply_delay_s = 0.05
            await until(lambda: len(h.of(TagSeen)) >= 3)
            assert h.reader.stats["timeouts"] == 0
            sim.reply_delay_s = 0.4
            await until(lambda: bool(h.of(LinkDown)), what="slow reader declared silent")
            assert h.of(LinkDown)[0].kind == "silent"

    run(main())


def test_reader_error_codes_raise_and_clear_a_fault(tmp_path: Path) -> None:
    async def main() -> None:
        async with lane(tmp_path) as (sim, h):
            await until(lambda: bool(h.of(LinkUp)))
            sim.fail_inventory(r2000.Status.ANTENNA_MISSING, times=3)
            await until(lambda: len(h.of(ReaderFault)) == 2, what="fault raised and cleared")
            up, down = h.of(ReaderFault)
            assert up.active
            assert up.code == 0x22
            assert "antenna_missing" in up.detail
            assert not down.active
            assert h.reader.stats["reader_errors"] == 3
            assert not h.of(LinkDown)

    run(main())


def test_missing_antenna_at_setup_is_a_reader_error(tmp_path: Path) -> None:
    async def main() -> None:
        async with SimulatedRfidReader(link_path=tmp_path / "rfid", connected_antennas=(1,)) as sim:
            h = Harness(dataclasses.replace(FAST, port=sim.port, antennas=(1, 2)))
            async with h:
                await until(lambda: bool(h.of(ReaderFault)))
                assert h.of(ReaderFault)[0].code == r2000.Status.ANTENNA_MISSING

    run(main())


def test_absent_port_backs_off_exponentially_to_the_cap(tmp_path: Path) -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        times: list[float] = []
        settings = dataclasses.replace(
            FAST, port=str(tmp_path / "nothing"), backoff_initial_s=0.01, backoff_max_s=0.08
        )
        reader = TagReader(settings, lambda e: times.append(loop.time()) if isinstance(e, LinkDown) else None)
        task = asyncio.create_task(reader.run())
        await asyncio.sleep(0.6)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        gaps = [b - a for a, b in itertools.pairwise(times)]
        assert 4 <= len(times) <= 14
        assert gaps[0] < gaps[2]  # doubling: 0.01, 0.02, 0.04 ...
        assert max(gaps) < 0.08 + 0.1  # ... capped at 0.08 (plus the open attempt and scheduling)
        assert reader.stats["reconnects"] >= len(times) - 1

    run(main())


def test_ascii_reader_on_a_pty_and_idle_timeout(tmp_path: Path) -> None:
    async def main() -> None:
        async with lane(tmp_path, protocol="ascii", ascii_interval_s=0.02, idle_timeout_s=0.15) as (sim, h):
            sim.set_tags([FieldTag(CAR, 3, -44.5)])
            await until(lambda: len(h.of(TagSeen)) >= 3)
            assert h.of(TagSeen)[0] == TagSeen(CAR, 3, -44.5)
            sim.inject_junk(b"\xff\xfenot a tag\n")
            await until(lambda: h.reader.stats["bad_lines"] == 1)
            sim.silent = True
            await until(lambda: bool(h.of(LinkDown)), what="idle timeout")
            assert h.of(LinkDown)[0].kind == "silent"
            sim.silent = False
            await until(lambda: len(h.of(LinkUp)) >= 2)

    run(main())


def test_socket_url_through_a_serial_device_server(tmp_path: Path) -> None:
    """``socket://`` works: a ser2net-like relay in front of the simulated reader's pty."""

    async def main() -> None:
        async with SimulatedRfidReader(link_path=tmp_path / "rfid") as sim:
            sim.set_tags([FieldTag(CAR, 1, -50.0)])
            loop = asyncio.get_running_loop()

            async def relay(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
                fd = os.open(sim.port, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
                loop.add_reader(fd, lambda: w.write(os.read(fd, 4096)))
                try:
                    while data := await r.read(4096):
                        os.write(fd, data)
                finally:
                    loop.remove_reader(fd)
                    os.close(fd)
                    w.close()

            server = await asyncio.start_server(relay, "127.0.0.1", 0)
            port = server.sockets[0].getsockname()[1]
            try:
                async with Harness(dataclasses.replace(FAST, port=f"socket://127.0.0.1:{port}")) as h:
                    await until(lambda: len(h.of(TagSeen)) >= 2)
                    assert h.of(LinkUp)[0].port == f"socket://127.0.0.1:{port}"
            finally:
                server.close()
                await server.wait_closed()

    run(main())


def test_loop_url_uses_the_reader_thread_and_sees_only_its_own_echo() -> None:
    """``loop://`` has no file descriptor: a reader thread feeds the loop; echoed commands are no reply."""

    async def main() -> None:
        async with Harness(dataclasses.replace(FAST, port="loop://")) as h:
            await until(lambda: bool(h.of(LinkDown)), what="silence on loop://")
            assert h.of(LinkDown)[0].kind == "silent"
            assert h.reader.stats["frames"] >= 2  # our own 0x72 came back and was parsed (then ignored)

    run(main())


def test_r2000_settings_reject_bad_antennas() -> None:
    with pytest.raises(ValueError, match="antennas"):
        TagReader(dataclasses.replace(FAST, antennas=(5,)), lambda e: None)
