"""The simulated relay board and its watchdog, across processes: kill the agent, see red."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import time
from pathlib import Path

import pytest

from drivers.gpio.simboard import SimBoardGpio, encode_message
from edge_agent.clock import SystemClock
from edge_agent.config.signal import ReadbackConfig, SignalConfig
from edge_agent.domain import SignalAspect
from edge_agent.signal import TrafficSignal
from hw_sim.relay_board import RelayBoard

pytestmark = pytest.mark.timeout(60)
ROOT = Path(__file__).resolve().parents[2]
RED, AMBER, GREEN, HEARTBEAT, SIGN = 17, 27, 22, 23, 26
TIMEOUT_MS = 300

AGENT = """
import asyncio, json, sys
from edge_agent.clock import SystemClock
from edge_agent.config.signal import SignalConfig
from edge_agent.signal import TrafficSignal, open_gpio
from edge_agent.watchdog import LaneWatchdog

async def main() -> None:
    cfg = SignalConfig.model_validate(json.loads(sys.argv[1]))
    io = open_gpio(cfg.gpio)
    signal = TrafficSignal(cfg, io, SystemClock())
    async with signal, LaneWatchdog(cfg.watchdog, signal, io):
        await asyncio.sleep(0.2)
        signal.grant("p1")
        await asyncio.Event().wait()

asyncio.run(main())
"""


def agent_config(sock: Path) -> str:
    return json.dumps(
        {
            "gpio": {"backend": "simboard", "socket": str(sock)},
            "pins": {"red": RED, "amber": AMBER, "green": GREEN, "closed_sign": SIGN},
            "amber_s": 0.5,
            "min_red_s": 0.0,
            "watchdog": {"heartbeat_pin": HEARTBEAT, "heartbeat_ms": 50},
        }
    )


async def green_agent(board: RelayBoard, sock: Path) -> asyncio.subprocess.Process:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", AGENT, agent_config(sock), cwd=ROOT, env=env, stderr=asyncio.subprocess.PIPE
    )
    if not await board.wait_for(lambda: board.level(GREEN), 20.0):
        proc.kill()
        _, err = await proc.communicate()
        pytest.fail(f"the agent never showed green: {err.decode()[-2000:]}")
    assert not board.level(RED)
    return proc


def shows_red(board: RelayBoard) -> bool:
    return board.level(RED) and not board.level(GREEN) and not board.level(AMBER) and board.level(SIGN)


@pytest.mark.parametrize(
    ("sig", "cause"),
    [(signal.SIGSTOP, "watchdog"), (signal.SIGKILL, "disconnect")],
    ids=["frozen-agent", "killed-agent"],
)
def test_lamps_go_red_within_the_timeout_when_the_agent_dies(tmp_path: Path, sig: int, cause: str) -> None:
    sock = tmp_path / "board.sock"

    async def main() -> float:
        board = RelayBoard(sock, heartbeat_pin=HEARTBEAT, timeout_ms=TIMEOUT_MS, fail_on=(RED, SIGN))
        async with board:
            proc = await green_agent(board, sock)
            try:
                stopped = time.monotonic()
                os.kill(proc.pid, sig)
                assert await board.wait_for(lambda: shows_red(board), 5.0)
                took = time.monotonic() - stopped
                assert board.tripped is not None
                assert board.tripped.startswith(cause)
                assert board.commanded(GREEN)  # the agent still "wants" green: the board overrules it
                forced = [c for c in board.history if c.pin == RED and c.value][-1]
                assert forced.cause == cause
                return took
            finally:
                if proc.returncode is None:
                    proc.kill()
                await proc.wait()

    took = asyncio.run(main())
    assert took <= TIMEOUT_MS / 1000 + 0.2, f"red after {took * 1000:.0f} ms"


class RawAgent:
    """Speaks the board protocol by hand, to drive the board's logic step by step."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def connect(cls, sock: Path) -> RawAgent:
        reader, writer = await asyncio.open_unix_connection(str(sock))
        return cls(reader, writer)

    async def send(self, op: str, **fields: object) -> None:
        self.writer.write(encode_message(op, **fields))
        await self.writer.drain()
        await asyncio.sleep(0.02)

    async def close(self) -> None:
        self.writer.close()
        await self.writer.wait_closed()


