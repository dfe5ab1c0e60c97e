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
from collections import Counter
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
from edge_agent.uplink.drain import Drainer
from edge_agent.uplink.intake import CommandIntake
from edge_agent.uplink.link import Broker, LinkError, LinkRefusedError, Session
from edge_agent.uplink.reporting import HealthProvider, HealthReporter
from edge_agent.uplink.topics import Topics

log = logging.getLogger(__name__)

_AVAILABILITY_TOKEN = -1
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
        self._connected_event = asyncio.Event()
        self._avail_ack: asyncio.Future[bool] | None = None
        self.drainer = Drainer(
            cfg, outbox, counters=self.counters, rlog=self._rlog, on_flushed=self._check_quota
        )
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
            fallback=self.drainer.remember,
            kick=self.kick,
        )
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
        self.drainer.wake()
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
            self.drainer.remember(self.topics(kind), body, f"{kind} {mid}: {exc}")
        self.kick()
        return mid

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
            if self.drainer.idle and await self.outbox.pending_count() == 0:
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
        self.drainer.wake()
        session = self._session
        if session is not None and not session.lost.is_set():
            await self._graceful(session)
        for task in [*self._tasks, *self._spawned]:
            task.cancel()
        for task in [*self._tasks, *self._spawned]:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        with contextlib.suppress(Exception):
            await self.drainer.flush_acked()
        if self._session is not None:
            await self._session.close()
            self._session = None
        self._set_health(DeviceState.DOWN, "closed")

    async def _graceful(self, session: Session) -> None:
        deadline = time.monotonic() + self.cfg.close_grace_s
        woken = self.drainer.woken
        while (
            self.drainer.inflight and not session.lost.is_set() and (left := deadline - time.monotonic()) > 0
        ):
            woken.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(woken.wait(), left)
        with contextlib.suppress(Exception):
            await self.drainer.flush_acked()
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
        self.drainer.new_session()
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
        drainer = asyncio.create_task(self.drainer.drain(session, lambda: self._closing), name="uplink-drain")
        try:
            await session.lost.wait()
        finally:
            self._connected_event.clear()
            self.connected_since = None
            drainer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await drainer
            unacked = self.drainer.session_lost()
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
                await self.drainer.flush_acked()

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
    def _on_ack(self, token: int, ok: bool, reason: str) -> None:
        if token == _AVAILABILITY_TOKEN:
            if self._avail_ack is not None and not self._avail_ack.done():
                self._avail_ack.set_result(ok)
            return
        self.drainer.on_ack(token, ok, reason)

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
