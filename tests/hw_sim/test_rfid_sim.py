"""The simulated reader at the wire: raw bytes in and out of its pty, and the generic pty port."""

from __future__ import annotations

import asyncio
import os
import time
import tty
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from drivers.rfid import r2000
from drivers.rfid.ascii import AsciiTag, LineParser
from hw_sim.pty import PtyPort
from hw_sim.rfid import SimulatedRfidReader
from hw_sim.world import FieldTag
from tests.drivers.rfid.support import run, until

CAR = "300833B2DDD9014000000001"


class Wire:
    """The agent's end of the line, raw: an fd on the pty slave."""

    def __init__(self, path: str) -> None:
        self.fd = os.open(path, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
        tty.setraw(self.fd)
        self.rx = bytearray()
        self.eof = False
        asyncio.get_running_loop().add_reader(self.fd, self._readable)

    def _readable(self) -> None:
        try:
            data = os.read(self.fd, 4096)
        except OSError:
            data = b""
        if not data:
            self.eof = True
            asyncio.get_running_loop().remove_reader(self.fd)
        self.rx += data

    def send(self, data: bytes) -> None:
        os.write(self.fd, data)

    async def frames(self, n: int) -> list[r2000.Frame]:
        await until(lambda: len(r2000.FrameParser().feed(bytes(self.rx))) >= n, what=f"{n} frames")
        got = r2000.FrameParser().feed(bytes(self.rx))
        self.rx.clear()
        return got

    def close(self) -> None:
        if not self.eof:
            asyncio.get_running_loop().remove_reader(self.fd)
        os.close(self.fd)


@asynccontextmanager
async def wired(tmp_path: Path, **kw: object) -> AsyncIterator[tuple[SimulatedRfidReader, Wire]]:
    async with SimulatedRfidReader(link_path=tmp_path / "by-id-rfid", **kw) as sim:  # type: ignore[arg-type]
        wire = Wire(sim.port)
        try:
            yield sim, wire
        finally:
            wire.close()


def test_answers_the_r2000_conversation(tmp_path: Path) -> None:
    async def main() -> None:
        async with wired(tmp_path) as (sim, w):
            w.send(r2000.get_firmware_version(0xFF) + r2000.set_rf_power(0xFF, 27))
            assert [r2000.decode_reply(f) for f in await w.frames(2)] == [
                r2000.FirmwareVersion(1, 1, 9),
                r2000.StatusReply(1, 0x76, 0x10),
            ]
            assert sim.rf_power_dbm == 27
            w.send(r2000.real_time_inventory(0xFF, 1))
            assert r2000.decode_reply((await w.frames(1))[0]) == r2000.StatusReply(1, 0x89, 0x36)
            sim.set_tags([FieldTag(CAR, 1, -55.0), FieldTag("3A0000000000000000000001", 2, -40.0)])
            w.send(r2000.real_time_inventory(0xFF, 2))
            replies = [r2000.decode_reply(f) for f in await w.frames(3)]
            assert replies == [r2000.TagReport(1, 0x89, 1, 0, 0x3000, CAR, -55)] * 2 + [
                r2000.RoundEnd(1, 0x89, 1, 2, 2)
            ]
            w.send(r2000.set_work_antenna(0xFF, 2) + r2000.session_inventory(0xFF, 1, "A", 1))
            replies = [r2000.decode_reply(f) for f in await w.frames(3)]
            assert replies[0] == r2000.StatusReply(1, 0x74, 0x10)
            assert isinstance(replies[1], r2000.TagReport)
            assert (replies[1].antenna, replies[1].cmd) == (2, 0x8B)
            w.send(
                r2000.encode_command(0xFF, 0x99)
                + r2000.encode_command(0xFF, r2000.Cmd.RESET)
                + r2000.get_firmware_version(0x05)
                + r2000.get_firmware_version(0x01)
            )
            replies = [r2000.decode_reply(f) for f in await w.frames(2)]
            # unknown command: 0x11 (failed); reset: no reply; another address: ignored
            assert replies == [r2000.OtherReply(1, 0x99, b"\x11"), r2000.FirmwareVersion(1, 1, 9)]
            cmds = [f.cmd for f in sim.commands]
            assert cmds == [0x72, 0x76, 0x89, 0x89, 0x74, 0x8B, 0x99, 0x70, 0x72, 0x72]

    run(main())


def test_faults_on_the_wire(tmp_path: Path) -> None:
    async def main() -> None:
        async with wired(tmp_path) as (sim, w):
            sim.corrupt_checksums(1)
            sim.inject_junk(b"\x01\x02\x03")
            w.send(r2000.get_firmware_version(0xFF) * 2)
            await until(lambda: len(w.rx) >= 3 + 2 * 7)  # junk, then two 7-byte replies
            p = r2000.FrameParser()
            assert len(p.feed(bytes(w.rx))) == 1
            assert (p.checksum_errors, p.junk_bytes) == (1, 3 + 6)  # the bad frame minus its header
            w.rx.clear()
            sim.fail_inventory(r2000.Status.ANTENNA_MISSING, times=1)
            w.send(r2000.real_time_inventory(0xFF) * 2)
            assert [r2000.decode_reply(f) for f in await w.frames(2)] == [
                r2000.StatusReply(1, 0x89, 0x22),
                r2000.StatusReply(1, 0x89, 0x36),
            ]
            sim.silent = True
            w.send(r2000.get_firmware_version(0xFF))
            await asyncio.sleep(0.1)
            assert not w.rx
            assert sim.commands[-1].cmd == 0x72  # heard, recorded, not answered
            sim.silent = False
            sim.reply_delay_s = 0.15
            sim.split_frames = True
            t0 = time.monotonic()
            w.send(r2000.get_firmware_version(0xFF))
            assert len(await w.frames(1)) == 1
            assert time.monotonic() - t0 >= 0.15

    run(main())


def _target(link: Path) -> str:
    return os.path.realpath(link)


def test_unplug_closes_the_line_and_replug_repoints_the_link(tmp_path: Path) -> None:
    async def main() -> None:
        async with SimulatedRfidReader(link_path=tmp_path / "rfid") as sim:
            link = tmp_path / "rfid"
            assert _target(link) == sim.tty_path
            w = Wire(sim.port)
            sim.unplug()
            await until(lambda: w.eof, what="end of line on the agent side")
            assert not link.exists()
            assert sim.port == str(link)
            w.close()
            sim.replug()
            assert _target(link) == sim.tty_path
            w2 = Wire(sim.port)
            try:
                w2.send(r2000.get_firmware_version(0xFF))
                assert len(await w2.frames(1)) == 1
            finally:
                w2.close()
            sim.unplug()
            sim.unplug()  # twice is fine
        await sim.close()  # and so is closing twice

    run(main())


def test_ascii_mode_streams_lines(tmp_path: Path) -> None:
    async def main() -> None:
        async with wired(tmp_path, protocol="ascii", ascii_interval_s=0.01) as (sim, w):
            sim.set_tags([FieldTag(CAR, 2, -61.25)])
            await until(lambda: w.rx.count(b"\n") >= 3)
            tags = LineParser().feed(bytes(w.rx))
            assert tags[0] == AsciiTag(CAR, 2, -61.2)
            sim.silent = True
            await asyncio.sleep(0.03)
            w.rx.clear()
            await asyncio.sleep(0.05)
            assert not w.rx

    run(main())


def test_pty_port_paces_at_the_baud_rate_and_bounds_its_backlog() -> None:
    async def main() -> None:
        got = bytearray()
        port = PtyPort(got.extend, baud=9600)
        port.plug()
        w = Wire(port.path)
        try:
            t0 = time.monotonic()
            port.write(bytes(96))  # 96 bytes x 10 bits at 9600 baud = 0.1 s on the line
            await until(lambda: len(w.rx) == 96)
            assert time.monotonic() - t0 >= 0.095
            w.send(b"hello")
            await until(lambda: bytes(got) == b"hello")
            port.baud = None
            asyncio.get_running_loop().remove_reader(w.fd)  # the far end stops reading
            w.eof = True
            for _ in range(60):
                port.write(bytes(4096))
            assert port.dropped_bytes > 0
        finally:
            w.close()
            port.unplug()

    run(main())
