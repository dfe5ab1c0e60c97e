"""Where a Modbus device is (its URL) and what its line can carry (pure, no I/O).

URLs::

    tcp://HOST[:PORT]                                    Modbus TCP (port 502 by default)
    rtu:///dev/ttyUSB0?baud=19200&parity=N&stopbits=1    Modbus RTU on a serial port (or a pty path)

RTU timing follows the Modbus serial line spec: a character is 11 bits on the wire, frames are
separated by at least 3.5 character times (a fixed 1.75 ms above 19200 baud), and a slave answers
no sooner than one such gap after the request. :func:`transaction_time` is the least time one
request/response pair occupies the line; a poll cycle can never be shorter than the sum over its
requests.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from drivers.errors import ConfigError
from drivers.modbus.regmap import ReadRequest

BITS_PER_CHAR = 11
_BAUDS = (1200, 2400, 4800, 9600, 14400, 19200, 38400, 57600, 115200, 230400)


@dataclass(frozen=True, slots=True)
class Endpoint:
    """A parsed device URL."""

    scheme: str  # "tcp" or "rtu"
    host: str = ""  # tcp
    port: int = 502  # tcp
    device: str = ""  # rtu: serial device path (a pty path works)
    baud: int = 19200
    parity: str = "N"
    stopbits: int = 1
    bytesize: int = 8

    @property
    def is_serial(self) -> bool:
        """True for RTU."""
        return self.scheme == "rtu"

    @property
    def line(self) -> str:
        """Serial settings as a technician writes them, e.g. ``19200 8N1``."""
        return f"{self.baud} {self.bytesize}{self.parity}{self.stopbits}"

    def describe(self) -> str:
        """Where the device is, for messages."""
        if self.is_serial:
            return f"{self.device} at {self.line}"
        return f"{self.host}:{self.port}"


def parse_url(url: str) -> Endpoint:
    """Parse a ``tcp://`` or ``rtu://`` device URL; raise :class:`ConfigError` naming what is wrong."""
    parts = urlsplit(url)
    if parts.scheme == "tcp":
        if not parts.hostname:
            raise ConfigError(f"{url!r}: a tcp URL needs a host, e.g. tcp://192.0.2.10:502")
        try:
            port = parts.port or 502
        except ValueError as exc:
            raise ConfigError(f"{url!r}: bad port ({exc})") from None
        if parts.query:
            raise ConfigError(f"{url!r}: a tcp URL takes no options")
        return Endpoint("tcp", host=parts.hostname, port=port)
    if parts.scheme == "rtu":
        if parts.netloc or not parts.path:
            raise ConfigError(f"{url!r}: an rtu URL names a device path, e.g. rtu:///dev/ttyUSB0?baud=19200")
        opts = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        unknown = set(opts) - {"baud", "parity", "stopbits", "bytesize"}
        if unknown:
            raise ConfigError(
                f"{url!r}: unknown option(s) {sorted(unknown)}; use baud, parity, stopbits, bytesize"
            )
        try:
            baud = int(opts.get("baud", "19200"))
            stopbits = int(opts.get("stopbits", "1"))
            bytesize = int(opts.get("bytesize", "8"))
        except ValueError:
            raise ConfigError(f"{url!r}: baud, stopbits and bytesize are integers") from None
        parity = opts.get("parity", "N").upper()
        if baud not in _BAUDS:
            raise ConfigError(f"{url!r}: baud {baud} is not one of {list(_BAUDS)}")
        if parity not in ("N", "E", "O") or stopbits not in (1, 2) or bytesize not in (7, 8):
            raise ConfigError(f"{url!r}: parity N/E/O, stopbits 1/2, bytesize 7/8")
        return Endpoint(
            "rtu", device=parts.path, baud=baud, parity=parity, stopbits=stopbits, bytesize=bytesize
        )
    raise ConfigError(f"{url!r}: scheme must be tcp:// or rtu://")


def char_time(baud: int) -> float:
    """Seconds one character occupies the line."""
    return BITS_PER_CHAR / baud


def frame_gap(baud: int) -> float:
    """Return the silent interval that ends a frame: 3.5 characters, fixed 1.75 ms above 19200 baud."""
    return 0.00175 if baud > 19200 else 3.5 * char_time(baud)


def request_bytes(req: ReadRequest) -> tuple[int, int]:
    """RTU bytes of a read request and of its normal response: (out, back)."""
    payload = math.ceil(req.count / 8) if req.table.is_bits else 2 * req.count
    return 8, 5 + payload


def transaction_time(req: ReadRequest, baud: int) -> float:
    """Least line time of one read at ``baud``: both frames plus the two gaps that follow them."""
    out, back = request_bytes(req)
    return (out + back) * char_time(baud) + 2 * frame_gap(baud)


def cycle_time(plan: Iterable[ReadRequest], endpoint: Endpoint) -> float:
    """Least line time of one poll cycle (0 for TCP, whose line is not the bottleneck)."""
    if not endpoint.is_serial:
        return 0.0
    return sum(transaction_time(r, endpoint.baud) for r in plan)


def _serial_problem(device: str) -> str:
    dev = Path(device)
    if not dev.exists():
        return f"no such device {device} (unplugged or renamed: check the cable and udev rules)"
    if not os.access(dev, os.R_OK | os.W_OK):
        return f"permission denied on {device} (the service user needs the 'dialout' group)"
    return f"{device} exists but would not open (in use by another program?)"


async def why_not_open(endpoint: Endpoint, timeout_s: float) -> str:
    """Name the real reason a link would not open: no such device, name lookup, refused, timeout...

    Called after a failed connect (the Modbus client says only that it failed). For TCP it resolves
    the name and tries one plain TCP connection; for a serial line it looks at the device node.
    """
    if endpoint.is_serial:
        return _serial_problem(endpoint.device)
    loop = asyncio.get_running_loop()
    try:
        await loop.getaddrinfo(endpoint.host, endpoint.port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        return (
            f"name lookup failed for {endpoint.host!r}: {exc.strerror} (check the name or use the IP address)"
        )
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(endpoint.host, endpoint.port), timeout_s)
    except ConnectionRefusedError:
        return (
            f"connection refused by {endpoint.host}:{endpoint.port}: nothing listens there "
            "(wrong port, or the device's Modbus TCP server is off)"
        )
    except TimeoutError:
        return (
            f"no answer from {endpoint.host}:{endpoint.port} within {timeout_s:g} s "
            "(host down or unplugged, wrong IP address, or a firewall)"
        )
    except OSError as exc:
        return f"{exc.strerror or exc} ({endpoint.host}:{endpoint.port}: check the network cable and address)"
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return f"{endpoint.host}:{endpoint.port} accepts TCP connections but the Modbus client could not open it"
