"""The SQLite store."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field

from edge_agent.config.base import Floor, Model


class StorageConfig(Model):
    """Where the journal, reference data and outbox live, and how much disk they may use."""

    path: Path = Field(Path("/var/lib/edge-agent/lane.sqlite3"), description="SQLite file (WAL mode).")
    quota_mb: Annotated[float, Floor(16, "room for a busy day of passages and an outage's backlog")] = Field(
        512.0,
        gt=0,
        le=1_000_000,
        description=(
            "Live data allowed in the store file. Above it the outbox drops droppable messages "
            "(bulk first, oldest first), never passages, and raises an alarm. Floor 16 MB: room for "
            "thousands of passages and an outage's backlog; at most 1 TB."
        ),
    )
    busy_timeout_ms: int = Field(5000, ge=0, le=600_000, description="SQLite busy timeout.")
    synchronous: Literal["FULL", "EXTRA"] = Field(
        "FULL",
        description="SQLite synchronous level: FULL (a commit survives power loss) or EXTRA.",
    )
