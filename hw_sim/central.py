"""A stand-in for the central system: subscribes to a lane's topics, counts what arrives, sends commands.

Used by ``edge-agent demo`` and the end-to-end tests to play the other end of the uplink over a real
broker. It keeps every passage by its ``passage_id`` so duplicates (allowed: delivery is at least once)
are counted, not double-counted.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import threading
from collections import Counter
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from edge_agent.ids import new_id
from edge_agent.uplink import release_sockets


def signed_command(
    name: str,
    body: dict[str, Any],
    *,
    key_id: str,
    key: bytes,
    role: str = "central",
    issuer: str = "central",
    alg: str = "hmac-sha256",
    **extra: Any,
) -> dict[str, Any]:
    """A ``lane.command/1`` envelope, fresh (new id, nonce, issued now) and signed as central or an officer.

    ``extra`` adds top-level fields (a test's forbidden field, say) before signing.
    """
    from edge_agent.auth import sign_command

    envelope: dict[str, Any] = {
        "schema": "lane.command/1",
        "command_id": new_id(),
        "name": name,
        "issued_at": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
        "nonce": secrets.token_hex(12),
        "issuer": {"id": issuer, "role": role},
        "body": body,
        **extra,
    }
    return sign_command(envelope, alg=alg, key_id=key_id, key=key)


class Central:
    """A paho-mqtt client acting as central for one lane (``prefix/site/lane``)."""

    def __init__(self, url: str, *, prefix: str, site_id: str, lane_id: str) -> None:
        parts = urlsplit(url)
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or 1883
        self.base = f"{prefix}/{site_id}/{lane_id}"
        self.passages: dict[str, dict[str, Any]] = {}
        self.passage_order: list[str] = []
        self.deliveries: Counter[str] = Counter()  # passage_id -> times received
        self.messages: Counter[str] = Counter()  # by topic suffix
        self.faults: list[dict[str, Any]] = []
        self.events: list[dict[str, Any]] = []
        self.health: dict[str, Any] | None = None  # the latest health message
        self.responses: dict[str, dict[str, Any]] = {}
        self.response_log: list[dict[str, Any]] = []  # every response received, redeliveries included
        self.availability: str | None = None
        self.bad_payloads = 0
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._changed: asyncio.Event | None = None
        self._subscribed = threading.Event()
        # a persistent session: while central's own link is down, the broker keeps its QoS 1 messages
        self._client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=f"central-{os.getpid()}-{id(self):x}", clean_session=False
        )
        self._client.on_connect = self._on_connect
        self._client.on_message = self._on_message
        self._client.on_subscribe = lambda *a: self._subscribed.set()

    async def __aenter__(self) -> Central:
        self._loop = asyncio.get_running_loop()
        self._changed = asyncio.Event()
        self._client.connect_async(self.host, self.port, keepalive=30)
        self._client.loop_start()
        for _ in range(200):
            if self._subscribed.is_set():
                break
            await asyncio.sleep(0.02)
        else:
            raise TimeoutError(f"cannot reach the MQTT broker at {self.host}:{self.port}")
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._client.disconnect()
        self._client.loop_stop()
        release_sockets(self._client)

    def _on_connect(self, client: mqtt.Client, _u: object, _f: object, rc: Any, _p: object) -> None:
        if not rc.is_failure:
            client.subscribe(self.base + "/#", qos=1)

    def _on_message(self, _c: mqtt.Client, _u: object, msg: mqtt.MQTTMessage) -> None:
        suffix = msg.topic.removeprefix(self.base + "/")
        try:
            payload = json.loads(msg.payload) if msg.payload else None
        except ValueError:
            with self._lock:
                self.bad_payloads += 1
            return
        with self._lock:
            self.messages[suffix] += 1
            if suffix == "passage" and isinstance(payload, dict):
                pid = str(payload.get("passage_id"))
                self.deliveries[pid] += 1
                if pid not in self.passages:
                    self.passages[pid] = payload
                    self.passage_order.append(pid)
            elif suffix == "fault" and isinstance(payload, dict):
                self.faults.append(payload)
            elif suffix == "event" and isinstance(payload, dict):
                self.events.append(payload)
            elif suffix == "health" and isinstance(payload, dict):
                self.health = payload
            elif suffix == "command/response" and isinstance(payload, dict):
                self.responses[str(payload.get("command_id"))] = payload
                self.response_log.append(payload)
            elif suffix == "availability":
                self.availability = payload.get("state") if isinstance(payload, dict) else str(payload)
        if self._loop is not None and self._changed is not None:
            self._loop.call_soon_threadsafe(self._changed.set)

    async def wait_for(self, predicate: Any, limit_s: float) -> bool:
        """Wait until ``predicate()`` is true (re-checked on every message), at most ``limit_s``."""
        assert self._changed is not None
        deadline = asyncio.get_running_loop().time() + limit_s
        while not predicate():
            left = deadline - asyncio.get_running_loop().time()
            if left <= 0:
                return False
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), min(left, 0.5))
        return True

    async def push_reference(self, snapshot: dict[str, Any], *, key_id: str, key: bytes) -> dict[str, Any]:
        """Send reference data as a signed ``reference.snapshot`` and wait for the lane's answer."""
        command = signed_command("reference.snapshot", snapshot, key_id=key_id, key=key)
        return await self.command(command, limit_s=15.0)

    def publish_raw(self, payload: bytes, *, retain: bool = False) -> None:
        """Publish any bytes on the lane's command topic (an attacker's or a broken client's message)."""
        self._client.publish(self.base + "/command", payload, qos=1, retain=retain)

    async def command(self, envelope: dict[str, Any], limit_s: float = 10.0) -> dict[str, Any]:
        """Publish a (signed) command envelope and wait for its response."""
        cid = str(envelope["command_id"])
        self._client.publish(self.base + "/command", json.dumps(envelope), qos=1)
        if not await self.wait_for(lambda: cid in self.responses, limit_s):
            raise TimeoutError(f"no response to command {envelope.get('name')} ({cid})")
        return self.responses[cid]
