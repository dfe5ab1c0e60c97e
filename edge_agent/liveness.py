"""When the agent last ran: so a restart never leaves a silent hole in what central knows.

Trucks that cross while the agent is down leave no passage. So the agent records in its store when it
was last alive (every ``BEAT_S`` seconds, and at a clean stop), and at start reports the interval it
was away as a ``lane.gap`` event: from the last sign of life to now, and whether it stopped cleanly
(``clean_shutdown`` false after a crash, ``kill -9`` or a power cut; then ``from`` is accurate to
``BEAT_S``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from edge_agent.clock import Clock
from edge_agent.errors import StoreError
from edge_agent.store.db import Store
from edge_agent.uplink.messages import utc_iso

log = logging.getLogger(__name__)

BEAT_S = 10.0
"""Wall seconds between liveness records (a bounded write rate: one small row update)."""
SCHEMA_NAME = "liveness"
SCHEMA_DDL = """
CREATE TABLE IF NOT EXISTS liveness (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    started_at TEXT NOT NULL,
    alive_at TEXT NOT NULL,
    clean INTEGER NOT NULL
);
"""


@dataclass(frozen=True, slots=True)
class Gap:
    """The interval the lane was not watched."""

    since: datetime
    until: datetime
    clean_shutdown: bool

    @property
    def seconds(self) -> float:
        """Length of the gap."""
        return max(0.0, (self.until - self.since).total_seconds())

    def as_event_data(self) -> dict[str, Any]:
        """The ``lane.gap`` event's data."""
        return {
            "from": utc_iso(self.since),
            "to": utc_iso(self.until),
            "seconds": round(self.seconds, 3),
            "clean_shutdown": self.clean_shutdown,
        }


class Liveness:
    """Records this run's signs of life; tells the gap since the previous run (async context manager)."""

    def __init__(self, store: Store, clock: Clock) -> None:
        self.store = store
        self.clock = clock
        self.gap: Gap | None = None
        self.clean_stop = True
        """Set False by the agent when it stops on a failure (the next start reports no clean stop)."""
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Liveness:
        await self.store.ensure_schema(SCHEMA_NAME, SCHEMA_DDL)
        now = self.clock.utcnow()

        def start(conn: sqlite3.Connection) -> tuple[str, int] | None:
            row = conn.execute("SELECT alive_at, clean FROM liveness WHERE id = 1").fetchone()
            conn.execute(
                "INSERT INTO liveness (id, started_at, alive_at, clean) VALUES (1, ?, ?, 0) "
                "ON CONFLICT(id) DO UPDATE SET started_at = excluded.started_at, "
                "alive_at = excluded.alive_at, clean = 0",
                (utc_iso(now), utc_iso(now)),
            )
            return None if row is None else (str(row[0]), int(row[1]))

        previous = await self.store.write(start)
        if previous is not None:
            since = datetime.fromisoformat(previous[0].replace("Z", "+00:00"))
            self.gap = Gap(since, now, bool(previous[1]))
            log.warning(
                "lane unwatched for %.0f s (last alive %s, %s)",
                self.gap.seconds,
                previous[0],
                "clean stop" if previous[1] else "no clean stop: crash or power cut",
            )
        self._task = asyncio.create_task(self._beat(), name="liveness")
        return self

    async def __aexit__(self, *exc: object) -> None:
        """Record a clean stop (the next start reports the gap as clean)."""
        if self._task is None:
            return
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)
        self._task = None
        try:
            await self._record(clean=self.clean_stop)
        except StoreError as exc:
            log.error("cannot record the clean stop: %s", exc)

    async def _record(self, *, clean: bool) -> None:
        at = utc_iso(self.clock.utcnow())
        await self.store.write(
            lambda conn: conn.execute(
                "UPDATE liveness SET alive_at = ?, clean = ? WHERE id = 1", (at, int(clean))
            )
        )

    async def _beat(self) -> None:
        while True:
            await asyncio.sleep(BEAT_S)
            with contextlib.suppress(StoreError):  # the store's own fault handling reports it
                await self._record(clean=False)
