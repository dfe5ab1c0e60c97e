"""Checks a valid config's files before the lane starts: every secret, key, certificate, model and path.

Validators only validate (no I/O); this is the one place that looks at the filesystem before any
component starts. ``edge-agent run`` and ``edge-agent config check`` both run :func:`preflight` and stop
with exit 2 listing every problem as ``(dotted.key, reason)``, like a config error, instead of starting
a lane with no uplink, no command keys or a store it cannot write.

Relative secret paths (``mqtt.password_file``, ``commands.keys.*.secret_file``/``public_key_file``) are
looked up in ``$CREDENTIALS_DIRECTORY`` when it is set (systemd ``LoadCredential=``), as the uplink and
the command verifier read them. Serial ports and Modbus URLs are not checked here: a reader that is
unplugged at start is a device fault the lane reports and recovers from, not a config error.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from edge_agent.config import LaneConfig

Problem = tuple[str, str]


def preflight(cfg: LaneConfig, env: Mapping[str, str] | None = None) -> list[Problem]:
    """Every file problem of ``cfg`` (empty when the lane can start)."""
    env = os.environ if env is None else env
    creds = env.get("CREDENTIALS_DIRECTORY") or None
    out: list[Problem] = []
    mqtt = cfg.mqtt
    if mqtt.password_file is not None:
        out += _readable("mqtt.password_file", _credential(mqtt.password_file, creds))
    if mqtt.tls is not None:
        for name in ("ca_file", "cert_file", "key_file"):
            path: Path | None = getattr(mqtt.tls, name)
            if path is not None:
                # the client key may be a credential (relative: $CREDENTIALS_DIRECTORY), as the link reads it
                out += _readable(f"mqtt.tls.{name}", _credential(path, creds) if name == "key_file" else path)
    for key_id, key in cfg.commands.keys.items():
        for name in ("secret_file", "public_key_file"):
            path = getattr(key, name)
            if path is not None:
                out += _readable(f"commands.keys.{key_id}.{name}", _credential(path, creds))
    if cfg.signal.state_file is not None:
        out += _writable_file("signal.state_file", cfg.signal.state_file, create_dirs=False)
    out += _writable_file("storage.path", cfg.storage.path, create_dirs=True)
    rec = cfg.recognition
    if cfg.devices.cameras and rec.backend == "tflite":
        roles = {cam.role for cam in cfg.devices.cameras.values() if not getattr(cam, "read_labels", False)}
        for role in sorted(roles):
            out += _readable(f"recognition.{role}_model", getattr(rec, f"{role}_model"))
    return out


def _credential(path: Path, creds: str | None) -> Path:
    return Path(creds) / path if creds and not path.is_absolute() else path


def _readable(key: str, path: Path) -> list[Problem]:
    try:
        with path.open("rb") as fh:
            if not fh.read(1):
                return [(key, f"{path} is empty")]
    except IsADirectoryError:
        return [(key, f"{path} is a directory, not a file")]
    except OSError as exc:
        return [(key, f"cannot read {path}: {exc.strerror or exc}")]
    return []


def _writable_file(key: str, path: Path, *, create_dirs: bool) -> list[Problem]:
    """``path`` is (or can become) a file the agent writes: not a directory, and its directory writable.

    ``create_dirs``: missing directories are made at start (the store does), so the nearest existing
    one must be writable; otherwise the file's own directory must exist.
    """
    if path.is_dir():
        return [(key, f"{path} is a directory, not a file")]
    if path.exists() and not os.access(path, os.R_OK | os.W_OK):
        return [(key, f"{path} is not readable and writable by this user")]
    parent = path.parent  # written beside the file too (SQLite's journal, an atomic replace)
    if not create_dirs and not parent.is_dir():
        return [(key, f"directory {parent} does not exist")]
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        return [(key, f"{parent} is not a directory")]
    if not os.access(parent, os.W_OK | os.X_OK):
        return [(key, f"directory {parent} is not writable by this user")]
    return []
