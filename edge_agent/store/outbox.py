"""The store-and-forward outbox: every upstream message is a row here until its PUBACK arrives.

Producers call :meth:`Outbox.enqueue` *inside their own* ``store.write(fn)`` so a journal row and its
outbox row commit together (a passage is never journalled without being queued, nor queued without
being journalled). The uplink drains rows in ``(priority, seq)`` order, so delivery is in order within
a priority, and deletes a row only after the broker acknowledged it.

SD-card wear: the row id *is* the delivery order (``seq = priority << 48 | counter``), so a message
costs two b-trees (the table and its ``msg_id`` index) instead of four; delivered counts live in memory.

Disk quota policy (``storage.quota_mb``, measured as live pages of the whole store file): when an
insert takes the file over the quota, droppable messages are deleted until it fits again, lowest
priority first (bulk, then events and health, then faults and command responses) and oldest first
within a priority. Passages (:data:`PROTECTED_KINDS`) are never dropped: if only they remain, the
insert is still accepted and the quota state turns ``full``. Every drop is counted by kind; the
uplink raises a ``storage_quota`` fault upstream while the state is not ``ok`` and clears it once the
file is back under 90 % of the quota.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from collections import Counter
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass, field
from enum import IntEnum, StrEnum
from types import TracebackType

from edge_agent.store.db import Store, used_bytes

log = logging.getLogger(__name__)


class Priority(IntEnum):
    """Delivery classes: lower goes first."""

    DECISION = 0  # passages (decisions), faults, command responses
    EVENT = 5  # lane events, periodic health
    BULK = 9  # images and other bulk evidence


PROTECTED_KINDS: frozenset[str] = frozenset({"passage"})
"""Kinds the quota policy never drops."""

CLEAR_FRACTION = 0.9
"""The quota alarm clears once live data falls below this fraction of the quota."""

SCHEMA = """
CREATE TABLE outbox (
    seq INTEGER PRIMARY KEY,  -- priority << 48 | counter: rowid order is delivery order
    msg_id TEXT NOT NULL UNIQUE,
    topic TEXT NOT NULL,
    payload BLOB NOT NULL,
    priority INTEGER NOT NULL,
    kind TEXT NOT NULL,
    qos INTEGER NOT NULL CHECK (qos IN (0, 1)),
    retain INTEGER NOT NULL,
    correlation BLOB,
    created_at REAL NOT NULL
);
CREATE TABLE outbox_counts (
    name TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
"""

EVENT_LOG = """
CREATE TABLE event_log (
    id INTEGER PRIMARY KEY,
    kind TEXT NOT NULL,
    at REAL NOT NULL,
    payload BLOB NOT NULL
);
"""
"""Migration 2: a bounded history of the events and faults sent upstream (``edge-agent events``)."""
LOGGED_KINDS = frozenset({"event", "fault"})
EVENT_LOG_ROWS = 10_000
"""Events and faults kept for the technician (the oldest go first); upstream delivery is the outbox's."""

_SHIFT = 48
MAX_PRIORITY = 99
_COLUMNS = "seq, msg_id, topic, payload, priority, kind, qos, retain, correlation, created_at"


class QuotaState(StrEnum):
    """Where the store stands against its quota."""

    OK = "ok"
    DROPPING = "dropping"  # over the quota; droppable messages were deleted to make room
    FULL = "full"  # over the quota with nothing left to drop; passages still accepted


@dataclass(frozen=True, slots=True)
class OutboxMessage:
    """One queued message."""

    seq: int
    msg_id: str
    topic: str
    payload: bytes
    priority: int
    kind: str
    qos: int
    retain: bool
    correlation: bytes | None
    created_at: float


@dataclass(slots=True)
class OutboxStats:
    """Counts for health messages and the CLI."""

    pending: dict[str, int] = field(default_factory=dict)
    pending_bytes: int = 0
    oldest_age_s: float | None = None
    delivered: dict[str, int] = field(default_factory=dict)
    dropped: dict[str, int] = field(default_factory=dict)
    coalesced: int = 0
    quota_state: QuotaState = QuotaState.OK
    used_bytes: int = 0
    quota_bytes: int = 0

    def as_dict(self) -> dict[str, object]:
        """Return a JSON-ready view (the ``outbox`` section of the health message)."""
        return {
            "pending": dict(sorted(self.pending.items())),
            "pending_total": sum(self.pending.values()),
            "pending_bytes": self.pending_bytes,
            "oldest_age_s": None if self.oldest_age_s is None else round(self.oldest_age_s, 3),
            "delivered": dict(sorted(self.delivered.items())),
            "dropped": dict(sorted(self.dropped.items())),
            "coalesced": self.coalesced,
            "quota_state": self.quota_state.value,
            "used_bytes": self.used_bytes,
            "quota_bytes": self.quota_bytes,
        }


def _bump(conn: sqlite3.Connection, name: str, n: int) -> None:
    conn.execute(
        "INSERT INTO outbox_counts(name, value) VALUES (?, ?) "
        "ON CONFLICT(name) DO UPDATE SET value = value + excluded.value",
        (name, n),
    )


class Outbox:
    """The persistent queue of upstream messages in the lane's store (async context manager)."""

    def __init__(self, store: Store, *, protected_kinds: Collection[str] = PROTECTED_KINDS) -> None:
        self.store = store
        self.protected_kinds = frozenset(protected_kinds)
        self.counters: Counter[str] = Counter()
        self._state = QuotaState.OK
        self._state_detail = ""
        self._counter = 0  # last sequence counter handed out by this process (never goes back)
        self._delivered: Counter[str] = Counter()
        self.delivery_hooks: list[Callable[[sqlite3.Connection, Sequence[tuple[str, str]]], None]] = []
        """Run inside the transaction that deletes acknowledged messages, with their ``(kind, msg_id)``
        (the journal notes when central confirmed a passage; retention counts from there)."""

    async def setup(self) -> None:
        """Create (or migrate) the outbox tables."""
        await self.store.ensure_schema("outbox", [SCHEMA, EVENT_LOG])

    async def __aenter__(self) -> Outbox:
        await self.setup()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        """Nothing to release: the store owns the file."""

    @property
    def quota_state(self) -> QuotaState:
        """The quota state after the latest insert or delivery."""
        return self._state

    @property
    def quota_detail(self) -> str:
        """A human-readable line explaining :attr:`quota_state`."""
        return self._state_detail

    # -- producers (store thread, inside the caller's transaction) -------------------------------
    def enqueue(
        self,
        conn: sqlite3.Connection,
        *,
        msg_id: str,
        topic: str,
        payload: bytes,
        priority: int,
        kind: str,
        qos: int = 1,
        retain: bool = False,
        coalesce: bool = False,
        correlation: bytes | None = None,
    ) -> bool:
        """Queue one message inside the caller's ``store.write`` transaction.

        Returns False when a message with this ``msg_id`` is already queued (nothing changes).
        ``coalesce=True`` first deletes every pending message of the same ``kind`` and ``topic``
        (periodic health: only the latest matters). Applies the quota policy before returning.
        """
        if qos not in (0, 1):
            raise ValueError(f"qos must be 0 or 1, not {qos}")
        if not 0 <= int(priority) <= MAX_PRIORITY:
            raise ValueError(f"priority must be 0..{MAX_PRIORITY}, not {priority}")
        if not isinstance(payload, bytes | bytearray | memoryview):
            raise TypeError("payload must be bytes")
        if coalesce:
            n = conn.execute("DELETE FROM outbox WHERE kind = ? AND topic = ?", (kind, topic)).rowcount
            if n:
                _bump(conn, "coalesced", n)
        cur = conn.execute(
            "INSERT INTO outbox(seq, msg_id, topic, payload, priority, kind, qos, retain, correlation, "
            "created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(msg_id) DO NOTHING",
            (
                self._next_seq(conn, int(priority)),
                msg_id,
                topic,
                bytes(payload),
                int(priority),
                kind,
                qos,
                int(retain),
                correlation,
                time.time(),
            ),
        )
        if cur.rowcount == 0:
            self.store.on_commit(lambda: self.counters.update(["duplicate_enqueue"]))
            return False
        if kind in LOGGED_KINDS:
            cur = conn.execute(
                "INSERT INTO event_log (kind, at, payload) VALUES (?, ?, ?)",
                (kind, time.time(), bytes(payload)),
            )
            if cur.lastrowid is not None and cur.lastrowid % 100 == 0:
                conn.execute("DELETE FROM event_log WHERE id <= ?", (cur.lastrowid - EVENT_LOG_ROWS,))
        self._apply_quota(conn)
        return True

    async def put(
        self,
        *,
        msg_id: str,
        topic: str,
        payload: bytes,
        priority: int,
        kind: str,
        qos: int = 1,
        retain: bool = False,
        coalesce: bool = False,
        correlation: bytes | None = None,
    ) -> bool:
        """Queue one message in its own transaction (for messages with no journal row)."""

        def fn(conn: sqlite3.Connection) -> bool:
            return self.enqueue(
                conn,
                msg_id=msg_id,
                topic=topic,
                payload=payload,
                priority=priority,
                kind=kind,
                qos=qos,
                retain=retain,
                coalesce=coalesce,
                correlation=correlation,
            )

        return await self.store.write(fn)

    def _next_seq(self, conn: sqlite3.Connection, priority: int) -> int:
        """Return a sequence number above every queued row of this priority and any handed out before."""
        base = priority << _SHIFT
        row = conn.execute(
            "SELECT max(seq) FROM outbox WHERE seq >= ? AND seq < ?", (base, base + (1 << _SHIFT))
        )
        top = row.fetchone()[0]
        in_db = 0 if top is None else int(top) - base
        self._counter = max(self._counter, in_db) + 1
        return base + self._counter

    # -- the drainer ---------------------------------------------------------------------------
    async def next_batch(self, limit: int, exclude: Collection[int] = ()) -> list[OutboxMessage]:
        """Up to ``limit`` messages in delivery order, skipping the sequence numbers in ``exclude``."""
        if limit <= 0:
            return []
        skip = list(exclude)

        def q(conn: sqlite3.Connection) -> list[OutboxMessage]:
            where = f"WHERE seq NOT IN ({','.join('?' * len(skip))}) " if skip else ""
            rows = conn.execute(
                f"SELECT {_COLUMNS} FROM outbox {where}ORDER BY seq LIMIT ?",  # noqa: S608
                (*skip, limit),
            ).fetchall()
            return [
                OutboxMessage(
                    seq=int(r[0]),
                    msg_id=str(r[1]),
                    topic=str(r[2]),
                    payload=bytes(r[3]),
                    priority=int(r[4]),
                    kind=str(r[5]),
                    qos=int(r[6]),
                    retain=bool(r[7]),
                    correlation=None if r[8] is None else bytes(r[8]),
                    created_at=float(r[9]),
                )
                for r in rows
            ]

        return await self.store.read(q)

    async def mark_delivered(self, seqs: Iterable[int]) -> int:
        """Delete acknowledged messages (unknown sequence numbers are ignored); return how many went."""
        todo = sorted(set(seqs))
        if not todo:
            return 0

        def fn(conn: sqlite3.Connection) -> int:
            kinds: Counter[str] = Counter()
            delivered: list[tuple[str, str]] = []
            for i in range(0, len(todo), 500):
                chunk = todo[i : i + 500]
                marks = ",".join("?" * len(chunk))
                for kind, msg_id in conn.execute(
                    f"SELECT kind, msg_id FROM outbox WHERE seq IN ({marks})",  # noqa: S608
                    chunk,
                ):
                    kinds[str(kind)] += 1
                    delivered.append((str(kind), str(msg_id)))
                conn.execute(f"DELETE FROM outbox WHERE seq IN ({marks})", chunk)  # noqa: S608
            for hook in self.delivery_hooks:
                hook(conn, delivered)
            self.store.on_commit(lambda: self._delivered.update(kinds))
            if self._state is not QuotaState.OK:
                self._maybe_clear(conn)
            return sum(kinds.values())

        return await self.store.write(fn)

    async def pending_count(self) -> int:
        """How many messages are waiting."""
        return await self.store.read(
            lambda conn: int(conn.execute("SELECT count(*) FROM outbox").fetchone()[0])
        )

    async def stats(self) -> OutboxStats:
        """Pending by kind, delivered by kind (since start), dropped by kind (persistent), quota state."""

        def q(conn: sqlite3.Connection) -> OutboxStats:
            st = OutboxStats(
                quota_state=self._state, quota_bytes=self.store.quota_bytes, delivered=dict(self._delivered)
            )
            by_kind = "SELECT kind, count(*), sum(length(payload)) FROM outbox GROUP BY kind"
            for kind, n, size in conn.execute(by_kind):
                st.pending[str(kind)] = int(n)
                st.pending_bytes += int(size or 0)
            oldest = conn.execute("SELECT min(created_at) FROM outbox").fetchone()[0]
            st.oldest_age_s = None if oldest is None else max(0.0, time.time() - float(oldest))
            for name, value in conn.execute("SELECT name, value FROM outbox_counts"):
                prefix, _, kind = str(name).partition(":")
                if prefix == "dropped":
                    st.dropped[kind] = int(value)
                elif prefix == "coalesced":
                    st.coalesced = int(value)
            st.used_bytes = used_bytes(conn)
            return st

        return await self.store.read(q)

    # -- quota -----------------------------------------------------------------------------------
    def _apply_quota(self, conn: sqlite3.Connection) -> None:
        quota = self.store.quota_bytes
        used = used_bytes(conn)
        if used <= quota:
            if self._state is not QuotaState.OK:
                self._maybe_clear(conn, used)
            return
        # Free enough payload to get back to CLEAR_FRACTION of the quota in one go: SQLite reuses
        # space freed inside pages, so the next inserts fit without growing the file.
        dropped, remaining = self._drop(conn, used - int(quota * CLEAR_FRACTION))
        used = used_bytes(conn)
        if used > quota and not remaining:
            self._set_state(
                QuotaState.FULL,
                f"store holds {used} B of live data, over its quota of {quota} B, with only protected "
                f"messages ({', '.join(sorted(self.protected_kinds))}) and other modules' data left; "
                "still accepting",
            )
        elif dropped:
            self._set_state(
                QuotaState.DROPPING,
                f"store reached its quota of {quota} B; dropped {sum(dropped.values())} messages "
                f"({', '.join(f'{k}={n}' for k, n in sorted(dropped.items()))})",
            )

    def _drop(self, conn: sqlite3.Connection, target: int) -> tuple[Counter[str], bool]:
        """Delete droppable messages until about ``target`` bytes are freed; return (dropped, any left)."""
        protected = sorted(self.protected_kinds)
        marks = ",".join("?" * len(protected)) or "''"
        select = (
            f"SELECT seq, kind, length(payload) FROM outbox WHERE kind NOT IN ({marks}) "  # noqa: S608
            "ORDER BY priority DESC, seq ASC LIMIT 256"
        )
        dropped: Counter[str] = Counter()
        freed = 0
        remaining = True
        while freed < target:
            rows = conn.execute(select, protected).fetchall()
            if not rows:
                remaining = False
                break
            victims: list[int] = []
            for seq, kind, size in rows:
                victims.append(int(seq))
                dropped[str(kind)] += 1
                freed += int(size or 0) + 64  # payload plus row overhead
                if freed >= target:
                    break
            conn.execute(f"DELETE FROM outbox WHERE seq IN ({','.join('?' * len(victims))})", victims)  # noqa: S608
        if remaining and freed >= target:
            remaining = conn.execute(select.replace("LIMIT 256", "LIMIT 1"), protected).fetchone() is not None
        for kind, n in dropped.items():
            _bump(conn, f"dropped:{kind}", n)
        self.store.on_commit(lambda: self.counters.update({f"dropped:{k}": n for k, n in dropped.items()}))
        if dropped:
            log.warning(
                "outbox: quota %d B reached, dropped %s (lowest priority first, oldest first)",
                self.store.quota_bytes,
                dict(dropped),
            )
        return dropped, remaining

    def _maybe_clear(self, conn: sqlite3.Connection, used: int | None = None) -> None:
        used = used_bytes(conn) if used is None else used
        if used < self.store.quota_bytes * CLEAR_FRACTION:
            self._set_state(QuotaState.OK, f"store back under its quota ({used} B live)")

    def _set_state(self, state: QuotaState, detail: str) -> None:
        """Take the new quota state once the transaction that found it has committed."""
        self.store.on_commit(lambda: self._take_state(state, detail))

    def _take_state(self, state: QuotaState, detail: str) -> None:
        if state is not self._state:
            level = logging.INFO if state is QuotaState.OK else logging.ERROR
            log.log(level, "outbox: quota state %s -> %s: %s", self._state.value, state.value, detail)
        self._state = state
        self._state_detail = detail
