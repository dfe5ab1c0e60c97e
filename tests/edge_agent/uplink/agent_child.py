"""A lane agent's store and uplink in a child process, for crash tests (SIGKILL from outside or self).

    python -m tests.edge_agent.uplink.agent_child DB URL MODE START COUNT

MODE ``burst``: connect, commit passages START..START+COUNT-1 one transaction each (printing
``committed i`` after each commit), then wait until the outbox is drained and print ``drained``.
MODE ``commit_then_die``: commit the passages with no uplink running, then SIGKILL itself: the
crash between commit and publish.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

from tests.edge_agent.uplink.agent import agent, commit_passages, mqtt_cfg, passage


async def main(db: Path, url: str, mode: str, start: int, count: int) -> None:
    # Paced below the commit rate so that a kill finds a backlog and messages in flight.
    cfg = mqtt_cfg(url, inflight=10, replay_rate_per_s=150, replay_burst=10)
    async with agent(db, cfg, start=mode == "burst") as up:
        if mode == "burst":
            if not await up.wait_connected(10):
                raise SystemExit("not connected")
            print("connected", flush=True)
        for i in range(start, start + count):
            await commit_passages(up.store, up.outbox, up.topic("passage"), [passage(i)])
            up.kick()
            print(f"committed {i}", flush=True)
            await asyncio.sleep(0)  # let the drainer run between commits
        if mode == "commit_then_die":
            os.kill(os.getpid(), signal.SIGKILL)
        if not await up.wait_drained(20):
            raise SystemExit("not drained")
        print("drained", flush=True)


if __name__ == "__main__":
    db, url, mode, start, count = sys.argv[1:6]
    asyncio.run(main(Path(db), url, mode, int(start), int(count)))
