"""Command capacity under junk: signed overrides answered while the command topic is flooded.

    .venv/bin/python -m bench.command_bench [--seconds 5] [--valid-rate 5] [--junk 0,500,2000,5000] [--json]

A real Mosquitto on a free loopback port; the lane's real uplink (store, outbox, replay log on disk,
HMAC verifier, the override handler on a simulated signal). One client floods the command topic with
junk (not JSON, forged signatures, wrong shapes; QoS 1) at each rate; another sends validly signed
``signal.override`` commands (hold / release, alternating) at ``--valid-rate`` per second and times
each until its response arrives. Printed per junk rate: junk offered and received per second, the
share of valid commands answered, and their answer latency (p50, p99, max). The peer figure is the
same run with no junk (the first row): the ratio says what the flood costs a valid command.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import secrets
import statistics
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from drivers.gpio.sim import SimGpio
from edge_agent.auth import CommandVerifier
from edge_agent.clock import SystemClock
from edge_agent.config.commands import CommandsConfig
from edge_agent.config.signal import SignalConfig
from edge_agent.override import OverrideHandler
from edge_agent.replay import ReplayLog
from edge_agent.signal import TrafficSignal
from edge_agent.store.db import Store
from edge_agent.store.outbox import Outbox
from edge_agent.uplink import Uplink
from hw_sim.central import signed_command
from tests.edge_agent.uplink.agent import LANE, SITE, mqtt_cfg, storage_cfg
from tests.mosquitto import Mosquitto

BASE = f"lanes/{SITE}/{LANE}"
KEY = hashlib.sha256(b"bench officer key").digest()


def signed(action: str) -> dict[str, Any]:
    body = {"action": action, "reason": "bench"}
    who = {"role": "officer", "issuer": "officer-1"}
    return signed_command("signal.override", body, key_id="officer", key=KEY, **who)


def junk_messages() -> list[bytes]:
    forged = signed("open")
    forged["auth"] = {"alg": "hmac-sha256", "key_id": "officer", "sig": "AAAA"}
    return [
        b"{not json",
        json.dumps(forged).encode(),
        json.dumps({"schema": "lane.command/1", "command_id": "x"}).encode(),
        b"[" * 2000,
        b"y" * 4000,
    ]


class Client:
    """A paho client on its own thread; records when each response (by command_id) arrives."""

    def __init__(self, url_port: int, name: str, subscribe: bool) -> None:
        self.answers: dict[str, float] = {}
        self._lock = threading.Lock()
        self._ready = threading.Event()
        self.c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"{name}-{secrets.token_hex(3)}")
        self.c.max_inflight_messages_set(1000)
        self.c.max_queued_messages_set(0)
        if subscribe:
            self.c.on_connect = lambda cl, *_: cl.subscribe(BASE + "/command/response", qos=1)
            self.c.on_subscribe = lambda *_: self._ready.set()
            self.c.on_message = self._on_message
        else:
            self.c.on_connect = lambda *_: self._ready.set()
        self.c.connect("127.0.0.1", url_port)
        self.c.loop_start()
        if not self._ready.wait(10):
            raise TimeoutError(f"{name} did not connect")

    def _on_message(self, _c: Any, _u: Any, msg: mqtt.MQTTMessage) -> None:
        cid = json.loads(msg.payload).get("command_id")
        with self._lock:
            if cid and cid not in self.answers:
                self.answers[str(cid)] = time.monotonic()

    def stop(self) -> None:
        self.c.disconnect()
        self.c.loop_stop()


def flood(client: Client, rate: float, seconds: float, stop: threading.Event) -> int:
    msgs = junk_messages()
    sent, start = 0, time.monotonic()
    while not stop.is_set() and time.monotonic() - start < seconds:
        due = int((time.monotonic() - start) * rate)
        while sent < due:
            client.c.publish(BASE + "/command", msgs[sent % len(msgs)], qos=1)
            sent += 1
        time.sleep(0.002)
    return sent


async def one_rate(
    port: int, uplink: Uplink, junk_rate: float, valid_rate: float, seconds: float
) -> dict[str, Any]:
    central = Client(port, "central", subscribe=True)
    attacker = Client(port, "attacker", subscribe=False)
    before = dict(uplink.commands.counters)
    unanswered0 = uplink.counters["commands_unanswered"]
    stop = threading.Event()
    flooder = asyncio.get_running_loop().run_in_executor(None, flood, attacker, junk_rate, seconds, stop)
    sent: dict[str, float] = {}
    t0 = time.monotonic()
    i = 0
    while time.monotonic() - t0 < seconds:
        cmd = signed("hold" if i % 2 == 0 else "release")
        sent[str(cmd["command_id"])] = time.monotonic()
        central.c.publish(BASE + "/command", json.dumps(cmd), qos=1)
        i += 1
        await asyncio.sleep(1.0 / valid_rate)
    junk_sent = await flooder
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and len(set(sent) & set(central.answers)) < len(sent):  # noqa: ASYNC110
        await asyncio.sleep(0.05)  # the answers arrive on paho's thread
    lat = sorted((central.answers[c] - t) * 1000 for c, t in sent.items() if c in central.answers)
    after = uplink.commands.counters
    rejected = after["rejected"] - before.get("rejected", 0)
    central.stop()
    attacker.stop()
    return {
        "junk_offered_per_s": round(junk_sent / seconds, 1),
        "junk_received_per_s": round(rejected / seconds, 1),
        "junk_answered": rejected - (uplink.counters["commands_unanswered"] - unanswered0),
        "valid_sent": len(sent),
        "valid_answered": len(lat),
        "latency_ms": {
            "p50": round(statistics.median(lat), 1) if lat else None,
            "p99": round(lat[min(len(lat) - 1, int(len(lat) * 0.99))], 1) if lat else None,
            "max": round(lat[-1], 1) if lat else None,
        },
    }


async def main_async(args: argparse.Namespace) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        broker = Mosquitto(work / "broker")
        broker.start()
        key_file = work / "officer.key"
        key_file.write_bytes(KEY)
        commands = CommandsConfig.model_validate(
            {
                "keys": {
                    "officer": {
                        "alg": "hmac-sha256",
                        "secret_file": str(key_file),
                        "roles": ["officer"],
                        "commands": ["signal.override"],
                    }
                }
            }
        )
        try:
            async with Store(storage_cfg(work / "lane.sqlite3")) as store, Outbox(store) as outbox:
                verifier = CommandVerifier(commands, SystemClock())
                replay = ReplayLog(store, verifier)
                await replay.open()
                uplink = Uplink(
                    mqtt_cfg(broker.url),
                    site_id=SITE,
                    lane_id=LANE,
                    store=store,
                    outbox=outbox,
                    verifier=verifier,
                    clock=SystemClock(),
                    replay_log=replay,
                )
                async with TrafficSignal(SignalConfig(), SimGpio(), SystemClock()) as signal, uplink:
                    handler = OverrideHandler(signal, is_open=lambda _pid: False)
                    uplink.register_command("signal.override", handler.handle)
                    if not await uplink.wait_connected(10):
                        raise TimeoutError("uplink did not connect")
                    for rate in args.junk:
                        row = await one_rate(broker.port, uplink, rate, args.valid_rate, args.seconds)
                        rows.append(row)
                        if not args.json:
                            lat = row["latency_ms"]
                            print(
                                f"junk {row['junk_offered_per_s']:>7.0f}/s offered, "
                                f"{row['junk_received_per_s']:>7.0f}/s screened, "
                                f"{row['junk_answered']:>5} answered | valid "
                                f"{row['valid_answered']}/{row['valid_sent']} answered, "
                                f"p50 {lat['p50']} ms, p99 {lat['p99']} ms, max {lat['max']} ms",
                                flush=True,
                            )
        finally:
            broker.stop()
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--valid-rate", type=float, default=5.0)
    ap.add_argument("--junk", type=lambda s: [float(x) for x in s.split(",")], default=[0, 500, 2000, 5000])
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    rows = asyncio.run(main_async(args))
    base = rows[0]["latency_ms"]["p50"] if rows and rows[0]["latency_ms"]["p50"] else None
    for row in rows:
        p50 = row["latency_ms"]["p50"]
        row["p50_vs_no_junk"] = round(p50 / base, 2) if base and p50 else None
    if args.json:
        print(json.dumps(rows))
    else:
        print("p50 latency vs no junk: " + ", ".join(f"{r['p50_vs_no_junk']}x" for r in rows))


if __name__ == "__main__":
    main()
