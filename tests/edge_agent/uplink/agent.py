"""Helpers to build a real Store + Outbox + Uplink against a test broker, and passage payloads."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from edge_agent.clock import SystemClock
from edge_agent.config.mqtt import MqttConfig
from edge_agent.config.storage import StorageConfig
from edge_agent.ids import new_id
from edge_agent.store import Outbox, Priority, Store
from edge_agent.uplink import Uplink
from edge_agent.uplink.commands import CommandVerifierLike
from edge_agent.uplink.messages import encode, utc_iso

SITE = "pe-blaine"
LANE = "c3"


def mqtt_cfg(*urls: str, **kw: Any) -> MqttConfig:
    base: dict[str, Any] = {
        "urls": urls,
        "reconnect_min_s": 0.05,
        "reconnect_max_s": 0.3,
        "health_interval_s": 3600,
        "replay_rate_per_s": 0,
        "connect_timeout_s": 3,
        "keepalive_s": 5,
        "close_grace_s": 1,
    }
    base.update(kw)
    return MqttConfig.model_validate(base)


def storage_cfg(path: Path, **kw: Any) -> StorageConfig:
    return StorageConfig.model_validate({"path": path, **kw})


def passage(i: int, *, passage_id: str | None = None) -> dict[str, Any]:
    """A schema-valid ``lane.passage/1``; ``i`` is carried in the plate (``T00042``)."""
    from datetime import UTC, datetime

    now = utc_iso(datetime.now(UTC))
    return {
        "schema": "lane.passage/1",
        "passage_id": passage_id or new_id(),
        "site_id": SITE,
        "lane_id": LANE,
        "entered_at": now,
        "decided_at": now,
        "decision": "refer",
        "reasons": ["no_prearrival"],
        "matched_record": None,
        "decision_latency_ms": 12.5,
        "vehicle": {
            "plate": f"T{i:05d}",
            "plate_confidence": 0.97,
            "transponder": "300833B2DDD9014000000001",
            "container": "CSQU3054383",
            "container_check_ok": True,
            "speed_kmh": 9.5,
        },
        "driver": {"fast_card": "350000000000000000000042"},
        "seals": ["SEAL0001"],
        "wim": {
            "sequence": i,
            "gross_kg": 30123.0,
            "axle_weights_kg": [6000.0, 12000.0, 12123.0],
            "axle_spacings_m": [0.0, 4.2, 1.3],
            "speed_kmh": 9.4,
            "flags": 0,
        },
        "tags": [
            {
                "epc": "300833B2DDD9014000000001",
                "kind": "conveyance",
                "count": 7,
                "peak_rssi_dbm": -48.0,
                "antennas": [1, 2],
            }
        ],
    }


def plate_index(payload: bytes) -> int:
    return int(json.loads(payload)["vehicle"]["plate"][1:])


async def commit_passages(store: Store, outbox: Outbox, topic: str, payloads: list[dict[str, Any]]) -> None:
    """Commit each passage in its own transaction (as the journal does), in order."""
    for p in payloads:

        def txn(conn: sqlite3.Connection, p: dict[str, Any] = p) -> None:
            outbox.enqueue(
                conn,
                msg_id=p["passage_id"],
                topic=topic,
                payload=encode(p),
                priority=Priority.DECISION,
                kind="passage",
            )

        await store.write(txn)


@asynccontextmanager
async def agent(
    db: Path,
    mqtt: MqttConfig,
    *,
    verifier: CommandVerifierLike | None = None,
    quota_mb: float = 64.0,
    start: bool = True,
) -> AsyncIterator[Uplink]:
    async with Store(storage_cfg(db, quota_mb=quota_mb)) as store, Outbox(store) as outbox:
        uplink = Uplink(
            mqtt,
            site_id=SITE,
            lane_id=LANE,
            store=store,
            outbox=outbox,
            verifier=verifier,
            clock=SystemClock(),
        )
        if start:
            async with uplink:
                yield uplink
        else:
            try:
                yield uplink
            finally:
                await uplink.close()
