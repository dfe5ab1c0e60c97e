"""Time: the kernel's sync status, wall-clock jumps against the monotonic clock, and the flags on records.

The kernel is asked for real (``adjtimex`` read-only). The host's clock cannot be stepped in a test
(it is shared, and stepping needs CAP_SYS_TIME), so jumps are made on an injected wall clock; the
passage that carries the flags is recorded through the real journal into a real SQLite outbox.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import jsonschema

from edge_agent.config.storage import StorageConfig
from edge_agent.journal import Journal
from edge_agent.store.db import Store
from edge_agent.store.outbox import Outbox, Priority
from edge_agent.timesync import (
    JUMP_WINDOW_S,
    STA_UNSYNC,
    TIME_ERROR,
    ClockJump,
    ClockWatch,
    KernelClock,
    kernel_clock,
    parse_chrony_tracking,
)

SCHEMAS = Path(__file__).resolve().parents[2] / "edge_agent" / "schemas"
UNSYNCED = KernelClock(False, TIME_ERROR, STA_UNSYNC, 16.0, 16.0, 0.0)
SYNCED = KernelClock(True, 0, 0, 0.01, 0.001, 0.0)


class Clocks:
    """A wall and a monotonic clock the test moves."""

    def __init__(self) -> None:
        self.wall = 1_800_000_000.0
        self.mono = 1000.0

    def tick(self, s: float) -> None:
        self.wall += s
        self.mono += s


def watch(clocks: Clocks, status: KernelClock | None = SYNCED) -> tuple[ClockWatch, list[ClockJump]]:
    jumps: list[ClockJump] = []
    w = ClockWatch(
        wall=lambda: clocks.wall, monotonic=lambda: clocks.mono, status=lambda: status, on_jump=jumps.append
    )
    return w, jumps


def test_the_kernel_answers_and_its_answer_is_consistent() -> None:
    k = kernel_clock()
    assert k is not None, "adjtimex is available on Linux"
    assert 0 <= k.state <= 5
    assert k.synchronised == (k.state != TIME_ERROR and not k.status & STA_UNSYNC)
    assert k.maxerror_s >= 0 and k.esterror_s >= 0


def test_a_step_of_the_wall_clock_is_a_jump_and_flags_records_for_a_while() -> None:
    clocks = Clocks()
    w, jumps = watch(clocks)
    assert w.flags() == {"synchronised": True, "clock_jump": False}
    clocks.tick(5)
    clocks.wall += 0.3  # a slew-sized drift: not a jump
    assert w.flags()["clock_jump"] is False and not jumps
    clocks.wall -= 3600.0  # stepped back an hour (a bad RTC, an NTP server's step)
    clocks.tick(1)
    assert w.flags() == {"synchronised": True, "clock_jump": True}
    assert len(jumps) == 1 and abs(jumps[0].seconds + 3600.0) < 0.5
    assert w.status()["jumps"] == 1 and w.status()["last_jump"] == jumps[0].as_event_data()
    clocks.tick(JUMP_WINDOW_S + 1)
    assert w.flags()["clock_jump"] is False
    assert len(jumps) == 1, "the watch re-bases after a jump: one step, one report"


def test_an_unknown_status_is_not_trusted() -> None:
    w, _ = watch(Clocks(), status=None)
    assert w.flags()["synchronised"] is False
    assert w.status()["source"] == "unknown"


def test_a_passage_recorded_unsynchronised_and_after_a_jump_carries_both_flags(tmp_path: Path) -> None:
    clocks = Clocks()
    w, _ = watch(clocks, status=UNSYNCED)
    clock_schema = json.loads((SCHEMAS / "passage.json").read_text())["properties"]["clock"]

    async def scenario() -> dict[str, Any]:
        store = Store(StorageConfig(path=tmp_path / "lane.sqlite3"))
        outbox = Outbox(store)
        journal = Journal(store, outbox, topic="t", priority=Priority.DECISION)
        journal.clock_flags = w.flags
        async with store, outbox:
            await journal.open()
            clocks.wall += 120.0
            clocks.tick(1)
            await journal.commit({
                "passage_id": "p-1",
                "entered_at": "2026-11-28T10:00:00.000Z",
                "decided_at": "2026-11-28T10:00:05.000Z",
                "decision": "refer",
                "reasons": [],
            })  # fmt: skip
            (msg,) = await outbox.next_batch(10)
            row = await store.read(lambda c: c.execute("SELECT payload FROM passage").fetchone()[0])
        assert json.loads(row) == json.loads(msg.payload), "the journal row and the message agree"
        sent: dict[str, Any] = json.loads(msg.payload)
        return sent

    sent = asyncio.run(scenario())
    assert sent["clock"] == {"synchronised": False, "clock_jump": True}
    jsonschema.validate(sent["clock"], clock_schema)


def test_chrony_tracking_is_parsed_and_garbage_is_refused() -> None:
    line = (
        "C0A80001,192.168.0.1,3,1764580000.123456789,-0.000012345,0.000001234,0.000023456,"
        "-12.345,0.001,0.123,0.012345678,0.000987654,64.5,Normal\n"
    )
    got = parse_chrony_tracking(line)
    assert got == {
        "reference": "192.168.0.1",
        "stratum": 3,
        "system_time_offset_s": -0.000012345,
        "last_offset_s": 0.000001234,
        "rms_offset_s": 0.000023456,
        "leap": "Normal",
    }
    assert parse_chrony_tracking("") is None
    assert parse_chrony_tracking("506 Cannot talk to daemon") is None
    assert parse_chrony_tracking(line.replace("-0.000012345", "nope")) is None
    assert parse_chrony_tracking("," * 13 + "x" * 5000) is None
