"""Plain ASCII tag readers: one line ``EPC[,antenna,rssi]`` per read, LF or CR LF terminated.

Pure: :meth:`LineParser.feed` takes any bytes and never raises. Lines that are not a read are counted
(``bad_lines``, with the last reason in ``last_error``); over-long lines are dropped up to the next
newline and their bytes counted as junk.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

MAX_LINE = 256
_EPC = re.compile(r"^(?:[0-9A-Fa-f]{2}){2,62}$")


@dataclass(frozen=True, slots=True)
class AsciiTag:
    """One tag read reported on a line; ``antenna``/``rssi_dbm`` are ``None`` when not given."""

    epc: str  # upper-case hex
    antenna: int | None
    rssi_dbm: float | None


def encode_line(epc: str, antenna: int | None = None, rssi_dbm: float | None = None) -> bytes:
    """One line as such a reader sends it (the simulator speaks with this)."""
    if not _EPC.match(epc):
        raise ValueError(f"EPC {epc!r} is not 2-62 bytes of hex")
    if (antenna is None) != (rssi_dbm is None):
        raise ValueError("give both antenna and rssi, or neither")
    if antenna is None:
        return f"{epc.upper()}\n".encode("ascii")
    return f"{epc.upper()},{antenna},{rssi_dbm:g}\n".encode("ascii")


def parse_line(line: str) -> AsciiTag | str:
    """One line without its terminator: the read, or the reason it is not one."""
    fields = [f.strip() for f in line.split(",")]
    epc = fields[0]
    if not _EPC.match(epc):
        return f"EPC {epc[:32]!r} is not 2-62 bytes of hex"
    if len(fields) == 1:
        return AsciiTag(epc.upper(), None, None)
    if len(fields) != 3:
        return f"{len(fields)} fields, expected EPC or EPC,antenna,rssi"
    if not fields[1].isdigit() or not 1 <= int(fields[1]) <= 64:
        return f"antenna {fields[1][:16]!r} is not 1-64"
    try:
        rssi = float(fields[2])
    except ValueError:
        return f"rssi {fields[2][:16]!r} is not a number"
    if not math.isfinite(rssi) or not -150.0 <= rssi <= 20.0:
        return f"rssi {rssi} dBm out of range"
    return AsciiTag(epc.upper(), int(fields[1]), rssi)


class LineParser:
    """Streaming line splitter for ASCII readers; never raises."""

    def __init__(self, max_line: int = MAX_LINE) -> None:
        self._buf = bytearray()
        self._max = max_line
        self._skipping = False  # inside an over-long line: drop up to the next newline
        self.lines = 0
        self.bad_lines = 0
        self.junk_bytes = 0
        self.last_error = ""

    @property
    def pending(self) -> int:
        """Bytes held while waiting for the end of a line."""
        return len(self._buf)

    def feed(self, data: bytes | bytearray) -> list[AsciiTag]:
        """Add bytes; return the reads of every line they complete."""
        out: list[AsciiTag] = []
        self._buf += data
        while True:
            nl = self._buf.find(b"\n")
            if nl < 0:
                if len(self._buf) > self._max:
                    self.junk_bytes += len(self._buf)
                    self._buf.clear()
                    if not self._skipping:
                        self._skipping = True
                        self._bad(f"line longer than {self._max} bytes")
                break
            raw = bytes(self._buf[:nl])
            del self._buf[: nl + 1]
            if self._skipping:
                self.junk_bytes += len(raw) + 1
                self._skipping = False
                continue
            self._line(raw, out)
        return out

    def _line(self, raw: bytes, out: list[AsciiTag]) -> None:
        raw = raw.rstrip(b"\r")
        if not raw.strip():
            return  # blank lines are keep-alives, not errors
        if len(raw) > self._max:
            self.junk_bytes += len(raw)
            self._bad(f"line longer than {self._max} bytes")
            return
        try:
            text = raw.decode("ascii")
        except UnicodeDecodeError:
            self.junk_bytes += len(raw)
            self._bad("non-ASCII bytes")
            return
        got = parse_line(text)
        if isinstance(got, str):
            self._bad(got)
            return
        self.lines += 1
        out.append(got)

    def _bad(self, reason: str) -> None:
        self.bad_lines += 1
        self.last_error = reason
