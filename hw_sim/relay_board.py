"""A simulated relay board with a built-in watchdog (malfunction unit), reachable across processes.

The agent opens it with the ``simboard`` GPIO backend (:mod:`drivers.gpio.simboard`) over a unix
socket. The board records every change of its relay contacts with a time, and models the external
fail-safe a real lane has: when the heartbeat output stops toggling for ``timeout_ms`` -- or the
agent's connection drops (its process died) -- the board *trips*: every ``fail_on`` output (the red
lamp, the lane-closed sign) is forced on and every other output off, whatever the agent commands.
Until the first heartbeat toggle the board is tripped too ("no heartbeat yet"), as a malfunction unit
holds the lane red while its controller starts. ``latch=True`` keeps it tripped until :meth:`reset`.

Lamp read-back: ``readback`` wires an output to an input that follows the contact's real state;
:meth:`cut_readback` models a dead lamp and :meth:`drive` a welded contact.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from drivers.gpio.simboard import decode_message, encode_message

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class BoardChange:
    """One change of a relay contact (``cause``: "agent", "watchdog", "disconnect", "reset", ...)."""

    pin: int
    value: bool
    at: float
    cause: str


class RelayBoard:
    """The relay board server: ``async with RelayBoard(path, ...) as board``."""

    def __init__(
        self,
        socket_path: str | Path,
        *,
        heartbeat_pin: int | None = None,
        timeout_ms: int = 500,
        fail_on: Iterable[int] = (),
        readback: Mapping[int, int] | None = None,
        latch: bool = False,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if timeout_ms <= 0:
            raise ValueError("timeout_ms must be positive")
        self.path = str(socket_path)
        self.heartbeat_pin = heartbeat_pin
        self.timeout_s = timeout_ms / 1000.0
        self.fail_on = frozenset(fail_on)
        self.latch = latch
        self._clock = clock
        self._readback = dict(readback or {})
        self._cut: set[int] = set()
        self._commanded: dict[int, bool] = {}
        self._effective: dict[int, bool] = {}
        self._inputs: dict[int, bool] = {}
        self._last_toggle: float | None = None
        self.tripped: str | None = "no heartbeat yet" if heartbeat_pin is not None else None
        self.trips: list[tuple[float, str]] = []
        self.history: list[BoardChange] = []
        self.bad_lines = 0
        self.connections = 0
        self._writer: asyncio.StreamWriter | None = None
        self._server: asyncio.Server | None = None
        self._watchdog: asyncio.Task[None] | None = None
        self._handlers: set[asyncio.Task[object]] = set()
        self._writers: set[asyncio.StreamWriter] = set()
        self._changed = asyncio.Event()

    async def __aenter__(self) -> RelayBoard:
        """Listen on the socket and start the watchdog."""
        self._server = await asyncio.start_unix_server(self._serve, path=self.path)
        if self.heartbeat_pin is not None:
            self._watchdog = asyncio.create_task(self._watch_heartbeat(), name="relay-board-watchdog")
        return self

    async def __aexit__(self, *exc: object) -> None:
        """Stop serving (safe twice)."""
        await self.close()

    async def close(self) -> None:
        """Stop the watchdog, stop accepting, drop the client, remove the socket. Idempotent."""
        if self._watchdog is not None:
            self._watchdog.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watchdog
            self._watchdog = None
        server, self._server = self._server, None
        if server is not None:
            server.close()
        self._writer = None
        for _ in range(5):  # connections accepted just before the close get their handler started too
            for _ in range(20):
                await asyncio.sleep(0)
            handlers = list(self._handlers)
            if not handlers:
                break
            for writer in list(self._writers):
                writer.close()  # each handler then reads EOF and ends on its own
            _, stuck = await asyncio.wait(handlers, timeout=2.0)
            for task in stuck:
                task.cancel()
            await asyncio.gather(*handlers, return_exceptions=True)
        if server is not None:
            await server.wait_closed()
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.path)

    # --- what a test observes -------------------------------------------------------------
    def level(self, pin: int) -> bool:
        """Return the real state of an output contact (after the watchdog), or an input's level."""
        if pin in self._effective:
            return self._effective[pin]
        return self._inputs.get(pin, False)

    def commanded(self, pin: int) -> bool:
        """Return what the agent last commanded on an output."""
        return self._commanded.get(pin, False)

    async def wait_for(self, predicate: Callable[[], bool], within_s: float) -> bool:
        """Wait until ``predicate()`` holds after some change, at most ``within_s`` seconds."""
        deadline = time.monotonic() + within_s
        while not predicate():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), remaining)
        return True

    # --- what a test drives ---------------------------------------------------------------
    def drive(self, pin: int, value: bool) -> None:
        """Set an input's level (e.g. a welded contact's read-back) and tell the agent."""
        self._set_input(pin, value)

    def cut_readback(self, output: int) -> None:
        """Kill the lamp on ``output``: its read-back input stops following the contact."""
        self._cut.add(output)

    def reset(self) -> None:
        """Reset a trip, as a technician does at a latched board."""
        if self.tripped is not None:
            self.tripped = None
            self._recompute("reset")

    # --- the board's own logic ----------------------------------------------------------
    def _trip(self, reason: str) -> None:
        if self.tripped is None:
            self.tripped = reason
            self.trips.append((self._clock(), reason))
            log.warning("relay board tripped: %s", reason)
            self._recompute(reason.split(":")[0])

    def _recompute(self, cause: str) -> None:
        now = self._clock()
        for pin, commanded in self._commanded.items():
            value = commanded
            if self.tripped is not None and pin != self.heartbeat_pin:
                value = pin in self.fail_on
            if self._effective.get(pin) != value:
                self._effective[pin] = value
                self.history.append(BoardChange(pin, value, now, cause))
                wired = self._readback.get(pin)
                if wired is not None and pin not in self._cut:
                    self._set_input(wired, value)
        self._changed.set()

    def _set_input(self, pin: int, value: bool) -> None:
        if self._inputs.get(pin) == value:
            return
        self._inputs[pin] = value
        self._changed.set()
        if self._writer is not None and not self._writer.is_closing():
            self._writer.write(encode_message("level", pin=pin, value=value))

    def _heartbeat_toggled(self) -> None:
        self._last_toggle = self._clock()
        starting = self.tripped == "no heartbeat yet"  # the start-up hold is not a latched trip
        if self.tripped is not None and (starting or not self.latch):
            self.tripped = None
            self._recompute("heartbeat")

    async def _watch_heartbeat(self) -> None:
        step = min(0.01, self.timeout_s / 10)
        while True:
            await asyncio.sleep(step)
            last = self._last_toggle
            if last is not None and self._clock() - last > self.timeout_s:
                self._trip(f"watchdog: no heartbeat toggle for {self.timeout_s * 1000:.0f} ms")

    def _apply(self, msg: dict[str, object]) -> None:
        op, pin = msg["op"], msg.get("pin")
        if op == "setup_output" and isinstance(pin, int):
            self._commanded[pin] = bool(msg["initial"])
            self._recompute("agent")
        elif op == "write" and isinstance(pin, int):
            before = self._commanded.get(pin)
            self._commanded[pin] = bool(msg["value"])
            if pin == self.heartbeat_pin and before is not None and before != msg["value"]:
                self._heartbeat_toggled()
            self._recompute("agent")
        elif op == "setup_input" and isinstance(pin, int):
            level = self._inputs.setdefault(pin, bool(msg["pull_up"]))
            if self._writer is not None:
                self._writer.write(encode_message("level", pin=pin, value=level))
        elif op == "close":
            for out in self._commanded:
                self._commanded[out] = False
            self._recompute("agent")

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._handlers.add(task)
            task.add_done_callback(self._handlers.discard)
        if self._writer is not None or self._server is None:
            writer.close()  # one controller at a time, as on a real board
            with contextlib.suppress(OSError):
                await writer.wait_closed()
            return
        self._writers.add(writer)
        self._writer = writer
        self.connections += 1
        if self.heartbeat_pin is None and self.tripped is not None and not self.latch:
            self.tripped = None
            self._recompute("connect")
        try:
            while True:
                try:
                    line = await reader.readuntil(b"\n")
                except asyncio.IncompleteReadError:
                    break
                except asyncio.LimitOverrunError:
                    self.bad_lines += 1
                    break
                try:
                    msg = decode_message(line.rstrip(b"\n"))
                except ValueError as exc:
                    self.bad_lines += 1
                    log.warning("relay board: bad line from agent (%s)", exc)
                    continue
                self._apply(msg)
        except (ConnectionError, OSError):
            pass
        finally:
            if self._writer is writer:
                self._writer = None
                self._last_toggle = None
                self._trip("disconnect: agent connection dropped")
            self._writers.discard(writer)
            writer.close()
            with contextlib.suppress(OSError, asyncio.CancelledError):
                await writer.wait_closed()  # the socket closes on the next loop turn
