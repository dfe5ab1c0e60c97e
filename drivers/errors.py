"""The error family shared by drivers and the lane agent.

One root, :class:`EdgeAgentError`; each subclass also inherits the built-in it means, so callers can
catch either ``DeviceTimeout`` or ``TimeoutError``.
"""

from __future__ import annotations


class EdgeAgentError(Exception):
    """Root of every error raised on purpose by the agent or its drivers."""


class ConfigError(EdgeAgentError, ValueError):
    """A configuration value is missing, malformed or names an unavailable backend."""


class DeviceError(EdgeAgentError, OSError):
    """A device could not be reached or answered badly."""


class DeviceTimeout(DeviceError, TimeoutError):
    """A device did not answer within its timeout."""


class DeviceDisconnected(DeviceError, ConnectionError):
    """A device link (port, socket) is gone."""


class BackendUnavailable(ConfigError, ImportError):
    """A backend selected by config cannot be loaded on this machine (e.g. RPi.GPIO off a Pi)."""
