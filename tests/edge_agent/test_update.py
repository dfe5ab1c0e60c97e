"""``edge-agent update``: verified files installed beside the previous one, rolled back when the agent fails.

The service manager boundary is played by the update command itself (``--manager child``): it runs the
real ``edge-agent run`` as a child with ``$NOTIFY_SOCKET`` on a socket it listens on, exactly the
datagram systemd waits for (``READY=1``). Production restarts through ``systemctl`` instead, which
cannot run here (no systemd as PID 1). Each test runs the real CLI as a process on real files.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import sqlite3
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from edge_agent.config import parse_config
from edge_agent.update import UpdateRefused, install, restore, verify_model

REPO = Path(__file__).resolve().parents[2]
MODEL = REPO / "models" / "plate_ocr.tflite"
pytestmark = pytest.mark.timeout(120)


def lane_toml(tmp_path: Path, *, extra: str = "", updates: str = "", ready_s: int = 45) -> str:
    """The demo lane on files under ``tmp_path`` (no devices needed to become READY)."""
    key = tmp_path / "central.key"
    if not key.exists():
        key.write_bytes(os.urandom(32))
    text = (REPO / "config" / "demo.toml").read_text()
    text = text.replace('path = "var/demo/lane.sqlite3"', f'path = "{tmp_path / "lane.sqlite3"}"')
    text = text.replace('secret_file = "var/demo/central.key"', f'secret_file = "{key}"')
    return text + extra + f"\n[updates]\nready_timeout_s = {ready_s}\nsettle_s = 1\n{updates}"


def update(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "edge_agent.cli", "update", *args, "--manager", "child"],
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )


def update_events(store: Path) -> list[dict[str, object]]:
    with sqlite3.connect(store) as conn:
        rows = conn.execute("SELECT payload FROM outbox WHERE kind = 'event'").fetchall()
    events = [json.loads(r[0]) for r in rows]
    return [e["data"] for e in events if e["type"] == "lane.update"]


@pytest.fixture
def current(tmp_path: Path) -> Path:
    cfg = tmp_path / "lane.toml"
    cfg.write_text(lane_toml(tmp_path))
    cfg.chmod(0o640)
    return cfg


def test_a_good_config_is_installed_beside_the_previous_one(tmp_path: Path, current: Path) -> None:
    old = current.read_text()
    new = tmp_path / "new.toml"
    new.write_text(lane_toml(tmp_path, extra="\n[retention]\ndays = 7\n"))
    sha = hashlib.sha256(new.read_bytes()).hexdigest()
    done = update("config", str(new), "--config", str(current), "--sha256", sha)
    assert done.returncode == 0, done.stderr
    assert "ready and running" in done.stdout
    assert current.read_text() == new.read_text()
    assert current.with_name("lane.toml.prev").read_text() == old
    assert stat.S_IMODE(current.stat().st_mode) == 0o640, "the config keeps its mode"
    (event,) = update_events(tmp_path / "lane.sqlite3")
    assert (event["outcome"], event["sha256"], event["what"]) == ("applied", sha, "config")


def test_a_config_that_never_says_ready_is_rolled_back(tmp_path: Path, current: Path) -> None:
    current.write_text(lane_toml(tmp_path, ready_s=15))  # the installed config's bound governs
    old = current.read_text()
    new = tmp_path / "new.toml"
    new.write_text(lane_toml(tmp_path, extra="\n[signal.watchdog]\nsystemd = false\n"))  # valid, silent
    done = update("config", str(new), "--config", str(current))
    assert done.returncode == 1
    assert "not ready within 15 s" in done.stderr and "rolled back" in done.stderr
    assert "the previous version is running" in done.stderr
    assert current.read_text() == old
    (event,) = update_events(tmp_path / "lane.sqlite3")
    assert (event["outcome"], event["previous_ready"]) == ("rolled_back", True)


def test_a_config_whose_agent_exits_is_rolled_back(tmp_path: Path, current: Path) -> None:
    old = current.read_text()
    junk = tmp_path / "junk.sqlite3"
    junk.write_bytes(b"this is not a database" * 100)
    new = tmp_path / "new.toml"
    new.write_text(lane_toml(tmp_path).replace(str(tmp_path / "lane.sqlite3"), str(junk)))
    done = update("config", str(new), "--config", str(current))
    assert done.returncode == 1
    assert "exited with status 1 before READY" in done.stderr
    assert current.read_text() == old
    assert [e["outcome"] for e in update_events(tmp_path / "lane.sqlite3")] == ["rolled_back"]


@pytest.mark.parametrize(
    ("content", "extra_args", "reason"),
    [
        ("site_id = 'X'\n[devices.rfid]\nbackend = 'r3000'\n", [], "unknown backend"),
        ("binary", [], "not UTF-8"),
        (None, ["--sha256", "0" * 64], "expected 0000"),
    ],
    ids=["invalid", "binary", "digest"],
)
def test_a_bad_config_is_refused_and_nothing_changes(
    tmp_path: Path, current: Path, content: str | None, extra_args: list[str], reason: str
) -> None:
    old = current.read_bytes()
    new = tmp_path / "new.toml"
    if content is None:
        new.write_text(lane_toml(tmp_path))
    elif content == "binary":
        new.write_bytes(b"\xff\xfe\x00 not text")
    else:
        new.write_text(content)
    done = update("config", str(new), "--config", str(current), *extra_args)
    assert done.returncode == 2
    assert "update refused" in done.stderr and reason in done.stderr, done.stderr
    assert current.read_bytes() == old
    assert not current.with_name("lane.toml.prev").exists()


def test_with_a_release_key_only_a_signed_config_is_installed(tmp_path: Path) -> None:
    signer = Ed25519PrivateKey.generate()
    pub = tmp_path / "release.pub"
    pub.write_bytes(
        signer.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    current = tmp_path / "lane.toml"
    current.write_text(lane_toml(tmp_path, updates=f'release_key_file = "{pub}"\n'))
    new = tmp_path / "new.toml"
    new.write_text(lane_toml(tmp_path, extra="\n[retention]\ndays = 3\n"))
    sig = new.with_name("new.toml.sig")

    done = update("config", str(new), "--config", str(current))
    assert done.returncode == 2 and "signature" in done.stderr and "No such file" in done.stderr
    sig.write_bytes(base64.b64encode(Ed25519PrivateKey.generate().sign(new.read_bytes())))
    done = update("config", str(new), "--config", str(current))
    assert done.returncode == 2 and "does not verify" in done.stderr
    sig.write_bytes(base64.b64encode(signer.sign(new.read_bytes())))
    done = update("config", str(new), "--config", str(current))
    assert done.returncode == 0, done.stderr
    assert "days = 3" in current.read_text()
    (event,) = update_events(tmp_path / "lane.sqlite3")
    assert event["signed"] is True


def test_a_model_is_checked_against_its_card_and_installed_atomically(tmp_path: Path, current: Path) -> None:
    cfg = parse_config(current.read_text())
    model = tmp_path / "plate_ocr.tflite"
    model.write_bytes(MODEL.read_bytes())
    card = tmp_path / "plate_ocr.md"
    sha = hashlib.sha256(model.read_bytes()).hexdigest()
    card.write_text(f"# Model card\n\n| | |\n|---|---|\n| SHA-256 | `{sha}` |\n")
    verified = verify_model(cfg, model, None)
    assert verified.sha256 == sha and verified.signed is False

    card.write_text(f"| SHA-256 | `{'ab' * 32}` |\n")
    with pytest.raises(UpdateRefused, match="SHA-256 is"):
        verify_model(cfg, model, None)
    card.write_text("no digest here\n")
    with pytest.raises(UpdateRefused, match="exactly one"):
        verify_model(cfg, model, None)
    junk = tmp_path / "junk.tflite"
    junk.write_bytes(b"\x00" * 64)
    with pytest.raises(UpdateRefused, match="TFL3"):
        verify_model(cfg, junk, card)

    dest = tmp_path / "installed" / "plate_ocr.tflite"
    dest.parent.mkdir()
    dest.write_bytes(b"old model")
    prev = install(dest, verified.data)
    assert dest.read_bytes() == MODEL.read_bytes() and prev is not None and prev.read_bytes() == b"old model"
    assert sorted(p.name for p in dest.parent.iterdir()) == ["plate_ocr.tflite", "plate_ocr.tflite.prev"]
    restore(dest, prev)
    assert dest.read_bytes() == b"old model"
