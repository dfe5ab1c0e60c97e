"""Commands in: parse the fixed envelope, verify it, run its handler, build the response.

The one narrow door for anything coming down from central or an officer. Every message on the
command topic gets exactly one ``lane.command_response/1``, including unreadable ones (then with
``command_id`` null). A rejected command changes nothing: handlers run only after the envelope parsed,
the name is known and the verifier accepted it. Rejections are counted by reason and logged once per
reason per minute with context.
"""

from __future__ import annotations

import inspect
import json
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from edge_agent.clock import Clock
from edge_agent.errors import CommandRejected
from edge_agent.uplink import messages

log = logging.getLogger(__name__)

ENVELOPE_SCHEMA = "lane.command/1"
COMMAND_NAMES: frozenset[str] = frozenset(
    {"signal.override", "reference.snapshot", "reference.delta", "config.reload"}
)
"""The commands the envelope allows (``edge_agent/schemas/command.json``)."""

MAX_COMMAND_BYTES = 4 * 1024 * 1024


class CommandVerifierLike(Protocol):
    """What the uplink needs from ``edge_agent.auth.CommandVerifier``."""

    def verify(self, envelope: dict[str, Any]) -> Any:
        """Return the authenticated principal, or raise :class:`CommandRejected`."""
        ...


CommandHandler = Callable[[dict[str, Any], Any], Awaitable[dict[str, Any]]]
"""``handler(body, principal)`` returns a result for the response or raises :class:`CommandRejected`."""


class RateLimitedLog:
    """Log the first occurrence of each key, then at most once per ``interval_s`` with a count."""

    def __init__(self, logger: logging.Logger, interval_s: float = 60.0) -> None:
        self._log = logger
        self._interval = interval_s
        self._last: dict[str, float] = {}
        self._suppressed: Counter[str] = Counter()

    def warning(self, key: str, msg: str, *args: object) -> None:
        """Log ``msg % args`` at WARNING unless ``key`` was logged within the interval."""
        now = time.monotonic()
        last = self._last.get(key)
        if last is not None and now - last < self._interval:
            self._suppressed[key] += 1
            return
        self._last[key] = now
        n = self._suppressed.pop(key, 0)
        suffix = f" ({n} similar suppressed)" if n else ""
        self._log.warning(msg + suffix, *args)


def _field(envelope: dict[str, Any], key: str, kind: type) -> Any:
    value = envelope.get(key)
    if not isinstance(value, kind) or (kind is str and not value):
        raise CommandRejected("malformed", f"'{key}' must be a non-empty {kind.__name__}")
    return value


