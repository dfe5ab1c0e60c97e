"""The MQTT uplink: store-and-forward delivery, the link, commands in, health out."""

from __future__ import annotations

from edge_agent.uplink.commands import COMMAND_NAMES, CommandDispatcher, CommandHandler, CommandVerifierLike
from edge_agent.uplink.link import LinkError, LinkRefusedError, release_sockets
from edge_agent.uplink.reporting import HealthProvider
from edge_agent.uplink.topics import SUFFIXES, Topics
from edge_agent.uplink.uplink import Uplink

__all__ = [
    "COMMAND_NAMES",
    "SUFFIXES",
    "CommandDispatcher",
    "CommandHandler",
    "CommandVerifierLike",
    "HealthProvider",
    "LinkError",
    "LinkRefusedError",
    "Topics",
    "Uplink",
    "release_sockets",
]
