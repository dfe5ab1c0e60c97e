"""What a UHF (EPC Gen2) tag read can physically be. Pure, no I/O; both reader backends use it.

A read that no tag and no reader could produce is bad data, not a read: a decoded RSSI above 0 dBm
(an R2000 RSSI byte of 0xFF decodes to +126 dBm, louder than the reader's own transmitter), an RSSI
below any receiver's sensitivity, an EPC that is not whole 16-bit words or longer than the 31 words a
Gen2 protocol-control word can announce, an antenna port the reader does not have or was not asked to
inventory. :func:`read_problem` says what is wrong with one read, or ``None``.
"""

from __future__ import annotations

import math
import re

RSSI_MAX_DBM = 0.0
"""Nothing a passive tag backscatters reaches the receiver at 1 mW or more (real reads: -20 dBm and below)."""
RSSI_MIN_DBM = -100.0
"""Below the receive sensitivity of any UHF RFID reader (about -70 to -95 dBm)."""
EPC_MAX_WORDS = 31
"""The PC word's 5-bit length field: an EPC is 1 to 31 16-bit words (16 to 496 bits)."""

_HEX_WORDS = re.compile(r"^(?:[0-9A-F]{4})+$")


def epc_problem(epc: str) -> str | None:
    """What is wrong with ``epc`` (upper-case hex) as a Gen2 EPC, or ``None``."""
    if not _HEX_WORDS.match(epc):
        return f"EPC {epc[:32]!r} is not whole 16-bit words of hex"
    words = len(epc) // 4
    if words > EPC_MAX_WORDS:
        return f"EPC of {words * 16} bits is longer than Gen2's {EPC_MAX_WORDS * 16}"
    return None


def rssi_problem(rssi_dbm: float) -> str | None:
    """What is wrong with ``rssi_dbm`` as a tag's received strength, or ``None``."""
    if not math.isfinite(rssi_dbm):
        return f"RSSI {rssi_dbm} is not a number"
    if rssi_dbm > RSSI_MAX_DBM:
        return f"RSSI {rssi_dbm:+g} dBm is above {RSSI_MAX_DBM:g} dBm: no passive tag is that loud"
    if rssi_dbm < RSSI_MIN_DBM:
        return f"RSSI {rssi_dbm:g} dBm is below {RSSI_MIN_DBM:g} dBm: no reader hears that"
    return None


def read_problem(
    epc: str, antenna: int | None, rssi_dbm: float | None, *, antennas: tuple[int, ...] | None = None
) -> str | None:
    """What makes this read impossible, or ``None``; ``antennas`` = the ports reads may come from.

    ``antenna``/``rssi_dbm`` of ``None`` (a reader that does not say) are not judged.
    """
    problem = epc_problem(epc)
    if problem is None and rssi_dbm is not None:
        problem = rssi_problem(rssi_dbm)
    if problem is None and antenna is not None and antennas is not None and antenna not in antennas:
        ports = ", ".join(str(a) for a in antennas)
        problem = f"antenna {antenna} is not one of the reader's ports in use ({ports})"
    return problem
