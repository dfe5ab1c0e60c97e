"""Commands in through a real Mosquitto: verified, run one at a time, every one answered."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from edge_agent.errors import CommandRejected
from edge_agent.ids import new_id
from edge_agent.schemas import validate
from edge_agent.uplink.messages import utc_iso
from tests.edge_agent.uplink.agent import LANE, SITE, agent, mqtt_cfg
from tests.mosquitto import Central, Mosquitto, Received, async_test

BASE = f"lanes/{SITE}/{LANE}"
KEY = b"k" * 32


def _canonical(envelope: dict[str, Any]) -> bytes:
    return json.dumps(
        {k: v for k, v in envelope.items() if k != "auth"}, sort_keys=True, separators=(",", ":")
    ).encode()


class HmacVerifier:
    """A small real verifier (HMAC-SHA256 over the canonical envelope) standing in for edge_agent.auth."""

    def check(self, envelope: dict[str, Any]) -> str:
        sig = base64.b64decode(envelope["auth"]["sig"])
        if not hmac.compare_digest(sig, hmac.new(KEY, _canonical(envelope), hashlib.sha256).digest()):
            raise CommandRejected("bad_signature", f"key {envelope['auth']['key_id']}")
        return str(envelope["issuer"]["id"])

    def remember(self, principal: Any) -> None:
        """This double keeps no replay memory (edge_agent.auth's tests cover replays)."""


def command(name: str, body: dict[str, Any], *, key: bytes = KEY) -> dict[str, Any]:
    env: dict[str, Any] = {
        "schema": "lane.command/1",
        "command_id": new_id(),
        "name": name,
        "issued_at": utc_iso(datetime.now(UTC)),
        "nonce": secrets.token_hex(16),
        "issuer": {"id": "officer-7", "role": "officer"},
        "body": body,
    }
    sig = hmac.new(key, _canonical(env), hashlib.sha256).digest()
    env["auth"] = {"alg": "hmac-sha256", "key_id": "k1", "sig": base64.b64encode(sig).decode()}
    return env


def _responses(msgs: list[Received], topic: str = f"{BASE}/command/response") -> list[dict[str, Any]]:
    """Each response once: delivery is at least once, a redelivery carries the same response_id."""
    seen: dict[str, dict[str, Any]] = {}
    for m in msgs:
        if m.topic == topic:
            seen.setdefault(m.json()["response_id"], m.json())
    return list(seen.values())


@async_test
async def test_commands_answered_rejected_and_run_in_order(
    tmp_path: Path, mosquitto: Mosquitto, central: Callable[..., Central]
) -> None:
    c = central(mosquitto, (f"{BASE}/command/response",))
    calls: list[tuple[str, dict[str, Any], Any]] = []

    async def snapshot(body: dict[str, Any], principal: Any) -> dict[str, Any]:
        calls.append(("snapshot", body, principal))
        return {"version": body["version"]}

    async def override(body: dict[str, Any], principal: Any) -> dict[str, Any]:
        calls.append(("override", body, principal))
        if body.get("aspect") == "purple":
            raise CommandRejected("invalid_body", "no such aspect")
        if body.get("aspect") == "crash":
            raise RuntimeError("relay board on fire")
        return {"aspect": body["aspect"]}

    async with agent(tmp_path / "lane.sqlite3", mqtt_cfg(mosquitto.url), verifier=HmacVerifier()) as up:
        up.register_command("reference.snapshot", snapshot)
        up.register_command("signal.override", override)
        with pytest.raises(ValueError, match="unknown command"):
            up.register_command("lane.explode", snapshot)
        assert await up.wait_connected(5)
        topic = up.topic("command")
        good = command("reference.snapshot", {"version": 3, "prearrivals": [], "trusted_traders": []})
        validate("command", good)
        forged = command("signal.override", {"aspect": "green"}, key=b"x" * 32)
        unknown = command("config.reload", {})  # allowed name, but no handler registered here
        bad_name = command("lane.explode", {})
        bad_body = command("signal.override", {"aspect": "purple"})
        crash = command("signal.override", {"aspect": "crash"})
        ok2 = command("signal.override", {"aspect": "red"})
        sent: list[bytes] = [
            json.dumps(good).encode(),
            b"{not json",
            json.dumps(forged).encode(),
            json.dumps(unknown).encode(),
            json.dumps(bad_name).encode(),
            json.dumps({"schema": "lane.command/1", "command_id": "x1"}).encode(),
            json.dumps(bad_body).encode(),
            json.dumps(crash).encode(),
            json.dumps(ok2).encode(),
        ]
        for raw in sent:
            c.publish(topic, raw)
        msgs = await c.await_for(lambda m: len(m) >= len(sent))
        counters = up.health().counters

    got = _responses(msgs)
    for r in got:
        validate("command_response", r)
    summary = [(r["command_id"], r["status"], r["reason"]) for r in got]
    screened_out = [
        (None, "rejected", "malformed"),
        (forged["command_id"], "rejected", "bad_signature"),
        (unknown["command_id"], "rejected", "unknown_command"),
        (bad_name["command_id"], "rejected", "unknown_command"),
        ("x1", "rejected", "malformed"),
    ]
    ran = [
        (good["command_id"], "accepted", None),
        (bad_body["command_id"], "rejected", "invalid_body"),
        (crash["command_id"], "error", "handler_failed"),
        (ok2["command_id"], "accepted", None),
    ]
    # signed commands run in arrival order; messages screened out are answered in theirs, never ahead
    assert [x for x in summary if x not in screened_out] == ran
    assert [x for x in summary if x in screened_out] == screened_out
    assert len(summary) == len(sent)
    assert next(r for r in got if r["command_id"] == good["command_id"])["result"] == {"version": 3}
    # rejected commands never reached a handler; accepted ones ran in arrival order with the principal
    assert [(k, b.get("aspect", b.get("version")), p) for k, b, p in calls] == [
        ("snapshot", 3, "officer-7"),
        ("override", "purple", "officer-7"),
        ("override", "crash", "officer-7"),
        ("override", "red", "officer-7"),
    ]
    assert counters["commands_rejected:malformed"] == 2
    assert counters["commands_rejected:bad_signature"] == 1
    assert counters["commands_accepted"] == 2


@async_test
async def test_mqtt5_response_topic_and_correlation_data(
    tmp_path: Path, mosquitto: Mosquitto, central: Callable[..., Central]
) -> None:
    c = central(mosquitto, (f"{BASE}/command/response", "central/replies/#"), protocol="5")

    async def reload(body: dict[str, Any], principal: Any) -> dict[str, Any]:
        return {"reloaded": sorted(body)}

    async with agent(tmp_path / "lane.sqlite3", mqtt_cfg(mosquitto.url, protocol="5"), verifier=None) as up:
        up.register_command("config.reload", reload)
        assert await up.wait_connected(5)
        props = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
        props.ResponseTopic = "central/replies/lane-c3"
        props.CorrelationData = b"corr-42"
        cmd = command("config.reload", {"health_interval_s": 10})
        c.publish(up.topic("command"), json.dumps(cmd).encode(), properties=props)
        msgs = await c.await_for(lambda m: len(m) >= 2)
    by_topic = {m.topic: m for m in msgs}
    for topic in (f"{BASE}/command/response", "central/replies/lane-c3"):
        m = by_topic[topic]
        assert m.json()["command_id"] == cmd["command_id"]
        assert m.json()["status"] == "accepted"
        assert m.properties is not None
        assert getattr(m.properties, "CorrelationData", None) == b"corr-42"


@async_test
async def test_resubscribes_after_reconnect_and_rejects_retained(
    tmp_path: Path, mosquitto: Mosquitto, central: Callable[..., Central]
) -> None:
    import asyncio

    c = central(mosquitto, (f"{BASE}/command/response",))
    seen: list[dict[str, Any]] = []

    async def reload(body: dict[str, Any], principal: Any) -> dict[str, Any]:
        seen.append(body)
        return {}

    # A retained command sits on the broker: it would replay on every reconnect, so it is refused.
    retained = command("config.reload", {"n": 0})
    c.client.publish(f"{BASE}/command", json.dumps(retained).encode(), qos=1, retain=True).wait_for_publish(5)
    async with agent(tmp_path / "lane.sqlite3", mqtt_cfg(mosquitto.url)) as up:
        up.register_command("config.reload", reload)
        assert await up.wait_connected(5)
        await c.await_for(lambda m: len(m) >= 1)
        c.client.publish(f"{BASE}/command", b"", qos=1, retain=True).wait_for_publish(5)  # central clears it
        await c.await_for(lambda m: len(m) >= 2)  # the empty clear message is answered as malformed

        mosquitto.restart()
        for _ in range(250):  # wait for the agent's reconnect (it waits for its SUBACK before "connected")
            if up.connected and up.health().counters["connects"] >= 2:
                break
            await asyncio.sleep(0.02)
        assert up.health().counters["connects"] >= 2
        await asyncio.to_thread(c.wait_subscribed)
        cmd = command("config.reload", {"n": 1})
        c.publish(up.topic("command"), json.dumps(cmd).encode())
        msgs = await c.await_for(lambda m: len(_responses(m)) >= 3)
    got = [(r["command_id"], r["status"], r["reason"]) for r in _responses(msgs)]
    assert got == [
        (retained["command_id"], "rejected", "retained"),
        (None, "rejected", "malformed"),
        (cmd["command_id"], "accepted", None),
    ]
    assert seen == [{"n": 1}]
