"""The passage journal: every decided passage is committed, with its upstream message, before the lane acts.

One store transaction writes the journal row and enqueues the passage message in the outbox, so a
passage the lane acted on is always on its way upstream (at least once, under its stable
``passage_id``), through broker outages, ``kill -9`` and power cuts.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from edge_agent.domain import DecidedPassage, TagKind
from edge_agent.plate_vote import vote_payload
from edge_agent.store.db import Store
from edge_agent.store.outbox import Outbox
from edge_agent.uplink.messages import encode, utc_iso

SCHEMA_NAME = "journal"
SCHEMA_DDL = """
CREATE TABLE IF NOT EXISTS passage (
    passage_id TEXT PRIMARY KEY,
    entered_at TEXT NOT NULL,
    decided_at TEXT NOT NULL,
    decision TEXT NOT NULL,
    reasons TEXT NOT NULL,
    payload TEXT NOT NULL,
    closed_at TEXT
);
CREATE INDEX IF NOT EXISTS passage_decided ON passage (decided_at);
"""
# v2: when central confirmed the passage (the broker's PUBACK of its latest revision); retention
# (edge_agent/retention.py) purges a passage only a set time after this, never before.
SCHEMA_V2 = """
ALTER TABLE passage ADD COLUMN confirmed_at TEXT;
CREATE INDEX IF NOT EXISTS passage_confirmed ON passage (confirmed_at);
"""

PASSAGE_SCHEMA = "lane.passage/1"


def passage_payload(
    decided: DecidedPassage, *, site_id: str, lane_id: str, decided_at: datetime, latency_ms: float
) -> dict[str, Any]:
    """The ``lane.passage/1`` message for a decided passage (see ``edge_agent/schemas/passage.json``)."""
    p, decision = decided.passage, decided.decision
    plate = p.best_plate
    container = p.best_container
    transponders = p.tags_of(TagKind.CONVEYANCE)
    cards = p.tags_of(TagKind.FAST_CARD)
    wim = p.wim
    return {
        "schema": PASSAGE_SCHEMA,
        "passage_id": p.passage_id,
        "site_id": site_id,
        "lane_id": lane_id,
        "entered_at": utc_iso(p.entered_utc),
        "decided_at": utc_iso(decided_at),
        "decision": decision.verdict.value,
        "reasons": [r.value for r in decision.reasons],
        "matched_record": decision.matched_record,
        "decision_latency_ms": round(latency_ms, 3),
        "vehicle": {
            "plate": plate.text if plate else None,
            "plate_confidence": round(plate.confidence, 3) if plate else None,
            "transponder": transponders[0].epc if len(transponders) == 1 else None,
            "container": container.code if container else None,
            "container_check_ok": container.check_ok if container else None,
            "speed_kmh": p.speed_kmh,
        },
        "plate_vote": vote_payload(p.plate_vote),
        "container_vote": p.container_vote.to_payload() if p.container_vote is not None else None,
        "driver": {"fast_card": cards[0].epc if len(cards) == 1 else None},
        "seals": sorted(t.seal_id or t.epc for t in p.tags_of(TagKind.ESEAL)),
        "wim": None
        if wim is None
        else {
            "sequence": wim.sequence,
            "gross_kg": wim.gross_kg,
            "axle_weights_kg": list(wim.axle_weights_kg),
            "axle_spacings_m": list(wim.axle_spacings_m),
            "speed_kmh": wim.speed_kmh,
            "flags": wim.flags,
        },
        "tags": [
            {
                "epc": t.epc,
                "kind": t.kind.value,
                "count": t.count,
                "peak_rssi_dbm": t.peak_rssi_dbm,
                "antennas": sorted(t.antennas),
            }
            for t in sorted(p.tags, key=lambda t: t.first_mono)
        ],
    }


def confirm_delivered(conn: sqlite3.Connection, delivered: Sequence[tuple[str, str]]) -> None:
    """Outbox delivery hook: stamp ``confirmed_at`` on each passage none of whose messages is pending.

    Runs in the transaction that deletes the acknowledged messages. A passage whose amendment
    (``<passage_id>:2``) is still queued is not confirmed yet: central does not hold what the truck saw.
    """
    now = utc_iso(datetime.now(UTC))
    for kind, msg_id in delivered:
        if kind != "passage":
            continue
        pid = msg_id.removesuffix(":2")
        conn.execute(
            "UPDATE passage SET confirmed_at = ? WHERE passage_id = ? AND confirmed_at IS NULL "
            "AND NOT EXISTS (SELECT 1 FROM outbox WHERE msg_id IN (?, ?))",
            (now, pid, pid, f"{pid}:2"),
        )


class Journal:
    """Commits decided passages with their outbox message; records when each passage closed."""

    def __init__(self, store: Store, outbox: Outbox, *, topic: str, priority: int) -> None:
        self._store = store
        self._outbox = outbox
        self._topic = topic
        self._priority = priority
        self.clock_flags: Callable[[], dict[str, bool]] | None = None
        """When set (the agent's :class:`edge_agent.timesync.ClockWatch`), each recorded passage carries
        ``clock``: whether the clock was synchronised, and whether it jumped shortly before."""

    def _stamped(self, payload: dict[str, Any]) -> dict[str, Any]:
        return payload if self.clock_flags is None else payload | {"clock": self.clock_flags()}

    async def open(self) -> None:
        """Create the journal table if needed."""
        await self._store.ensure_schema(SCHEMA_NAME, [SCHEMA_DDL, SCHEMA_V2])
        if confirm_delivered not in self._outbox.delivery_hooks:
            self._outbox.delivery_hooks.append(confirm_delivered)

    async def commit(self, payload: dict[str, Any]) -> None:
        """Durably record a decided passage and queue its message, atomically."""
        payload = self._stamped(payload)
        body = encode(payload)

        def txn(conn: sqlite3.Connection) -> None:
            conn.execute(
                "INSERT OR IGNORE INTO passage "
                "(passage_id, entered_at, decided_at, decision, reasons, payload) VALUES (?, ?, ?, ?, ?, ?)",
                (
                    payload["passage_id"],
                    payload["entered_at"],
                    payload["decided_at"],
                    payload["decision"],
                    json.dumps(payload["reasons"]),
                    body.decode(),
                ),
            )
            self._outbox.enqueue(
                conn,
                msg_id=payload["passage_id"],
                topic=self._topic,
                payload=body,
                priority=self._priority,
                kind="passage",
            )

        await self._store.write(txn)

    async def amend(self, payload: dict[str, Any]) -> None:
        """Replace a recorded decision (``revision`` 2): the journal row, and a second message upstream.

        The amendment goes as its own message (id ``<passage_id>:2``, same ``passage_id`` in the body)
        that supersedes the first: the first may already be on the wire, so it is never rewritten.
        """
        payload = self._stamped(payload)
        body = encode(payload)
        pid = payload["passage_id"]

        def txn(conn: sqlite3.Connection) -> None:
            conn.execute(
                "UPDATE passage SET decided_at = ?, decision = ?, reasons = ?, payload = ?, "
                "confirmed_at = NULL WHERE passage_id = ?",
                (
                    payload["decided_at"],
                    payload["decision"],
                    json.dumps(payload["reasons"]),
                    body.decode(),
                    pid,
                ),
            )
            self._outbox.enqueue(
                conn,
                msg_id=f"{pid}:2",
                topic=self._topic,
                payload=body,
                priority=self._priority,
                kind="passage",
            )

        await self._store.write(txn)

    async def closed(self, passage_id: str, at: datetime) -> None:
        """Note that the passage's vehicle has cleared the exit loop."""
        await self._store.write(
            lambda conn: conn.execute(
                "UPDATE passage SET closed_at = ? WHERE passage_id = ?", (utc_iso(at), passage_id)
            )
        )