class CommandDispatcher:
    """Turns raw command payloads into responses, running registered handlers one at a time."""

    def __init__(
        self, *, site_id: str, lane_id: str, verifier: CommandVerifierLike | None, clock: Clock
    ) -> None:
        self.site_id = site_id
        self.lane_id = lane_id
        self.verifier = verifier
        self.clock = clock
        self.counters: Counter[str] = Counter()
        self._handlers: dict[str, CommandHandler] = {}
        self._rlog = RateLimitedLog(log)

    def register(self, name: str, handler: CommandHandler) -> None:
        """Route command ``name`` to ``handler`` (one handler per name)."""
        if name not in COMMAND_NAMES:
            raise ValueError(f"unknown command {name!r}; the envelope allows {sorted(COMMAND_NAMES)}")
        if name in self._handlers:
            raise ValueError(f"command {name!r} already has a handler")
        self._handlers[name] = handler

    async def handle(self, raw: bytes, *, origin: str = "", retained: bool = False) -> dict[str, Any]:
        """Process one command message and return its ``lane.command_response/1`` payload.

        A retained message is rejected (``retained``): it would replay on every reconnect.
        """
        command_id: str | None = None
        name: str | None = None
        try:
            envelope = self._parse(raw)
            cid, nm = envelope.get("command_id"), envelope.get("name")
            command_id = cid if isinstance(cid, str) and cid else None
            name = nm if isinstance(nm, str) and nm else None
            if retained:
                raise CommandRejected("retained", "retained commands are not accepted")
            self._check(envelope)
            assert name is not None
            assert command_id is not None
            handler = self._handlers.get(name)
            if handler is None:
                raise CommandRejected("unknown_command", f"no handler for {name!r} on this lane")
            principal = await self._verify(envelope)
        except CommandRejected as exc:
            return self._rejected(exc, command_id, name, origin)
        try:
            result = await handler(envelope["body"], principal)
        except CommandRejected as exc:
            return self._rejected(exc, command_id, name, origin)
        except Exception as exc:
            self.counters["error"] += 1
            log.exception("command %s (%s) failed in its handler", name, command_id)
            return self._response(command_id, name, "error", "handler_failed", f"{type(exc).__name__}: {exc}")
        if result is not None and not isinstance(result, dict):
            result = {"value": result}
        self.counters["accepted"] += 1
        self.counters[f"accepted:{name}"] += 1
        log.info("command %s (%s) accepted from %s", name, command_id, envelope["issuer"].get("id"))
        return self._response(command_id, name, "accepted", None, None, result)

    # -- steps -------------------------------------------------------------------------------------
    @staticmethod
    def _parse(raw: bytes) -> dict[str, Any]:
        if len(raw) > MAX_COMMAND_BYTES:
            raise CommandRejected("malformed", f"command of {len(raw)} bytes exceeds {MAX_COMMAND_BYTES}")
        try:
            envelope = json.loads(raw)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise CommandRejected("malformed", f"not JSON: {exc}") from None
        except RecursionError:
            raise CommandRejected("malformed", "JSON nested too deeply") from None
        if not isinstance(envelope, dict):
            raise CommandRejected("malformed", "a command must be a JSON object")
        return envelope

    @staticmethod
    def _check(envelope: dict[str, Any]) -> None:
        if envelope.get("schema") != ENVELOPE_SCHEMA:
            raise CommandRejected("malformed", f"'schema' must be {ENVELOPE_SCHEMA!r}")
        _field(envelope, "command_id", str)
        name = _field(envelope, "name", str)
        _field(envelope, "issued_at", str)
        _field(envelope, "nonce", str)
        _field(envelope, "issuer", dict)
        _field(envelope, "body", dict)
        _field(envelope, "auth", dict)
        if name not in COMMAND_NAMES:
            raise CommandRejected("unknown_command", f"{name!r} is not a lane command")

    async def _verify(self, envelope: dict[str, Any]) -> Any:
        if self.verifier is None:
            return None
        try:
            principal = self.verifier.verify(envelope)
            if inspect.isawaitable(principal):
                principal = await principal
        except CommandRejected:
            raise
        except Exception as exc:
            log.exception("command verifier failed on %s", envelope.get("command_id"))
            raise CommandRejected("verification_failed", f"{type(exc).__name__}: {exc}") from None
        return principal

    def _rejected(
        self, exc: CommandRejected, command_id: str | None, name: str | None, origin: str
    ) -> dict[str, Any]:
        self.counters["rejected"] += 1
        self.counters[f"rejected:{exc.reason}"] += 1
        self._rlog.warning(
            f"rejected:{exc.reason}",
            "command rejected (%s): %s; command_id=%s name=%s from %s",
            exc.reason,
            exc.detail or "-",
            command_id,
            name,
            origin or "?",
        )
        return self._response(command_id, name, "rejected", exc.reason, exc.detail or None)

    def _response(
        self,
        command_id: str | None,
        name: str | None,
        status: messages.CommandStatus,
        reason: str | None,
        detail: str | None,
        result: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        return messages.command_response(
            self.site_id,
            self.lane_id,
            command_id=command_id,
            name=name,
            status=status,
            reason=reason,
            detail=detail,
            result=result,
            at=self.clock.utcnow(),
        )
