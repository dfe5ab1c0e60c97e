"""The SQLite store: one thread, atomic writes, schema migrations, storage errors."""

from __future__ import annotations

import asyncio
import functools
import sqlite3
import threading
from pathlib import Path

import pytest

from edge_agent.config.storage import StorageConfig
from edge_agent.errors import StoreError
from edge_agent.store import Store, split_sql
from tests.mosquitto import async_test


def _insert(conn: sqlite3.Connection, *, i: int) -> None:
    conn.execute("INSERT INTO n VALUES (?)", (i,))


def _cfg(tmp_path: Path, **kw: object) -> StorageConfig:
    return StorageConfig(path=tmp_path / "lane.sqlite3", **kw)


@async_test
async def test_pragmas_and_thread(tmp_path: Path) -> None:
    async with Store(_cfg(tmp_path)) as store:
        mode, sync, fk, thread = await store.read(
            lambda c: (
                c.execute("PRAGMA journal_mode").fetchone()[0],
                c.execute("PRAGMA synchronous").fetchone()[0],
                c.execute("PRAGMA foreign_keys").fetchone()[0],
                threading.current_thread().name,
            )
        )
    assert (mode, sync, fk) == ("wal", 2, 1)  # synchronous FULL = 2
    assert thread.startswith("store:")
    assert thread != threading.current_thread().name


@async_test
async def test_write_commits_and_rollback_reraises(tmp_path: Path) -> None:
    async with Store(_cfg(tmp_path)) as store:
        await store.ensure_schema("t", "CREATE TABLE t (x INTEGER PRIMARY KEY);")
        await store.write(lambda c: c.execute("INSERT INTO t VALUES (1)"))

        def half(c: sqlite3.Connection) -> None:
            c.execute("INSERT INTO t VALUES (2)")
            raise RuntimeError("boom")

        with pytest.raises(RuntimeError, match="boom"):
            await store.write(half)
        rows = await store.read(lambda c: [r[0] for r in c.execute("SELECT x FROM t")])
        assert rows == [1]
        assert store.counters["rollbacks"] == 1
    # the file survives a reopen
    async with Store(_cfg(tmp_path)) as store:
        assert await store.read(lambda c: c.execute("SELECT count(*) FROM t").fetchone()[0]) == 1


@async_test
async def test_read_is_read_only(tmp_path: Path) -> None:
    async with Store(_cfg(tmp_path)) as store:
        await store.ensure_schema("t", "CREATE TABLE t (x INTEGER);")
        with pytest.raises(sqlite3.OperationalError, match="readonly"):
            await store.read(lambda c: c.execute("INSERT INTO t VALUES (1)"))
        # and writes still work afterwards
        await store.write(lambda c: c.execute("INSERT INTO t VALUES (1)"))


@async_test
async def test_schema_migrations_apply_once_in_order(tmp_path: Path) -> None:
    v1 = "CREATE TABLE j (id TEXT PRIMARY KEY);"
    v2 = """
        ALTER TABLE j ADD COLUMN note TEXT;
        CREATE TRIGGER j_note AFTER INSERT ON j BEGIN UPDATE j SET note = 'x;y' WHERE id = new.id; END;
    """
    async with Store(_cfg(tmp_path)) as store:
        assert await store.ensure_schema("journal", v1) == 1
        assert await store.ensure_schema("journal", [v1, v2]) == 2
        assert await store.ensure_schema("journal", [v1, v2]) == 2  # idempotent
        await store.write(lambda c: c.execute("INSERT INTO j(id) VALUES ('a')"))
        assert await store.read(lambda c: c.execute("SELECT note FROM j").fetchone()[0]) == "x;y"
        assert (await store.schema_versions())["journal"] == 2
        with pytest.raises(StoreError, match="newer than this agent"):
            await store.ensure_schema("journal", v1)


@async_test
async def test_failed_migration_changes_nothing(tmp_path: Path) -> None:
    async with Store(_cfg(tmp_path)) as store:
        with pytest.raises(sqlite3.OperationalError):
            await store.ensure_schema("bad", "CREATE TABLE ok (x); CREATE TABLE broken (;")
        tables = await store.read(
            lambda c: [r[0] for r in c.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        )
        assert "ok" not in tables
        assert "bad" not in await store.schema_versions()


def test_split_sql() -> None:
    assert split_sql("CREATE TABLE a (x); INSERT INTO a VALUES (';');  ") == [
        "CREATE TABLE a (x);",
        "INSERT INTO a VALUES (';');",
    ]
    with pytest.raises(ValueError, match="incomplete"):
        split_sql("CREATE TABLE a (x); INSERT INTO a VALUES ('unterminated")


@async_test
async def test_not_a_database_is_store_error(tmp_path: Path) -> None:
    path = tmp_path / "lane.sqlite3"
    path.write_bytes(b"this is not sqlite at all" * 100)
    store = Store(_cfg(tmp_path))
    with pytest.raises(StoreError, match="not a database"):
        await store.open()
    await store.close()  # idempotent after a failed open
    with pytest.raises(StoreError, match="closed"):
        await store.write(lambda c: None)


@async_test
async def test_disk_full_is_store_error(tmp_path: Path) -> None:
    async with Store(_cfg(tmp_path)) as store:
        await store.ensure_schema("blob", "CREATE TABLE b (x BLOB);")

        def cap(c: sqlite3.Connection) -> None:
            pages = c.execute("PRAGMA page_count").fetchone()[0]
            c.execute(f"PRAGMA max_page_count = {pages + 2}")

        await store.read(lambda c: None)
        await store.write(cap)
        with pytest.raises(StoreError, match="full"):
            await store.write(lambda c: c.execute("INSERT INTO b VALUES (zeroblob(100000))"))
        assert store.counters["storage_errors"] == 1
        # the store survives: small writes still fit
        await store.write(lambda c: c.execute("INSERT INTO b VALUES (x'00')"))


@async_test
async def test_close_twice_and_concurrent_writes(tmp_path: Path) -> None:
    store = Store(_cfg(tmp_path))
    await store.open()
    await store.ensure_schema("n", "CREATE TABLE n (x INTEGER);")
    await asyncio.gather(*(store.write(functools.partial(_insert, i=i)) for i in range(50)))
    assert await store.read(lambda c: c.execute("SELECT count(*) FROM n").fetchone()[0]) == 50
    await store.close()
    await store.close()
    assert not any(t.name.startswith("store:") for t in threading.enumerate())
