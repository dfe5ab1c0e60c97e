"""``edge-agent demo`` as a user runs it: bounded options, one-line errors, a workdir to point tools at,
and the truth under a broker outage (issue #12 items 5 and 6)."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from edge_agent.config import parse_config
from tests.mosquitto import Mosquitto, free_port

pytestmark = pytest.mark.timeout(180)


def demo(*args: str, timeout: float = 150) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "edge_agent.cli", "demo", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@pytest.mark.parametrize(
    ("args", "code", "says"),
    [
        (("--speedup", "1000"), 2, "--speedup 1000: choose 1 to"),
        (("--speedup", "0"), 2, "--speedup 0: choose 1 to"),
        (("--mqtt-url", "ftp://x"), 2, "give mqtt://host:port"),
        (("--trucks", "0"), 2, "--trucks 0"),
    ],
)
def test_user_errors_are_one_clear_line(args: tuple[str, ...], code: int, says: str) -> None:
    done = demo(*args, timeout=60)
    assert done.returncode == code
    assert says in done.stderr and "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def test_an_unreachable_broker_is_one_line_and_exit_1() -> None:
    done = demo("--mqtt-url", f"mqtt://127.0.0.1:{free_port()}", "--trucks", "2", timeout=90)
    assert done.returncode == 1
    assert "cannot reach the MQTT broker" in done.stderr and "Traceback" not in done.stderr


def test_the_workdir_keeps_the_config_the_agent_ran(tmp_path: Path) -> None:
    done = demo("--trucks", "3", "--workdir", str(tmp_path), "--json", "--speedup", "10")
    assert done.returncode == 0, done.stderr[-2000:]
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    cfg = parse_config((tmp_path / "lane.toml").read_text(), str(tmp_path / "lane.toml"))
    assert cfg.storage.path == tmp_path / "lane.sqlite3" and cfg.simulation
    listed = subprocess.run(
        [
            sys.executable,
            "-m",
            "edge_agent.cli",
            "passages",
            "--config",
            str(tmp_path / "lane.toml"),
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert listed.returncode == 0, listed.stderr
    assert len(listed.stdout.splitlines()) == summary["passages"] == 3


def test_a_broker_outage_does_not_make_the_demo_lie(mosquitto: Mosquitto) -> None:
    """The broker goes away for 8 s mid-run: central's persistent session gets every passage after."""

    def outage() -> None:
        time.sleep(10.0)
        mosquitto.stop()
        time.sleep(8.0)
        mosquitto.start()

    cut = threading.Thread(target=outage)
    cut.start()
    try:
        done = demo("--trucks", "20", "--mqtt-url", mosquitto.url, "--json", "--speedup", "10")
    finally:
        cut.join()
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    # the point: central's persistent session got every passage the lane sent across the outage (the
    # decisions themselves are the e2e test's; on a loaded machine one may be judged on a late read)
    assert summary["confirmed"] == summary["passages"] == 20, json.dumps(summary)
    assert summary["outbox_drained"] is True, json.dumps(summary)
