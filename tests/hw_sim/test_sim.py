"""``edge-agent sim`` + ``edge-agent run`` as two processes, exactly as a lane runs (issue #12 items 5, 8).

The shipped ``config/demo.toml``, moved to free ports and a temporary directory: the simulator serves
the hardware and central, the agent runs as its own process, the technician's ``status`` sees it
healthy, then degraded when the simulated hardware goes away, then no agent at all.
"""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from pathlib import Path

import pytest

from tests.mosquitto import Mosquitto, free_port

pytestmark = pytest.mark.timeout(240)
ROOT = Path(__file__).resolve().parents[2]


def moved_demo_config(tmp_path: Path, broker: str) -> Path:
    text = (ROOT / "config" / "demo.toml").read_text()
    for old, new in (
        ("/tmp/edge-demo", str(tmp_path / "hw")),
        ("var/demo", str(tmp_path / "state")),
        ("mqtt://127.0.0.1:1883", broker),
        ("tcp://127.0.0.1:5020", f"tcp://127.0.0.1:{free_port()}"),
        ("tcp://127.0.0.1:5021", f"tcp://127.0.0.1:{free_port()}"),
    ):
        assert old in text
        text = text.replace(old, new)
    cfg = tmp_path / "lane.toml"
    cfg.write_text(text)
    return cfg


async def edge_agent(*args: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "edge_agent.cli",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


async def status(cfg: Path) -> tuple[int, dict[str, object]]:
    proc = await edge_agent("status", "--config", str(cfg), "--json")
    out, _ = await proc.communicate()
    assert proc.returncode is not None
    return proc.returncode, json.loads(out)


async def until_status(cfg: Path, want: int, limit_s: float = 30.0) -> dict[str, object]:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit_s
    while True:
        code, report = await status(cfg)
        if code == want:
            return report
        if loop.time() > deadline:
            pytest.fail(f"status {code}, wanted {want}: {json.dumps(report)[:2000]}")
        await asyncio.sleep(0.5)


def test_sim_and_run_as_two_processes(tmp_path: Path, mosquitto: Mosquitto) -> None:
    cfg = moved_demo_config(tmp_path, mosquitto.url)

    async def main() -> None:
        sim = await edge_agent("sim", "--config", str(cfg), "--trucks", "6", "--seed", "3")
        agent = None
        try:
            assert sim.stdout is not None
            lines: list[str] = []
            while not any(x.startswith("ready:") for x in lines):
                line = (await asyncio.wait_for(sim.stdout.readline(), 30)).decode()
                assert line, (await sim.stderr.read()).decode()[-2000:] if sim.stderr else "sim ended"
                lines.append(line)
            agent = await edge_agent("run", "--config", str(cfg))
            while not any("agree with ground truth" in x for x in lines):
                line = (await asyncio.wait_for(sim.stdout.readline(), 120)).decode()
                assert line, "".join(lines)
                lines.append(line)
            assert any(x.startswith("6/6 passages received, 6 agree") for x in lines), "".join(lines)
            report = await until_status(cfg, 0)
            assert report["health"] == "healthy" and report["simulation"] is True
            sim.send_signal(signal.SIGTERM)  # the simulated hardware goes away
            await asyncio.wait_for(sim.wait(), 20)
            report = await until_status(cfg, 1)
            devices = report["devices"]
            assert isinstance(devices, list) and any(d["state"] != "up" for d in devices)
            agent.send_signal(signal.SIGTERM)
            await asyncio.wait_for(agent.wait(), 20)
            code, report = await status(cfg)
            assert code == 3 and report["health"] == "no_agent"
        finally:
            for proc in (sim, agent):
                if proc is not None and proc.returncode is None:
                    proc.kill()
                    await proc.wait()

    asyncio.run(main())


def test_sim_refuses_what_it_cannot_serve_in_one_line(tmp_path: Path) -> None:
    import subprocess

    def sim(cfg: Path, *extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "edge_agent.cli", "sim", "--config", str(cfg), "--once", *extra],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    cfg = moved_demo_config(tmp_path, "mqtt://127.0.0.1:1")
    done = sim(cfg, "--speedup", "5")  # the agent would run this config at x20: the two must agree
    assert done.returncode == 2 and "time_scale" in done.stderr and "Traceback" not in done.stderr
    lane = tmp_path / "lane-not-simulated.toml"
    lane.write_text(cfg.read_text().replace("simulation = true", "simulation = false", 1))
    done = sim(lane)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "simulation" in done.stderr
