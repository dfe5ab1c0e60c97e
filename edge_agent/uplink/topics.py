"""The fixed topic tree: ``{prefix}/{site}/{lane}/{kind}``."""

from __future__ import annotations

SUFFIXES: dict[str, str] = {
    "passage": "passage",  # out, QoS 1
    "event": "event",  # out, QoS 1
    "fault": "fault",  # out, QoS 1
    "health": "health",  # out, QoS 1, coalesced while offline
    "availability": "availability",  # out, QoS 1, retained, last will
    "command": "command",  # in, QoS 1
    "command_response": "command/response",  # out, QoS 1
    "evidence": "evidence",  # out, QoS 1, lowest priority (plate crops as JPEG)
}
"""Message kind -> topic suffix below the lane's base topic."""


class Topics:
    """The topics of one lane."""

    def __init__(self, prefix: str, site_id: str, lane_id: str) -> None:
        for part, what in ((prefix, "prefix"), (site_id, "site id"), (lane_id, "lane id")):
            if not part or any(c in part for c in "+#\0"):
                raise ValueError(f"{what} {part!r} cannot be used in a topic")
        if "/" in site_id or "/" in lane_id:
            raise ValueError("site and lane ids cannot contain '/'")
        self.base = f"{prefix}/{site_id}/{lane_id}"

    def __call__(self, kind: str) -> str:
        """Return the topic for message ``kind`` (one of :data:`SUFFIXES`)."""
        try:
            return f"{self.base}/{SUFFIXES[kind]}"
        except KeyError:
            raise ValueError(f"no topic for kind {kind!r}; known: {', '.join(SUFFIXES)}") from None


def valid_publish_topic(topic: str) -> bool:
    """Whether ``topic`` can be published to (no wildcards, not empty, not too long)."""
    return bool(topic) and not any(c in topic for c in "+#\0") and len(topic.encode()) <= 65535
