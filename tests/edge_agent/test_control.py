"""The control socket on a real Unix socket: read-only ops, bounded requests, clear refusals."""

from __future__ import annotations

import asyncio
import json
import stat
from pathlib import Path
from typing import Any

import pytest

from edge_agent.control import MAX_REQUEST, ControlServer, NoAgent, agent_answers, request
from edge_agent.errors import ConfigError


async def status() -> dict[str, Any]:
    return {"health": "healthy"}


async def raw(path: Path, data: bytes) -> dict[str, Any]:
    reader, writer = await asyncio.open_unix_connection(str(path))
    writer.write(data)
    await writer.drain()
    line = await asyncio.wait_for(reader.readline(), 10)
    writer.close()
    await writer.wait_closed()
    return dict(json.loads(line))


def test_status_and_ping_and_nothing_else(tmp_path: Path) -> None:
    sock = tmp_path / "run" / "control.sock"

    async def main() -> None:
        async with ControlServer(sock, status):
            assert stat.S_IMODE(sock.stat().st_mode) == 0o660
            assert await request(sock, "status") == {"ok": True, "status": {"health": "healthy"}}
            assert await request(sock, "ping") == {"ok": True}
            assert await asyncio.to_thread(agent_answers, sock)
            for bad in (b'{"op": "signal.override"}\n', b"not json\n", b"[1]\n"):
                reply = await raw(sock, bad)
                assert reply["ok"] is False and "op one of" in reply["error"]
            reply = await raw(sock, b"x" * (MAX_REQUEST + 10) + b"\n")
            assert reply["ok"] is False and "longer than" in reply["error"]
        assert not sock.exists()  # removed at stop

    asyncio.run(main())


def test_no_agent_says_where_it_looked(tmp_path: Path) -> None:
    with pytest.raises(NoAgent, match="no control socket at"):
        asyncio.run(request(tmp_path / "absent.sock", "status"))
    assert not agent_answers(tmp_path / "absent.sock")


def test_a_stale_socket_is_replaced_and_a_live_one_refused(tmp_path: Path) -> None:
    sock = tmp_path / "control.sock"

    async def main() -> None:
        async with ControlServer(sock, status):
            with pytest.raises(ConfigError, match="another agent already answers"):
                async with ControlServer(sock, status):
                    pass
        import socket

        stale = socket.socket(socket.AF_UNIX)
        stale.bind(str(sock))  # a socket file nobody listens on (a killed agent's)
        stale.close()
        async with ControlServer(sock, status):
            assert (await request(sock, "ping"))["ok"] is True

    asyncio.run(main())
