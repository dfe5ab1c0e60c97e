"""LaneWatchdog and SystemdNotifier on real sockets and SimGpio, in wall time."""

from __future__ import annotations

import asyncio
import itertools
import os
import socket
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from drivers.gpio.sim import SimGpio
from edge_agent.clock import SystemClock
from edge_agent.config.signal import SignalConfig, WatchdogConfig
from edge_agent.signal import TrafficSignal
from edge_agent.watchdog import LOOP_LAG, LaneWatchdog, SystemdNotifier

pytestmark = pytest.mark.timeout(30)
HEARTBEAT = 23
FAST = SignalConfig(amber_s=0.0, dark_ms=0, min_red_s=0.0)


@pytest.fixture
def notify_socket(tmp_path: Path) -> Iterator[tuple[socket.socket, str]]:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    path = str(tmp_path / "notify")
    sock.bind(path)
    sock.settimeout(2.0)
    yield sock, path
    sock.close()


def drain(sock: socket.socket) -> list[str]:
    out: list[str] = []
    sock.setblocking(False)
    try:
        while True:
            out.append(sock.recv(4096).decode())
    except BlockingIOError:
        pass
    finally:
        sock.settimeout(2.0)
    return out


def test_notifier_speaks_the_datagram_protocol(notify_socket: tuple[socket.socket, str]) -> None:
    sock, path = notify_socket
    n = SystemdNotifier.from_env({"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "4000000"})
    assert n.ping_interval_s == 2.0
    assert n.ready("lane open")
    assert n.ping()
    assert n.stopping()
    assert sock.recv(100) == b"READY=1\nSTATUS=lane open"
    assert sock.recv(100) == b"WATCHDOG=1"
    assert sock.recv(100) == b"STOPPING=1\nSTATUS=stopping"
    n.close()
    n.close()


def test_notifier_abstract_socket() -> None:
    name = f"edge-agent-test-{uuid.uuid4().hex}"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind("\0" + name)
    sock.settimeout(2.0)
    try:
        n = SystemdNotifier(f"@{name}")
        assert n.status("hello")
        assert sock.recv(100) == b"STATUS=hello"
        n.close()
    finally:
        sock.close()


def test_notifier_without_systemd_or_with_a_dead_socket(tmp_path: Path) -> None:
    assert not SystemdNotifier.from_env({}).enabled
    other = SystemdNotifier.from_env({"NOTIFY_SOCKET": "/x", "WATCHDOG_USEC": "1000", "WATCHDOG_PID": "1"})
    assert other.ping_interval_s is None  # the watchdog is meant for another process
    mine = SystemdNotifier.from_env(
        {"NOTIFY_SOCKET": "/x", "WATCHDOG_USEC": "1000", "WATCHDOG_PID": str(os.getpid())}
    )
    assert mine.ping_interval_s == 0.0005
    dead = SystemdNotifier(str(tmp_path / "nobody-listens"))
    assert not dead.ready("x")
    assert not dead.ping()
    assert dead.counters["notify_errors"] == 2
    dead.close()


async def with_watchdog(
    cfg: WatchdogConfig, seconds: float, *, notifier: SystemdNotifier | None = None, healthy: bool = True
) -> tuple[SimGpio, LaneWatchdog]:
    io = SimGpio()
    async with TrafficSignal(FAST, io, SystemClock()) as signal:
        async with LaneWatchdog(cfg, signal, io, notifier=notifier, healthy=lambda: healthy) as wd:
            await asyncio.sleep(seconds)
        await wd.__aexit__(None, None, None)  # safe twice
    return io, wd


def test_heartbeat_toggles_while_healthy_and_pings_systemd(notify_socket: tuple[socket.socket, str]) -> None:
    sock, path = notify_socket
    notifier = SystemdNotifier(path, watchdog_usec=100_000)  # ping at least every 50 ms
    cfg = WatchdogConfig(heartbeat_pin=HEARTBEAT, heartbeat_ms=40)  # < 10 datagrams: the kernel queue
    io, wd = asyncio.run(with_watchdog(cfg, 0.3, notifier=notifier))
    beats = [c for c in io.history if c.pin == HEARTBEAT]
    assert len(beats) >= 5
    gaps = [b.at - a.at for a, b in itertools.pairwise(beats[1:])]
    assert max(gaps) < 0.2
    msgs = drain(sock)
    assert msgs.count("WATCHDOG=1") >= 4
    assert msgs[-1].startswith("STOPPING=1")
    assert wd.tick_s == 0.04
    assert notifier.counters["notify_dropped"] == 0


def test_no_heartbeat_and_no_ping_when_the_lane_is_unhealthy(
    notify_socket: tuple[socket.socket, str],
) -> None:
    sock, path = notify_socket
    notifier = SystemdNotifier(path, watchdog_usec=100_000)
    cfg = WatchdogConfig(heartbeat_pin=HEARTBEAT, heartbeat_ms=20)
    io, wd = asyncio.run(with_watchdog(cfg, 0.2, notifier=notifier, healthy=False))
    assert [c.value for c in io.history if c.pin == HEARTBEAT] == [False]  # set up, never toggled
    assert "WATCHDOG=1" not in drain(sock)
    assert wd.counters["unhealthy_ticks"] >= 5


def test_a_blocked_loop_faults_the_signal_and_starves_the_heartbeat() -> None:
    cfg = WatchdogConfig(heartbeat_pin=HEARTBEAT, heartbeat_ms=20, loop_lag_ms=100)
    faults: list[str] = []

    async def main() -> SimGpio:
        io = SimGpio()
        signal = TrafficSignal(FAST, io, SystemClock(), on_fault=lambda n, d: faults.append(n))
        async with signal, LaneWatchdog(cfg, signal, io) as wd:
            await asyncio.sleep(0.1)
            assert signal.grant("p1")
            await asyncio.sleep(0.05)
            time.sleep(0.3)  # noqa: ASYNC251 -- the point: a blocking call on the lane loop
            await asyncio.sleep(0.05)
            assert LOOP_LAG in signal.faults
            assert wd.max_lag_s >= 0.2
            assert not signal.grant("p2")
            await asyncio.sleep(0.1)
            assert signal.aspect.value == "red"
            await asyncio.sleep(1.2)  # a second of punctual ticks clears it
            assert LOOP_LAG not in signal.faults
        return io

    io = asyncio.run(main())
    assert faults == [LOOP_LAG]
    beats = [c.at for c in io.history if c.pin == HEARTBEAT][1:]
    assert max(b - a for a, b in itertools.pairwise(beats)) >= 0.28


def test_heartbeat_pin_needs_io() -> None:
    async def main() -> None:
        async with TrafficSignal(FAST, SimGpio(), SystemClock()) as signal:
            with pytest.raises(ValueError, match="heartbeat pin"):
                LaneWatchdog(WatchdogConfig(heartbeat_pin=HEARTBEAT), signal)

    asyncio.run(main())


def test_a_full_notify_queue_drops_instead_of_blocking(notify_socket: tuple[socket.socket, str]) -> None:
    _, path = notify_socket
    n = SystemdNotifier(path)
    started = time.monotonic()
    results = [n.ping() for _ in range(50)]  # nobody reads: the kernel queue fills up
    assert time.monotonic() - started < 1.0
    assert results[0]
    assert not results[-1]
    assert n.counters["notify_dropped"] >= 1
    n.close()
