"""Log lines for journald: one line per event, a priority systemd understands, no personal data.

Under systemd the agent's stderr is a journal stream (``$JOURNAL_STREAM`` names it), and journald
takes a leading ``<N>`` as the line's syslog priority (``SyslogLevelPrefix=``, on by default), so
``journalctl -p warning -u edge-agent`` filters by level. Every line is::

    <4>rfid [rfid] reader down on /dev/lane-rfid: ...        (journald)
    2026-11-28 12:00:00,123 WARNING rfid [rfid] reader ...    (a terminal)

with the component (the logger below ``edge_agent.``) and the device (``extra={"device": ...}``, else
the device module the logger belongs to, ``-`` for the lane's own components). A traceback is folded
into the same line (`` | `` between its lines), so an event is one journal entry.

Three filters sit on the one handler, so they hold for every logger, the drivers' and the libraries'
included:

- :class:`PersonalDataFilter`: above DEBUG, values wrapped in :func:`personal` become a pseudonym
  (``<personal:3f9a1c>``, the same within one run, so lines can still be correlated), hex runs long
  enough to be an EPC (FAST card, transponder, e-seal) become ``<epc:...>``, and the identifiers the
  config knows to be people's (officer key ids and issuers) are replaced the same way;
- :class:`RateLimitFilter`: at most ``rate_burst`` lines of one kind (component, level, message
  template) per ``rate_window_s``; the first line after the window says how many were suppressed,
  so a flapping device cannot fill the SD card;
- levels per component from ``[logging] levels`` (:func:`apply_config`).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import re
import secrets
import sys
import time
from collections import OrderedDict
from collections.abc import Iterable
from typing import IO, Any

from edge_agent.config.logs import LogsConfig

PRIORITY = {logging.DEBUG: 7, logging.INFO: 6, logging.WARNING: 4, logging.ERROR: 3, logging.CRITICAL: 2}
"""syslog priority per logging level (debug 7, info 6, warning 4, err 3, crit 2)."""

# 16+ hex digits in a row, or 8+ hex bytes separated by spaces or colons (a raw frame dump)
_EPC = re.compile(
    r"(?<![0-9A-Za-z])(?:[0-9A-Fa-f]{16,}|(?:[0-9A-Fa-f]{2}[ :]){7,}[0-9A-Fa-f]{2})(?![0-9A-Za-z])"
)
_MAX_KINDS = 1024


class Personal:
    """A value that names a person (plate, EPC, officer id): shown in full only at DEBUG."""

    __slots__ = ("value",)

    def __init__(self, value: object) -> None:
        self.value = value

    def __str__(self) -> str:
        return str(self.value)

    def __repr__(self) -> str:
        return repr(self.value)


def personal(value: object) -> Personal:
    """Mark a log argument as personal data: above DEBUG the line shows a pseudonym instead.

    ``log.warning("override by %s", personal(who))``.
    """
    return Personal(value)


def under_journald(stream: IO[str]) -> bool:
    """Whether ``stream`` is the journal stream systemd connected (``$JOURNAL_STREAM`` = ``dev:ino``)."""
    want = os.environ.get("JOURNAL_STREAM", "")
    try:
        st = os.fstat(stream.fileno())
    except (OSError, ValueError, AttributeError):
        return False
    return want == f"{st.st_dev}:{st.st_ino}"


_DEVICE_MODULES = frozenset({"rfid", "wim", "loops", "camera", "signal", "recognition"})


def _device_of(logger: str) -> str:
    """The device a logger speaks for when the line does not name one.

    ``edge_agent.rfid`` -> ``rfid``, ``drivers.modbus.client`` -> ``modbus``; ``-`` for the lane's own
    components (store, uplink, ...).
    """
    parts = logger.split(".")
    if parts[0] == "edge_agent" and len(parts) > 1 and parts[1] in _DEVICE_MODULES:
        return parts[1]
    if parts[0] == "drivers" and len(parts) > 1:
        return parts[1]
    return "-"


class JournalFormatter(logging.Formatter):
    """One line per record: ``<prio>component [device] message`` (or a timestamped terminal line)."""

    def __init__(self, *, journald: bool) -> None:
        super().__init__()
        self.journald = journald

    def format(self, record: logging.LogRecord) -> str:
        """The record as one line."""
        component = record.name.removeprefix("edge_agent.") if record.name != "edge_agent" else "agent"
        device = getattr(record, "device", None) or _device_of(record.name)
        text = record.getMessage()
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            text = f"{text} | {record.exc_text}"
        if record.stack_info:
            text = f"{text} | {record.stack_info}"
        text = " | ".join(part for part in text.splitlines() if part.strip()) or "-"
        if self.journald:
            prio = PRIORITY.get(record.levelno, 6 if record.levelno < logging.WARNING else 3)
            return f"<{prio}>{component} [{device}] {text}"
        return f"{self.formatTime(record)} {record.levelname} {component} [{device}] {text}"


class PersonalDataFilter(logging.Filter):
    """Above DEBUG, replace personal data in a record by pseudonyms (see the module docstring)."""

    def __init__(self, known: Iterable[str] = ()) -> None:
        super().__init__()
        self._key = secrets.token_bytes(16)
        self._known: re.Pattern[str] | None = None
        self.set_known(known)

    def set_known(self, known: Iterable[str]) -> None:
        """Literal identifiers of people (officer key ids, issuers) to hide wherever they appear."""
        words = sorted({k for k in known if len(k) >= 3}, key=len, reverse=True)
        self._known = re.compile("|".join(re.escape(w) for w in words)) if words else None

    def pseudonym(self, kind: str, value: object) -> str:
        """``<kind:xxxxxx>``: the same value gives the same pseudonym within this process only."""
        digest = hmac.new(self._key, str(value).encode(), hashlib.sha256).hexdigest()[:6]
        return f"<{kind}:{digest}>"

    def redact(self, text: str) -> str:
        """``text`` with EPC-like hex runs and known identifiers replaced."""
        text = _EPC.sub(lambda m: self.pseudonym("epc", re.sub(r"[ :]", "", m.group(0)).upper()), text)
        if self._known is not None:
            text = self._known.sub(lambda m: self.pseudonym("personal", m.group(0)), text)
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        """Rewrite ``record`` in place (message, arguments, traceback); never drops it."""
        if record.levelno <= logging.DEBUG:
            return True
        args = record.args
        if isinstance(args, tuple):
            record.args = tuple(
                self.pseudonym("personal", a.value) if isinstance(a, Personal) else a for a in args
            )
        elif isinstance(args, dict):
            record.args = {
                k: self.pseudonym("personal", v.value) if isinstance(v, Personal) else v
                for k, v in args.items()
            }
        record.msg = self.redact(record.getMessage())
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.redact(record.exc_text)
        return True


class RateLimitFilter(logging.Filter):
    """At most ``burst`` records of one kind per ``window_s``; the next one after says how many went.

    A kind is (logger, level, message template): "reader down on %s" from the RFID source is one kind
    whatever the port. At most 1,024 kinds are tracked (the least recent are forgotten). Whatever the
    kinds (a message built with an f-string is a new kind each time), at most ``total`` lines pass per
    window, so the journal's growth is bounded.
    """

    def __init__(
        self, *, burst: int = 10, total: int = 300, window_s: float = 60.0, clock: Any = time.monotonic
    ) -> None:
        super().__init__()
        self.burst = burst
        self.total = total
        self.window_s = window_s
        self._clock = clock
        self._kinds: OrderedDict[tuple[str, int, str], list[float]] = OrderedDict()
        self._all = [clock(), 0, 0]  # window start, lines passed, lines suppressed (every kind together)
        self.suppressed_total = 0

    def filter(self, record: logging.LogRecord) -> bool:
        """False for a record over its kind's budget (counted); the first one after notes the count."""
        key = (record.name, record.levelno, str(record.msg)[:200])
        now = self._clock()
        state = self._kinds.get(key)
        if state is None or now - state[0] >= self.window_s:
            suppressed = int(state[2]) if state is not None else 0
            state = [now, 0.0, 0.0]
            self._kinds[key] = state
            if len(self._kinds) > _MAX_KINDS:
                self._kinds.popitem(last=False)
            if suppressed:
                record.msg = f"{record.msg} [{suppressed} similar suppressed in the last {self.window_s:g} s]"
        self._kinds.move_to_end(key)
        if now - self._all[0] >= self.window_s:
            if self._all[2]:
                over = f"{self._all[2]} lines of all kinds suppressed in the last {self.window_s:g} s"
                record.msg = f"{record.msg} [{over}]"
            self._all = [now, 0, 0]
        if state[1] >= self.burst:  # over its kind's budget: counted for its kind
            state[2] += 1
            self.suppressed_total += 1
            return False
        if self._all[1] >= self.total:  # over the budget of every kind together
            self._all[2] += 1
            self.suppressed_total += 1
            return False
        state[1] += 1
        self._all[1] += 1
        return True


