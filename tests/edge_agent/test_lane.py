"""The lane loop: a passage is committed (journal + outbox) before its decision is acted on."""

from __future__ import annotations

import asyncio
import contextlib
import json
import sqlite3
from pathlib import Path

from edge_agent.config import LaneConfig
from edge_agent.domain import LaneEvent, Reason
from edge_agent.journal import Journal
from edge_agent.lane import Lane, Outcome
from edge_agent.reference import ReferenceData
from edge_agent.signal_policy import Refusal
from edge_agent.store.db import Store
from edge_agent.store.outbox import Outbox, Priority
from hw_sim.player import Layout, Player
from hw_sim.scenario import generate
from tests.clocks import ManualClock
from tests.edge_agent.test_tracker import EventWorld
from tests.lanes import sim_config


class RecordingSignal:
    """A signal double that checks the store at the moment the lane acts.

    ``hold_during_commit``: the signal allows green when asked before the commit, then an officer
    hold arrives while the passage is being committed, so the grant is refused.
    """

    def __init__(self, db: Path, closed: bool = False, hold_during_commit: bool = False) -> None:
        self.db = db
        self.closed = closed
        self.held = False
        self.hold_during_commit = hold_during_commit
        self.grants: list[tuple[str, bool, bool]] = []  # (passage_id, journaled, queued upstream)
        self.revoked: list[str] = []

    def refusal(self, passage_id: str | None = None) -> Refusal | None:
        if self.closed:
            return Refusal(Reason.LANE_CLOSED, "closed")
        if self.held:
            return Refusal(Reason.OFFICER_HOLD, "held")
        return None

    def grant(self, passage_id: str) -> bool:
        with contextlib.closing(sqlite3.connect(self.db)) as conn:
            journaled = conn.execute("SELECT 1 FROM passage WHERE passage_id = ?", (passage_id,)).fetchone()
            queued = conn.execute("SELECT 1 FROM outbox WHERE msg_id = ?", (passage_id,)).fetchone()
        self.grants.append((passage_id, journaled is not None, queued is not None))
        if self.hold_during_commit:
            self.held = True
        return self.refusal(passage_id) is None

    def revoke(self, passage_id: str) -> None:
        self.revoked.append(passage_id)


def config(tmp_path: Path) -> LaneConfig:
    return sim_config(tmp_path)


async def drive(
    tmp_path: Path, trucks: int, seed: int, *, closed: bool = False, hold_during_commit: bool = False
) -> tuple[list[Outcome], RecordingSignal]:
    cfg = config(tmp_path)
    scenario = generate(trucks, seed)
    clock = ManualClock()
    signal = RecordingSignal(cfg.storage.path, closed, hold_during_commit)
    outcomes: list[Outcome] = []
    async with Store(cfg.storage) as store, Outbox(store) as outbox:
        ref = ReferenceData(store)
        await ref.load()
        await ref.apply_snapshot(scenario.reference_snapshot())
        journal = Journal(store, outbox, topic="lanes/x/y/passage", priority=Priority.DECISION)
        await journal.open()
        lane = Lane(
            cfg,
            clock=clock,
            reference=ref,
            journal=journal,
            signal=signal,
            notify_uplink=lambda: None,
            on_outcome=outcomes.append,
        )
        events: list[LaneEvent] = []
        world = EventWorld(clock, events)
        player = Player(
            scenario, Layout(), now=clock.monotonic, tags=world, loops=world, wim=world, cameras=world
        )
        task = asyncio.create_task(lane.run())
        start = clock.monotonic()
        while clock.monotonic() - start < scenario.duration_s + 5:
            player.step(clock.monotonic() - start)
            world.poll()
            events.sort(key=lambda e: e.mono)
            due = [e for e in events if e.mono <= clock.monotonic()]
            del events[: len(due)]
            for e in due:
                lane.emit(e)
            clock.advance(0.1)
            await asyncio.sleep(0)
        for _ in range(100):
            if len(signal.revoked) >= trucks:
                break
            await asyncio.sleep(0.02)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    return outcomes, signal


def test_green_only_after_commit_and_only_for_releases(tmp_path: Path) -> None:
    outcomes, signal = asyncio.run(drive(tmp_path, 12, 3))
    scenario = generate(12, 3)
    assert [o.payload["decision"] for o in outcomes] == [t.expected for t in scenario.trucks]
    released = [o.decided.passage_id for o in outcomes if o.payload["decision"] == "release"]
    assert released and [g[0] for g in signal.grants] == released
    assert all(journaled and queued for _, journaled, queued in signal.grants)
    assert sorted(signal.revoked) == sorted(o.decided.passage_id for o in outcomes)


def test_closed_lane_turns_releases_into_referrals(tmp_path: Path) -> None:
    outcomes, signal = asyncio.run(drive(tmp_path, 6, 3, closed=True))
    assert outcomes and all(o.payload["decision"] == "refer" for o in outcomes)
    assert not signal.grants
    assert any(o.payload["reasons"] == ["lane_closed"] for o in outcomes)


def test_a_hold_during_the_commit_amends_the_record_to_what_the_truck_saw(tmp_path: Path) -> None:
    outcomes, signal = asyncio.run(drive(tmp_path, 12, 3, hold_during_commit=True))
    first = [o for o in outcomes if o.decided.passage_id == signal.grants[0][0]]
    assert len(signal.grants) == 1 and len(first) == 1  # after the hold, no release is even attempted
    assert first[0].green is False
    assert first[0].decided.decision.reasons == (Reason.OFFICER_HOLD,)
    with contextlib.closing(sqlite3.connect(tmp_path / "lane.sqlite3")) as conn:
        pid = signal.grants[0][0]
        row = conn.execute("SELECT decision, reasons FROM passage WHERE passage_id = ?", (pid,)).fetchone()
        assert row == ("refer", '["officer_hold"]')
        amended = conn.execute("SELECT payload FROM outbox WHERE msg_id = ?", (f"{pid}:2",)).fetchone()
    body = json.loads(amended[0])
    assert body["revision"] == 2 and body["decision"] == "refer" and body["passage_id"] == pid
    later = [o for o in outcomes if o.decided.passage_id != pid]
    assert later and all(o.payload["decision"] == "refer" for o in later)
    assert any(o.payload["reasons"] == ["officer_hold"] for o in later)
