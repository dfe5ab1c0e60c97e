"""One contract, every GPIO backend that can load here (gpiozero's test_real_pins in spirit).

``rpigpio`` runs only on a Raspberry Pi; its loopback tests need a jumper from an output to an input,
named by ``EDGE_AGENT_GPIO_JUMPER=OUT:IN`` (BCM), as gpiozero's real-pin tests do.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from drivers.errors import BackendUnavailable, DeviceDisconnected
from drivers.gpio import open_backend
from drivers.gpio.base import DigitalIO
from drivers.gpio.sim import SimGpio
from drivers.gpio.simboard import SimBoardGpio
from hw_sim.relay_board import RelayBoard

pytestmark = pytest.mark.timeout(30)
OUT, IN, SPARE = 20, 21, 16


@dataclass
class Backend:
    """A backend under test and, when it has one, the jumper from OUT to IN."""

    io: DigitalIO
    jumper: tuple[int, int] | None
    observe: dict[int, bool] | None = None  # what the far side saw last, where we can look


class BoardThread:
    """A RelayBoard served by its own event loop on a thread (the contract tests are synchronous)."""

    def __init__(self, path: Path) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.board = RelayBoard(path, readback={OUT: IN})
        asyncio.run_coroutine_threadsafe(self.board.__aenter__(), self.loop).result(5)

    def close(self) -> None:
        asyncio.run_coroutine_threadsafe(self.board.close(), self.loop).result(5)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()


@pytest.fixture(params=["sim", "simboard", "rpigpio"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    name = request.param
    if name == "sim":
        io = open_backend("sim", loopback={OUT: IN})
        yield Backend(io, (OUT, IN))
        io.close()
    elif name == "simboard":
        board = BoardThread(tmp_path / "board.sock")
        io = open_backend("simboard", socket=tmp_path / "board.sock")
        try:
            yield Backend(io, (OUT, IN))
        finally:
            io.close()
            board.close()
    else:
        try:
            io = open_backend("rpigpio")
        except BackendUnavailable as exc:
            pytest.skip(f"rpigpio backend unavailable here: {exc}")
        spec = os.environ.get("EDGE_AGENT_GPIO_JUMPER")
        jumper = tuple(int(p) for p in spec.split(":")) if spec else None
        yield Backend(io, (jumper[0], jumper[1]) if jumper else None)
        io.close()


def wait_until(predicate: object, timeout: float = 2.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return True
        time.sleep(0.005)
    return False


def test_output_starts_at_initial_and_follows_writes(backend: Backend) -> None:
    io = backend.io
    io.setup_output(SPARE, initial=True)
    assert io.read(SPARE) is True
    io.write(SPARE, False)
    assert io.read(SPARE) is False
    io.write(SPARE, True)
    assert io.read(SPARE) is True


def test_writing_a_pin_that_is_not_an_output_is_refused(backend: Backend) -> None:
    with pytest.raises(ValueError, match="not set up as an output"):
        backend.io.write(SPARE, True)


def test_watching_a_pin_that_is_not_an_input_is_refused(backend: Backend) -> None:
    with pytest.raises(ValueError, match="not set up as an input"):
        backend.io.watch(SPARE, lambda pin, level: None)


def test_input_follows_the_outside_world_and_edges_are_reported(backend: Backend) -> None:
    if backend.jumper is None:
        pytest.skip("no jumper: set EDGE_AGENT_GPIO_JUMPER=OUT:IN (BCM) with a wire between them")
    out, inp = backend.jumper
    io = backend.io
    io.setup_output(out, initial=False)
    io.setup_input(inp, pull_up=False)
    assert io.read(inp) is False
    edges: list[tuple[int, bool]] = []
    io.watch(inp, lambda pin, level: edges.append((pin, level)))
    io.write(out, True)
    assert wait_until(lambda: edges == [(inp, True)])
    assert io.read(inp) is True
    io.write(out, False)
    assert wait_until(lambda: edges == [(inp, True), (inp, False)])


def test_close_is_idempotent(backend: Backend) -> None:
    backend.io.setup_output(SPARE, initial=True)
    backend.io.close()
    backend.io.close()


def test_sim_records_every_change_with_its_time() -> None:
    now = [5.0]
    io = SimGpio(lambda: now[0])
    io.setup_output(OUT, initial=False)
    now[0] = 6.0
    io.write(OUT, True)
    io.write(OUT, True)  # no change, no record
    io.close()
    changes = [(c.pin, c.value, c.at) for c in io.history]
    assert changes == [(OUT, False, 5.0), (OUT, True, 6.0), (OUT, False, 6.0)]


def test_simboard_reports_a_board_that_is_not_there(tmp_path: Path) -> None:
    with pytest.raises(DeviceDisconnected, match="relay board"):
        SimBoardGpio(socket=tmp_path / "nobody.sock", connect_timeout_s=0.2)
