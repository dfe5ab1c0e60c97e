"""Retention of personal data in the lane's store: purge what central confirmed long enough ago.

What the store holds that names a person, and when it goes:

- a passage row (plate, transponder, FAST card and seal EPCs, the whole passage payload): purged
  ``retention.days`` after ``confirmed_at``, the moment the broker acknowledged its latest revision
  (set by :func:`edge_agent.journal.confirm_delivered`); a passage never confirmed is never purged;
- images (evidence JPEGs) and every other upstream message: deleted from the outbox at their PUBACK;
- the technician's event log (events and faults, officer ids in audit records): purged at the same age.

The store runs with ``secure_delete`` on (:mod:`edge_agent.store.db`), so a deleted row's bytes are
overwritten with zeros in its page and freed pages are zeroed; after a purge the WAL is checkpointed and
truncated, so the old page images leave the ``-wal`` file too. :func:`purge` does one run;
:class:`Retention` runs it every ``retention.interval_s`` inside the agent; ``edge-agent purge``
(``--dry-run`` to only report) runs it by hand.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from edge_agent.clock import stop_task
from edge_agent.config.retention import RetentionConfig
from edge_agent.errors import StoreError
from edge_agent.store.db import Store

log = logging.getLogger(__name__)


def _iso(dt: datetime) -> str:
    return dt.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(frozen=True, slots=True)
class PurgeReport:
    """What one retention run purged (or, dry, would purge) and what it kept."""

    cutoff: str
    """Passages confirmed before this instant (UTC) are due."""
    dry_run: bool
    passages: int
    """Passage rows purged (or due)."""
    oldest_confirmed: str | None
    newest_confirmed: str | None
    events: int
    """Event log rows purged (or due)."""
    kept_confirmed: int
    """Confirmed passages still inside the retention period."""
    awaiting_confirmation: int
    """Passages central has not confirmed yet: kept whatever their age."""
    images_pending: int
    """Evidence images still queued upstream (they go at their PUBACK)."""
    wal_checkpoint: str | None = None
    """``"ok"``, ``"busy"`` (another connection held the WAL) or None when nothing was purged."""

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return asdict(self)

    def lines(self) -> list[str]:
        """The report as a technician reads it."""
        verb = "would purge" if self.dry_run else "purged"
        span = f" (confirmed {self.oldest_confirmed} .. {self.newest_confirmed})" if self.passages else ""
        out = [
            f"{verb}: {self.passages} passages{span}, {self.events} event log rows; cutoff {self.cutoff}",
            f"kept: {self.kept_confirmed} confirmed passages inside the retention period, "
            f"{self.awaiting_confirmation} awaiting confirmation by central, "
            f"{self.images_pending} images awaiting upstream",
        ]
        if self.wal_checkpoint is not None:
            out.append(f"wal checkpoint: {self.wal_checkpoint}")
        return out


def _tables(conn: sqlite3.Connection) -> set[str]:
    return {str(r[0]) for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}


def _has_confirmed_column(conn: sqlite3.Connection) -> bool:
    return any(str(r[1]) == "confirmed_at" for r in conn.execute("PRAGMA table_info(passage)"))


def purge_in(conn: sqlite3.Connection, cutoff: datetime, *, dry_run: bool) -> PurgeReport:
    """Count (``dry_run``) or delete what is due at ``cutoff``, inside the caller's transaction."""
    tables = _tables(conn)
    iso = _iso(cutoff)
    due = (0, None, None)
    kept = awaiting = events = images = 0
    if "passage" in tables and _has_confirmed_column(conn):
        due = conn.execute(
            "SELECT count(*), min(confirmed_at), max(confirmed_at) FROM passage "
            "WHERE confirmed_at IS NOT NULL AND confirmed_at < ?",
            (iso,),
        ).fetchone()
        kept = int(conn.execute("SELECT count(*) FROM passage WHERE confirmed_at >= ?", (iso,)).fetchone()[0])
        awaiting = int(conn.execute("SELECT count(*) FROM passage WHERE confirmed_at IS NULL").fetchone()[0])
        if not dry_run and due[0]:
            conn.execute("DELETE FROM passage WHERE confirmed_at IS NOT NULL AND confirmed_at < ?", (iso,))
    elif "passage" in tables:  # a store this agent has not migrated yet: nothing is known confirmed
        awaiting = int(conn.execute("SELECT count(*) FROM passage").fetchone()[0])
    if "event_log" in tables:
        epoch = cutoff.timestamp()
        events = int(conn.execute("SELECT count(*) FROM event_log WHERE at < ?", (epoch,)).fetchone()[0])
        if not dry_run and events:
            conn.execute("DELETE FROM event_log WHERE at < ?", (epoch,))
    if "outbox" in tables:
        images = int(conn.execute("SELECT count(*) FROM outbox WHERE kind = 'evidence'").fetchone()[0])
    return PurgeReport(
        cutoff=iso,
        dry_run=dry_run,
        passages=int(due[0]),
        oldest_confirmed=due[1],
        newest_confirmed=due[2],
        events=events,
        kept_confirmed=kept,
        awaiting_confirmation=awaiting,
        images_pending=images,
    )


