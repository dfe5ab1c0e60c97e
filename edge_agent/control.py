"""The control socket: the running agent answers status requests from the technician's CLI.

One Unix stream socket (``control.socket``, mode 0660 so the service's group may ask). The protocol is
one JSON line in, one JSON line out: ``{"op": "status"}`` returns the agent's status report,
``{"op": "ping"}`` returns ``{"ok": true}``. It is read-only by construction: no op changes the
signal, the store or the config (officers use signed MQTT commands). Every request is bounded: one
line of at most ``MAX_REQUEST`` bytes within ``REQUEST_TIMEOUT_S``, at most ``MAX_CLIENTS`` at once;
anything else is answered with an error and the connection closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from edge_agent.errors import ConfigError

log = logging.getLogger(__name__)

MAX_REQUEST = 4096
MAX_RESPONSE = 4 * 1024 * 1024
REQUEST_TIMEOUT_S = 5.0
MAX_CLIENTS = 8
OPS = ("status", "ping")

StatusProvider = Callable[[], Awaitable[dict[str, Any]]]


class NoAgent(ConnectionError):
    """No agent answers on the control socket (the CLI's exit 3); the message says where it looked."""


class ControlServer:
    """``async with ControlServer(path, status)``: serve status requests until closed (safe twice)."""

    def __init__(self, path: Path, status: StatusProvider) -> None:
        self.path = path
        self.status = status
        self.counters: Counter[str] = Counter()
        self._server: asyncio.Server | None = None
        self._clients = asyncio.Semaphore(MAX_CLIENTS)
        self._handlers: set[asyncio.Task[Any]] = set()

    async def __aenter__(self) -> ControlServer:
        if self.path.exists() or self.path.is_symlink():
            if await _answers(self.path):
                raise ConfigError(f"control.socket: another agent already answers on {self.path}")
            self.path.unlink()  # a stale socket left by a killed agent
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._server = await asyncio.start_unix_server(
                self._serve, path=str(self.path), limit=MAX_REQUEST
            )
            os.chmod(self.path, 0o660)
        except OSError as exc:
            raise ConfigError(f"control.socket: cannot listen on {self.path}: {exc}") from None
        log.info("control socket listening on %s", self.path)
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._server is None:
            return
        self._server.close()
        for task in list(self._handlers):
            task.cancel()
        await asyncio.gather(*self._handlers, return_exceptions=True)
        await self._server.wait_closed()
        self._server = None
        with contextlib.suppress(OSError):
            self.path.unlink()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._handlers.add(task)
            task.add_done_callback(self._handlers.discard)
        try:
            if self._clients.locked():
                self.counters["busy"] += 1
                await _send(writer, {"ok": False, "error": "busy: too many clients at once"})
                return
            async with self._clients:
                await _send(writer, await self._answer(reader))
        except (OSError, asyncio.IncompleteReadError):
            self.counters["client_errors"] += 1
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()

    async def _answer(self, reader: asyncio.StreamReader) -> dict[str, Any]:
        try:
            line = await asyncio.wait_for(reader.readline(), REQUEST_TIMEOUT_S)
        except TimeoutError:
            self.counters["timeouts"] += 1
            return {"ok": False, "error": f"no request line within {REQUEST_TIMEOUT_S:g} s"}
        except ValueError:  # longer than the stream limit
            self.counters["bad_requests"] += 1
            return {"ok": False, "error": f"request longer than {MAX_REQUEST} bytes"}
        try:
            request = json.loads(line)
        except (UnicodeDecodeError, json.JSONDecodeError):
            request = None
        op = request.get("op") if isinstance(request, dict) else None
        if op not in OPS:
            self.counters["bad_requests"] += 1
            return {
                "ok": False,
                "error": f'a request is one JSON line {{"op": ...}} with op one of {list(OPS)}',
            }
        self.counters[f"op:{op}"] += 1
        if op == "ping":
            return {"ok": True}
        try:
            return {"ok": True, "status": await self.status()}
        except Exception as exc:
            log.exception("control: building the status report failed")
            return {"ok": False, "error": f"status failed: {type(exc).__name__}: {exc}"}


async def _send(writer: asyncio.StreamWriter, reply: dict[str, Any]) -> None:
    writer.write(json.dumps(reply, default=str, separators=(",", ":")).encode() + b"\n")
    await writer.drain()


async def _answers(path: Path) -> bool:
    try:
        await request(path, "ping", timeout_s=1.0)
    except NoAgent:
        return False
    return True


async def request(path: Path, op: str, *, timeout_s: float = REQUEST_TIMEOUT_S) -> dict[str, Any]:
    """Ask the agent listening on ``path``; raise :class:`NoAgent` saying where it looked and why."""
    try:
        reader, writer = await asyncio.wait_for(
            asyncio.open_unix_connection(str(path), limit=MAX_RESPONSE), timeout_s
        )
    except FileNotFoundError:
        raise NoAgent(f"no agent running: no control socket at {path}") from None
    except ConnectionRefusedError:
        raise NoAgent(f"no agent running: nothing listens on {path} (a stale socket)") from None
    except PermissionError:
        raise NoAgent(
            f"cannot ask the agent: permission denied on {path} (be in the service's group)"
        ) from None
    except (OSError, TimeoutError) as exc:
        raise NoAgent(f"no agent answers on {path}: {exc or 'timed out'}") from None
    try:
        writer.write(json.dumps({"op": op}).encode() + b"\n")
        await writer.drain()
        line = await asyncio.wait_for(reader.readline(), timeout_s)
    except (OSError, TimeoutError, ValueError) as exc:
        raise NoAgent(f"the agent on {path} did not answer: {exc or 'timed out'}") from None
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
    try:
        reply = json.loads(line)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise NoAgent(f"the agent on {path} gave an unreadable answer") from None
    if not isinstance(reply, dict):
        raise NoAgent(f"the agent on {path} gave an unreadable answer")
    return reply


def agent_answers(path: Path) -> bool:
    """Synchronously: does a running agent answer on ``path``? (for diag commands that must not clash)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(1.0)
        try:
            sock.connect(str(path))
            sock.sendall(b'{"op": "ping"}\n')
            return b'"ok":true' in sock.recv(256)
        except OSError:
            return False
