"""The ``simboard`` backend: pins of a simulated relay board in another process, over a unix socket.

Wire protocol (one JSON object per line, UTF-8): the agent sends ``setup_output`` (pin, initial),
``setup_input`` (pin, pull_up), ``write`` (pin, value) and ``close``; the board sends ``level``
(pin, value) for each input after its setup and on every change. When the agent process dies the
socket closes, which the board (``hw_sim.relay_board``) treats like a dead heartbeat.
"""

from __future__ import annotations

import contextlib
import json
import socket as _socket
import threading
from pathlib import Path
from typing import Any

from drivers.errors import DeviceDisconnected
from drivers.gpio.base import EdgeCallback

OPS = frozenset({"setup_output", "setup_input", "write", "close", "level"})
MAX_LINE = 4096


def encode_message(op: str, **fields: Any) -> bytes:
    """One protocol line: ``{"op": op, **fields}`` as compact JSON plus a newline."""
    return json.dumps({"op": op, **fields}, separators=(",", ":")).encode() + b"\n"


def decode_message(line: bytes) -> dict[str, Any]:
    """Parse one protocol line; ``ValueError`` names what is wrong (no I/O)."""
    if len(line) > MAX_LINE:
        raise ValueError(f"line of {len(line)} bytes exceeds {MAX_LINE}")
    try:
        msg = json.loads(line)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise ValueError(f"not JSON: {exc!s:.80}") from None
    if not isinstance(msg, dict) or msg.get("op") not in OPS:
        raise ValueError(f"not a board message: {line[:80]!r}")
    op = msg["op"]
    if op != "close":
        pin = msg.get("pin")
        if not isinstance(pin, int) or isinstance(pin, bool) or not 0 <= pin <= 63:
            raise ValueError(f"{op}: bad pin {pin!r}")
        key = {"setup_output": "initial", "setup_input": "pull_up", "write": "value", "level": "value"}[op]
        if not isinstance(msg.get(key), bool):
            raise ValueError(f"{op}: {key} must be true or false")
    return msg


class SimBoardGpio:
    """A :class:`~drivers.gpio.base.DigitalIO` whose pins live on a ``hw_sim`` relay board."""

    def __init__(self, *, socket: str | Path, connect_timeout_s: float = 2.0) -> None:
        self._path = str(socket)
        sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
        sock.settimeout(connect_timeout_s)
        try:
            sock.connect(self._path)
        except OSError as exc:
            sock.close()
            raise DeviceDisconnected(f"relay board at {self._path}: {exc}") from exc
        sock.settimeout(None)
        self._sock = sock
        self._send_lock = threading.Lock()
        self._lock = threading.Lock()
        self._levels: dict[int, bool] = {}
        self._outputs: set[int] = set()
        self._inputs: set[int] = set()
        self._watchers: dict[int, list[EdgeCallback]] = {}
        self._closed = False
        self._reader = threading.Thread(target=self._read_loop, name=f"simboard:{self._path}", daemon=True)
        self._reader.start()

    def _send(self, op: str, **fields: Any) -> None:
        data = encode_message(op, **fields)
        try:
            with self._send_lock:
                self._sock.sendall(data)
        except OSError as exc:
            raise DeviceDisconnected(f"relay board at {self._path}: {exc}") from exc

    def setup_output(self, pin: int, *, initial: bool = False) -> None:
        """Make ``pin`` an output at ``initial``."""
        with self._lock:
            self._outputs.add(pin)
            self._levels[pin] = initial
        self._send("setup_output", pin=pin, initial=initial)

    def setup_input(self, pin: int, *, pull_up: bool = True) -> None:
        """Make ``pin`` an input; it reads the pull level until the board reports the real one.

        Never waits for the board, so a board served on the caller's own event loop cannot deadlock.
        """
        with self._lock:
            self._inputs.add(pin)
            self._levels.setdefault(pin, pull_up)
        self._send("setup_input", pin=pin, pull_up=pull_up)

    def write(self, pin: int, value: bool) -> None:
        """Drive an output pin on the board."""
        with self._lock:
            if pin not in self._outputs:
                raise ValueError(f"pin {pin} is not set up as an output")
            self._levels[pin] = value
        self._send("write", pin=pin, value=value)

    def read(self, pin: int) -> bool:
        """Return the last level the board reported for an input (or the commanded level of an output)."""
        with self._lock:
            if pin not in self._levels:
                raise ValueError(f"pin {pin} is not set up")
            return self._levels[pin]

    def watch(self, pin: int, callback: EdgeCallback, *, debounce_ms: int = 0) -> None:
        """Call ``callback`` on each level change the board reports (runs on the reader thread)."""
        with self._lock:
            if pin not in self._inputs:
                raise ValueError(f"pin {pin} is not set up as an input")
            self._watchers.setdefault(pin, []).append(callback)

    def _read_loop(self) -> None:
        buf = b""
        while True:
            try:
                chunk = self._sock.recv(4096)
            except OSError:
                return
            if not chunk:
                return
            buf += chunk
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                try:
                    msg = decode_message(line)
                except ValueError:
                    continue  # the board is ours; a bad line is dropped, the link survives
                if msg["op"] == "level":
                    self._on_level(msg["pin"], msg["value"])

    def _on_level(self, pin: int, value: bool) -> None:
        with self._lock:
            changed = self._levels.get(pin) != value
            self._levels[pin] = value
            callbacks = list(self._watchers.get(pin, ())) if changed else []
        for cb in callbacks:
            cb(pin, value)

    def close(self) -> None:
        """Tell the board we leave (outputs go low there), close the socket. Idempotent."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        with contextlib.suppress(DeviceDisconnected):
            self._send("close")
        with contextlib.suppress(OSError):
            self._sock.shutdown(_socket.SHUT_RDWR)
        self._sock.close()
        if self._reader is not threading.current_thread():
            self._reader.join(timeout=2.0)
