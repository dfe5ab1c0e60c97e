"""One SQLite file, one connection, one thread: the store every lane module writes through.

The file is opened in WAL mode with ``synchronous=FULL`` (a committed passage survives power loss),
foreign keys on and a busy timeout. Every statement runs on a dedicated store thread; the asyncio
loop submits work with :meth:`Store.write` (inside ``BEGIN IMMEDIATE ... COMMIT``) or
:meth:`Store.read` (a read-only snapshot) and awaits the result, so the loop never blocks on disk.

Modules own their tables: they register them with :meth:`Store.ensure_schema`, which applies numbered
migrations atomically and records each module's version in ``schema_migrations``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import sqlite3
import threading
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

from edge_agent.config.storage import StorageConfig
from edge_agent.errors import StoreError

log = logging.getLogger(__name__)

T = TypeVar("T")

# SQLite primary result codes that mean "the storage itself is in trouble".
_STORAGE_CODES = {
    8: "read-only database",  # SQLITE_READONLY
    10: "disk I/O error",  # SQLITE_IOERR
    11: "database file is corrupt",  # SQLITE_CORRUPT
    13: "disk or database full",  # SQLITE_FULL
    14: "cannot open database file",  # SQLITE_CANTOPEN
    26: "file is not a database",  # SQLITE_NOTADB
}

_MIGRATIONS_DDL = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    name TEXT PRIMARY KEY,
    version INTEGER NOT NULL,
    applied_at TEXT NOT NULL
)
"""


def split_sql(script: str) -> list[str]:
    """Split a DDL script into complete statements (triggers and quoted ``;`` are respected)."""
    statements: list[str] = []
    buf = ""
    for piece in script.split(";"):
        buf += piece + ";"
        if sqlite3.complete_statement(buf):
            stmt = buf.strip()
            if stmt != ";":
                statements.append(stmt)
            buf = ""
    if buf[:-1].strip():
        raise ValueError(f"incomplete SQL statement: {buf[:-1].strip()[:80]!r}")
    return statements


def _storage_error(exc: sqlite3.Error, what: str) -> StoreError | None:
    code = getattr(exc, "sqlite_errorcode", None)
    if code is not None and code & 0xFF in _STORAGE_CODES:
        return StoreError(f"{what}: {_STORAGE_CODES[code & 0xFF]} ({exc})")
    text = str(exc).lower()
    if code is None and ("disk" in text or "malformed" in text or "not a database" in text):
        return StoreError(f"{what}: {exc}")
    return None


@dataclass(slots=True)
class _Job:
    fn: Callable[[sqlite3.Connection], Any]
    mode: str  # "write" | "read" | "open"
    future: Future[Any]


_STOP = object()


