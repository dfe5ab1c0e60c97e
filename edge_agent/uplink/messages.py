"""Builders of every payload the agent sends upstream (see ``edge_agent/schemas``).

Builders are pure: ids come from :func:`edge_agent.ids.new_id`, times are passed in (``clock.utcnow()``)
and rendered as UTC ISO 8601 with milliseconds and a ``Z``. The passage payload is built by
:func:`edge_agent.journal.passage_payload`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Literal

from edge_agent.ids import new_id

Severity = Literal["warning", "error", "critical"]
CommandStatus = Literal["accepted", "rejected", "error"]
AvailabilityReason = Literal["connected", "shutdown", "connection_lost"]


def utc_iso(at: datetime) -> str:
    """Render a timezone-aware time as ``2026-11-28T12:00:00.123Z``."""
    if at.tzinfo is None:
        raise ValueError("times sent upstream must be timezone-aware")
    return at.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def encode(payload: Mapping[str, Any]) -> bytes:
    """Compact UTF-8 JSON, as published."""
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()


def event(
    site_id: str,
    lane_id: str,
    type_: str,
    *,
    at: datetime,
    data: Mapping[str, Any] | None = None,
    passage_id: str | None = None,
) -> dict[str, Any]:
    """Build a ``lane.event/1``: something that happened at the lane (``type_`` like ``signal.aspect``)."""
    return {
        "schema": "lane.event/1",
        "event_id": new_id(),
        "site_id": site_id,
        "lane_id": lane_id,
        "at": utc_iso(at),
        "type": type_,
        "passage_id": passage_id,
        "data": dict(data or {}),
    }


def fault(
    site_id: str,
    lane_id: str,
    *,
    device: str,
    kind: str,
    active: bool,
    at: datetime,
    detail: str = "",
    severity: Severity = "error",
) -> dict[str, Any]:
    """Build a ``lane.fault/1``: a device or subsystem failed (``active``) or recovered."""
    return {
        "schema": "lane.fault/1",
        "fault_id": new_id(),
        "site_id": site_id,
        "lane_id": lane_id,
        "at": utc_iso(at),
        "device": device,
        "kind": kind,
        "active": active,
        "severity": severity,
        "detail": detail,
    }


def health(
    site_id: str,
    lane_id: str,
    *,
    at: datetime,
    uptime_s: float,
    devices: Sequence[Mapping[str, Any]],
    outbox: Mapping[str, Any],
    status: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Build a ``lane.health/1``: device health (``DeviceHealth.as_dict()``), outbox counts, status."""
    return {
        "schema": "lane.health/1",
        "health_id": new_id(),
        "site_id": site_id,
        "lane_id": lane_id,
        "at": utc_iso(at),
        "uptime_s": round(max(0.0, uptime_s), 3),
        "devices": [dict(d) for d in devices],
        "outbox": dict(outbox),
        "status": dict(status or {}),
    }


def availability(
    site_id: str,
    lane_id: str,
    *,
    online: bool,
    at: datetime,
    client_id: str,
    connection_id: str,
    reason: AvailabilityReason,
) -> dict[str, Any]:
    """Build a ``lane.availability/1`` (retained): ``online`` on connect, ``offline`` on close or as will."""
    return {
        "schema": "lane.availability/1",
        "site_id": site_id,
        "lane_id": lane_id,
        "state": "online" if online else "offline",
        "at": utc_iso(at),
        "client_id": client_id,
        "connection_id": connection_id,
        "reason": reason,
    }


def command_response(
    site_id: str,
    lane_id: str,
    *,
    command_id: str | None,
    name: str | None,
    status: CommandStatus,
    at: datetime,
    reason: str | None = None,
    detail: str | None = None,
    result: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Build a ``lane.command_response/1``: the answer to one command (correlated by ``command_id``)."""
    if status == "accepted" and reason is not None:
        raise ValueError("an accepted command has no rejection reason")
    if status != "accepted" and not reason:
        raise ValueError("a rejected or failed command needs a reason")
    return {
        "schema": "lane.command_response/1",
        "response_id": new_id(),
        "site_id": site_id,
        "lane_id": lane_id,
        "command_id": command_id,
        "name": name,
        "status": status,
        "reason": reason,
        "detail": detail,
        "result": None if result is None else dict(result),
        "responded_at": utc_iso(at),
    }


def fault_message(
    site_id: str,
    lane_id: str,
    device: str,
    kind: str,
    active: bool,
    detail: str = "",
    *,
    at: datetime | None = None,
    severity: Severity = "error",
) -> dict[str, Any]:
    """Build a :func:`fault` stamped now (UTC) unless ``at`` is given (positional form for the app)."""
    return fault(
        site_id,
        lane_id,
        device=device,
        kind=kind,
        active=active,
        at=at or datetime.now(UTC),
        detail=detail,
        severity=severity,
    )


def event_message(
    site_id: str,
    lane_id: str,
    type_: str,
    data: Mapping[str, Any] | None = None,
    *,
    at: datetime | None = None,
    passage_id: str | None = None,
) -> dict[str, Any]:
    """Build an :func:`event` stamped now (UTC) unless ``at`` is given (positional form for the app)."""
    return event(site_id, lane_id, type_, at=at or datetime.now(UTC), data=data, passage_id=passage_id)
