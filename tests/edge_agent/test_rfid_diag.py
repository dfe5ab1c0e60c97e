"""``edge-agent diag rfid`` against the simulated reader on a pty (the sim runs on its own loop thread)."""

from __future__ import annotations

import argparse
import asyncio
import json
import threading
from collections.abc import Iterator
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import pytest

from edge_agent.diag import rfid as diag
from hw_sim.rfid import SimulatedRfidReader
from hw_sim.world import FieldTag

CAR = "300833B2DDD9014000000001"
CARD = "350000000000000000000007"


class SimThread:
    """A simulated reader served from a background event loop, so ``diag.run`` can own the main one."""

    def __init__(self, **kw: Any) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="sim-rfid-loop")
        self.thread.start()
        self.sim: SimulatedRfidReader = self.call(self._open(kw))

    async def _open(self, kw: dict[str, Any]) -> SimulatedRfidReader:
        return await SimulatedRfidReader(**kw).__aenter__()

    def call(self, coro: Any) -> Any:
        fut: Future[Any] = asyncio.run_coroutine_threadsafe(coro, self.loop)
        return fut.result(5)

    def do(self, fn: Any, *args: Any) -> None:
        async def go() -> None:
            fn(*args)

        self.call(go())

    def close(self) -> None:
        self.call(self.sim.close())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()


@pytest.fixture
def sim(tmp_path: Path) -> Iterator[SimThread]:
    s = SimThread(link_path=tmp_path / "rfid")
    yield s
    s.close()


def _args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="edge-agent diag")
    diag.register(parser.add_subparsers(dest="diag_command", required=True))
    args = parser.parse_args(["rfid", *argv])
    assert args.func is diag.run
    return args


def test_lists_each_tag_once_with_class_and_a_summary(
    sim: SimThread, capsys: pytest.CaptureFixture[str]
) -> None:
    sim.do(sim.sim.set_tags, [FieldTag(CAR, 1, -52.0), FieldTag(CARD, 1, -47.0)])
    assert diag.run(_args("--port", sim.sim.port, "--seconds", "0.6")) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split() == ["EPC", "CLASS", "ANT", "RSSI", "COUNT"]
    car = next(line for line in out if line.startswith(CAR)).split()
    assert car[1:4] == ["conveyance", "1", "-52"]
    assert int(car[4]) >= 2
    assert next(line for line in out if line.startswith(CARD)).split()[1] == "fast_card"
    assert sum(line.startswith(CAR) for line in out) == 1
    assert out[-1].startswith("frames ")
    assert "checksum errors 0, junk bytes 0" in out[-1]
    assert "reads/s" in out[-1]


def test_json_lines(sim: SimThread, capsys: pytest.CaptureFixture[str]) -> None:
    sim.do(sim.sim.set_tags, [FieldTag(CAR, 2, -60.0), FieldTag(CARD, 3, -66.0)])
    sim.do(sim.loop.call_later, 0.25, sim.sim.inject_junk, b"\x00\x00\x00")  # once the port is open
    argv = ("--port", sim.sim.port, "--seconds", "0.6", "--json", "--address", "0xff", "--antennas", "1,2")
    assert diag.run(_args(*argv)) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(lines) == 2  # antenna 3 is not inventoried: the card is not heard
    tag, summary = lines
    assert tag["type"] == "tag"
    assert (tag["epc"], tag["class"], tag["antennas"], tag["rssi_dbm"]) == (CAR, "conveyance", [2], -60.0)
    assert summary["type"] == "summary"
    assert summary["junk_bytes"] == 3
    assert summary["reads"] == tag["count"]
    assert summary["reader_error_details"] == []


def test_missing_antenna_is_reported(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    s = SimThread(link_path=tmp_path / "rfid", connected_antennas=(1,))
    try:
        assert diag.run(_args("--port", s.sim.port, "--seconds", "0.3")) == 0
    finally:
        s.close()
    assert "reader reported: reader error antenna_missing (0x22) answering 0x74" in capsys.readouterr().out


def test_bad_antenna_list_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        _args("--port", "/dev/null", "--antennas", "1,9")
    assert "must be 1-4" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        _args("--port", "/dev/null", "--address", "0x100")
    assert "must be 0-255" in capsys.readouterr().err


def test_silent_reader_exits_1_with_a_hint(sim: SimThread, capsys: pytest.CaptureFixture[str]) -> None:
    sim.sim.silent = True
    assert diag.run(_args("--port", sim.sim.port, "--seconds", "1.2", "--baud", "57600")) == 1
    err = capsys.readouterr().err
    assert "no reply from reader at 57600 8N1: check port, baud, address, power" in err
    assert "no reply to firmware version request" in err


def test_missing_port_exits_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert diag.run(_args("--port", str(tmp_path / "ttyUSB9"), "--seconds", "0.3")) == 1
    assert "No such file" in capsys.readouterr().err
