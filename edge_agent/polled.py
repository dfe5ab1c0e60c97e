"""What every polled Modbus source of the lane shares: a supervised link, and faults reported as events.

:func:`supervised_link` builds the link and its :class:`~drivers.modbus.poller.PollSupervisor` from a
device's config (poll interval stretched to what the line can carry, with a warning; reconnect backoff;
``fault_after`` failures make it ``down``). :class:`FaultReporter` turns condition transitions (a
``comms`` loss, a stuck loop, a controller fault) into :class:`~edge_agent.domain.DeviceFault` events.
The WIM controller and the Modbus loop card are both built from these.
"""

from __future__ import annotations

import logging
from collections import Counter
from typing import Protocol

from drivers.modbus.client import Backoff, ModbusLink
from drivers.modbus.line import cycle_time
from drivers.modbus.poller import Conditions, PollSupervisor, Transition
from drivers.modbus.regmap import ReadRequest
from edge_agent.clock import Clock
from edge_agent.domain import DeviceFault
from edge_agent.sources import Emit

log = logging.getLogger(__name__)


class PolledConfig(Protocol):
    """The settings every polled Modbus device has (``ModbusWimConfig``, ``ModbusLoopsConfig``)."""

    @property
    def url(self) -> str: ...  # noqa: D102
    @property
    def timeout_s(self) -> float: ...  # noqa: D102
    @property
    def poll_interval_s(self) -> float: ...  # noqa: D102
    @property
    def fault_after(self) -> int: ...  # noqa: D102
    @property
    def reconnect_min_s(self) -> float: ...  # noqa: D102
    @property
    def reconnect_max_s(self) -> float: ...  # noqa: D102


def supervised_link(
    name: str, cfg: PolledConfig, plan: list[ReadRequest], clock: Clock, counters: Counter[str]
) -> tuple[ModbusLink, PollSupervisor]:
    """The device's link and the supervisor that polls it at what the line can carry."""
    link = ModbusLink(cfg.url, timeout_s=cfg.timeout_s, name=name, counters=counters)
    interval = max(cfg.poll_interval_s, cycle_time(plan, link.endpoint))
    if interval > cfg.poll_interval_s:
        log.warning(
            "%s: poll interval %.3f s is faster than %s can carry; polling every %.3f s",
            name,
            cfg.poll_interval_s,
            link.endpoint.line,
            interval,
        )
    sup = PollSupervisor(
        link,
        interval=interval,
        fault_after=cfg.fault_after,
        backoff=Backoff(cfg.reconnect_min_s, cfg.reconnect_max_s),
        sleep=clock.sleep,
        now=clock.monotonic,
    )
    return link, sup


class FaultReporter:
    """Reports a source's condition transitions as fault events (``comms`` for the link's own)."""

    name: str
    _clock: Clock
    _conditions: Conditions
    _emit: Emit | None

    def _report(self, t: Transition | None) -> None:
        if t is not None and self._emit is not None:
            self._emit(DeviceFault(self.name, t.kind, t.active, t.detail, self._clock.monotonic()))

    def _comms_down(self, reason: str) -> None:
        self._report(self._conditions.start("comms", "comms", reason))

    def _comms_up(self) -> None:
        self._report(self._conditions.end("comms", "answering again"))
