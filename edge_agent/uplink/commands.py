"""Commands in: parse the fixed envelope, verify it, run its handler, build the response.

The one narrow door for anything coming down from central or an officer, in two steps:

* :meth:`CommandDispatcher.screen` -- cheap, synchronous, changes nothing: size (per command kind),
  JSON, the envelope's exact shape (no field the schema forbids, every echoed field bounded), the
  signature, authority, freshness and replay. The uplink screens every message as it arrives, so
  junk never waits in a queue in front of a valid command.
* :meth:`CommandDispatcher.execute` -- for a screened command: remember its nonce and id (in memory
  and, through :class:`edge_agent.replay.ReplayLog`, on disk *before* the effect), run its handler,
  build the response.

Every validly signed command gets exactly one ``lane.command_response/1``; rejected messages are
answered too (``command_id`` null when it was unreadable or unbounded), at a bounded rate chosen by
the uplink. A rejected command changes nothing. Rejections are counted by reason and logged once per
reason per minute with context. Every string echoed into a response is bounded.
"""

from __future__ import annotations

import inspect
import json
import logging
import re
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

from edge_agent.clock import Clock
from edge_agent.errors import CommandRejected
from edge_agent.uplink import messages

log = logging.getLogger(__name__)

ENVELOPE_SCHEMA = "lane.command/1"
COMMAND_NAMES: frozenset[str] = frozenset(
    {"signal.override", "reference.snapshot", "reference.delta", "config.reload", "config.apply"}
)
"""The commands the envelope allows (``edge_agent/schemas/command.json``)."""

MAX_COMMAND_BYTES = 4 * 1024 * 1024
"""The largest command of any kind (a full reference snapshot); larger messages are not parsed."""
MAX_BYTES_BY_NAME: dict[str, int] = {
    "signal.override": 8 * 1024,
    "config.reload": 8 * 1024,
    "config.apply": 512 * 1024,  # a whole lane.toml (at most 256 KiB of TOML, see edge_agent/config_apply.py)
    "reference.delta": 1024 * 1024,
    "reference.snapshot": MAX_COMMAND_BYTES,
}
"""Per command kind: an override is a few hundred bytes, a delta a few thousand records."""
ENVELOPE_KEYS = frozenset({"schema", "command_id", "name", "issued_at", "nonce", "issuer", "body", "auth"})
ISSUER_KEYS = frozenset({"id", "role"})
AUTH_KEYS = frozenset({"alg", "key_id", "sig"})
MAX_DETAIL = 300
"""Longest rejection detail echoed upstream (details may quote attacker-chosen input)."""
_ECHO_ID = re.compile(r"^[A-Za-z0-9._:@-]{1,64}$")


class CommandVerifierLike(Protocol):
    """What the uplink needs from ``edge_agent.auth.CommandVerifier``."""

    def check(self, envelope: dict[str, Any]) -> Any:
        """Return the authenticated principal without remembering it, or raise :class:`CommandRejected`."""
        ...

    def remember(self, principal: Any) -> None:
        """Record the command as used (raise ``replayed`` if it already was)."""
        ...


class ReplayLogLike(Protocol):
    """What the dispatcher needs from :class:`edge_agent.replay.ReplayLog`."""

    async def record(self, principal: Any) -> None:
        """Durably record an accepted command before it runs."""
        ...


@dataclass(frozen=True, slots=True)
class Screened:
    """A command message after :meth:`CommandDispatcher.screen`: valid (``rejection`` None) or not."""

    command_id: str | None
    name: str | None
    envelope: dict[str, Any] | None
    principal: Any
    rejection: CommandRejected | None
    origin: str

    @property
    def valid(self) -> bool:
        """Whether it passed every check (its handler will run)."""
        return self.rejection is None


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


def fail_safe(name: str, body: dict[str, Any]) -> bool:
    """Whether a command only makes the lane safer (runs even when its replay record cannot be stored)."""
    return name == "signal.override" and body.get("action") in ("close", "hold")


def _field(envelope: dict[str, Any], key: str, kind: type) -> Any:
    value = envelope.get(key)
    if not isinstance(value, kind) or (kind is str and not value):
        raise CommandRejected("malformed", f"'{key}' must be a non-empty {kind.__name__}")
    return value


def _bounded(text: str | None) -> str | None:
    if text is None or len(text) <= MAX_DETAIL:
        return text
    return text[: MAX_DETAIL - 1] + "…"


def _echo(value: Any, allowed: frozenset[str] | None = None) -> str | None:
    """A field from an untrusted envelope, fit to echo upstream, or None."""
    if not isinstance(value, str) or not _ECHO_ID.match(value):
        return None
    return value if allowed is None or value in allowed else None


