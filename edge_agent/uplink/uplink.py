"""The uplink: drains the outbox into MQTT, keeps the link up, answers commands, reports health.

Delivery (at least once, in order within a priority):
  * rows are read from the outbox in ``(priority, seq)`` order and published QoS 1, at most
    ``mqtt.inflight`` awaiting PUBACK at once, paced by a token bucket (``replay_rate_per_s``,
    ``replay_burst``) so a long backlog replays without flooding the broker;
  * a row is deleted only after its PUBACK (deletes are batched into one transaction);
  * when the link drops, every unacknowledged row is sent again, in order, on the next connection;
    central may see a message twice, always with the same id.

Link: brokers are tried in ``mqtt.urls`` order with capped exponential backoff and jitter; a refused
CONNACK is reported as refused (health DOWN, counted, logged) and never as connected; after each
connect the command topic is re-subscribed and a retained ``online`` availability is published (the
last will says ``offline``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections import Counter, deque
from collections.abc import Coroutine, Mapping
from datetime import datetime
from types import TracebackType
from typing import Any

from edge_agent.clock import Clock
from edge_agent.config.mqtt import MqttConfig
from edge_agent.errors import StoreError
from edge_agent.health import DeviceHealth, DeviceState
from edge_agent.ids import new_id
from edge_agent.store.db import Store
from edge_agent.store.outbox import Outbox, Priority, QuotaState
from edge_agent.uplink import messages
from edge_agent.uplink.commands import (
    CommandDispatcher,
    CommandHandler,
    CommandVerifierLike,
    RateLimitedLog,
    ReplayLogLike,
)
from edge_agent.uplink.intake import CommandIntake
from edge_agent.uplink.link import Broker, LinkError, LinkRefusedError, Session
from edge_agent.uplink.reporting import HealthProvider, HealthReporter
from edge_agent.uplink.topics import Topics

log = logging.getLogger(__name__)

_AVAILABILITY_TOKEN = -1
_MEMORY_TOKEN = -2  # messages the store could not take, published from memory (best effort, QoS 1)
MEMORY_QUEUE = 64
"""Messages kept in memory while the store refuses writes (a storage fault must still reach central)."""
_DEFAULT_PRIORITY = {
    "passage": Priority.DECISION,
    "fault": Priority.DECISION,
    "command_response": Priority.DECISION,
    "event": Priority.EVENT,
    "health": Priority.EVENT,
}
_ID_FIELDS = ("passage_id", "event_id", "fault_id", "health_id", "response_id")


class Uplink:
    """The lane's MQTT uplink (async context manager; :meth:`close` is safe to call twice)."""

    def __init__(
        self,
        cfg: MqttConfig,
        *,
        site_id: str,
        lane_id: str,
        store: Store,
        outbox: Outbox,
        verifier: CommandVerifierLike | None,
        clock: Clock,
        replay_log: ReplayLogLike | None = None,
    ) -> None:
        self.cfg = cfg
        self.site_id = site_id
        self.lane_id = lane_id
        self.store = store
        self.outbox = outbox
        self.clock = clock
        self.topics = Topics(cfg.topic_prefix, site_id, lane_id)
        self.client_id = cfg.client_id or f"edge-{site_id}-{lane_id}"
        self.brokers = [Broker.parse(u) for u in cfg.urls]
        self.commands = CommandDispatcher(
            site_id=site_id, lane_id=lane_id, verifier=verifier, clock=clock, replay_log=replay_log
        )
        self.counters: Counter[str] = Counter()
        self._rlog = RateLimitedLog(log)
        self._health = DeviceHealth("uplink", "mqtt")
        self._started_mono = clock.monotonic()
        self.connected_since: datetime | None = None
        """UTC time of the current connection's CONNACK (None while disconnected)."""
        self._session: Session | None = None
        self._broker: Broker | None = None
        self._connection_id = new_id()
        self._wake = asyncio.Event()
        self._connected_event = asyncio.Event()
        self._inflight: dict[int, int] = {}  # seq -> priority, awaiting PUBACK on the current session
        self._acked: set[int] = set()  # acknowledged, delete not yet committed
        self._deferred: set[int] = set()  # PUBACK with a failure reason: retried on the next session
        self._avail_ack: asyncio.Future[bool] | None = None
        self._tokens = float(cfg.replay_burst)
        self._token_time = time.monotonic()
        self.reporter = HealthReporter(
            cfg,
            site_id=site_id,
            lane_id=lane_id,
            clock=clock,
            outbox=outbox,
            link_health=self.health,
            emit=self.emit,
            spawn=self._spawn,
            counters=self.counters,
        )
        self.intake = CommandIntake(
            self.commands,
            response_topic=self.topics("command_response"),
            store=store,
            outbox=outbox,
            counters=self.counters,
            fallback=self._remember,
            kick=self.kick,
        )
        self._memory: deque[tuple[str, bytes]] = deque(maxlen=MEMORY_QUEUE)  # (topic, payload)
        self._tasks: list[asyncio.Task[None]] = []
        self._spawned: set[asyncio.Task[None]] = set()
        self._closing = False
        self._closing_event = asyncio.Event()
        self._closed = False
        self._link_state = DeviceState.STARTING
        self._link_detail = "not started"
        self._refused_logged: set[str] = set()

    # -- public API --------------------------------------------------------------------------------
    def topic(self, kind: str) -> str:
        """Return the topic of ``kind``: passage, event, fault, health, availability, command(_response)."""
        return self.topics(kind)

    @property
    def connected(self) -> bool:
        """True while a broker accepted our CONNECT and the connection is up."""
        return self._session is not None and not self._session.lost.is_set()

    @property
    def broker_url(self) -> str | None:
        """The broker currently (or last) connected to."""
        return self._broker.url if self._broker else None

    def kick(self) -> None:
        """Wake the drainer: call after enqueueing outside :meth:`emit` (e.g. after a journal commit)."""
        self._wake.set()
        self._check_quota()

    def register_command(self, name: str, handler: CommandHandler) -> None:
        """Handle command ``name``: ``await handler(body, principal) -> dict`` (or raise CommandRejected)."""
        self.commands.register(name, handler)

    def set_health_provider(self, fn: HealthProvider) -> None:
        """Use ``fn()`` for the lane part of every periodic health message."""
        self.reporter.provider = fn

    async def emit(
        self, kind: str, payload: Mapping[str, Any], *, priority: int | None = None, msg_id: str | None = None
    ) -> str:
        """Queue one message of ``kind`` (own transaction) and wake the drainer; returns its msg id.

        ``msg_id`` defaults to the payload's own id (``event_id``, ``fault_id``...), so a message and its
        outbox row share the id central de-duplicates on.
        """
        mid = msg_id or next((str(payload[f]) for f in _ID_FIELDS if payload.get(f)), None) or new_id()
        body = messages.encode(payload)
        try:
            await self.outbox.put(
                msg_id=mid,
                topic=self.topics(kind),
                payload=body,
                priority=_DEFAULT_PRIORITY.get(kind, Priority.EVENT) if priority is None else priority,
                kind=kind,
                coalesce=kind == "health",
            )
        except StoreError as exc:
            self._remember(self.topics(kind), body, f"{kind} {mid}: {exc}")
        self.kick()
        return mid

    def _remember(self, topic: str, body: bytes, what: str) -> None:
        """The store refused a message: keep it in memory and publish it from there (bounded)."""
        if len(self._memory) == self._memory.maxlen:
            self.counters["memory_dropped"] += 1
        self._memory.append((topic, body))
        self.counters["memory_queued"] += 1
        self._rlog.warning("memory", "uplink: store refused a message, sending it from memory (%s)", what)
        self._wake.set()

    async def publish_health(self) -> None:
        """Queue a health message now (coalesced: only the latest waits while offline)."""
        await self.reporter.publish()

    def health(self) -> DeviceHealth:
        """Report the link's health: UP when connected, DEGRADED when connected with a storage alarm.

        DOWN with the reason otherwise, e.g. ``refused by mqtt://host:1883: Not authorized``.
        """
        h = self._health
        h.counters = Counter(self.counters)
        h.counters.update({f"commands_{k}": v for k, v in self.commands.counters.items()})
        h.state, h.detail = self._link_state, self._link_detail
        if h.state is DeviceState.UP and self.outbox.quota_state is not QuotaState.OK:
            h.state = DeviceState.DEGRADED
            h.detail = (
                f"{self._link_detail}; storage {self.outbox.quota_state.value}: {self.outbox.quota_detail}"
            )
        return h

    async def wait_connected(self, limit_s: float) -> bool:
        """Wait until connected; False after ``limit_s`` seconds."""
        try:
            await asyncio.wait_for(self._connected_event.wait(), limit_s)
        except TimeoutError:
            return False
        return True

    async def wait_drained(self, limit_s: float, poll_s: float = 0.05) -> bool:
        """Wait until the outbox is empty and nothing is in flight; False after ``limit_s`` seconds."""
        deadline = time.monotonic() + limit_s
        while True:
            if not self._inflight and not self._acked and await self.outbox.pending_count() == 0:
                return True
            if time.monotonic() >= deadline:
                return False
            await asyncio.sleep(poll_s)

    # -- lifecycle ---------------------------------------------------------------------------------
    async def __aenter__(self) -> Uplink:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def start(self) -> None:
        """Start the link, command and health tasks (returns at once; the link comes up in the background)."""
        if self._tasks or self._closed:
            return
        self._tasks = [
            asyncio.create_task(self._run_link(), name="uplink-link"),
            asyncio.create_task(self.intake.run(), name="uplink-commands"),
            asyncio.create_task(self.reporter.run(), name="uplink-health"),
        ]

    async def close(self) -> None:
        """Let in-flight messages finish (``close_grace_s``), publish ``offline``, disconnect."""
        if self._closed:
            return
        self._closed = True
        self._closing = True
        self._closing_event.set()
        self._wake.set()
        session = self._session
        if session is not None and not session.lost.is_set():
            await self._graceful(session)
        for task in [*self._tasks, *self._spawned]:
            task.cancel()
        for task in [*self._tasks, *self._spawned]:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        with contextlib.suppress(Exception):
            await self._flush_acked()
        if self._session is not None:
            await self._session.close()
            self._session = None
        self._set_health(DeviceState.DOWN, "closed")

    async def _graceful(self, session: Session) -> None:
        deadline = time.monotonic() + self.cfg.close_grace_s
        while self._inflight and not session.lost.is_set() and (left := deadline - time.monotonic()) > 0:
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), left)
        with contextlib.suppress(Exception):
            await self._flush_acked()
        ok = await self._publish_availability(session, online=False, reason="shutdown", wait_s=1.0)
        if not ok:
            log.warning("uplink: 'offline' availability not acknowledged before disconnect")

    # -- link --------------------------------------------------------------------------------------
    async def _run_link(self) -> None:
        index = 0
        attempt = 0
        while not self._closing:
            broker = self.brokers[index]
            if self._link_state is DeviceState.STARTING:
                self._set_health(DeviceState.STARTING, f"connecting to {broker.url}")
            try:
                session = await self._open(broker)
            except LinkRefusedError as exc:
                self.counters["refused"] += 1
                self._set_health(DeviceState.DOWN, f"refused by {broker.url}: {exc.reason}")
                key = f"{broker.url}:{exc.reason}"
                if key not in self._refused_logged:
                    self._refused_logged.add(key)
                    log.error("uplink: %s (CONNACK refused; check credentials/ACL)", exc)
            except LinkError as exc:
                self.counters["connect_failures"] += 1
                self._set_health(DeviceState.DOWN, str(exc))
                log.warning("uplink: %s", exc)
            except Exception as exc:  # anything else from paho/ssl: report, back off, retry
                self.counters["connect_failures"] += 1
                self._set_health(DeviceState.DOWN, f"{broker.url}: {type(exc).__name__}: {exc}")
                log.exception("uplink: connecting to %s failed", broker.url)
            else:
                attempt = 0
                await self._serve(session)
                if self._closing:
                    return
                await self._sleep(self._backoff(0))
                continue
            index = (index + 1) % len(self.brokers)
            await self._sleep(self._backoff(attempt))
            attempt += 1

    def _backoff(self, attempt: int) -> float:
        base = min(self.cfg.reconnect_max_s, self.cfg.reconnect_min_s * float(2 ** min(attempt, 30)))
        return base * random.uniform(0.5, 1.0)

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._closing_event.wait(), seconds)

    async def _open(self, broker: Broker) -> Session:
        self._connection_id = new_id()
        will = messages.availability(
            self.site_id,
            self.lane_id,
            online=False,
            at=self.clock.utcnow(),
            client_id=self.client_id,
            connection_id=self._connection_id,
            reason="connection_lost",
        )
        session = Session(
            self.cfg,
            broker,
            client_id=self.client_id,
            will=(self.topics("availability"), messages.encode(will)),
            on_message=self.intake.on_message,
            on_ack=self._on_ack,
        )
        await session.connect()
        return session

    async def _serve(self, session: Session) -> None:
        self._session = session
        self._broker = session.broker
        self.counters["connects"] += 1
        self._set_health(DeviceState.UP, f"connected to {session.broker.url} (MQTT {self.cfg.protocol})")
        log.info("uplink: connected to %s as %s", session.broker.url, self.client_id)
        self._inflight.clear()
        self._deferred.clear()
        granted, why = await session.subscribe(self.topics("command"), self.cfg.connect_timeout_s)
        if not granted:
            self.counters["subscribe_failures"] += 1
            log.error(
                "uplink: subscribing to %s failed: %s (no commands on this connection)",
                self.topics("command"),
                why,
            )
        await self._publish_availability(session, online=True, reason="connected", wait_s=0)
        self._connected_event.set()
        self.connected_since = self.clock.utcnow()
        drainer = asyncio.create_task(self._drain(session), name="uplink-drain")
        try:
            await session.lost.wait()
        finally:
            self._connected_event.clear()
            self.connected_since = None
            drainer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await drainer
            unacked = len(self._inflight)
            self._inflight.clear()
            if not self._closing:
                self.counters["disconnects"] += 1
                self.counters["resend_after_reconnect"] += unacked
                self._set_health(
                    DeviceState.DOWN, f"connection to {session.broker.url} lost: {session.lost_reason}"
                )
                log.warning(
                    "uplink: lost %s (%s); %d unacknowledged will be resent",
                    session.broker.url,
                    session.lost_reason,
                    unacked,
                )
                await session.close()
                self._session = None
            with contextlib.suppress(Exception):
                await self._flush_acked()

    async def _publish_availability(
        self, session: Session, *, online: bool, reason: Any, wait_s: float
    ) -> bool:
        payload = messages.availability(
            self.site_id,
            self.lane_id,
            online=online,
            at=self.clock.utcnow(),
            client_id=self.client_id,
            connection_id=self._connection_id,
            reason=reason,
        )
        self._avail_ack = asyncio.get_running_loop().create_future()
        if not session.publish(
            _AVAILABILITY_TOKEN, self.topics("availability"), messages.encode(payload), retain=True
        ):
            return False
        if wait_s <= 0:
            return True
        try:
            return await asyncio.wait_for(asyncio.shield(self._avail_ack), wait_s)
        except TimeoutError:
            return False

    def _set_health(self, state: DeviceState, detail: str) -> None:
        self._link_state = state
        self._link_detail = detail
        if state is DeviceState.UP:
            self._health.last_ok_mono = self.clock.monotonic()

    # -- delivery ----------------------------------------------------------------------------------
    async def _drain(self, session: Session) -> None:
        window = self.cfg.inflight
        flush_at = max(1, window // 2)  # deletes are batched: one commit per half window of PUBACKs
        while not session.lost.is_set() and not self._closing:
            self._wake.clear()
            progressed = False
            exhausted = False
            while self._memory and not session.lost.is_set():
                topic, body = self._memory[0]
                if not session.publish(_MEMORY_TOKEN, topic, body):
                    return
                self._memory.popleft()
                self.counters["published_from_memory"] += 1
                progressed = True
            free = window - len(self._inflight)
            if free > 0:
                batch = await self.outbox.next_batch(
                    free, exclude=set(self._inflight) | self._acked | self._deferred
                )
                exhausted = len(batch) < free
                for msg in batch:
                    await self._pace()
                    if session.lost.is_set() or self._closing:
                        return
                    self._inflight[msg.seq] = msg.priority
                    if not session.publish(
                        msg.seq,
                        msg.topic,
                        msg.payload,
                        qos=msg.qos,
                        retain=msg.retain,
                        correlation=msg.correlation,
                    ):
                        self._inflight.pop(msg.seq, None)
                        return  # the link is going; the next session resends
                    self.counters["published"] += 1
                    progressed = True
            if self._acked and (exhausted or len(self._acked) >= flush_at):
                await self._flush_acked()
                progressed = True
            if not progressed:
                await self._wake.wait()

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

    def _on_ack(self, token: int, ok: bool, reason: str) -> None:
        if token == _AVAILABILITY_TOKEN:
            if self._avail_ack is not None and not self._avail_ack.done():
                self._avail_ack.set_result(ok)
            return
        if token == _MEMORY_TOKEN:
            return
        if self._inflight.pop(token, None) is None:
            return  # from a session already given up: the row is resent anyway
        if ok:
            self._acked.add(token)
            self.counters["acked"] += 1
        else:
            self._deferred.add(token)
            self.counters["puback_failures"] += 1
            log.warning("uplink: broker refused message seq %d: %s (retried after reconnect)", token, reason)
        self._wake.set()

    async def _flush_acked(self) -> None:
        if not self._acked:
            return
        done = set(self._acked)
        try:
            await self.outbox.mark_delivered(done)
        except StoreError as exc:  # kept as acknowledged (not resent on this session); retried later
            self._rlog.warning("mark_delivered", "uplink: cannot delete delivered messages yet: %s", exc)
            return
        self._acked -= done
        self._check_quota()

    # -- storage alarm -------------------------------------------------------------------------------
    def _check_quota(self) -> None:
        self.reporter.check_quota()

    def _spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        async def guarded() -> None:
            try:
                await coro
            except Exception:
                log.exception("uplink: background task failed")

        task = asyncio.get_running_loop().create_task(guarded())
        self._spawned.add(task)
        task.add_done_callback(self._spawned.discard)
