"""Errors of the lane agent (the root lives in :mod:`drivers.errors` so drivers share it)."""

from __future__ import annotations

from drivers.errors import (
    BackendUnavailable,
    ConfigError,
    DeviceDisconnected,
    DeviceError,
    DeviceTimeout,
    EdgeAgentError,
)

__all__ = [
    "BackendUnavailable",
    "CommandRejected",
    "ConfigError",
    "DeviceDisconnected",
    "DeviceError",
    "DeviceTimeout",
    "EdgeAgentError",
    "StoreError",
]


class StoreError(EdgeAgentError, OSError):
    """The SQLite store failed (disk full, corrupt file, quota)."""


class CommandRejected(EdgeAgentError, ValueError):
    """An MQTT command was malformed, unauthorised, expired or replayed."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail
