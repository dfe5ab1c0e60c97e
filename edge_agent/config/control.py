"""The control socket: where the running agent answers the technician's ``edge-agent status``."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from edge_agent.config.base import Model

DEFAULT_CONFIG = Path("/etc/edge-agent/lane.toml")
"""The config ``edge-agent status`` and the history commands read when no ``--config`` is given."""


class ControlConfig(Model):
    """A read-only Unix socket (mode 0660, the service's group): status and health, never commands."""

    socket: Path | None = Field(
        None,
        description="Unix socket the agent answers status requests on (mode 0660: the service's group). "
        "Default: control.sock beside the store. On a lane: /run/edge-agent/control.sock (the unit's "
        "RuntimeDirectory), since the store's directory is the service's alone.",
    )
    enabled: bool = Field(True, description="Answer status requests at all.")


def socket_for(control: ControlConfig, store_path: Path) -> Path:
    """The socket path a config means (the agent and the CLI resolve it the same way)."""
    return control.socket if control.socket is not None else store_path.parent / "control.sock"
