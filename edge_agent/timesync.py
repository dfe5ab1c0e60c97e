"""Whether the lane's clock can be trusted: the kernel's sync status, and wall-clock jumps.

Passages and events carry UTC times that central compares across lanes and with officers' records,
so each record says whether the clock was trustworthy when it was made (``clock`` in the payload):

- ``synchronised``: the kernel's own answer (``adjtimex(2)`` read-only: not ``TIME_ERROR`` and
  ``STA_UNSYNC`` clear), which NTP daemons (systemd-timesyncd, chrony with ``rtcsync``, ntpd) keep up
  to date. A board that booted without network (no RTC on a Raspberry Pi) is unsynchronised until
  its daemon has set the clock;
- ``clock_jump``: a wall-clock step was seen (against the monotonic clock) within ``JUMP_WINDOW_S``
  before the record, so the record's times may straddle it. Each jump is also reported upstream
  (``lane.clock_jump`` event) and counted in health.

The health report's ``clock`` section adds the kernel's error estimates and, when ``chronyc`` is
installed, chrony's last offset.
"""

from __future__ import annotations

import asyncio
import ctypes
import logging
import shutil
import subprocess
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from edge_agent.clock import stop_task

JUMP_THRESHOLD_S = 1.0
"""A wall clock that moves this much more (or less) than the monotonic clock has jumped."""
SAMPLE_S = 1.0
"""How often the running agent compares the clocks."""
CHRONY_EVERY = 60
"""Samples between two asks of chrony (once a minute)."""
JUMP_WINDOW_S = 180.0
"""Records made this long after a jump are flagged (longer than a passage may stay open by default)."""

log = logging.getLogger(__name__)

TIME_ERROR = 5
STA_UNSYNC = 0x0040
STA_NANO = 0x2000


class _Timex(ctypes.Structure):
    """``struct timex`` of ``<sys/timex.h>`` (Linux; natural alignment gives the kernel's layout)."""

    _fields_ = [
        ("modes", ctypes.c_uint),
        ("offset", ctypes.c_long),
        ("freq", ctypes.c_long),
        ("maxerror", ctypes.c_long),
        ("esterror", ctypes.c_long),
        ("status", ctypes.c_int),
        ("constant", ctypes.c_long),
        ("precision", ctypes.c_long),
        ("tolerance", ctypes.c_long),
        ("time_sec", ctypes.c_long),
        ("time_usec", ctypes.c_long),
        ("tick", ctypes.c_long),
        ("ppsfreq", ctypes.c_long),
        ("jitter", ctypes.c_long),
        ("shift", ctypes.c_int),
        ("stabil", ctypes.c_long),
        ("jitcnt", ctypes.c_long),
        ("calcnt", ctypes.c_long),
        ("errcnt", ctypes.c_long),
        ("stbcnt", ctypes.c_long),
        ("tai", ctypes.c_int),
        ("_reserved", ctypes.c_int * 11),
    ]


@dataclass(frozen=True, slots=True)
class KernelClock:
    """The kernel's view of its clock (``adjtimex`` with ``modes = 0``, which changes nothing)."""

    synchronised: bool
    state: int
    """adjtimex's return: 0 TIME_OK ... 5 TIME_ERROR (unsynchronised)."""
    status: int
    """The STA_* bits."""
    maxerror_s: float
    esterror_s: float
    offset_s: float
    """The kernel PLL's remaining offset (what timesyncd/ntpd are still slewing away)."""


def kernel_clock() -> KernelClock | None:
    """Read the kernel's clock status; None where ``adjtimex`` is not available (not Linux)."""
    try:
        adjtimex = ctypes.CDLL(None, use_errno=True).adjtimex  # libc, already loaded by Python
    except (OSError, AttributeError):
        return None
    tx = _Timex()
    state = int(adjtimex(ctypes.byref(tx)))
    if state < 0:
        return None
    scale = 1e-9 if tx.status & STA_NANO else 1e-6
    return KernelClock(
        synchronised=state != TIME_ERROR and not tx.status & STA_UNSYNC,
        state=state,
        status=int(tx.status),
        maxerror_s=tx.maxerror * 1e-6,
        esterror_s=tx.esterror * 1e-6,
        offset_s=tx.offset * scale,
    )


def parse_chrony_tracking(text: str) -> dict[str, Any] | None:
    """The fields of ``chronyc -c tracking`` the health report shows; None for anything else.

    The CSV line is: reference id, name, stratum, reference time, system time offset, last offset,
    RMS offset, frequency, residual frequency, skew, root delay, root dispersion, update interval,
    leap status. Outside input: bounded, and every number must parse.
    """
    line = text.strip().splitlines()[0] if text.strip() else ""
    fields = line.split(",")
    if len(line) > 1024 or len(fields) != 14:
        return None
    try:
        stratum = int(fields[2])
        system_s, last_s, rms_s = float(fields[4]), float(fields[5]), float(fields[6])
    except ValueError:
        return None
    return {
        "reference": fields[1][:64],
        "stratum": stratum,
        "system_time_offset_s": system_s,
        "last_offset_s": last_s,
        "rms_offset_s": rms_s,
        "leap": fields[13][:32],
    }


