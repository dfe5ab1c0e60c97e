"""Uplink benchmark against a real Mosquitto started on a free loopback port.

    .venv/bin/python -m bench.uplink_bench [--passages 2000] [--backlog 10000] [--json]

1. Sustained passages/s: each passage committed in its own transaction (as the journal does,
   synchronous=FULL), drained from the outbox with QoS 1 (in-flight window 20, unpaced), counted
   when a subscriber ("central") has received it.
2. Bare paho: the same payloads published QoS 1 by one paho client (max in-flight 20), counted the
   same way. The ratio says what durability costs.
3. Backlog drain: 10,000 passages already in the outbox when the uplink starts (unpaced; with
   pacing on, drain time is backlog / replay_rate_per_s by design).
4. SD-card wear: bytes the process wrote to files per passage (``/proc/self/io`` ``wchar``: SQLite's
   WAL appends and checkpoints; socket sends are not counted) and the block-layer ``write_bytes``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

from edge_agent.store import Priority
from edge_agent.uplink.messages import encode
from tests.edge_agent.uplink.agent import LANE, SITE, agent, commit_passages, mqtt_cfg, passage
from tests.mosquitto import Central, Mosquitto

TOPIC = f"lanes/{SITE}/{LANE}/passage"


def proc_io() -> dict[str, int]:
    """This process's I/O counters (all threads)."""
    out: dict[str, int] = {}
    for line in Path("/proc/self/io").read_text().splitlines():
        key, _, value = line.partition(":")
        out[key.strip()] = int(value)
    return out


def count(c: Central, topic: str) -> int:
    with c._lock:
        return sum(1 for m in c.messages if m.topic == topic)


async def wait_count(c: Central, topic: str, n: int, limit_s: float = 300) -> None:
    deadline = time.monotonic() + limit_s
    while count(c, topic) < n:
        if time.monotonic() > deadline:
            raise TimeoutError(f"{count(c, topic)}/{n} received")
        await asyncio.sleep(0.005)


async def sustained(broker: Mosquitto, c: Central, work: Path, n: int) -> dict[str, Any]:
    payloads = [passage(i) for i in range(n)]
    async with agent(work / "sustained.sqlite3", mqtt_cfg(broker.url, inflight=20)) as up:
        assert await up.wait_connected(10)
        base = count(c, TOPIC)
        io0 = proc_io()
        t0 = time.perf_counter()
        for p in payloads:
            await commit_passages(up.store, up.outbox, TOPIC, [p])
            up.kick()
        t_committed = time.perf_counter()
        await wait_count(c, TOPIC, base + n)
        t1 = time.perf_counter()
        assert await up.wait_drained(30)
        io1 = proc_io()
        size = up.store.file_bytes()
    return {
        "passages": n,
        "seconds": round(t1 - t0, 3),
        "passages_per_s": round(n / (t1 - t0), 1),
        "commit_only_per_s": round(n / (t_committed - t0), 1),
        "payload_bytes": len(encode(payloads[0])),
        "wchar_per_passage": round((io1["wchar"] - io0["wchar"]) / n),
        "write_bytes_per_passage": round((io1["write_bytes"] - io0["write_bytes"]) / n),
        "file_bytes_after": size,
    }


def bare_paho(broker: Mosquitto, c: Central, n: int) -> dict[str, Any]:
    payloads = [encode(passage(i)) for i in range(n)]
    done = threading.Event()
    acked = 0
    lock = threading.Lock()

    def on_publish(client: mqtt.Client, userdata: Any, mid: int, rc: Any, props: Any) -> None:
        nonlocal acked
        with lock:
            acked += 1
            if acked == n:
                done.set()

    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bare", protocol=MQTTProtocolVersion.MQTTv311)
    client.max_inflight_messages_set(20)
    client.max_queued_messages_set(0)
    client.on_publish = on_publish
    client.connect("127.0.0.1", broker.port, 30)
    client.loop_start()
    base = count(c, TOPIC)
    t0 = time.perf_counter()
    for body in payloads:
        client.publish(TOPIC, body, qos=1)
    done.wait(300)
    t_acked = time.perf_counter()
    asyncio.run(wait_count(c, TOPIC, base + n))
    t1 = time.perf_counter()
    client.disconnect()
    client.loop_stop()
    return {
        "passages": n,
        "seconds": round(t1 - t0, 3),
        "passages_per_s": round(n / (t1 - t0), 1),
        "all_acked_s": round(t_acked - t0, 3),
    }


async def backlog(broker: Mosquitto, c: Central, work: Path, n: int) -> dict[str, Any]:
    db = work / "backlog.sqlite3"
    async with agent(db, mqtt_cfg(broker.url, inflight=20), start=False) as up:
        rows = [passage(i) for i in range(n)]
        for i in range(0, n, 500):

            def fill(conn: Any, chunk: list[dict[str, Any]] = rows[i : i + 500]) -> None:
                for p in chunk:
                    up.outbox.enqueue(
                        conn,
                        msg_id=p["passage_id"],
                        topic=TOPIC,
                        payload=encode(p),
                        priority=Priority.DECISION,
                        kind="passage",
                    )

            await up.store.write(fill)
        base = count(c, TOPIC)
        t0 = time.perf_counter()
        await up.start()
        await wait_count(c, TOPIC, base + n)
        t1 = time.perf_counter()
        assert await up.wait_drained(60)
        t2 = time.perf_counter()
    return {
        "passages": n,
        "all_received_s": round(t1 - t0, 3),
        "outbox_empty_s": round(t2 - t0, 3),
        "passages_per_s": round(n / (t1 - t0), 1),
        "paced_default_s": n / 200.0,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--passages", type=int, default=2000)
    ap.add_argument("--backlog", type=int, default=10_000)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="uplink-bench-") as tmp:
        work = Path(tmp)
        broker = Mosquitto(work / "broker")
        broker.start()
        c = Central(broker, (TOPIC,)).start()
        try:
            a = asyncio.run(sustained(broker, c, work, args.passages))
            b = bare_paho(broker, c, args.passages)
            d = asyncio.run(backlog(broker, c, work, args.backlog))
        finally:
            c.stop()
            broker.stop()
    result = {
        "sustained_outbox": a,
        "bare_paho_qos1": b,
        "ratio_outbox_vs_bare": round(a["passages_per_s"] / b["passages_per_s"], 3),
        "backlog_drain": d,
    }
    if args.json:
        print(json.dumps(result))
        return
    print(
        f"outbox -> mosquitto : {a['passages_per_s']:>8.1f} passages/s ({a['passages']} in {a['seconds']} s)"
    )
    print(f"  commit only       : {a['commit_only_per_s']:>8.1f} passages/s (synchronous=FULL, one txn each)")
    print(f"bare paho QoS 1     : {b['passages_per_s']:>8.1f} passages/s")
    print(f"ratio               : {result['ratio_outbox_vs_bare']}")
    print(
        f"backlog of {d['passages']}: received in {d['all_received_s']} s, empty in {d['outbox_empty_s']} s"
    )
    print(
        f"disk writes/passage : {a['wchar_per_passage']} B written to files (wchar), "
        f"{a['write_bytes_per_passage']} B at the block layer; payload {a['payload_bytes']} B"
    )


if __name__ == "__main__":
    main()