_HANDLER_NAME = "edge_agent.journal"


def configure(level: str, *, stream: IO[str] | None = None, journald: bool | None = None) -> logging.Handler:
    """Install the agent's one handler on the root logger (replacing an earlier one); return it."""
    out = stream if stream is not None else sys.stderr
    handler = logging.StreamHandler(out)
    handler.set_name(_HANDLER_NAME)
    handler.setFormatter(JournalFormatter(journald=under_journald(out) if journald is None else journald))
    handler.addFilter(RateLimitFilter())
    handler.addFilter(PersonalDataFilter())  # after the limiter: it sees the final message only once
    root = logging.getLogger()
    for old in [h for h in root.handlers if h.get_name() == _HANDLER_NAME]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    return handler


def apply_config(
    cfg: LogsConfig, *, known_personal: Iterable[str] = (), handler: logging.Handler | None = None
) -> None:
    """Per-component levels, the rate limit and the config's personal identifiers, on the running handler."""
    for name, level in cfg.logger_names().items():
        logging.getLogger(name).setLevel(level)
    targets = (
        [handler]
        if handler is not None
        else [h for h in logging.getLogger().handlers if h.get_name() == _HANDLER_NAME]
    )
    for h in targets:
        for f in h.filters:
            if isinstance(f, RateLimitFilter):
                f.burst, f.total, f.window_s = cfg.rate_burst, cfg.rate_total, cfg.rate_window_s
            elif isinstance(f, PersonalDataFilter):
                f.set_known(known_personal)


def officer_identifiers(commands: Any) -> list[str]:
    """Officer ids a ``CommandsConfig`` names, hidden from log lines above DEBUG.

    Every ``issuers`` entry of an officer key, and its key id when that carries a digit (a personal key
    is named after its officer, ``officer-1234``; a key id like ``officer`` is a word, and hiding it
    would hide reasons such as ``officer_hold``).
    """
    out: list[str] = []
    for key_id, key in commands.keys.items():
        if "officer" in key.roles:
            if any(ch.isdigit() for ch in key_id):
                out.append(key_id)
            out.extend(key.issuers)
    return out
