"""``config.apply``: central pushes a whole config file; it is staged, installed at restart, rolled back.

The service cannot write ``/etc/edge-agent`` (``ProtectSystem=strict``) or restart itself through
systemd (no privileges), so the work is split along the unit's own lifecycle:

1. **The running agent** (:class:`ConfigApply`, the command handler) checks the signed command's body
   — ``{"config": "<TOML>", "sha256": "<hex of its UTF-8 bytes>", "signature": "<base64>"}``, the
   signature required when ``updates.release_key_file`` is set — exactly as ``edge-agent update
   config`` would (valid, every named file present, same ``storage.path``), writes it to
   ``config-pending.toml`` in the state directory, answers, and stops cleanly; ``Restart=always``
   starts it again.
2. **Before the start** the unit's ``ExecStartPre=+edge-agent update apply-staged`` (as root) installs
   the staged file beside ``lane.toml.prev`` and leaves a trial marker (``config-trial.json``). If a
   marker is already there, the previous start on the new file never confirmed it (it exited, crashed,
   or systemd killed it for missing ``TimeoutStartSec``): the previous file is put back instead.
3. **The agent on the new file** (:class:`ConfigTrial`) removes the marker once it has run for
   ``updates.settle_s``, and reports the outcome upstream as a ``lane.update`` event (the rolled-back
   outcome is left by step 2 in ``config-result.json`` and reported by the agent on the old file).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import hashlib
import json
import logging
import os
import re
import signal
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from edge_agent.clock import stop_task
from edge_agent.config import ConfigInvalid, LaneConfig, load_config, parse_config
from edge_agent.config.preflight import preflight
from edge_agent.errors import CommandRejected

log = logging.getLogger(__name__)

MAX_CONFIG_BYTES = 256 * 1024
STAGED = "config-pending.toml"
PENDING = "config-pending.json"
TRIAL = "config-trial.json"
RESULT = "config-result.json"
_HEX64 = re.compile(r"^[0-9a-f]{64}$")


def state_dir(cfg: LaneConfig) -> Path:
    """Where the staged file and the markers live: the store's directory (the unit's StateDirectory)."""
    return cfg.storage.path.parent


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _write_atomic(path: Path, data: bytes, *, like: Path | None = None) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, data)
        os.fsync(fd)
        if like is not None:  # root writes for the service: the file belongs to the state dir's owner
            st = like.stat()
            with contextlib.suppress(PermissionError):
                os.fchown(fd, st.st_uid, st.st_gid)
    finally:
        os.close(fd)
    os.replace(tmp, path)


def _release_signature_ok(cfg: LaneConfig, data: bytes, sig: object) -> bool:
    """Whether ``sig`` verifies ``data`` with the release key; True when no key is configured."""
    from cryptography.exceptions import InvalidSignature

    from edge_agent.update import UpdateRefused, release_key

    try:
        key = release_key(cfg)
    except UpdateRefused as exc:
        raise CommandRejected("not_supported", str(exc)) from None
    if key is None:
        return True
    if not isinstance(sig, str) or len(sig) > 200:
        raise CommandRejected("malformed", "'signature' (base64, by the release key) is required")
    try:
        key.verify(base64.b64decode(sig, validate=True), data)
    except (binascii.Error, InvalidSignature):
        return False
    return True


class ConfigApply:
    """The ``config.apply`` command handler of a running agent (see the module docstring)."""

    def __init__(
        self, cfg: LaneConfig, *, stop: Callable[[], None] | None = None, delay_s: float = 1.0
    ) -> None:
        self.cfg = cfg
        self._stop = stop or (lambda: os.kill(os.getpid(), signal.SIGTERM))  # the clean shutdown path
        self._delay_s = delay_s

    async def handle(self, body: dict[str, Any], who: Any) -> dict[str, Any]:
        """Check and stage the pushed config, then stop so the unit restarts on it."""
        extra = set(body) - {"config", "sha256", "signature"}
        text, sha = body.get("config"), body.get("sha256")
        if extra or not isinstance(text, str) or not isinstance(sha, str) or not _HEX64.match(sha):
            raise CommandRejected(
                "malformed", "body is {config: TOML text, sha256: 64 lower-case hex, signature?: base64}"
            )
        data = text.encode()
        if len(data) > MAX_CONFIG_BYTES:
            raise CommandRejected("too_large", f"config of {len(data)} bytes exceeds {MAX_CONFIG_BYTES}")
        got = hashlib.sha256(data).hexdigest()
        if got != sha:
            raise CommandRejected("invalid", f"sha256 of the config is {got}, the command says {sha}")
        if not _release_signature_ok(self.cfg, data, body.get("signature")):
            raise CommandRejected(
                "bad_signature", "the config's signature does not verify with the release key"
            )
        try:
            new = parse_config(text, "config.apply")
        except ConfigInvalid as exc:
            raise CommandRejected("invalid", "; ".join(f"{k}: {r}" for k, r in exc.errors[:5])) from None
        problems = preflight(new)
        if problems:
            raise CommandRejected("invalid", "; ".join(f"{k}: {r}" for k, r in problems[:5]))
        if new.storage.path != self.cfg.storage.path:
            raise CommandRejected("restart_required", "storage.path cannot change by config.apply")
        where = state_dir(self.cfg)
        _write_atomic(where / STAGED, data)
        issuer = getattr(who, "issuer_id", None)
        _write_atomic(
            where / PENDING, json.dumps({"sha256": sha, "staged_at": _now(), "by": issuer}).encode()
        )
        log.warning("config.apply: staged config %s; restarting on it", sha[:12])
        asyncio.get_running_loop().call_later(self._delay_s, self._stop)
        return {"staged": sha, "restarting": True}


def apply_staged(config_path: Path) -> str:
    """``ExecStartPre``: install a staged config on trial, or roll back a trial that never confirmed."""
    from edge_agent.update import UpdateRefused, install, restore, verify_config

    try:
        cfg = load_config(config_path)
    except ConfigInvalid as exc:
        return f"{config_path} does not load ({exc}); nothing to do"
    where = state_dir(cfg)
    trial, staged, pending = where / TRIAL, where / STAGED, where / PENDING
    prev = config_path.with_name(config_path.name + ".prev")
    if trial.exists():
        detail = "the new config did not keep the agent running"
        with contextlib.suppress(OSError, ValueError):
            detail = str(json.loads(trial.read_text()).get("detail") or detail)
        if prev.exists():
            restore(config_path, prev)
        result = {"what": "config", "outcome": "rolled_back", "detail": detail, "at": _now()}
        _write_atomic(where / RESULT, json.dumps(result).encode(), like=where)
        trial.unlink()
        return f"rolled back {config_path}: {detail}"
    if not staged.exists():
        return "no staged config"
    try:
        meta = json.loads(pending.read_text()) if pending.exists() else {}
        env = dict(os.environ)
        creds = config_path.parent / "credentials"
        if "CREDENTIALS_DIRECTORY" not in env and creds.is_dir():
            env["CREDENTIALS_DIRECTORY"] = str(creds)
        verified = verify_config(cfg, staged, str(meta.get("sha256") or "") or None, env)
    except (UpdateRefused, OSError, ValueError) as exc:
        result = {"what": "config", "outcome": "refused", "detail": str(exc)[:300], "at": _now()}
        _write_atomic(where / RESULT, json.dumps(result).encode(), like=where)
        staged.unlink(missing_ok=True)
        pending.unlink(missing_ok=True)
        return f"staged config refused: {exc}"
    install(config_path, verified.data)
    marker = {
        "sha256": verified.sha256,
        "installed_at": _now(),
        "detail": "the agent on the new config stopped",
    }
    _write_atomic(trial, json.dumps(marker).encode(), like=where)
    staged.unlink()
    pending.unlink(missing_ok=True)
    return f"installed {config_path} on trial ({verified.sha256[:12]}); the previous one is {prev}"


class ConfigTrial:
    """In the running agent: report a finished ``config.apply`` and confirm one on trial (async CM)."""

    def __init__(
        self, cfg: LaneConfig, config_path: Path | None, report: Callable[[dict[str, Any]], None]
    ) -> None:
        self.cfg, self.config_path, self._report = cfg, config_path, report
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> ConfigTrial:
        where = state_dir(self.cfg)
        result = where / RESULT
        if result.exists():
            with contextlib.suppress(OSError, ValueError):
                self._report(json.loads(result.read_text()))
            result.unlink(missing_ok=True)
        if (where / TRIAL).exists():
            self._task = asyncio.get_running_loop().create_task(
                self._confirm(where / TRIAL), name="config-trial"
            )
        return self

    async def __aexit__(self, *exc: object) -> None:
        task, self._task = self._task, None
        await stop_task(task)

    async def _confirm(self, trial: Path) -> None:
        await asyncio.sleep(self.cfg.updates.settle_s)
        running = await asyncio.to_thread(self._clear_if_on_trial, trial)
        if running is None:
            return
        log.warning("config.apply: config %s confirmed after %g s", running[:12], self.cfg.updates.settle_s)
        self._report({"what": "config", "outcome": "applied", "sha256": running, "at": _now()})

    def _clear_if_on_trial(self, trial: Path) -> str | None:
        """Remove the trial marker if this agent runs the file on trial; that file's sha256, or None."""
        try:
            marker = json.loads(trial.read_text())
            running = hashlib.sha256(self.config_path.read_bytes()).hexdigest() if self.config_path else None
        except (OSError, ValueError):
            return None
        if running is None or marker.get("sha256") != running:
            return None  # not the file on trial: leave the marker for apply-staged to roll back
        trial.unlink(missing_ok=True)
        return running
