"""Officer override (``signal.override``): release, hold, close, open -- always within the signal's rules.

Body: ``{"action": "release" | "hold" | "close" | "open", "passage_id": optional, "reason": str}``.

* ``release`` with a passage: green for that passage (lifts an officer hold); refused while the lane
  is closed or a fault is active, and refused unless the passage is open in this lane now (a vehicle
  between the entry loop and the stop line). The green ends when that vehicle's tail clears the stop
  line, or at ``signal.max_green_s``, whichever comes first. Without a passage: lift the lane hold.
* ``hold`` with a passage: withdraw its green and refuse the lane's grants for it. Without: the whole
  lane red until ``release``.
* ``close`` / ``open``: the lane (no passage). Opening does not clear faults: red stays until they do.

A malformed body raises ``CommandRejected("malformed", ...)`` and changes nothing. A valid command
that the signal's rules do not allow is answered ``applied: false`` with the reason. Every handled
command produces one audit record (who, what, when, outcome) through ``on_audit``.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Mapping
from typing import Any

from edge_agent.auth import Principal
from edge_agent.clock import Clock, SystemClock
from edge_agent.errors import CommandRejected
from edge_agent.logs import personal
from edge_agent.signal import TrafficSignal

log = logging.getLogger(__name__)

ACTIONS = ("release", "hold", "close", "open")
AUDIT_SCHEMA = "lane.audit/1"
_KEYS = frozenset({"action", "passage_id", "reason"})

OnAudit = Callable[[dict[str, Any]], None]


def _parse(body: Mapping[str, Any]) -> tuple[str, str | None, str]:
    if not isinstance(body, Mapping):
        raise CommandRejected("malformed", "body must be an object")
    unknown = set(body) - _KEYS
    if unknown:
        raise CommandRejected("malformed", f"unknown body keys: {sorted(unknown)}")
    action = body.get("action")
    if action not in ACTIONS:
        raise CommandRejected("malformed", f"'action' must be one of {list(ACTIONS)}")
    reason = body.get("reason")
    if not isinstance(reason, str) or not reason.strip() or len(reason) > 500:
        raise CommandRejected("malformed", "'reason' must be a non-empty string of at most 500 characters")
    passage_id = body.get("passage_id")
    if passage_id is not None and (not isinstance(passage_id, str) or not 0 < len(passage_id) <= 64):
        raise CommandRejected("malformed", "'passage_id' must be a string of 1-64 characters")
    if passage_id is not None and action in ("close", "open"):
        raise CommandRejected("malformed", f"'{action}' applies to the lane, not to a passage")
    return str(action), passage_id, reason.strip()


class OverrideHandler:
    """Applies authenticated ``signal.override`` commands to a :class:`TrafficSignal`."""

    def __init__(
        self,
        signal: TrafficSignal,
        *,
        is_open: Callable[[str], bool],
        on_audit: OnAudit | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.signal = signal
        self.is_open = is_open
        self.on_audit = on_audit
        self.clock = clock or SystemClock()
        self.counters: Counter[str] = Counter()

    async def handle(self, body: dict[str, Any], principal: Any) -> dict[str, Any]:
        """Validate and apply one override; return the result for the command response."""
        if not isinstance(principal, Principal):
            self.counters["rejected"] += 1
            raise CommandRejected("unauthorised", "overrides need an authenticated officer or central")
        try:
            action, passage_id, reason = _parse(body)
        except CommandRejected as exc:
            self.counters["rejected"] += 1
            raw = body.get("action") if isinstance(body, Mapping) else None
            self._audit(principal, str(raw) if raw is not None else None, None, None, "rejected", str(exc))
            raise
        who = f"{principal.role}:{principal.issuer_id}"
        applied, detail = self._apply(action, passage_id, f"{who}: {reason}", who)
        self.counters[f"{action}:{'applied' if applied else 'refused'}"] += 1
        log.warning(
            "override %s%s by %s (%s): %s -- %s",
            action,
            f" {passage_id}" if passage_id else "",
            personal(who),  # an officer's id: in the audit record upstream, in the log only at DEBUG
            reason,
            "applied" if applied else "refused",
            detail,
        )
        result: dict[str, Any] = {
            "action": action,
            "passage_id": passage_id,
            "applied": applied,
            "detail": detail,
            "signal": self.signal.status(),
        }
        self._audit(principal, action, passage_id, reason, "applied" if applied else "refused", detail)
        return result

    def _apply(self, action: str, passage_id: str | None, reason: str, who: str) -> tuple[bool, str]:
        sig = self.signal
        if action == "release" and passage_id is not None:
            if sig.closed:
                return False, "lane closed: send 'open' first"
            if sig.faults:
                return False, "faults active: " + ", ".join(sorted(sig.faults))
            if not self.is_open(passage_id):
                return False, f"passage {passage_id} is not open in this lane (no vehicle of that id)"
            sig.unhold()
            if not sig.grant(passage_id, by=who):
                return False, "the signal refused green"
            return True, f"green for passage {passage_id}"
        if action == "release":
            if not sig.held:
                return True, "no lane hold was on"
            sig.unhold()
            return True, "lane hold lifted"
        if action == "hold" and passage_id is not None:
            sig.block(passage_id, reason)
            return True, f"passage {passage_id} held"
        if action == "hold":
            sig.hold(reason)
            return True, "lane held at red"
        if action == "close":
            sig.set_closed(True, reason)
            return True, "lane closed"
        sig.set_closed(False, reason)
        if sig.faults:
            return True, "lane opened; red until faults clear: " + ", ".join(sorted(sig.faults))
        return True, "lane opened"

    def _audit(
        self,
        principal: Principal,
        action: str | None,
        passage_id: str | None,
        reason: str | None,
        outcome: str,
        detail: str,
    ) -> None:
        record = {
            "schema": AUDIT_SCHEMA,
            "at": self.clock.utcnow().isoformat(),
            "command_id": principal.command_id or None,
            "command": principal.name or "signal.override",
            "issued_at": principal.issued_at or None,
            "who": {"id": principal.issuer_id, "role": principal.role, "key_id": principal.key_id},
            "action": action,
            "passage_id": passage_id,
            "reason": reason,
            "outcome": outcome,
            "detail": detail,
            "aspect": self.signal.aspect.value,
            "closed": self.signal.closed,
        }
        if self.on_audit is not None:
            try:
                self.on_audit(record)
            except Exception:
                log.exception("audit callback failed for command %s", principal.command_id)