def chrony_tracking(timeout_s: float = 1.0) -> dict[str, Any] | None:
    """Chrony's tracking figures when ``chronyc`` is installed and answers within ``timeout_s``."""
    exe = shutil.which("chronyc")
    if exe is None:
        return None
    try:
        done = subprocess.run(
            [exe, "-c", "-n", "tracking"], capture_output=True, text=True, timeout=timeout_s, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return parse_chrony_tracking(done.stdout[:4096]) if done.returncode == 0 else None


@dataclass(frozen=True, slots=True)
class ClockJump:
    """One wall-clock step: when (UTC after the step) and by how much (positive = forward)."""

    at: str
    seconds: float

    def as_event_data(self) -> dict[str, Any]:
        """The ``lane.clock_jump`` event's data."""
        return asdict(self)


class ClockWatch:
    """Samples the wall and monotonic clocks and the kernel's status; flags records around jumps.

    Call :meth:`sample` regularly (the agent does each second) and :meth:`flags` for each record;
    ``flags`` samples too, so a jump just before a record is seen by it. The clocks and the status
    reader are injectable (tests step a wall clock; the kernel's own clock cannot be stepped in CI).
    """

    def __init__(
        self,
        *,
        wall: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
        status: Callable[[], KernelClock | None] = kernel_clock,
        on_jump: Callable[[ClockJump], None] | None = None,
        status_every_s: float = 10.0,
    ) -> None:
        self._wall, self._mono, self._status_fn = wall, monotonic, status
        self.on_jump = on_jump
        self._status_every = status_every_s
        self._base = self._wall() - self._mono()
        self._status_at: float | None = None
        self._status: KernelClock | None = None
        self._last_jump_mono: float | None = None
        self.jumps: list[ClockJump] = []
        """Every jump seen (the latest 100)."""
        self.jump_count = 0
        self._task: asyncio.Task[None] | None = None
        self.chrony: dict[str, Any] | None = None
        """chrony's latest tracking figures (``chronyc -c tracking``), when chrony runs here."""

    def sample(self) -> None:
        """Compare the clocks; a jump is recorded, reported through ``on_jump``, and re-based."""
        mono = self._mono()
        wall = self._wall()
        drift = (wall - mono) - self._base
        if abs(drift) >= JUMP_THRESHOLD_S:
            jump = ClockJump(
                at=datetime.fromtimestamp(wall, UTC)
                .isoformat(timespec="milliseconds")
                .replace("+00:00", "Z"),
                seconds=round(drift, 3),
            )
            self._base = wall - mono
            self._last_jump_mono = mono
            self.jump_count += 1
            self.jumps = [*self.jumps[-99:], jump]
            if self.on_jump is not None:
                self.on_jump(jump)
        if self._status_at is None or mono - self._status_at >= self._status_every:
            self._status_at = mono
            self._status = self._status_fn()

    async def __aenter__(self) -> ClockWatch:
        """Start sampling every ``SAMPLE_S`` on the running loop."""
        self.sample()
        self._task = asyncio.get_running_loop().create_task(self._sampling(), name="clock-watch")
        return self

    async def __aexit__(self, *exc: object) -> None:
        task, self._task = self._task, None
        await stop_task(task)

    async def _sampling(self) -> None:
        ticks = 0
        while True:
            await asyncio.sleep(SAMPLE_S)
            try:
                self.sample()
            except Exception:  # a reporting callback must not stop the watch
                log.exception("clock watch: sample failed")
            if ticks % CHRONY_EVERY == 0:  # a subprocess: off the loop, and seldom
                self.chrony = await asyncio.to_thread(chrony_tracking)
            ticks += 1

    @property
    def synchronised(self) -> bool:
        """The kernel's latest answer (False when it cannot be asked: unknown is not trusted)."""
        return self._status is not None and self._status.synchronised

    def flags(self) -> dict[str, bool]:
        """The ``clock`` object a passage or event carries."""
        self.sample()
        recent = self._last_jump_mono is not None and self._mono() - self._last_jump_mono < JUMP_WINDOW_S
        return {"synchronised": self.synchronised, "clock_jump": recent}

    def status(self) -> dict[str, Any]:
        """The health report's ``clock`` section."""
        self.sample()
        k = self._status
        out: dict[str, Any] = {
            "synchronised": self.synchronised,
            "source": "kernel" if k is not None else "unknown",
            "jumps": self.jump_count,
            "last_jump": self.jumps[-1].as_event_data() if self.jumps else None,
        }
        if k is not None:
            out |= {"maxerror_s": k.maxerror_s, "esterror_s": k.esterror_s, "kernel_offset_s": k.offset_s}
        if self.chrony is not None:
            out["chrony"] = self.chrony
        return out
