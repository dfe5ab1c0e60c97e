"""Health reporting: the periodic health message and the storage-quota alarm, queued through the uplink.

Every ``mqtt.health_interval_s`` the lane's health (the provider's devices and status, the link's own
health, the outbox's counts) is queued as one ``lane.health/1`` message, coalesced so only the latest
waits while offline. When the outbox's quota state changes (ok, dropping, full), a ``storage_quota``
fault (or its clearing) is queued.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Callable, Coroutine, Mapping
from typing import Any

from edge_agent.clock import Clock
from edge_agent.config.mqtt import MqttConfig
from edge_agent.errors import StoreError
from edge_agent.health import DeviceHealth
from edge_agent.store.outbox import Outbox, QuotaState
from edge_agent.uplink import messages

log = logging.getLogger(__name__)

HealthProvider = Callable[[], Mapping[str, Any]]
"""Returns ``{"devices": [DeviceHealth | dict, ...], ...}``: ``devices`` become the health message's
device list (the uplink adds itself), every other key (JSON-ready) goes into its ``status`` object."""


class HealthReporter:
    """Builds and queues health messages and quota alarms (``run`` until cancelled)."""

    def __init__(
        self,
        cfg: MqttConfig,
        *,
        site_id: str,
        lane_id: str,
        clock: Clock,
        outbox: Outbox,
        link_health: Callable[[], DeviceHealth],
        emit: Callable[..., Coroutine[Any, Any, str]],
        spawn: Callable[[Coroutine[Any, Any, Any]], None],
        counters: Counter[str],
    ) -> None:
        self.cfg = cfg
        self.site_id = site_id
        self.lane_id = lane_id
        self.clock = clock
        self.outbox = outbox
        self.provider: HealthProvider | None = None
        self._link_health = link_health
        self._emit = emit
        self._spawn = spawn
        self.counters = counters
        self._started_mono = clock.monotonic()
        self._quota_seen = QuotaState.OK

    async def publish(self) -> None:
        """Queue a health message now."""
        provided: Mapping[str, Any] = {}
        if self.provider is not None:
            try:
                provided = self.provider()
            except Exception:
                log.exception("uplink: health provider failed")
        devices = [
            d.as_dict() if isinstance(d, DeviceHealth) else dict(d) for d in provided.get("devices", ())
        ]
        devices.append(self._link_health().as_dict())
        try:
            stats: dict[str, Any] = (await self.outbox.stats()).as_dict()
        except StoreError as exc:
            stats = {"error": str(exc)[:200]}
        payload = messages.health(
            self.site_id,
            self.lane_id,
            at=self.clock.utcnow(),
            uptime_s=self.clock.monotonic() - self._started_mono,
            devices=devices,
            outbox=stats,
            status={
                **{k: v for k, v in provided.items() if k not in ("devices", "status")},
                **dict(provided.get("status", {})),
            },
        )
        await self._emit("health", payload)
        self.counters["health_queued"] += 1

    def check_quota(self) -> None:
        """Queue a ``storage_quota`` fault when the outbox's quota state changed."""
        state = self.outbox.quota_state
        if state is self._quota_seen:
            return
        self._quota_seen = state
        severity: messages.Severity = "critical" if state is QuotaState.FULL else "error"
        payload = messages.fault(
            self.site_id,
            self.lane_id,
            device="store",
            kind="storage_quota",
            active=state is not QuotaState.OK,
            at=self.clock.utcnow(),
            detail=self.outbox.quota_detail,
            severity="warning" if state is QuotaState.OK else severity,
        )
        self.counters[f"quota_{state.value}"] += 1
        self._spawn(self._emit("fault", payload))

    async def run(self) -> None:
        """Queue a health message every ``health_interval_s``."""
        while True:
            await asyncio.sleep(self.cfg.health_interval_s)
            try:
                await self.publish()
            except Exception:
                log.exception("uplink: queueing the health message failed")
