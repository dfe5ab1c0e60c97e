"""Command intake: every message on the command topic screened as it arrives, signed ones run first.

Screening (:meth:`edge_agent.uplink.commands.CommandDispatcher.screen`) is cheap and changes nothing,
so junk never waits in a queue in front of a validly signed command. Signed commands wait in their own
queue (at most ``MAX_VALID_PENDING``) and are always run and answered before any rejection;
rejections are answered at most ``REJECT_RATE_PER_S`` a second (burst ``REJECT_BURST``), the rest
counted and logged at a bounded rate. Each response is committed to the outbox (or, when the store
refuses it, handed to the uplink's in-memory fallback).
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import replace

import paho.mqtt.client as mqtt

from edge_agent.errors import CommandRejected, StoreError
from edge_agent.store.db import Store
from edge_agent.store.outbox import Outbox, Priority
from edge_agent.uplink import messages
from edge_agent.uplink.commands import CommandDispatcher, Screened
from edge_agent.uplink.topics import valid_publish_topic

log = logging.getLogger(__name__)

REJECT_RATE_PER_S = 5.0
"""Rejected command messages answered per second at most (the rest are counted and logged, unanswered)."""
REJECT_BURST = 20
MAX_VALID_PENDING = 1024
"""Validly signed commands waiting at once; past this (only a key holder can cause it) they are refused."""


class CommandIntake:
    """Screens, queues and answers the command topic's messages (``on_message`` is the session's hook)."""

    def __init__(
        self,
        dispatcher: CommandDispatcher,
        *,
        response_topic: str,
        store: Store,
        outbox: Outbox,
        counters: Counter[str],
        fallback: Callable[[str, bytes, str], None],
        kick: Callable[[], None],
    ) -> None:
        self.dispatcher = dispatcher
        self.response_topic = response_topic
        self.store = store
        self.outbox = outbox
        self.counters = counters
        self._fallback = fallback
        self._kick = kick
        self._valid: deque[tuple[Screened, mqtt.MQTTMessage]] = deque()  # signed: every one is run
        self._rejects: deque[tuple[Screened, mqtt.MQTTMessage]] = deque(maxlen=REJECT_BURST)
        self._commands_ready = asyncio.Event()
        self._reject_tokens = float(REJECT_BURST)
        self._reject_time = time.monotonic()

    def on_message(self, msg: mqtt.MQTTMessage) -> None:
        """Screen every message as it arrives: junk never queues in front of a signed command."""
        cmd = self.dispatcher.screen(bytes(msg.payload), origin=msg.topic, retained=bool(msg.retain))
        if cmd.valid:
            if len(self._valid) >= MAX_VALID_PENDING:
                self.counters["commands_overloaded"] += 1
                cmd = replace(cmd, rejection=CommandRejected("overloaded", "too many commands at once"))
                self._queue_rejection(cmd, msg)
                return
            self._valid.append((cmd, msg))
            self._commands_ready.set()
            return
        self._queue_rejection(cmd, msg)

    def _queue_rejection(self, cmd: Screened, msg: mqtt.MQTTMessage) -> None:
        now = time.monotonic()
        self._reject_tokens = min(
            float(REJECT_BURST), self._reject_tokens + (now - self._reject_time) * REJECT_RATE_PER_S
        )
        self._reject_time = now
        if self._reject_tokens < 1.0 or len(self._rejects) >= REJECT_BURST:
            self.counters["commands_unanswered"] += 1
            assert cmd.rejection is not None
            self.dispatcher.rejected(cmd.rejection, cmd.command_id, cmd.name, cmd.origin)  # count + log
            return
        self._reject_tokens -= 1.0
        self._rejects.append((cmd, msg))
        self._commands_ready.set()

    async def run(self) -> None:
        """Run screened commands, signed ones first, one at a time, until cancelled."""
        while True:
            await self._commands_ready.wait()
            if self._valid:
                cmd, msg = self._valid.popleft()
            elif self._rejects:
                cmd, msg = self._rejects.popleft()
            else:
                self._commands_ready.clear()
                continue
            try:
                await self._answer(cmd, msg)
            except Exception:
                log.exception("uplink: answering a command failed")

    async def _answer(self, cmd: Screened, msg: mqtt.MQTTMessage) -> None:
        props = getattr(msg, "properties", None)
        response_topic = getattr(props, "ResponseTopic", None) if props is not None else None
        correlation = getattr(props, "CorrelationData", None) if props is not None else None
        if not isinstance(correlation, bytes | bytearray) or len(correlation) > 256:
            correlation = None
        if not isinstance(response_topic, str) or len(response_topic) > 256:
            response_topic = None
        response = await self.dispatcher.execute(cmd)
        body = messages.encode(response)
        std_topic = self.response_topic
        rows = [(std_topic, response["response_id"])]
        if isinstance(response_topic, str) and response_topic != std_topic:
            if valid_publish_topic(response_topic):
                rows.append((response_topic, response["response_id"] + ":rt"))
            else:
                self.counters["commands_bad_response_topic"] += 1

        def txn(conn: sqlite3.Connection) -> None:
            for topic, mid in rows:
                self.outbox.enqueue(
                    conn,
                    msg_id=mid,
                    topic=topic,
                    payload=body,
                    priority=Priority.DECISION,
                    kind="command_response",
                    correlation=bytes(correlation) if correlation is not None else None,
                )

        try:
            await self.store.write(txn)
        except StoreError as exc:
            for topic, _ in rows:
                self._fallback(topic, body, f"command response: {exc}")
        self._kick()