def test_board_holds_red_until_the_heartbeat_starts_and_latches_when_asked(tmp_path: Path) -> None:
    sock = tmp_path / "board.sock"

    async def main() -> None:
        board = RelayBoard(sock, heartbeat_pin=HEARTBEAT, timeout_ms=100, fail_on=(RED,), latch=True)
        async with board:
            agent = await RawAgent.connect(sock)
            await agent.send("setup_output", pin=RED, initial=False)
            await agent.send("setup_output", pin=GREEN, initial=True)
            await agent.send("setup_output", pin=HEARTBEAT, initial=False)
            assert board.tripped == "no heartbeat yet"
            assert board.level(RED)
            assert not board.level(GREEN)
            await agent.send("write", pin=HEARTBEAT, value=True)
            assert board.tripped is None
            assert board.level(GREEN)
            assert not board.level(RED)
            await asyncio.sleep(0.2)  # heartbeat stops
            assert board.tripped is not None
            assert board.tripped.startswith("watchdog")
            assert board.level(RED)
            await agent.send("write", pin=HEARTBEAT, value=False)
            assert board.tripped is not None  # latched: a toggle does not clear it
            board.reset()
            assert board.level(GREEN)
            await agent.send("nonsense")  # a bad line is counted and survived
            assert board.bad_lines == 1
            await agent.send("write", pin=HEARTBEAT, value=True)
            assert board.tripped is None
            await agent.close()
        await board.close()  # twice is safe

    asyncio.run(main())


def test_one_controller_at_a_time(tmp_path: Path) -> None:
    sock = tmp_path / "board.sock"

    async def main() -> None:
        async with RelayBoard(sock) as board:
            first = await RawAgent.connect(sock)
            await first.send("setup_output", pin=RED, initial=True)
            second = await RawAgent.connect(sock)
            assert await second.reader.read() == b""  # refused: closed at once
            await second.close()
            assert board.connections == 1
            await first.close()

    asyncio.run(main())


def test_dead_lamp_on_the_board_closes_the_lane_in_the_agent(tmp_path: Path) -> None:
    """Agent and board in one test process: the board on this loop, the agent's backend on a socket."""
    sock = tmp_path / "board.sock"
    rb = {RED: 5, AMBER: 6, GREEN: 13}
    cfg = SignalConfig(
        amber_s=0.1,
        dark_ms=10,
        min_red_s=0.0,
        readback=ReadbackConfig(red=5, amber=6, green=13, active_low=False, settle_ms=100, poll_ms=20),
    )
    faults: list[str] = []

    async def main() -> None:
        async with RelayBoard(sock, readback=rb) as board:
            io = SimBoardGpio(socket=sock)
            try:
                sig = TrafficSignal(cfg, io, SystemClock(), on_fault=lambda n, d: faults.append(n))
                async with sig:
                    await asyncio.sleep(0.2)
                    assert sig.faults == set()
                    board.cut_readback(GREEN)
                    assert sig.grant("p1")
                    await asyncio.sleep(0.4)
                    assert faults == ["lamp_mismatch:green"]
                    assert sig.closed
                    assert sig.aspect is SignalAspect.RED
                    assert board.level(RED)
            finally:
                io.close()

    asyncio.run(main())


def test_a_lost_board_faults_the_signal_instead_of_killing_it(tmp_path: Path) -> None:
    sock = tmp_path / "board.sock"
    cfg = SignalConfig(amber_s=0.0, dark_ms=0, min_red_s=0.0)

    async def main() -> None:
        board = RelayBoard(sock)
        await board.__aenter__()
        io = SimBoardGpio(socket=sock)
        try:
            async with TrafficSignal(cfg, io, SystemClock()) as sig:
                await asyncio.sleep(0.05)
                await board.close()
                for _ in range(5):  # the first writes may still land in the dead socket's buffer
                    sig.grant("p1")
                    await asyncio.sleep(0.05)
                    sig.revoke("p1")
                    await asyncio.sleep(0.05)
                assert "gpio" in sig.faults
                assert sig.counters["gpio_errors"] >= 1
        finally:
            io.close()

    asyncio.run(main())


def test_a_frozen_then_resumed_agent_starts_again_from_red(tmp_path: Path) -> None:
    """SIGSTOP past the board's timeout (it forces red), SIGCONT: no amber or green after the board's red."""
    sock = tmp_path / "board.sock"

    async def main() -> None:
        board = RelayBoard(sock, heartbeat_pin=HEARTBEAT, timeout_ms=TIMEOUT_MS, fail_on=(RED, SIGN))
        async with board:
            proc = await green_agent(board, sock)
            try:
                os.kill(proc.pid, signal.SIGSTOP)
                assert await board.wait_for(lambda: shows_red(board), 5.0)
                tripped_at = board.trips[-1][0]
                await asyncio.sleep(0.5)
                os.kill(proc.pid, signal.SIGCONT)
                # the board resets once the heartbeat comes back; lamps then follow the agent again
                assert await board.wait_for(lambda: board.tripped is None, 5.0)
                await asyncio.sleep(1.0)
                after = [c for c in board.history if c.at >= tripped_at]
                lit = [(c.pin, c.cause) for c in after if c.value and c.pin in (AMBER, GREEN)]
                assert not lit, f"after the forced red the lane showed {lit}"
                assert shows_red(board) or (board.level(RED) and not board.level(GREEN))
                assert not board.commanded(GREEN) and not board.commanded(AMBER)
            finally:
                if proc.returncode is None:
                    proc.kill()
                await proc.wait()

    asyncio.run(main())
