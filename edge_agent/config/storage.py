"""The SQLite store."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from edge_agent.config.base import Model


class StorageConfig(Model):
    """Where the journal, reference data and outbox live."""

    path: Path = Field(Path("/var/lib/edge-agent/lane.sqlite3"), description="SQLite file (WAL mode).")
    quota_mb: float = Field(512.0, gt=0, description="Disk quota for the store file.")