class Store:
    """The lane's SQLite file and its store thread (async context manager; close is idempotent)."""

    def __init__(self, cfg: StorageConfig) -> None:
        self.cfg = cfg
        self.path = Path(cfg.path)
        self.counters: Counter[str] = Counter()
        self._jobs: queue.SimpleQueue[_Job | object] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._conn: sqlite3.Connection | None = None
        self._closed = False
        self._after_commit: list[Callable[[], None]] = []  # store thread only
        self.fault: str | None = None
        """Why the last write failed on the storage itself (disk full, I/O error); None once one succeeds."""
        self.on_fault_change: Callable[[str | None], None] | None = None
        """Called on the loop when :attr:`fault` is set or cleared (the agent faults the signal red)."""

    # -- lifecycle -------------------------------------------------------------------------------
    async def open(self) -> None:
        """Open the file (creating its directory), set the pragmas and start the store thread."""
        if self._thread is not None:
            return
        if self._closed:
            raise StoreError("store is closed")
        self._thread = threading.Thread(target=self._run, name=f"store:{self.path.name}", daemon=True)
        self._thread.start()
        try:
            await self._submit(self._setup, "open")
        except BaseException:
            await self.close()
            raise

    async def close(self) -> None:
        """Stop the store thread and close the file; safe to call twice."""
        if self._closed:
            return
        self._closed = True
        thread = self._thread
        if thread is not None:
            self._jobs.put(_STOP)
            await asyncio.to_thread(thread.join)

    async def __aenter__(self) -> Store:
        await self.open()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    # -- API for the loop ------------------------------------------------------------------------
    async def write(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``fn(conn)`` in ``BEGIN IMMEDIATE ... COMMIT`` on the store thread; return its result.

        An exception from ``fn`` rolls the transaction back and is re-raised here; storage failures
        (disk full, corrupt file, I/O error) are raised as :class:`StoreError`. Cancelling the caller
        does not cancel a job already queued.
        """
        try:
            result: T = await self._submit(fn, "write")
        except StoreError as exc:
            if not self._closed:
                self._set_fault(str(exc))
            raise
        if self.fault is not None:
            self._set_fault(None)
        return result

    def on_commit(self, fn: Callable[[], None]) -> None:
        """From inside a write transaction (store thread): run ``fn`` only once it has committed.

        How in-memory state that mirrors the file (counters, quota state) stays consistent with it:
        a transaction that rolls back (disk full, an exception) leaves it untouched.
        """
        self._after_commit.append(fn)

    def _set_fault(self, detail: str | None) -> None:
        if detail == self.fault:
            return
        self.fault = detail
        if detail is None:
            log.warning("store %s: writes succeed again", self.path)
        if self.on_fault_change is not None:
            try:
                self.on_fault_change(detail)
            except Exception:
                log.exception("store fault callback failed")

    async def read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``fn(conn)`` in a read-only snapshot on the store thread; return its result."""
        result: T = await self._submit(fn, "read")
        return result

    async def ensure_schema(self, name: str, migrations: str | Sequence[str]) -> int:
        """Bring module ``name``'s tables to the latest version; return that version.

        ``migrations`` is one DDL script (version 1) or a list where item ``i`` upgrades version ``i``
        to ``i + 1``. Pending migrations and the version bump commit together. A file already at a
        newer version than this code knows raises :class:`StoreError`.
        """
        steps = [migrations] if isinstance(migrations, str) else list(migrations)
        parsed = [split_sql(step) for step in steps]

        def apply(conn: sqlite3.Connection) -> int:
            row = conn.execute("SELECT version FROM schema_migrations WHERE name = ?", (name,)).fetchone()
            current = int(row[0]) if row else 0
            if current > len(parsed):
                raise StoreError(
                    f"schema {name!r} is at version {current}, newer than this agent knows ({len(parsed)})"
                )
            for stmts in parsed[current:]:
                for stmt in stmts:
                    conn.execute(stmt)
            if current < len(parsed):
                conn.execute(
                    "INSERT INTO schema_migrations(name, version, applied_at) VALUES (?, ?, ?) "
                    "ON CONFLICT(name) DO UPDATE SET version = excluded.version, "
                    "applied_at = excluded.applied_at",
                    (name, len(parsed), datetime.now(UTC).isoformat()),
                )
                log.info("store: schema %s migrated %d -> %d", name, current, len(parsed))
            return len(parsed)

        return await self.write(apply)

    async def schema_versions(self) -> dict[str, int]:
        """Every registered module and its schema version, as recorded in the file."""

        def q(conn: sqlite3.Connection) -> dict[str, int]:
            return {str(n): int(v) for n, v in conn.execute("SELECT name, version FROM schema_migrations")}

        return await self.read(q)

    async def checkpoint(self) -> tuple[int, int, int]:
        """Copy the WAL into the file and truncate it (``wal_checkpoint(TRUNCATE)``), outside a transaction.

        Returns SQLite's ``(busy, wal_frames, checkpointed)``. After a purge this is what takes the
        deleted rows' old page images out of the ``-wal`` file.
        """
        row = await self._submit(
            lambda conn: conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone(), "open"
        )
        return int(row[0]), int(row[1]), int(row[2])

    async def used_bytes(self) -> int:
        """Bytes of live data in the file (pages in use times page size)."""
        return await self.read(used_bytes)

    async def quick_check(self) -> list[str]:
        """SQLite's ``quick_check``: ``["ok"]`` for a sound file, else the problems found."""
        return await self.read(lambda conn: [str(r[0]) for r in conn.execute("PRAGMA quick_check")])

    def file_bytes(self) -> int:
        """Size on disk of the database file plus its WAL (what the quota is ultimately about)."""
        total = 0
        for p in (self.path, self.path.with_name(self.path.name + "-wal")):
            with contextlib.suppress(FileNotFoundError):
                total += p.stat().st_size
        return total

    @property
    def quota_bytes(self) -> int:
        """The configured quota in bytes."""
        return int(self.cfg.quota_mb * 1024 * 1024)

    # -- store thread ----------------------------------------------------------------------------
    async def _submit(self, fn: Callable[[sqlite3.Connection], Any], mode: str) -> Any:
        if self._closed:
            raise StoreError("store is closed")
        if self._thread is None:
            raise StoreError("store is not open (use 'async with Store(cfg)')")
        fut: Future[Any] = Future()
        self._jobs.put(_Job(fn, mode, fut))
        return await asyncio.wrap_future(fut)

    def _setup(self, conn: sqlite3.Connection) -> None:
        mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            raise StoreError(f"{self.path}: could not switch to WAL (journal_mode={mode})")
        conn.execute(f"PRAGMA synchronous={self.cfg.synchronous}")
        conn.execute("PRAGMA foreign_keys=ON")
        # Personal data (plates, EPCs, officer ids, images) is overwritten with zeros when deleted,
        # free pages included, so a purged row cannot be read back from the file.
        conn.execute("PRAGMA secure_delete=ON")
        conn.execute(f"PRAGMA busy_timeout={int(self.cfg.busy_timeout_ms)}")
        conn.execute(_MIGRATIONS_DDL)
        restrict_modes(self.path)

    def _run(self) -> None:
        try:
            while True:
                job = self._jobs.get()
                if job is _STOP:
                    break
                assert isinstance(job, _Job)
                if not job.future.set_running_or_notify_cancel():
                    continue
                try:
                    job.future.set_result(self._execute(job))
                except BaseException as exc:  # handed to the awaiting coroutine
                    job.future.set_exception(exc)
        finally:
            if self._conn is not None:
                try:
                    self._conn.close()
                except sqlite3.Error as exc:  # pragma: no cover - closing a broken file
                    log.warning("store: close of %s failed: %s", self.path, exc)
            self._conn = None
            self._fail_pending()

    def _fail_pending(self) -> None:
        while True:
            try:
                job = self._jobs.get_nowait()
            except queue.Empty:
                return
            if isinstance(job, _Job) and job.future.set_running_or_notify_cancel():
                job.future.set_exception(StoreError("store is closed"))

    def _execute(self, job: _Job) -> Any:
        try:
            if self._conn is None:
                try:
                    self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
                except OSError as exc:
                    raise StoreError(f"store {self.path}: cannot create directory: {exc}") from exc
                self._conn = sqlite3.connect(
                    self.path, isolation_level=None, timeout=self.cfg.busy_timeout_ms / 1000
                )
            conn = self._conn
            if job.mode == "open":
                return job.fn(conn)
            if job.mode == "read":
                return self._in_read(conn, job.fn)
            return self._in_write(conn, job.fn)
        except sqlite3.Error as exc:
            err = _storage_error(exc, f"store {self.path}")
            if err is not None and not (job.mode == "read" and "readonly" in str(exc)):
                self.counters["storage_errors"] += 1
                log.error("%s", err)
                raise err from exc
            raise

    def _in_write(self, conn: sqlite3.Connection, fn: Callable[[sqlite3.Connection], Any]) -> Any:
        self._after_commit.clear()
        conn.execute("BEGIN IMMEDIATE")
        try:
            result = fn(conn)
            conn.execute("COMMIT")
        except BaseException:
            self._after_commit.clear()
            if conn.in_transaction:
                with contextlib.suppress(sqlite3.Error):  # a failed ROLLBACK must not hide the cause
                    conn.execute("ROLLBACK")
            self.counters["rollbacks"] += 1
            raise
        self.counters["commits"] += 1
        after, self._after_commit = self._after_commit, []
        for cb in after:
            try:
                cb()
            except Exception:
                log.exception("store: after-commit callback failed")
        return result

    def _in_read(self, conn: sqlite3.Connection, fn: Callable[[sqlite3.Connection], Any]) -> Any:
        conn.execute("PRAGMA query_only=ON")
        try:
            conn.execute("BEGIN")
            try:
                return fn(conn)
            finally:
                if conn.in_transaction:
                    conn.execute("COMMIT")
        finally:
            conn.execute("PRAGMA query_only=OFF")


def restrict_modes(path: Path) -> None:
    """Make the store file and its ``-wal``/``-shm`` owner read/write only (0600), whatever the umask.

    They hold personal data. SQLite creates a later ``-wal``/``-shm`` with the file's own mode.
    """
    for p in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        with contextlib.suppress(FileNotFoundError):
            if p.stat().st_mode & 0o077:
                p.chmod(0o600)


def used_bytes(conn: sqlite3.Connection) -> int:
    """Bytes of live data in the file, seen from inside the caller's transaction."""
    page_size = int(conn.execute("PRAGMA page_size").fetchone()[0])
    pages = int(conn.execute("PRAGMA page_count").fetchone()[0])
    free = int(conn.execute("PRAGMA freelist_count").fetchone()[0])
    return (pages - free) * page_size
