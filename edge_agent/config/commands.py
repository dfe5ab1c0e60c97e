"""Keys that may sign commands to this lane (officer overrides, central's reference data)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator

from edge_agent.config.base import Model

CommandName = Literal[
    "signal.override", "reference.snapshot", "reference.delta", "config.reload", "config.apply"
]
Role = Literal["officer", "central"]
_KEY_ID = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$"


class CommandKey(Model):
    """One signing key: its algorithm, where its secret/public key is, and what it may sign."""

    alg: Literal["hmac-sha256", "ed25519"]
    secret_file: Path | None = Field(
        None, description="HMAC: file holding the shared secret, exact bytes (a systemd credential)."
    )
    public_key: str | None = Field(None, description="Ed25519: PEM, or base64 of the raw 32-byte key.")
    public_key_file: Path | None = Field(None, description="Ed25519: file holding the PEM public key.")
    roles: tuple[Role, ...] = Field(
        ("officer",), min_length=1, description="Issuer roles this key may sign for."
    )
    commands: tuple[CommandName, ...] = Field(
        ("signal.override",), min_length=1, description="Commands this key may sign."
    )
    issuers: tuple[str, ...] = Field((), description="Issuer ids this key may sign for (empty = any).")

    @model_validator(mode="after")
    def _material(self) -> CommandKey:
        if self.alg == "hmac-sha256":
            if self.secret_file is None:
                raise ValueError("hmac-sha256 needs secret_file")
            if self.public_key is not None or self.public_key_file is not None:
                raise ValueError("hmac-sha256 takes secret_file, not public_key/public_key_file")
        else:
            if (self.public_key is None) == (self.public_key_file is None):
                raise ValueError("ed25519 needs exactly one of public_key or public_key_file")
            if self.secret_file is not None:
                raise ValueError("ed25519 verifies with a public key; secret_file is not used")
        return self


class CommandsConfig(Model):
    """Command authentication: trusted keys, freshness window, replay memory."""

    keys: dict[str, CommandKey] = Field(default_factory=dict, description="Trusted keys by key_id.")
    max_age_s: float = Field(60.0, gt=0, le=3600, description="Commands issued longer ago are expired.")
    clock_skew_s: float = Field(5.0, ge=0, le=300, description="Tolerated issuer clock ahead of ours.")
    replay_cache: int = Field(10_000, ge=16, le=1_000_000, description="Nonces remembered (bounded memory).")

    @field_validator("keys")
    @classmethod
    def _key_ids(cls, keys: dict[str, CommandKey]) -> dict[str, CommandKey]:
        for key_id in keys:
            if not re.match(_KEY_ID, key_id):
                raise ValueError(f"key id {key_id!r} must be 1-64 of letters, digits, '.', '_', ':', '-'")
        return keys
