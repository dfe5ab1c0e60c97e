"""Retention: confirmed passages are purged after ``retention.days``, never before, and leave no bytes behind.

Everything runs on a real SQLite file through the real store, outbox and journal; "confirmed" is the
outbox's own delivery path (``mark_delivered``, what the uplink calls on PUBACK). The proof that purged
data is gone is the file's bytes: the database file and its ``-wal`` are read back after the purge and
searched for the plate and the EPCs (which are there before it, so the search can fail).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import stat
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from edge_agent.config.retention import RetentionConfig
from edge_agent.config.storage import StorageConfig
from edge_agent.journal import Journal
from edge_agent.retention import purge
from edge_agent.store.db import Store
from edge_agent.store.outbox import Outbox, Priority

pytestmark = pytest.mark.timeout(60)

REPO = Path(__file__).resolve().parents[2]
PLATE = "ZQX4471"
FAST_CARD = "35C0FFEE0123456789ABCDEF"
SEAL = "3A5EA15EA15EA15EA15EA15E"
DAY = timedelta(days=1)


def passage(
    pid: str, *, plate: str = PLATE, card: str = FAST_CARD, seal: str = SEAL, decision: str = "release"
) -> dict[str, Any]:
    """A decided passage's payload carrying personal identifiers."""
    return {
        "schema": "lane.passage/1",
        "passage_id": pid,
        "entered_at": "2026-11-28T10:00:00.000Z",
        "decided_at": "2026-11-28T10:00:05.000Z",
        "decision": decision,
        "reasons": [],
        "vehicle": {"plate": plate},
        "driver": {"fast_card": card},
        "seals": [seal],
    }


def file_bytes(path: Path) -> bytes:
    """The database file and its WAL, as they are on disk."""
    data = path.read_bytes()
    wal = path.with_name(path.name + "-wal")
    return data + (wal.read_bytes() if wal.exists() else b"")


def personal_in(data: bytes) -> list[str]:
    return [s for s in (PLATE, FAST_CARD, SEAL) if s.encode() in data]


async def deliver_all(outbox: Outbox) -> None:
    """What the uplink does on PUBACK: delete the acknowledged messages."""
    batch = await outbox.next_batch(1000)
    await outbox.mark_delivered(m.seq for m in batch)


async def confirmed_at(store: Store, pid: str) -> str | None:
    row = await store.read(
        lambda c: c.execute("SELECT confirmed_at FROM passage WHERE passage_id = ?", (pid,)).fetchone()
    )
    return None if row is None else row[0]


def lane(tmp_path: Path) -> tuple[Store, Outbox, Journal]:
    store = Store(StorageConfig(path=tmp_path / "state" / "lane.sqlite3"))
    outbox = Outbox(store)
    return store, outbox, Journal(store, outbox, topic="lanes/T/L/passage", priority=Priority.DECISION)


def test_a_purged_passage_leaves_no_personal_bytes_in_the_file_or_its_wal(tmp_path: Path) -> None:
    async def scenario() -> None:
        store, outbox, journal = lane(tmp_path)
        async with store, outbox:
            await journal.open()
            await journal.commit(passage("p-1"))
            for i in range(50):  # neighbours on the same pages, which must survive
                await journal.commit(
                    passage(f"q-{i}", plate=f"KEEP{i:03d}", card=f"35{i:022X}", seal=f"3A{i:022X}")
                )
            await deliver_all(outbox)
            stamp = await confirmed_at(store, "p-1")
            assert stamp is not None
            await store.checkpoint()
            assert personal_in(file_bytes(store.path)) == [PLATE, FAST_CARD, SEAL], "the search can fail"

            confirmed = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
            cfg = RetentionConfig(days=30)
            early = await purge(store, cfg, now=confirmed + 29 * DAY)
            assert early.passages == 0 and early.kept_confirmed == 51
            # the neighbours are confirmed later: purge p-1 alone by dating them after the cutoff
            await store.write(
                lambda c: c.execute(
                    "UPDATE passage SET confirmed_at = '2099-01-01T00:00:00.000Z' WHERE passage_id != 'p-1'"
                )
            )
            report = await purge(store, cfg, now=confirmed + 31 * DAY)
            assert report.passages == 1 and report.kept_confirmed == 50
            assert report.wal_checkpoint == "ok"
            assert await confirmed_at(store, "p-1") is None
            assert await confirmed_at(store, "q-7") is not None
            data = file_bytes(store.path)
            assert personal_in(data) == [], "purged identifiers are still readable in the store"
            assert b"KEEP007" in data
        assert personal_in(file_bytes(store.path)) == []

    asyncio.run(scenario())