class CommandDispatcher:
    """Screens raw command payloads, then runs registered handlers one at a time and builds responses."""

    def __init__(
        self,
        *,
        site_id: str,
        lane_id: str,
        verifier: CommandVerifierLike | None,
        clock: Clock,
        replay_log: ReplayLogLike | None = None,
    ) -> None:
        self.site_id = site_id
        self.lane_id = lane_id
        self.verifier = verifier
        self.clock = clock
        self.replay_log = replay_log
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
        """Screen and execute one command message; return its ``lane.command_response/1`` payload."""
        return await self.execute(self.screen(raw, origin=origin, retained=retained))

    def screen(self, raw: bytes, *, origin: str = "", retained: bool = False) -> Screened:
        """Every check that needs no I/O, changing nothing; a retained message is rejected (``retained``)."""
        command_id: str | None = None
        name: str | None = None
        envelope: dict[str, Any] | None = None
        try:
            envelope = self._parse(raw)
            command_id = _echo(envelope.get("command_id"))
            name = _echo(envelope.get("name"), COMMAND_NAMES)
            if retained:
                raise CommandRejected("retained", "retained commands are not accepted")
            self._check(envelope, len(raw))
            assert name is not None
            if name not in self._handlers:
                raise CommandRejected("unknown_command", f"no handler for {name!r} on this lane")
            principal = self._verify(envelope)
        except CommandRejected as exc:
            return Screened(command_id, name, None, None, exc, origin)
        return Screened(command_id, name, envelope, principal, None, origin)

    async def execute(self, cmd: Screened) -> dict[str, Any]:
        """Run a screened command (or answer its rejection); the response payload."""
        if cmd.rejection is not None or cmd.envelope is None:
            exc = cmd.rejection or CommandRejected("malformed", "not screened")
            return self.rejected(exc, cmd.command_id, cmd.name, cmd.origin)
        name, command_id, envelope = cmd.name, cmd.command_id, cmd.envelope
        assert name is not None
        try:
            if self.verifier is not None:
                self.verifier.remember(cmd.principal)  # a copy screened meanwhile is now a replay
                if self.replay_log is not None:
                    await self.replay_log.record(cmd.principal)  # on disk before the effect
        except CommandRejected as exc:
            return self.rejected(exc, command_id, name, cmd.origin)
        except Exception as exc:  # the store refused the record (disk full): memory guards replays
            # until a restart; after one, only a command that makes the lane safer could replay
            self.counters["replay_not_persisted"] += 1
            log.error("command %s (%s): replay record not persisted: %s", name, command_id, exc)
            if not fail_safe(name, envelope["body"]):
                why = CommandRejected("storage_unavailable", "cannot record the command durably; retry")
                return self.rejected(why, command_id, name, cmd.origin)
        try:
            result = await self._handlers[name](envelope["body"], cmd.principal)
        except CommandRejected as exc:
            return self.rejected(exc, command_id, name, cmd.origin)
        except Exception as exc:
            self.counters["error"] += 1
            log.exception("command %s (%s) failed in its handler", name, command_id)
            return self._response(command_id, name, "error", "handler_failed", f"{type(exc).__name__}: {exc}")
        if result is not None and not isinstance(result, dict):
            result = {"value": result}
        self.counters["accepted"] += 1
        self.counters[f"accepted:{name}"] += 1
        log.info("command %s (%s) accepted", name, command_id)
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
    def _check(envelope: dict[str, Any], size: int) -> None:
        if envelope.get("schema") != ENVELOPE_SCHEMA:
            raise CommandRejected("malformed", f"'schema' must be {ENVELOPE_SCHEMA!r}")
        extra = set(envelope) - ENVELOPE_KEYS
        if extra:
            shown = ", ".join(sorted(repr(k[:32]) for k in extra)[:5])
            raise CommandRejected("malformed", f"fields the envelope does not allow: {shown}")
        cid = _field(envelope, "command_id", str)
        if not _ECHO_ID.match(cid):
            raise CommandRejected("malformed", "'command_id' must be 1-64 of [A-Za-z0-9._:@-]")
        name = _field(envelope, "name", str)
        _field(envelope, "issued_at", str)
        _field(envelope, "nonce", str)
        for key, allowed in (("issuer", ISSUER_KEYS), ("auth", AUTH_KEYS)):
            part = _field(envelope, key, dict)
            if set(part) - allowed:
                raise CommandRejected("malformed", f"'{key}' allows only {sorted(allowed)}")
        _field(envelope, "body", dict)
        if name not in COMMAND_NAMES:
            raise CommandRejected("unknown_command", "not a lane command")
        limit = MAX_BYTES_BY_NAME[name]
        if size > limit:
            raise CommandRejected("too_large", f"{name} of {size} bytes exceeds {limit}")

    def _verify(self, envelope: dict[str, Any]) -> Any:
        if self.verifier is None:
            return None
        try:
            principal = self.verifier.check(envelope)
        except CommandRejected:
            raise
        except Exception as exc:
            log.exception("command verifier failed on %s", _echo(envelope.get("command_id")))
            raise CommandRejected("verification_failed", f"{type(exc).__name__}") from None
        if inspect.isawaitable(principal):
            raise CommandRejected("verification_failed", "the verifier must check synchronously")
        return principal

    def rejected(
        self, exc: CommandRejected, command_id: str | None, name: str | None, origin: str
    ) -> dict[str, Any]:
        """Count and log (rate-limited) a rejection; the response payload that answers it."""
        self.counters["rejected"] += 1
        self.counters[f"rejected:{exc.reason}"] += 1
        self._rlog.warning(
            f"rejected:{exc.reason}",
            "command rejected (%s): %s; command_id=%s name=%s from %s",
            exc.reason,
            _bounded(exc.detail) or "-",
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
            detail=_bounded(detail),
            result=result,
            at=self.clock.utcnow(),
        )