async def purge(store: Store, cfg: RetentionConfig, *, now: datetime, dry_run: bool = False) -> PurgeReport:
    """One retention run on an open store: delete (or only count) what is due, then checkpoint."""
    cutoff = now - timedelta(days=cfg.days)
    if dry_run:
        return await store.read(lambda conn: purge_in(conn, cutoff, dry_run=True))
    report = await store.write(lambda conn: purge_in(conn, cutoff, dry_run=False))
    if not (report.passages or report.events):
        return report
    busy, _, _ = await store.checkpoint()
    return PurgeReport(**(report.as_dict() | {"wal_checkpoint": "busy" if busy else "ok"}))


class Retention:
    """Runs :func:`purge` every ``cfg.interval_s`` while the agent runs (async context manager)."""

    def __init__(
        self, store: Store, cfg: RetentionConfig, *, now: Callable[[], datetime] = lambda: datetime.now(UTC)
    ) -> None:
        self._store = store
        self._cfg = cfg
        self._now = now
        self._task: asyncio.Task[None] | None = None
        self.last: PurgeReport | None = None
        """The latest run's report (None before the first)."""

    async def __aenter__(self) -> Retention:
        self._task = asyncio.get_running_loop().create_task(self._loop(), name="retention")
        return self

    async def __aexit__(self, *exc: object) -> None:
        task, self._task = self._task, None
        await stop_task(task)

    async def _loop(self) -> None:
        while True:
            try:
                self.last = await purge(self._store, self._cfg, now=self._now())
            except StoreError as exc:  # the store's own fault handling reports it; try again later
                log.warning("retention: purge failed: %s", exc)
            else:
                if self.last.passages or self.last.events:
                    log.info("retention: %s", "; ".join(self.last.lines()))
            await asyncio.sleep(self._cfg.interval_s)


# ---------------------------------------------------------------------- edge-agent purge
def register(sub: Any) -> None:
    """Add ``edge-agent purge --config FILE [--dry-run] [--json]`` to the CLI's subparsers."""
    from pathlib import Path

    cmd = sub.add_parser(
        "purge",
        help="purge personal data past its retention from the store (--dry-run: only show it)",
        epilog="example: edge-agent purge --config /etc/edge-agent/lane.toml --dry-run",
    )
    cmd.add_argument("--config", required=True, type=Path, help="lane TOML file (storage.path, retention)")
    cmd.add_argument("--dry-run", action="store_true", help="show what would be purged; change nothing")
    cmd.add_argument("--json", action="store_true", help="print the report as one JSON object")
    cmd.set_defaults(func=_purge_command)


def _purge_command(args: Any) -> int:
    import json
    import sys

    from edge_agent.config import ConfigInvalid, load_config

    try:
        cfg = load_config(args.config)
    except ConfigInvalid as exc:
        for key, reason in exc.errors:
            print(f"{args.config}: {key}: {reason}", file=sys.stderr)
        return 2
    path = cfg.storage.path
    if not path.is_file():  # never create an empty store by looking at it
        print(f"no store at {path} (storage.path in {args.config})", file=sys.stderr)
        return 1

    async def run() -> PurgeReport:
        async with Store(cfg.storage) as store:
            return await purge(store, cfg.retention, now=datetime.now(UTC), dry_run=args.dry_run)

    try:
        report = asyncio.run(run())
    except (StoreError, sqlite3.Error) as exc:
        print(f"store {path}: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(report.as_dict() | {"store": str(path), "retention_days": cfg.retention.days}))
    else:
        print(f"store {path}: retention {cfg.retention.days:g} days after confirmation by central")
        for line in report.lines():
            print(line)
    return 0
