"""The R2000 ("0xA0") serial protocol of widespread UHF readers: pure encoders and a streaming parser.

Frame: ``A0 | Len | Addr | Cmd | Data... | Check``; ``Len`` counts the bytes after itself including
``Check`` (``3 + len(Data)``), ``Check`` is the two's complement of the sum of every byte before it.
The same layout travels both ways, so the encoders here serve the agent (commands) and the simulator
(replies). Nothing in this module does I/O, and :meth:`FrameParser.feed` never raises.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

HEAD = 0xA0
BROADCAST = 0xFF
MAX_DATA = 252  # Len is one byte: 3 + len(data) <= 255


class Cmd(IntEnum):
    """Command codes used by the lane (the family has many more)."""

    RESET = 0x70
    GET_FIRMWARE_VERSION = 0x72
    SET_WORK_ANTENNA = 0x74
    GET_WORK_ANTENNA = 0x75
    SET_RF_POWER = 0x76
    GET_RF_POWER = 0x77
    BUFFERED_INVENTORY = 0x80
    REAL_TIME_INVENTORY = 0x89
    FAST_SWITCH_INVENTORY = 0x8A
    SESSION_INVENTORY = 0x8B
    GET_INVENTORY_BUFFER = 0x90
    GET_AND_RESET_INVENTORY_BUFFER = 0x91


class Status(IntEnum):
    """Status / error codes carried by one-byte replies."""

    SUCCESS = 0x10
    FAIL = 0x11
    ANTENNA_MISSING = 0x22
    NO_TAG = 0x36


INVENTORY_CMDS = frozenset({Cmd.REAL_TIME_INVENTORY, Cmd.SESSION_INVENTORY})
_STATUS_CMDS = frozenset({Cmd.SET_WORK_ANTENNA, Cmd.SET_RF_POWER, *INVENTORY_CMDS})


def status_name(code: int) -> str:
    """Return a readable name for a status code (``"code 0x41"`` when unknown)."""
    try:
        return Status(code).name.lower()
    except ValueError:
        return f"code 0x{code:02X}"


def checksum(data: bytes | bytearray) -> int:
    """Two's complement of the byte sum: the ``Check`` byte of a frame whose other bytes are ``data``."""
    return (-sum(data)) & 0xFF


@dataclass(frozen=True, slots=True)
class Frame:
    """One checked frame, either direction."""

    addr: int
    cmd: int
    data: bytes


def encode_frame(addr: int, cmd: int, data: bytes = b"") -> bytes:
    """Encode one frame; raises ``ValueError`` on out-of-range arguments (a programming error)."""
    if not 0 <= addr <= 0xFF or not 0 <= cmd <= 0xFF:
        raise ValueError(f"address 0x{addr:X} / command 0x{cmd:X} out of byte range")
    if len(data) > MAX_DATA:
        raise ValueError(f"{len(data)} data bytes exceed the {MAX_DATA}-byte frame limit")
    body = bytes((HEAD, 3 + len(data), addr, cmd)) + bytes(data)
    return body + bytes((checksum(body),))


def encode_command(addr: int, cmd: int, data: bytes = b"") -> bytes:
    """Encode a host-to-reader command (same layout as :func:`encode_frame`)."""
    return encode_frame(addr, cmd, data)


# ---- host -> reader commands -------------------------------------------------------------------


def real_time_inventory(addr: int, repeat: int = 1) -> bytes:
    """0x89: inventory now, reporting each tag as it is read; ``repeat`` rounds (1-255)."""
    _byte("repeat", repeat, 1)
    return encode_command(addr, Cmd.REAL_TIME_INVENTORY, bytes((repeat,)))


def session_inventory(addr: int, session: int, target: str, repeat: int = 1) -> bytes:
    """0x8B: inventory with Gen2 ``session`` (0-3) and ``target`` ("A" or "B")."""
    if session not in (0, 1, 2, 3) or target not in ("A", "B"):
        raise ValueError(f"session {session} / target {target!r} invalid")
    _byte("repeat", repeat, 1)
    return encode_command(addr, Cmd.SESSION_INVENTORY, bytes((session, 0 if target == "A" else 1, repeat)))


