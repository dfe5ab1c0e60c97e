"""External fail-safe: heartbeat output, loop-lag fault and the systemd watchdog.

Three independent guards that the lane process is alive and its event loop responsive:

* **heartbeat** -- an output toggled every ``heartbeat_ms`` by a task on the lane's own event loop,
  only while the loop is healthy. An external watchdog relay or malfunction unit wired to it forces
  red when the toggling stops (process killed, loop blocked, board hung). Set its timeout to at least
  three heartbeat periods.
* **loop lag** -- the same task measures how late the loop wakes it; past ``loop_lag_ms`` the signal
  gets fault ``loop_lag`` (red through amber), cleared after a second of punctual ticks.
* **systemd** -- ``WATCHDOG=1`` at half ``$WATCHDOG_USEC``, sent only while healthy, so systemd
  kills and restarts a wedged agent; plus ``READY=1``, ``STATUS=`` and ``STOPPING=1``.

All three run on wall time (the event loop's clock), never on accelerated lane time.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from collections import Counter
from collections.abc import Callable, Mapping

from drivers.gpio.base import DigitalIO
from edge_agent.config.signal import WatchdogConfig
from edge_agent.signal import TrafficSignal
from edge_agent.signal_policy import fail_safe_window_s

log = logging.getLogger(__name__)

LOOP_LAG = "loop_lag"


class SystemdNotifier:
    """``sd_notify`` spoken directly: one datagram per message to ``$NOTIFY_SOCKET``."""

    def __init__(self, socket_path: str | None, watchdog_usec: int | None = None) -> None:
        self.socket_path = socket_path or None
        self.watchdog_usec = watchdog_usec if watchdog_usec and watchdog_usec > 0 else None
        self.counters: Counter[str] = Counter()
        self._sock: socket.socket | None = None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> SystemdNotifier:
        """Read ``NOTIFY_SOCKET``, ``WATCHDOG_USEC`` and ``WATCHDOG_PID`` (ours, or unset)."""
        env = os.environ if environ is None else environ
        usec: int | None = None
        pid = env.get("WATCHDOG_PID")
        if env.get("WATCHDOG_USEC", "").isdigit() and (pid is None or pid == str(os.getpid())):
            usec = int(env["WATCHDOG_USEC"])
        return cls(env.get("NOTIFY_SOCKET"), usec)

    @property
    def enabled(self) -> bool:
        """Whether systemd is listening (``$NOTIFY_SOCKET`` was set)."""
        return self.socket_path is not None

    @property
    def ping_interval_s(self) -> float | None:
        """How often to send ``WATCHDOG=1`` (half of ``$WATCHDOG_USEC``), or None when off."""
        return self.watchdog_usec / 2e6 if self.watchdog_usec and self.enabled else None

    def notify(self, *fields: str) -> bool:
        """Send ``KEY=value`` fields in one datagram; False (counted, logged once) if it fails."""
        if self.socket_path is None:
            return False
        address = self.socket_path
        if address.startswith("@"):
            address = "\0" + address[1:]
        try:
            if self._sock is None:
                # non-blocking: a slow reader must never stall the lane loop
                kind = socket.SOCK_DGRAM | socket.SOCK_CLOEXEC | socket.SOCK_NONBLOCK
                self._sock = socket.socket(socket.AF_UNIX, kind)
            self._sock.sendto("\n".join(fields).encode(), address)
        except BlockingIOError:
            self.counters["notify_dropped"] += 1
            return False
        except OSError as exc:
            self.counters["notify_errors"] += 1
            if self.counters["notify_errors"] == 1:
                log.warning("sd_notify to %s failed: %s", self.socket_path, exc)
            return False
        self.counters["sent"] += 1
        return True

    def ready(self, status: str) -> bool:
        """Tell systemd that start-up is complete."""
        return self.notify("READY=1", f"STATUS={status}")

    def status(self, text: str) -> bool:
        """Update the status line ``systemctl status`` shows."""
        return self.notify(f"STATUS={text}")

    def ping(self) -> bool:
        """Keep the systemd watchdog from firing."""
        return self.notify("WATCHDOG=1")

    def stopping(self, status: str = "stopping") -> bool:
        """Tell systemd that shutdown has begun."""
        return self.notify("STOPPING=1", f"STATUS={status}")

    def close(self) -> None:
        """Close the socket (safe twice)."""
        if self._sock is not None:
            self._sock.close()
            self._sock = None


class LaneWatchdog:
    """Heartbeat, loop-lag monitor and systemd pings: ``async with LaneWatchdog(...)``.

    ``healthy`` lets the lane add its own condition (e.g. "the passage tracker ticked recently");
    the signal's sequencer must be running and the loop punctual as well.
    """

    def __init__(
        self,
        cfg: WatchdogConfig,
        signal: TrafficSignal,
        io: DigitalIO | None = None,
        *,
        notifier: SystemdNotifier | None = None,
        healthy: Callable[[], bool] | None = None,
    ) -> None:
        if cfg.heartbeat_pin is not None and io is None:
            raise ValueError("a heartbeat pin needs the GPIO backend (io)")
        self.cfg = cfg
        self.signal = signal
        self.notifier = notifier if notifier is not None else SystemdNotifier(None)
        self.counters: Counter[str] = Counter()
        self.lag_s = 0.0
        self.max_lag_s = 0.0
        self._io = io
        self._healthy_extra = healthy
        self._level = False
        self._task: asyncio.Task[None] | None = None
        self._punctual_since: float | None = None

    @property
    def tick_s(self) -> float:
        """How often the watchdog task runs (wall seconds)."""
        tick = self.cfg.heartbeat_ms / 1000.0
        ping = self.notifier.ping_interval_s
        return min(tick, ping) if ping else tick

    @property
    def healthy(self) -> bool:
        """Loop punctual, signal sequencer alive and the lane's own check (if any) passing."""
        if self.lag_s * 1000.0 > self.cfg.loop_lag_ms or not self.signal.healthy:
            return False
        return self._healthy_extra is None or bool(self._healthy_extra())

    def ready(self, status: str = "lane running") -> None:
        """Tell systemd the agent is up (call once every component has started)."""
        self.notifier.ready(status)

    async def __aenter__(self) -> LaneWatchdog:
        """Set the heartbeat output up and start ticking."""
        if self._io is not None and self.cfg.heartbeat_pin is not None:
            self._io.setup_output(self.cfg.heartbeat_pin, initial=False)
        self._task = asyncio.create_task(self._run(), name="lane-watchdog")
        return self

    async def __aexit__(self, *exc: object) -> None:
        """Stop ticking (the external unit then forces red); tell systemd we stop. Safe twice."""
        if self._task is None:
            return
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._task = None
        self.notifier.stopping()
        self.notifier.close()

    def _tick(self, lag_s: float, now: float) -> None:
        self.lag_s = lag_s
        self.max_lag_s = max(self.max_lag_s, lag_s)
        if lag_s * 1000.0 > self.cfg.loop_lag_ms:
            self.counters["loop_lag"] += 1
            self._punctual_since = None
            self.signal.fault(LOOP_LAG, f"event loop woke {lag_s * 1000:.0f} ms late")
        elif LOOP_LAG in self.signal.faults:
            if self._punctual_since is None:
                self._punctual_since = now
            elif now - self._punctual_since >= max(1.0, 4 * self.tick_s):
                self.signal.clear_fault(LOOP_LAG)
        if not self.healthy:
            self.counters["unhealthy_ticks"] += 1
            return
        if self._io is not None and self.cfg.heartbeat_pin is not None:
            self._level = not self._level
            self._io.write(self.cfg.heartbeat_pin, self._level)
            self.counters["heartbeats"] += 1

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        due = loop.time()
        while True:
            due += self.tick_s
            await asyncio.sleep(max(0.0, due - loop.time()))
            now = loop.time()
            lag = max(0.0, now - due)
            if lag > self.tick_s:
                due = now  # do not try to catch up missed ticks
            if self.cfg.heartbeat_pin is not None and self.tick_s + lag > fail_safe_window_s(self.cfg):
                # no toggle for longer than the external unit tolerates: it may have forced red
                self.counters["heartbeat_gaps"] += 1
                self.signal.lamps_lost(f"no heartbeat for {(self.tick_s + lag) * 1000:.0f} ms")
            try:
                self._tick(lag, now)
            except Exception as exc:  # a dead heartbeat output: stop feeding anything
                self.counters["errors"] += 1
                log.exception("watchdog tick failed")
                self.signal.fault("watchdog", f"heartbeat failed: {exc}")
                return
            if self.notifier.ping_interval_s is not None and self.healthy:
                self.notifier.ping()  # every healthy tick: tick_s <= half of $WATCHDOG_USEC