def test_nothing_is_purged_before_central_confirms_it(tmp_path: Path) -> None:
    async def scenario() -> None:
        store, outbox, journal = lane(tmp_path)
        async with store, outbox:
            await journal.open()
            await journal.commit(passage("p-1"))
            far = datetime.now(UTC) + 3650 * DAY
            report = await purge(store, RetentionConfig(days=0), now=far)
            assert (report.passages, report.awaiting_confirmation) == (0, 1)

            await deliver_all(outbox)  # first revision acknowledged ...
            await journal.amend(passage("p-1", decision="refer"))  # ... then amended: not confirmed
            assert await confirmed_at(store, "p-1") is None
            assert (await purge(store, RetentionConfig(days=0), now=far)).passages == 0
            await deliver_all(outbox)  # the amendment's PUBACK confirms it
            assert await confirmed_at(store, "p-1") is not None
            assert (await purge(store, RetentionConfig(days=0), now=far)).passages == 1

    asyncio.run(scenario())


def test_store_files_are_owner_only_whatever_the_umask(tmp_path: Path) -> None:
    async def scenario() -> Path:
        store, outbox, journal = lane(tmp_path)
        async with store, outbox:
            await journal.open()
            await journal.commit(passage("p-1"))
            for suffix in ("", "-wal", "-shm"):
                f = store.path.with_name(store.path.name + suffix)
                assert stat.S_IMODE(f.stat().st_mode) == 0o600, f
        return store.path

    old = os.umask(0o022)
    try:
        path = asyncio.run(scenario())
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700


def _config(tmp_path: Path, store: Path, days: float) -> Path:
    text = (REPO / "config" / "demo.toml").read_text()
    text = text.replace('path = "var/demo/lane.sqlite3"', f'path = "{store}"')
    key = tmp_path / "central.key"
    key.write_bytes(os.urandom(32))
    text = text.replace('secret_file = "var/demo/central.key"', f'secret_file = "{key}"')
    cfg = tmp_path / "lane.toml"
    cfg.write_text(text + f"\n[retention]\ndays = {days}\n")
    return cfg


def purge_cli(cfg: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "edge_agent.cli", "purge", "--config", str(cfg), *extra],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def test_purge_dry_run_shows_what_would_go_and_changes_nothing(tmp_path: Path) -> None:
    store_path = tmp_path / "lane.sqlite3"

    async def fill() -> None:
        store = Store(StorageConfig(path=store_path))
        outbox = Outbox(store)
        journal = Journal(store, outbox, topic="t", priority=Priority.DECISION)
        async with store, outbox:
            await journal.open()
            await journal.commit(passage("p-old"))
            await journal.commit(passage("p-waiting", plate="WAIT001"))
            batch = await outbox.next_batch(10)
            await outbox.mark_delivered(m.seq for m in batch if m.msg_id == "p-old")
            old = (datetime.now(UTC) - 10 * DAY).isoformat().replace("+00:00", "Z")
            await store.write(lambda c: c.execute("UPDATE passage SET confirmed_at = ?", (old,)))
            await store.write(
                lambda c: c.execute("UPDATE passage SET confirmed_at = NULL WHERE passage_id = 'p-waiting'")
            )

    asyncio.run(fill())
    cfg = _config(tmp_path, store_path, days=7)
    before = hashlib.sha256(file_bytes(store_path)).hexdigest()

    dry = purge_cli(cfg, "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "would purge: 1 passages" in dry.stdout
    assert "1 awaiting confirmation" in dry.stdout
    assert hashlib.sha256(file_bytes(store_path)).hexdigest() == before

    done = purge_cli(cfg, "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert (report["passages"], report["awaiting_confirmation"], report["dry_run"]) == (1, 1, False)
    assert PLATE.encode() not in file_bytes(store_path)
    assert b"WAIT001" in file_bytes(store_path)


def test_purge_refuses_a_missing_store_without_creating_it(tmp_path: Path) -> None:
    cfg = _config(tmp_path, tmp_path / "nothing.sqlite3", days=7)
    done = purge_cli(cfg, "--dry-run")
    assert done.returncode == 1
    assert "no store at" in done.stderr
    assert not (tmp_path / "nothing.sqlite3").exists()
