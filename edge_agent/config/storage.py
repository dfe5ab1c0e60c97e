"""The SQLite store."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field

from edge_agent.config.base import Model


class StorageConfig(Model):
    """Where the journal, reference data and outbox live, and how much disk they may use."""

    path: Path = Field(Path("/var/lib/edge-agent/lane.sqlite3"), description="SQLite file (WAL mode).")
    quota_mb: float = Field(
        512.0,
        gt=0,
        description=(
            "Live data allowed in the store file. Above it the outbox drops droppable messages "
            "(bulk first, oldest first), never passages, and raises an alarm."
        ),
    )
    busy_timeout_ms: int = Field(5000, ge=0, le=600_000, description="SQLite busy timeout.")
    synchronous: Literal["FULL", "EXTRA"] = Field(
        "FULL",
        description="SQLite synchronous level: FULL (a commit survives power loss) or EXTRA.",
    )
