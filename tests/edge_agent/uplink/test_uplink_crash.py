"""Crash proofs: SIGKILL mid-burst, crash between commit and publish; nothing committed is lost."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.edge_agent.uplink.agent import LANE, SITE, agent, mqtt_cfg, plate_index
from tests.mosquitto import Central, Mosquitto, Received, async_test

BASE = f"lanes/{SITE}/{LANE}"
ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture
def spawn() -> Iterator[Callable[..., subprocess.Popen[str]]]:
    procs: list[subprocess.Popen[str]] = []

    def start(*args: object) -> subprocess.Popen[str]:
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        p = subprocess.Popen(
            [sys.executable, "-m", "tests.edge_agent.uplink.agent_child", *map(str, args)],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        procs.append(p)
        return p

    yield start
    for p in procs:
        if p.poll() is None:
            p.kill()
        p.wait()
        for f in (p.stdout, p.stderr):
            if f is not None:
                f.close()


def _pending(db: Path) -> dict[str, bytes]:
    conn = sqlite3.connect(db)
    try:
        return {
            str(m): bytes(p)
            for m, p in conn.execute("SELECT msg_id, payload FROM outbox WHERE kind = 'passage'")
        }
    finally:
        conn.close()


def _passages(msgs: list[Received]) -> list[bytes]:
    return [m.payload for m in msgs if m.topic == f"{BASE}/passage"]


def _ids(raw: list[bytes]) -> set[str]:
    return {json.loads(r)["passage_id"] for r in raw}


def test_sigkill_mid_burst_then_restart_loses_nothing(
    tmp_path: Path,
    mosquitto: Mosquitto,
    central: Callable[..., Central],
    spawn: Callable[..., subprocess.Popen[str]],
) -> None:
    c = central(mosquitto, (f"{BASE}/passage", f"{BASE}/availability"))
    db = tmp_path / "lane.sqlite3"
    child = spawn(db, mosquitto.url, "burst", 0, 400)
    assert child.stdout is not None
    printed: list[int] = []
    for line in child.stdout:
        if line.startswith("committed"):
            printed.append(int(line.split()[1]))
            if len(printed) == 150:
                child.send_signal(signal.SIGKILL)  # the agent dies mid-burst, mid-flight
                break
    assert child.wait(10) == -signal.SIGKILL
    # the broker notices the dead connection and publishes the last will
    c.wait_for(lambda m: any(x.topic.endswith("/availability") and b'"offline"' in x.payload for x in m), 10)
    will = [x.json() for x in c.messages if x.topic.endswith("/availability")][-1]
    assert (will["state"], will["reason"]) == ("offline", "connection_lost")

    time.sleep(0.3)
    before = _passages(c.messages)
    pending = _pending(db)
    committed = _ids(before) | set(pending)
    assert {f"T{i:05d}" for i in printed} <= {
        json.loads(p)["vehicle"]["plate"] for p in [*before, *pending.values()]
    }
    assert pending, "the kill should leave some passages undelivered"

    # restart: the backlog goes first, then the new trucks
    again = spawn(db, mosquitto.url, "burst", 400, 20)
    out, err = again.communicate(timeout=30)
    assert again.returncode == 0, err
    assert "drained" in out
    allmsgs = c.wait_for(
        lambda m: committed <= _ids(_passages(m)) and len(_ids(_passages(m))) >= len(committed) + 20
    )
    received = _passages(allmsgs)
    assert committed <= _ids(received)  # nothing committed was lost
    first: dict[str, int] = {}
    for raw in received:
        first.setdefault(json.loads(raw)["passage_id"], plate_index(raw))
    order = list(first.values())
    assert order == sorted(order)  # in order, across the crash
    by_id: dict[str, bytes] = {}
    for raw in received:  # duplicates only as the very same message
        assert by_id.setdefault(json.loads(raw)["passage_id"], raw) == raw
    assert _pending(db) == {}


@async_test
async def test_crash_between_commit_and_publish(
    tmp_path: Path,
    mosquitto: Mosquitto,
    central: Callable[..., Central],
    spawn: Callable[..., subprocess.Popen[str]],
) -> None:
    c = central(mosquitto, (f"{BASE}/passage",))
    db = tmp_path / "lane.sqlite3"
    child = spawn(db, mosquitto.url, "commit_then_die", 0, 25)
    child.communicate(timeout=30)
    assert child.returncode == -signal.SIGKILL
    pending = _pending(db)
    assert len(pending) == 25  # committed, never published
    assert c.messages == []
    async with agent(db, mqtt_cfg(mosquitto.url)) as up:  # the agent comes back
        assert await up.wait_connected(5)
        got = await c.await_for(lambda m: len(m) >= 25)
        assert await up.wait_drained(5)
    assert [plate_index(m.payload) for m in got] == list(range(25))
    assert _ids([m.payload for m in got]) == set(pending)
