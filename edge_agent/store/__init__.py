"""The lane's SQLite store and its store-and-forward outbox."""

from __future__ import annotations

from edge_agent.store.db import Store, split_sql, used_bytes
from edge_agent.store.outbox import (
    PROTECTED_KINDS,
    Outbox,
    OutboxMessage,
    OutboxStats,
    Priority,
    QuotaState,
)

__all__ = [
    "PROTECTED_KINDS",
    "Outbox",
    "OutboxMessage",
    "OutboxStats",
    "Priority",
    "QuotaState",
    "Store",
    "split_sql",
    "used_bytes",
]
