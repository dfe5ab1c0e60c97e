"""Health out and storage alarms, against a real Mosquitto."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from edge_agent.health import DeviceHealth, DeviceState
from edge_agent.ids import new_id
from edge_agent.schemas import validate
from edge_agent.store import Priority
from edge_agent.uplink import messages
from tests.edge_agent.uplink.agent import LANE, SITE, agent, commit_passages, mqtt_cfg, passage
from tests.mosquitto import Central, Mosquitto, async_test

BASE = f"lanes/{SITE}/{LANE}"


@async_test
async def test_periodic_health_is_valid_and_coalesced_while_offline(
    tmp_path: Path, mosquitto: Mosquitto, central: Callable[..., Central]
) -> None:
    c = central(mosquitto, (f"{BASE}/health",))
    rfid = DeviceHealth("rfid", "rfid", DeviceState.UP, "reading")
    rfid.counters["checksum_errors"] = 2

    def provider() -> dict[str, Any]:
        return {"devices": [rfid], "signal": "red", "status": {"open_passages": 0}}

    async with agent(tmp_path / "lane.sqlite3", mqtt_cfg(mosquitto.url, health_interval_s=0.15)) as up:
        up.set_health_provider(provider)
        got = await c.await_for(lambda m: len(m) >= 2, 5)
        first = got[0].json()
        validate("health", first)
        names = [d["name"] for d in first["devices"]]
        assert names == ["rfid", "uplink"]
        assert first["devices"][0]["counters"] == {"checksum_errors": 2}
        assert first["status"] == {"signal": "red", "open_passages": 0}

        mosquitto.stop()
        await asyncio.sleep(1.2)  # about 8 health ticks while offline
        stats = await up.outbox.stats()
        assert stats.pending.get("health", 0) == 1  # only the latest waits
        assert stats.coalesced >= 4
        before = len(c.messages)
        mosquitto.start()
        await asyncio.to_thread(c.wait_subscribed)
        assert await up.wait_connected(5)
        await asyncio.sleep(0.1)
    after = [m.json() for m in c.messages[before:]]
    # the backlog was one message, then the regular ticks resumed: not eight in a burst
    assert 1 <= len(after) <= 3
    last_offline = after[0]
    uplink_dev = next(d for d in last_offline["devices"] if d["name"] == "uplink")
    assert uplink_dev["state"] == "down"  # built while the link was down


@async_test
async def test_storage_quota_alarm_goes_upstream_and_clears(
    tmp_path: Path, mosquitto: Mosquitto, central: Callable[..., Central]
) -> None:
    c = central(mosquitto, (f"{BASE}/fault", f"{BASE}/passage"))
    async with agent(tmp_path / "lane.sqlite3", mqtt_cfg(mosquitto.url), quota_mb=0.25, start=False) as up:
        await commit_passages(up.store, up.outbox, up.topic("passage"), [passage(i) for i in range(3)])
        for i in range(20):  # camera evidence, bulk: the first to go when the disk quota is reached
            await up.outbox.put(
                msg_id=f"img-{i}",
                topic=f"{BASE}/image",
                payload=b"\xff" * 20000,
                priority=Priority.BULK,
                kind="image",
            )
            up.kick()
        assert up.outbox.quota_state.value == "dropping"
        await up.start()
        got = await c.await_for(
            lambda m: (
                sum(1 for x in m if x.topic.endswith("/fault")) >= 2
                and sum(1 for x in m if x.topic.endswith("/passage")) >= 3
            ),
            10,
        )
        assert up.health().counters["quota_dropping"] == 1
    faults = [m.json() for m in got if m.topic.endswith("/fault")]
    for f in faults:
        validate("fault", f)
    assert (faults[0]["device"], faults[0]["kind"], faults[0]["active"]) == ("store", "storage_quota", True)
    assert "dropped" in faults[0]["detail"]
    assert faults[-1]["active"] is False
    # the passages were never dropped
    assert len({json.loads(m.payload)["passage_id"] for m in got if m.topic.endswith("/passage")}) == 3


def test_message_builders_match_their_schemas() -> None:
    from datetime import UTC, datetime

    now = datetime.now(UTC)
    validate("event", messages.event(SITE, LANE, "signal.aspect", at=now, data={"aspect": "green"}))
    validate(
        "fault", messages.fault(SITE, LANE, device="rfid", kind="silent", active=True, at=now, detail="x")
    )
    validate(
        "availability",
        messages.availability(
            SITE,
            LANE,
            online=True,
            at=now,
            client_id="c",
            connection_id=new_id(),
            reason="connected",
        ),
    )
    validate(
        "command_response",
        messages.command_response(
            SITE, LANE, command_id=None, name=None, status="rejected", reason="malformed", at=now
        ),
    )
    validate("passage", passage(1))
    validate("fault", messages.fault_message(SITE, LANE, "signal", "lamp_mismatch", True, "red lamp open"))
    validate("event", messages.event_message(SITE, LANE, "override", {"aspect": "red", "officer": "o-7"}))
    with pytest.raises(ValueError, match="timezone"):
        messages.utc_iso(datetime(2026, 1, 1))
