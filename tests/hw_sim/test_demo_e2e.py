"""End to end: a seeded scenario through the wire-level simulators, the real agent and a real Mosquitto."""

from __future__ import annotations

import asyncio
import io
import json
import subprocess
import sys
from pathlib import Path

from edge_agent.schemas import validate
from lane_demo.demo import DemoOptions, play
from tests.mosquitto import Mosquitto


def test_every_passage_arrives_once_with_the_intended_decision(mosquitto: Mosquitto, tmp_path: Path) -> None:
    opts = DemoOptions(trucks=14, seed=7, mqtt_url=mosquitto.url, speedup=10.0, workdir=tmp_path)
    run = asyncio.run(play(opts, io.StringIO()))

    trucks = run.scenario.trucks
    assert len(run.outcomes) == len(trucks)
    for truck, outcome in zip(trucks, run.outcomes, strict=True):
        got = outcome.payload
        assert got["decision"] == truck.expected, (truck.case, got["reasons"])
        assert truck.expected_reasons <= set(got["reasons"]), (truck.case, got["reasons"])
        # green is shown for exactly the releases
        assert outcome.green == (truck.expected == "release")

    central = run.central
    ids = [o.payload["passage_id"] for o in run.outcomes]
    assert len(set(ids)) == len(ids)
    assert set(central.passages) == set(ids)
    assert all(central.deliveries[i] == 1 for i in ids)  # a healthy link: exactly once
    for truck, pid in zip(trucks, ids, strict=True):
        received = central.passages[pid]
        validate("passage", received)
        assert received["decision"] == truck.expected
    assert central.bad_payloads == 0
    assert run.agent_health["signal"]["aspect"] in ("red", "amber")

    # the plates were read from rendered pixels by the shipped model, voted across frames
    front = next(d for d in run.agent_health["devices"] if d["name"] == "front")
    assert front["counters"]["frames_read"] >= len(trucks)
    legible = [(t, o) for t, o in zip(trucks, run.outcomes, strict=True) if t.plate_legible]
    read_right = sum(o.payload["vehicle"]["plate"] == t.plate for t, o in legible)
    assert read_right >= 0.9 * len(legible)
    assert all(o.payload["plate_vote"]["frames"] >= 1 for _, o in legible)
    lane_counts = run.agent_health["lane"]
    votes = [o.payload["plate_vote"] for o in run.outcomes]
    assert lane_counts["plate_frames_accepted"] == sum(v["accepted"] for v in votes)  # in health, per lane
    assert lane_counts.get("plate_frames_rejected", 0) == sum(v["rejected"] for v in votes)
    # one evidence image per passage that had plate frames, after the passages
    assert central.messages["evidence"] == sum(1 for o in run.outcomes if o.decided.passage.plates)


def test_demo_command_prints_a_json_summary_and_exits_zero(tmp_path: Path) -> None:
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "edge_agent.cli",
            "demo",
            "--trucks",
            "6",
            "--seed",
            "3",
            "--json",
            "--workdir",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    assert summary["passages"] == 6 and summary["agree"] == 6 and summary["confirmed"] == 6
    assert summary["released"] + summary["referred"] == 6
    assert set(summary["latency_ms"]) >= {"p50", "p99"}
