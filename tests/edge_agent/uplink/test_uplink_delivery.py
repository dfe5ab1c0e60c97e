"""Store-and-forward against a real Mosquitto: order, PUBACK-gated deletes, outage, pacing."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from edge_agent.health import DeviceState
from edge_agent.schemas import validate
from tests.edge_agent.uplink.agent import LANE, SITE, agent, commit_passages, mqtt_cfg, passage, plate_index
from tests.mosquitto import Central, Mosquitto, async_test

BASE = f"lanes/{SITE}/{LANE}"


def _first_occurrences(msgs: list[bytes]) -> list[int]:
    seen: dict[str, int] = {}
    for raw in msgs:
        body = json.loads(raw)
        seen.setdefault(body["passage_id"], plate_index(raw))
    return list(seen.values())


def _same_id_same_payload(msgs: list[bytes]) -> None:
    by_id: dict[str, bytes] = {}
    for raw in msgs:
        pid = json.loads(raw)["passage_id"]
        assert by_id.setdefault(pid, raw) == raw, "a duplicate must be the very same message"


@pytest.mark.parametrize("protocol", ["3.1.1", "5"])
def test_delivers_in_order_and_deletes_after_puback(
    protocol: str, tmp_path: Path, mosquitto: Mosquitto, central: Callable[..., Central]
) -> None:
    c = central(mosquitto, (f"{BASE}/#",), protocol=protocol)

    @async_test
    async def run() -> None:
        async with agent(
            tmp_path / "lane.sqlite3", mqtt_cfg(mosquitto.url, protocol=protocol, inflight=8)
        ) as up:
            assert await up.wait_connected(5)
            payloads = [passage(i) for i in range(60)]
            await commit_passages(up.store, up.outbox, up.topic("passage"), payloads)
            up.kick()
            got = await c.await_for(lambda m: len([x for x in m if x.topic.endswith("/passage")]) >= 60)
            assert await up.wait_drained(5)
            stats = await up.outbox.stats()
            assert stats.delivered["passage"] == 60
            assert stats.pending == {}
            health = up.health()
            assert health.state is DeviceState.UP
            assert health.counters["acked"] >= 60
        passages = [m.payload for m in got if m.topic == f"{BASE}/passage"]
        assert [plate_index(p) for p in passages] == list(range(60))
        for raw in passages:
            validate("passage", json.loads(raw))
        avail = [m for m in c.messages if m.topic == f"{BASE}/availability"]
        assert avail[0].json()["state"] == "online"
        validate("availability", avail[0].json())
        # the clean close published a retained offline
        offline = c.wait_for(
            lambda m: any(x.topic.endswith("/availability") and b"offline" in x.payload for x in m)
        )
        last = [m for m in offline if m.topic.endswith("/availability")][-1].json()
        assert (last["state"], last["reason"]) == ("offline", "shutdown")

    run()


@async_test
async def test_broker_outage_then_everything_arrives_in_order(
    tmp_path: Path, mosquitto: Mosquitto, central: Callable[..., Central]
) -> None:
    c = central(mosquitto, (f"{BASE}/passage",))
    async with agent(tmp_path / "lane.sqlite3", mqtt_cfg(mosquitto.url)) as up:
        assert await up.wait_connected(5)
        await commit_passages(up.store, up.outbox, up.topic("passage"), [passage(i) for i in range(20)])
        up.kick()
        await c.await_for(lambda m: len(m) >= 20)

        mosquitto.stop()  # the link goes down while trucks keep passing
        t0 = time.monotonic()
        while up.connected and time.monotonic() - t0 < 5:
            await _tick()
        assert not up.connected
        for i in range(20, 70):
            await commit_passages(up.store, up.outbox, up.topic("passage"), [passage(i)])
            up.kick()
        assert await up.outbox.pending_count() == 50
        assert up.health().state is DeviceState.DOWN
        await _tick(1.5)  # a "minute" of outage, shortened
        mosquitto.start()

        got = await c.await_for(lambda m: len({json.loads(x.payload)["passage_id"] for x in m}) >= 70, 15)
        assert await up.wait_drained(5)
        assert up.health().counters["disconnects"] >= 1
        assert up.health().counters["connects"] >= 2
    raw = [m.payload for m in got]
    assert _first_occurrences(raw) == list(range(70))
    _same_id_same_payload(raw)


@async_test
async def test_paced_replay_of_a_backlog(
    tmp_path: Path, mosquitto: Mosquitto, central: Callable[..., Central]
) -> None:
    c = central(mosquitto, (f"{BASE}/passage",))
    cfg = mqtt_cfg(mosquitto.url, replay_rate_per_s=100, replay_burst=10)
    async with agent(tmp_path / "lane.sqlite3", cfg, start=False) as up:
        await commit_passages(up.store, up.outbox, up.topic("passage"), [passage(i) for i in range(110)])
        await up.start()  # a backlog waits at start-up, as after an outage
        got = await c.await_for(lambda m: len(m) >= 110, 10)
        assert up.health().counters["paced"] > 0
    spread = got[-1].at - got[0].at
    assert spread >= 0.8, f"110 messages at 100/s with a burst of 10 took only {spread:.2f} s"
    assert [plate_index(m.payload) for m in got] == list(range(110))


@async_test
async def test_failover_to_the_next_broker(
    tmp_path: Path, mosquitto: Mosquitto, central: Callable[..., Central]
) -> None:
    from tests.mosquitto import free_port

    c = central(mosquitto, (f"{BASE}/passage",))
    dead = f"mqtt://127.0.0.1:{free_port()}"
    async with agent(tmp_path / "lane.sqlite3", mqtt_cfg(dead, mosquitto.url)) as up:
        assert await up.wait_connected(5)
        assert up.broker_url == mosquitto.url
        assert up.health().counters["connect_failures"] >= 1
        await commit_passages(up.store, up.outbox, up.topic("passage"), [passage(0)])
        up.kick()
        await c.await_for(lambda m: len(m) >= 1)


async def _tick(seconds: float = 0.05) -> None:
    import asyncio

    await asyncio.sleep(seconds)
