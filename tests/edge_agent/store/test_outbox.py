"""The outbox: atomic with the caller's rows, ordered by priority, quota policy, persistent counts."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from edge_agent.config.storage import StorageConfig
from edge_agent.store import Outbox, Priority, QuotaState, Store
from tests.mosquitto import async_test


def _cfg(tmp_path: Path, quota_mb: float = 64.0) -> StorageConfig:
    return StorageConfig(path=tmp_path / "lane.sqlite3", quota_mb=quota_mb)


def _put(outbox: Outbox, conn: sqlite3.Connection, msg_id: str, kind: str, prio: int, size: int = 10) -> bool:
    return outbox.enqueue(
        conn, msg_id=msg_id, topic=f"t/{kind}", payload=b"x" * size, priority=prio, kind=kind
    )


@async_test
async def test_enqueue_commits_with_caller_rows_or_not_at_all(tmp_path: Path) -> None:
    async with Store(_cfg(tmp_path)) as store, Outbox(store) as outbox:
        await store.ensure_schema("journal", "CREATE TABLE journal (id TEXT PRIMARY KEY);")

        def ok(conn: sqlite3.Connection) -> None:
            conn.execute("INSERT INTO journal VALUES ('p1')")
            _put(outbox, conn, "p1", "passage", Priority.DECISION)

        def fails(conn: sqlite3.Connection) -> None:
            conn.execute("INSERT INTO journal VALUES ('p2')")
            _put(outbox, conn, "p2", "passage", Priority.DECISION)
            raise RuntimeError("decision crashed")

        await store.write(ok)
        with pytest.raises(RuntimeError):
            await store.write(fails)
        batch = await outbox.next_batch(10)
        assert [m.msg_id for m in batch] == ["p1"]
        assert await store.read(lambda c: c.execute("SELECT count(*) FROM journal").fetchone()[0]) == 1


@async_test
async def test_order_priority_then_fifo_and_exclusion(tmp_path: Path) -> None:
    async with Store(_cfg(tmp_path)) as store, Outbox(store) as outbox:

        def fill(conn: sqlite3.Connection) -> None:
            _put(outbox, conn, "img1", "image", Priority.BULK)
            _put(outbox, conn, "ev1", "event", Priority.EVENT)
            _put(outbox, conn, "p1", "passage", Priority.DECISION)
            _put(outbox, conn, "ev2", "event", Priority.EVENT)
            _put(outbox, conn, "p2", "passage", Priority.DECISION)

        await store.write(fill)
        batch = await outbox.next_batch(10)
        assert [m.msg_id for m in batch] == ["p1", "p2", "ev1", "ev2", "img1"]
        first = batch[0]
        assert (first.topic, first.payload, first.qos, first.retain) == ("t/passage", b"x" * 10, 1, False)
        rest = await outbox.next_batch(2, exclude=[batch[0].seq, batch[1].seq])
        assert [m.msg_id for m in rest] == ["ev1", "ev2"]
        assert await outbox.mark_delivered([batch[0].seq, batch[2].seq, 999999]) == 2
        assert [m.msg_id for m in await outbox.next_batch(10)] == ["p2", "ev2", "img1"]
        stats = await outbox.stats()
        assert stats.pending == {"passage": 1, "event": 1, "image": 1}
        assert stats.delivered == {"passage": 1, "event": 1}


@async_test
async def test_duplicate_msg_id_is_ignored(tmp_path: Path) -> None:
    async with Store(_cfg(tmp_path)) as store, Outbox(store) as outbox:
        assert await outbox.put(msg_id="a", topic="t", payload=b"1", priority=0, kind="passage")
        assert not await outbox.put(msg_id="a", topic="t", payload=b"2", priority=0, kind="passage")
        assert [m.payload for m in await outbox.next_batch(5)] == [b"1"]
        assert outbox.counters["duplicate_enqueue"] == 1
        with pytest.raises(ValueError, match="qos"):
            await outbox.put(msg_id="b", topic="t", payload=b"1", priority=0, kind="passage", qos=2)


@async_test
async def test_coalesce_keeps_only_latest_health(tmp_path: Path) -> None:
    async with Store(_cfg(tmp_path)) as store, Outbox(store) as outbox:
        for i in range(5):
            await outbox.put(
                msg_id=f"h{i}",
                topic="t/health",
                payload=b"{}",
                priority=Priority.EVENT,
                kind="health",
                coalesce=True,
            )
        await outbox.put(msg_id="p", topic="t/passage", payload=b"{}", priority=0, kind="passage")
        assert [m.msg_id for m in await outbox.next_batch(10)] == ["p", "h4"]
        assert (await outbox.stats()).coalesced == 4


@async_test
async def test_quota_drops_bulk_oldest_first_never_passages(tmp_path: Path) -> None:
    # 256 KiB quota; 20 KiB images (overflow pages, freed whole) and 1 KiB passages.
    async with Store(_cfg(tmp_path, quota_mb=0.25)) as store, Outbox(store) as outbox:
        for i in range(5):
            await outbox.put(msg_id=f"p{i}", topic="t/p", payload=b"p" * 1024, priority=0, kind="passage")
        await outbox.put(msg_id="ev0", topic="t/e", payload=b"e" * 512, priority=Priority.EVENT, kind="event")
        for i in range(20):
            await outbox.put(
                msg_id=f"img{i:02d}", topic="t/i", payload=b"i" * 20480, priority=Priority.BULK, kind="image"
            )
        assert outbox.quota_state is QuotaState.DROPPING
        assert "dropped" in outbox.quota_detail
        left = [m.msg_id for m in await outbox.next_batch(100)]
        assert left[:6] == ["p0", "p1", "p2", "p3", "p4", "ev0"]  # passages and the event survive
        images = [x for x in left if x.startswith("img")]
        assert images == sorted(images)
        assert images[-1] == "img19"  # the newest images survive
        assert "img00" not in images
        stats = await outbox.stats()
        assert stats.dropped["image"] == 20 - len(images)
        assert stats.used_bytes <= stats.quota_bytes

        # Now only passages arrive: the rest is dropped, passages are still accepted, state turns FULL.
        for i in range(5, 300):
            assert await outbox.put(
                msg_id=f"p{i}", topic="t/p", payload=b"p" * 1024, priority=0, kind="passage"
            )
        assert outbox.quota_state is QuotaState.FULL  # type: ignore[comparison-overlap]  # changed by put()
        stats = await outbox.stats()
        assert stats.pending == {"passage": 300}
        assert stats.dropped["event"] == 1
        assert stats.used_bytes > stats.quota_bytes

        # Delivering the backlog clears the alarm.
        batch = await outbox.next_batch(1000)
        await outbox.mark_delivered(m.seq for m in batch)
        assert outbox.quota_state is QuotaState.OK
        assert (await outbox.stats()).delivered == {"passage": 300}


@async_test
async def test_pending_survives_restart_and_seq_keeps_order(tmp_path: Path) -> None:
    async with Store(_cfg(tmp_path)) as store, Outbox(store) as outbox:
        await outbox.put(msg_id="a", topic="t", payload=b"1", priority=0, kind="passage")
        await outbox.put(msg_id="b", topic="t", payload=b"1", priority=0, kind="passage")
        await outbox.mark_delivered([m.seq for m in await outbox.next_batch(1)])
        assert (await outbox.stats()).delivered == {"passage": 1}
    async with Store(_cfg(tmp_path)) as store, Outbox(store) as outbox:
        stats = await outbox.stats()
        assert stats.delivered == {}  # delivered counts are since start (no disk write per delivery)
        assert stats.pending == {"passage": 1}
        assert stats.oldest_age_s is not None
        assert stats.oldest_age_s >= 0
        assert stats.as_dict()["pending_total"] == 1
        # new rows sort after the survivor, even after a restart
        await outbox.put(msg_id="c", topic="t", payload=b"1", priority=0, kind="passage")
        await outbox.put(msg_id="d", topic="t", payload=b"1", priority=5, kind="event")
        await outbox.put(msg_id="e", topic="t", payload=b"1", priority=0, kind="passage")
        assert [m.msg_id for m in await outbox.next_batch(10)] == ["b", "c", "e", "d"]
        with pytest.raises(ValueError, match="priority"):
            await outbox.put(msg_id="f", topic="t", payload=b"1", priority=100, kind="passage")
