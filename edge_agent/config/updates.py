"""Updates by hand (``edge-agent update model|config FILE``): release key and the bounds of a restart."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from edge_agent.config.base import Model


class UpdatesConfig(Model):
    """How an update is verified, and how long the new version has to prove itself."""

    release_key_file: Path | None = Field(
        None,
        description="Ed25519 public key (PEM or base64 raw) of the release signer. When set, every "
        "update needs FILE.sig (base64 signature over the file's bytes) verified by it.",
    )
    unit: str = Field(
        "edge-agent.service",
        pattern=r"^[A-Za-z0-9@_.-]{1,64}\.service$",
        description="The service to restart.",
    )
    ready_timeout_s: float = Field(
        90.0, ge=5, le=600, description="The new version must send READY=1 within this (seconds)."
    )
    settle_s: float = Field(
        15.0, ge=0, le=600, description="... and then keep running this long, or it is rolled back."
    )
    max_file_mb: float = Field(64.0, gt=0, le=1024, description="Largest update file accepted (MB).")
