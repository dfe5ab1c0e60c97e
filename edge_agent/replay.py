"""Replay protection that survives restarts and power cuts: every accepted command's nonce and id, on disk.

A captured signed command must not be accepted again after the agent restarts within the command's
``max_age_s``. So before a command's handler runs, its ``(key_id, nonce, command_id, issued_at)`` is
committed to the store (``synchronous=FULL``); at start the agent loads every entry still inside the
acceptance window into :class:`edge_agent.auth.CommandVerifier`. The entry is written *before* the
effect: a power cut between the two loses the command (its sender gets no answer and sends a new one,
with a new nonce) but can never let the same bytes act twice. Entries older than the window can no
longer be replayed (they are expired) and are deleted as new ones arrive; the table is also capped
at the verifier's ``replay_cache`` rows.
"""

from __future__ import annotations

import sqlite3
from typing import TYPE_CHECKING

from edge_agent.store.db import Store

if TYPE_CHECKING:
    from edge_agent.auth import CommandVerifier, Principal

SCHEMA_NAME = "command_replay"
SCHEMA_DDL = """
CREATE TABLE IF NOT EXISTS command_seen (
    key_id TEXT NOT NULL,
    nonce TEXT NOT NULL,
    command_id TEXT NOT NULL,
    issued_at REAL NOT NULL,
    PRIMARY KEY (key_id, nonce)
);
CREATE INDEX IF NOT EXISTS command_seen_issued ON command_seen (issued_at);
"""


class ReplayLog:
    """The persistent half of the replay check (the verifier keeps the in-memory half)."""

    def __init__(self, store: Store, verifier: CommandVerifier) -> None:
        self.store = store
        self.verifier = verifier

    async def open(self) -> int:
        """Create the table and load what is still inside the window into the verifier; return the count."""
        await self.store.ensure_schema(SCHEMA_NAME, SCHEMA_DDL)
        floor = self.verifier.clock.utcnow().timestamp() - self.verifier.horizon_s

        def q(conn: sqlite3.Connection) -> list[tuple[str, str, str, float]]:
            rows = conn.execute(
                "SELECT key_id, nonce, command_id, issued_at FROM command_seen WHERE issued_at >= ? "
                "ORDER BY issued_at",
                (floor,),
            ).fetchall()
            return [(str(k), str(n), str(c), float(t)) for k, n, c, t in rows]

        return self.verifier.preload(await self.store.read(q))

    async def record(self, principal: Principal) -> None:
        """Commit one accepted command's nonce and id (call before its handler runs)."""
        floor = self.verifier.clock.utcnow().timestamp() - self.verifier.horizon_s
        cap = self.verifier.cfg.replay_cache

        def txn(conn: sqlite3.Connection) -> None:
            conn.execute(
                "INSERT OR IGNORE INTO command_seen (key_id, nonce, command_id, issued_at) "
                "VALUES (?, ?, ?, ?)",
                (principal.key_id, principal.nonce, principal.command_id, principal.issued_ts),
            )
            conn.execute("DELETE FROM command_seen WHERE issued_at < ?", (floor,))
            conn.execute(
                "DELETE FROM command_seen WHERE rowid IN (SELECT rowid FROM command_seen "
                "ORDER BY issued_at DESC LIMIT -1 OFFSET ?)",
                (cap,),
            )

        await self.store.write(txn)
