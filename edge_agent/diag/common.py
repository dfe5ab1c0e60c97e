"""What every ``edge-agent diag`` command shares: never fight the running agent for a port.

A diagnostic that opens a device the agent holds (the RFID reader's serial port, a Modbus line, the
lamp outputs) would disturb the lane or read garbage. So before opening anything, a diag asks the
control socket of the config it was given; when an agent answers there, it refuses and offers the
socket route instead (``edge-agent status``, which shows every device as the agent sees it).
"""

from __future__ import annotations

import sys
import tomllib
from pathlib import Path
from typing import Any, TextIO

from pydantic import ValidationError

from edge_agent.config import ConfigInvalid, LaneConfig, load_config
from edge_agent.config.control import DEFAULT_CONFIG, ControlConfig, socket_for
from edge_agent.config.storage import StorageConfig
from edge_agent.control import agent_answers

REFUSED = 2


def _sections(config: Path) -> tuple[StorageConfig, ControlConfig] | None:
    """A config file's ``[storage]`` and ``[control]``, read leniently (the rest may be incomplete)."""
    try:
        with config.open("rb") as fh:
            data: dict[str, Any] = tomllib.load(fh)
        return StorageConfig.model_validate(data.get("storage", {})), ControlConfig.model_validate(
            data.get("control", {})
        )
    except (OSError, tomllib.TOMLDecodeError, ValidationError):
        return None


def socket_of(config: Path) -> Path | None:
    """The control socket a config file names (read leniently: only ``[control]`` and ``[storage]``)."""
    sections = _sections(config)
    return None if sections is None else socket_for(sections[1], sections[0].path)


def state_file_of(config: Path) -> Path | None:
    """The agent's default signal state file for a config (beside its store), as the agent resolves it."""
    from edge_agent.signal_state import default_state_file

    sections = _sections(config)
    return None if sections is None else default_state_file(sections[0].path)


def agent_holding(config: Path | None) -> Path | None:
    """The socket of a running agent for ``config`` (or the lane's default config), or None."""
    path = config if config is not None else DEFAULT_CONFIG if DEFAULT_CONFIG.exists() else None
    if path is None:
        return None
    sock = socket_of(path)
    return sock if sock is not None and agent_answers(sock) else None


def refuse(what: str, sock: Path, config: Path | None, out: TextIO = sys.stderr) -> int:
    """Say why the diag will not open ``what`` and what to do instead; the exit status."""
    cfg = f" --config {config}" if config is not None else ""
    print(f"tried: open {what}", file=out)
    print(
        f"answered: a running agent (control socket {sock}) holds it; opening it too would disturb the lane",
        file=out,
    )
    print(
        f"check next: edge-agent status{cfg} (every device as the agent sees it), or stop the service first",
        file=out,
    )
    return REFUSED


def load_lane(config: Path | None, err: TextIO = sys.stderr) -> LaneConfig | None:
    """The lane config a diag was given (or the default file); None after printing every problem."""
    path = config or DEFAULT_CONFIG
    try:
        return load_config(path)
    except ConfigInvalid as exc:
        for key, reason in exc.errors:
            print(f"{path}: {key}: {reason}", file=err)
    except OSError as exc:
        print(f"cannot read {path}: {exc.strerror}", file=err)
    return None