def set_work_antenna(addr: int, antenna: int) -> bytes:
    """0x74: select the antenna (1-based here; 0-based on the wire)."""
    if not 1 <= antenna <= 4:
        raise ValueError(f"antenna {antenna} not in 1-4")
    return encode_command(addr, Cmd.SET_WORK_ANTENNA, bytes((antenna - 1,)))


def set_rf_power(addr: int, dbm: int) -> bytes:
    """0x76 with one byte: the same output power (0-33 dBm) on every antenna."""
    if not 0 <= dbm <= 33:
        raise ValueError(f"RF power {dbm} dBm not in 0-33")
    return encode_command(addr, Cmd.SET_RF_POWER, bytes((dbm,)))


def get_firmware_version(addr: int) -> bytes:
    """0x72: ask for the firmware version (a cheap "are you there")."""
    return encode_command(addr, Cmd.GET_FIRMWARE_VERSION)


def _byte(name: str, value: int, low: int = 0) -> None:
    if not low <= value <= 0xFF:
        raise ValueError(f"{name} {value} not in {low}-255")


# ---- reader -> host replies (used by the simulator) --------------------------------------------


def pc_for(epc: bytes) -> int:
    """Return the Gen2 protocol-control word announcing ``epc``'s length in 16-bit words."""
    return (len(epc) // 2) << 11


def encode_tag_report(
    addr: int, cmd: int, antenna: int, epc_hex: str, rssi_dbm: float, freq: int = 0
) -> bytes:
    """Encode a tag report ``FreqAnt PC EPC RSSI`` (antenna 1-4, RSSI clamped to the byte's range)."""
    epc = bytes.fromhex(epc_hex)
    if len(epc) % 2 or not 2 <= len(epc) <= 62:
        raise ValueError(f"EPC {epc_hex!r} must be 2-62 bytes, whole words")
    if not 1 <= antenna <= 4 or not 0 <= freq <= 0x3F:
        raise ValueError(f"antenna {antenna} / frequency index {freq} invalid")
    rssi = min(0x7F, max(0, round(rssi_dbm) + 129))
    data = bytes((freq << 2 | (antenna - 1),)) + pc_for(epc).to_bytes(2, "big") + epc + bytes((rssi,))
    return encode_frame(addr, cmd, data)


def encode_round_end(addr: int, cmd: int, antenna: int, read_rate: int, total_reads: int) -> bytes:
    """Encode the end of an inventory round: ``AntID ReadRate(2) TotalRead(4)``."""
    data = bytes((antenna - 1,)) + (read_rate & 0xFFFF).to_bytes(2, "big")
    return encode_frame(addr, cmd, data + (total_reads & 0xFFFFFFFF).to_bytes(4, "big"))


def encode_status(addr: int, cmd: int, code: int) -> bytes:
    """Encode a one-byte status reply (0x10 success, else an error code)."""
    return encode_frame(addr, cmd, bytes((code & 0xFF,)))


def encode_firmware_version(addr: int, major: int, minor: int) -> bytes:
    """Encode the reply to 0x72."""
    return encode_frame(addr, Cmd.GET_FIRMWARE_VERSION, bytes((major & 0xFF, minor & 0xFF)))


# ---- decoding ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TagReport:
    """One tag singulated during an inventory round."""

    addr: int
    cmd: int
    antenna: int  # 1-based
    freq_index: int
    pc: int
    epc: str  # upper-case hex
    rssi_dbm: int


@dataclass(frozen=True, slots=True)
class RoundEnd:
    """An inventory round finished."""

    addr: int
    cmd: int
    antenna: int
    read_rate: int
    total_reads: int


@dataclass(frozen=True, slots=True)
class StatusReply:
    """A one-byte status (success or error code) answering ``cmd``."""

    addr: int
    cmd: int
    code: int

    @property
    def ok(self) -> bool:
        """True for 0x10 (success)."""
        return self.code == Status.SUCCESS

    @property
    def name(self) -> str:
        """Readable code name."""
        return status_name(self.code)


@dataclass(frozen=True, slots=True)
class FirmwareVersion:
    """Reply to 0x72."""

    addr: int
    major: int
    minor: int

    @property
    def cmd(self) -> int:
        """The command this answers (0x72)."""
        return int(Cmd.GET_FIRMWARE_VERSION)


@dataclass(frozen=True, slots=True)
class OtherReply:
    """A well-formed frame the lane does not interpret."""

    addr: int
    cmd: int
    data: bytes


@dataclass(frozen=True, slots=True)
class Malformed:
    """A frame with a good checksum whose content makes no sense for its command."""

    addr: int
    cmd: int
    data: bytes
    reason: str


Reply = TagReport | RoundEnd | StatusReply | FirmwareVersion | OtherReply | Malformed


def decode_reply(frame: Frame) -> Reply:
    """Interpret a reader-to-host frame; never raises."""
    a, c, d = frame.addr, frame.cmd, frame.data
    if c in INVENTORY_CMDS:
        if len(d) == 1:
            return StatusReply(a, c, d[0])
        if len(d) == 7:
            rate, total = int.from_bytes(d[1:3], "big"), int.from_bytes(d[3:7], "big")
            return RoundEnd(a, c, (d[0] & 3) + 1, rate, total)
        if len(d) < 4:
            return Malformed(a, c, d, f"inventory reply of {len(d)} bytes")
        pc = int.from_bytes(d[1:3], "big")
        epc = d[3:-1]
        declared = ((pc >> 11) & 0x1F) * 2
        if declared != len(epc) or not epc:
            return Malformed(a, c, d, f"PC declares {declared} EPC bytes, frame carries {len(epc)}")
        return TagReport(a, c, (d[0] & 3) + 1, d[0] >> 2, pc, epc.hex().upper(), d[-1] - 129)
    if c == Cmd.GET_FIRMWARE_VERSION:
        if len(d) == 2:
            return FirmwareVersion(a, d[0], d[1])
        return Malformed(a, c, d, f"firmware version of {len(d)} bytes")
    if c in _STATUS_CMDS and len(d) == 1:
        return StatusReply(a, c, d[0])
    return OtherReply(a, c, d)


class FrameParser:
    """Streaming frame splitter: feed any bytes, get checked frames; never raises.

    After junk or a bad checksum it resynchronises on the next ``0xA0``. ``junk_bytes`` counts bytes
    skipped while hunting for a header, ``checksum_errors`` counts frames dropped for a bad check byte.
    """

    def __init__(self) -> None:
        self._buf = bytearray()
        self.frames = 0
        self.junk_bytes = 0
        self.checksum_errors = 0

    @property
    def pending(self) -> int:
        """Bytes held while waiting for the rest of a frame."""
        return len(self._buf)

    def feed(self, data: bytes | bytearray) -> list[Frame]:
        """Add bytes; return every complete, checked frame they finish."""
        buf = self._buf
        buf += data
        out: list[Frame] = []
        while buf:
            start = buf.find(HEAD)
            if start < 0:
                self.junk_bytes += len(buf)
                buf.clear()
                break
            if start:
                self.junk_bytes += start
                del buf[:start]
            if len(buf) < 2:
                break
            length = buf[1]
            if length < 3:  # cannot hold addr, cmd and check: this 0xA0 was not a header
                self.junk_bytes += 1
                del buf[:1]
                continue
            end = length + 2
            if len(buf) < end:
                break
            if checksum(buf[: end - 1]) != buf[end - 1]:
                self.checksum_errors += 1
                del buf[:1]  # resync on the next 0xA0, which may lie inside this "frame"
                continue
            out.append(Frame(buf[2], buf[3], bytes(buf[4 : end - 1])))
            del buf[:end]
        self.frames += len(out)
        return out

    def discard_partial(self) -> int:
        """Drop a held partial frame (e.g. after a reply timeout); the bytes count as junk."""
        n = len(self._buf)
        self.junk_bytes += n
        self._buf.clear()
        return n
