"""Draining the outbox into the broker: the in-flight window, pacing, acknowledgements, the memory queue.

Rows are read from the outbox in ``(priority, seq)`` order and published QoS 1, at most
``mqtt.inflight`` awaiting PUBACK at once, paced by a token bucket (``replay_rate_per_s``,
``replay_burst``) so a long backlog replays without flooding the broker. A row is deleted only after
its PUBACK (deletes are batched into one transaction per half window); a PUBACK with a failure reason
defers the row to the next session; when the link drops, every unacknowledged row is sent again, in
order, on the next connection. Messages the store could not take (a full disk) wait in a bounded
memory queue and go first, best effort.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter, deque
from collections.abc import Callable

from edge_agent.config.mqtt import MqttConfig
from edge_agent.errors import StoreError
from edge_agent.store.outbox import Outbox
from edge_agent.uplink.commands import RateLimitedLog
from edge_agent.uplink.link import Session

MEMORY_TOKEN = -2  # messages the store could not take, published from memory (best effort, QoS 1)
MEMORY_QUEUE = 64
"""Messages kept in memory while the store refuses writes (a storage fault must still reach central)."""


class Drainer:
    """The outbox's delivery state for the current session (one per uplink)."""

    def __init__(
        self,
        cfg: MqttConfig,
        outbox: Outbox,
        *,
        counters: Counter[str],
        rlog: RateLimitedLog,
        on_flushed: Callable[[], None],
    ) -> None:
        self.cfg = cfg
        self.outbox = outbox
        self.counters = counters
        self._rlog = rlog
        self._on_flushed = on_flushed
        self.woken = asyncio.Event()
        self.inflight: dict[int, int] = {}  # seq -> priority, awaiting PUBACK on the current session
        self._acked: set[int] = set()  # acknowledged, delete not yet committed
        self._deferred: set[int] = set()  # PUBACK with a failure reason: retried on the next session
        self._memory: deque[tuple[str, bytes]] = deque(maxlen=MEMORY_QUEUE)  # (topic, payload)
        self._tokens = float(cfg.replay_burst)
        self._token_time = time.monotonic()

    @property
    def idle(self) -> bool:
        """Nothing in flight and every acknowledgement committed."""
        return not self.inflight and not self._acked

    def wake(self) -> None:
        """Something new to send (or an acknowledgement to commit)."""
        self.woken.set()

    def remember(self, topic: str, body: bytes, what: str) -> None:
        """The store refused a message: keep it in memory and publish it from there (bounded)."""
        if len(self._memory) == self._memory.maxlen:
            self.counters["memory_dropped"] += 1
        self._memory.append((topic, body))
        self.counters["memory_queued"] += 1
        self._rlog.warning("memory", "uplink: store refused a message, sending it from memory (%s)", what)
        self.woken.set()

    def new_session(self) -> None:
        """A new connection: nothing is in flight on it, deferred rows may go again."""
        self.inflight.clear()
        self._deferred.clear()

    def session_lost(self) -> int:
        """The connection dropped: what was in flight is sent again next time; how many."""
        unacked = len(self.inflight)
        self.inflight.clear()
        return unacked

    async def drain(self, session: Session, closing: Callable[[], bool]) -> None:
        """Publish from memory, then the outbox, within the window, until the session ends."""
        window = self.cfg.inflight
        flush_at = max(1, window // 2)  # deletes are batched: one commit per half window of PUBACKs
        while not session.lost.is_set() and not closing():
            self.woken.clear()
            progressed = False
            exhausted = False
            while self._memory and not session.lost.is_set():
                topic, body = self._memory[0]
                if not session.publish(MEMORY_TOKEN, topic, body):
                    return
                self._memory.popleft()
                self.counters["published_from_memory"] += 1
                progressed = True
            free = window - len(self.inflight)
            if free > 0:
                batch = await self.outbox.next_batch(
                    free, exclude=set(self.inflight) | self._acked | self._deferred
                )
                exhausted = len(batch) < free
                for msg in batch:
                    await self._pace()
                    if session.lost.is_set() or closing():
                        return
                    self.inflight[msg.seq] = msg.priority
                    if not session.publish(
                        msg.seq,
                        msg.topic,
                        msg.payload,
                        qos=msg.qos,
                        retain=msg.retain,
                        correlation=msg.correlation,
                    ):
                        self.inflight.pop(msg.seq, None)
                        return  # the link is going; the next session resends
                    self.counters["published"] += 1
                    progressed = True
            if self._acked and (exhausted or len(self._acked) >= flush_at):
                await self.flush_acked()
                progressed = True
            if not progressed:
                await self.woken.wait()

    async def _pace(self) -> None:
        rate = self.cfg.replay_rate_per_s
        if rate <= 0:
            return
        now = time.monotonic()
        self._tokens = min(float(self.cfg.replay_burst), self._tokens + (now - self._token_time) * rate)
        self._token_time = now
        if self._tokens < 1.0:
            self.counters["paced"] += 1
            await asyncio.sleep((1.0 - self._tokens) / rate)
            self._tokens = 1.0
            self._token_time = time.monotonic()
        self._tokens -= 1.0

    def on_ack(self, token: int, ok: bool, reason: str) -> None:
        """A PUBACK (or its failure) for an outbox row."""
        if token == MEMORY_TOKEN:
            return
        if self.inflight.pop(token, None) is None:
            return  # from a session already given up: the row is resent anyway
        if ok:
            self._acked.add(token)
            self.counters["acked"] += 1
        else:
            self._deferred.add(token)
            self.counters["puback_failures"] += 1
            self._rlog.warning(
                "puback", "uplink: broker refused message seq %d: %s (retried after reconnect)", token, reason
            )
        self.woken.set()

    async def flush_acked(self) -> None:
        """Delete acknowledged rows in one transaction (kept for later when the store refuses)."""
        if not self._acked:
            return
        done = set(self._acked)
        try:
            await self.outbox.mark_delivered(done)
        except StoreError as exc:  # kept as acknowledged (not resent on this session); retried later
            self._rlog.warning("mark_delivered", "uplink: cannot delete delivered messages yet: %s", exc)
            return
        self._acked -= done
        self._on_flushed()
