"""``edge-agent update model|config FILE``: verify, install beside the previous version, restart, roll back.

An update file is outside input and is refused, naming what was wrong, unless:

- it is at most ``updates.max_file_mb`` and (a config) valid UTF-8 TOML that passes every check of
  ``edge-agent config check`` against this board's files and credentials;
- its SHA-256 is the one its model card states (``| SHA-256 | `<hex>` |`` in ``<model>.md`` beside it,
  or ``--card``), or ``--sha256`` for a config;
- when ``updates.release_key_file`` is set, ``FILE.sig`` holds a valid Ed25519 signature (base64) of
  the file's bytes by that key.

It is then installed atomically beside the previous version (``<dest>.prev``; written to a temporary
file in the same directory, fsynced, renamed, directory fsynced), and the service restarted
(:mod:`edge_agent.update_service`). If the new version does not say READY=1 within
``updates.ready_timeout_s`` or exits within ``updates.settle_s``, the previous file is put back, the
service restarted on it, and the exit status is 1. Either way a ``lane.update`` event is queued in
the store's outbox, so central hears of it through the normal store-and-forward path.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edge_agent.config import ConfigInvalid, LaneConfig, load_config, parse_config
from edge_agent.config.preflight import preflight
from edge_agent.errors import EdgeAgentError
from edge_agent.update_service import ChildService, Service, SystemdService

_SHA_LINE = re.compile(r"sha-?256\W+([0-9a-fA-F]{64})\b", re.IGNORECASE)
_MAX_CARD = 256 * 1024
_MAX_SIG = 1024


class UpdateRefused(EdgeAgentError, ValueError):
    """An update file failed verification (nothing was installed)."""


@dataclass(frozen=True, slots=True)
class Verified:
    """An update file that passed every check."""

    data: bytes
    sha256: str
    signed: bool


def read_bounded(path: Path, limit: int, what: str) -> bytes:
    """``path``'s bytes, refusing a missing file, a non-file, or one over ``limit`` bytes."""
    try:
        size = path.stat().st_size
        if not path.is_file():
            raise UpdateRefused(f"{what} {path}: not a regular file")
        if size > limit:
            raise UpdateRefused(f"{what} {path}: {size} bytes, over the limit of {limit}")
        with path.open("rb") as fh:
            data = fh.read(limit + 1)
    except OSError as exc:
        raise UpdateRefused(f"{what} {path}: {exc.strerror or exc}") from None
    if len(data) > limit:
        raise UpdateRefused(f"{what} {path}: grew past the limit of {limit} bytes while read")
    return data


def card_sha256(card: Path) -> str:
    """The one SHA-256 a model card states (lower-case hex)."""
    text = read_bounded(card, _MAX_CARD, "model card").decode("utf-8", errors="replace")
    found = {m.lower() for m in _SHA_LINE.findall(text)}
    if len(found) != 1:
        raise UpdateRefused(
            f"model card {card}: states {len(found)} SHA-256 values; it must state exactly one "
            "(a line like '| SHA-256 | `<64 hex digits>` |')"
        )
    return str(found.pop())


def release_key(cfg: LaneConfig) -> Any:
    """The configured release key (``Ed25519PublicKey``), or None when updates need no signature."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    path = cfg.updates.release_key_file
    if path is None:
        return None
    text = read_bounded(path, 4096, "updates.release_key_file").strip()
    try:
        if text.startswith(b"-----BEGIN"):
            key = serialization.load_pem_public_key(text)
            if not isinstance(key, Ed25519PublicKey):
                raise ValueError("not an Ed25519 key")
            return key
        raw = base64.b64decode(text, validate=True)
        return Ed25519PublicKey.from_public_bytes(raw)
    except (ValueError, binascii.Error) as exc:
        raise UpdateRefused(f"updates.release_key_file {path}: not an Ed25519 public key ({exc})") from None


def check_signature(cfg: LaneConfig, file: Path, data: bytes) -> bool:
    """Verify ``FILE.sig`` when a release key is configured; return whether the file was signed."""
    from cryptography.exceptions import InvalidSignature

    key = release_key(cfg)
    if key is None:
        return False
    sig_path = file.with_name(file.name + ".sig")
    raw = read_bounded(sig_path, _MAX_SIG, "signature").strip()
    try:
        sig = base64.b64decode(raw, validate=True)
    except binascii.Error:
        raise UpdateRefused(f"signature {sig_path}: not base64") from None
    try:
        key.verify(sig, data)
    except InvalidSignature:
        raise UpdateRefused(f"signature {sig_path}: does not verify with updates.release_key_file") from None
    return True


def _digest(data: bytes, expected: str | None, file: Path) -> str:
    got = hashlib.sha256(data).hexdigest()
    if expected is not None and got != expected.lower():
        raise UpdateRefused(f"{file}: SHA-256 is {got}, expected {expected.lower()}")
    return got


def verify_model(cfg: LaneConfig, file: Path, card: Path | None) -> Verified:
    """Check a model file against its card (and signature)."""
    data = read_bounded(file, int(cfg.updates.max_file_mb * 1024 * 1024), "model")
    if len(data) < 8 or data[4:8] != b"TFL3":
        raise UpdateRefused(f"model {file}: not a TensorFlow Lite flatbuffer (no TFL3 identifier)")
    sha = _digest(data, card_sha256(card or file.with_suffix(".md")), file)
    return Verified(data, sha, check_signature(cfg, file, data))


def verify_config(cfg: LaneConfig, file: Path, sha256: str | None, env: dict[str, str]) -> Verified:
    """Check a config file as ``edge-agent config check`` would on this board (and its digest, signature)."""
    data = read_bounded(file, min(int(cfg.updates.max_file_mb * 1024 * 1024), 4 * 1024 * 1024), "config")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UpdateRefused(f"config {file}: not UTF-8 ({exc.reason} at byte {exc.start})") from None
    try:
        new = parse_config(text, str(file))
    except ConfigInvalid as exc:
        raise UpdateRefused("; ".join(f"{file}: {k}: {r}" for k, r in exc.errors)) from None
    problems = preflight(new, env)
    if problems:
        raise UpdateRefused("; ".join(f"{file}: {k}: {r}" for k, r in problems))
    sha = _digest(data, sha256, file)
    return Verified(data, sha, check_signature(cfg, file, data))


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def install(dest: Path, data: bytes) -> Path | None:
    """Put ``data`` at ``dest`` atomically, keeping the old file as ``<dest>.prev``; return that path.

    The new file takes the old one's mode and owner (a config stays 0640 root:edge-agent).
    """
    tmp = dest.with_name(f".{dest.name}.new")
    prev = dest.with_name(dest.name + ".prev")
    old = dest.stat() if dest.exists() else None
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, data)
        os.fsync(fd)
        if old is not None:
            os.fchmod(fd, old.st_mode & 0o7777)
            with contextlib.suppress(PermissionError):
                os.fchown(fd, old.st_uid, old.st_gid)
    finally:
        os.close(fd)
    if old is not None:
        with contextlib.suppress(FileNotFoundError):
            prev.unlink()
        os.link(dest, prev)
    os.replace(tmp, dest)
    _fsync_dir(dest.parent)
    return prev if old is not None else None


def restore(dest: Path, prev: Path | None) -> None:
    """Put the previous version back (or remove a file that had none)."""
    if prev is None:
        dest.unlink(missing_ok=True)
    else:
        os.replace(prev, dest)
    _fsync_dir(dest.parent)


def report_upstream(cfg: LaneConfig, data: dict[str, Any]) -> str | None:
    """Queue a ``lane.update`` event in the store's outbox; the reason it could not, or None."""
    import asyncio

    from edge_agent.store.db import Store
    from edge_agent.store.outbox import Outbox, Priority
    from edge_agent.uplink.messages import event_message
    from edge_agent.uplink.topics import Topics

    if not cfg.storage.path.is_file():
        return f"no store at {cfg.storage.path}"
    message = event_message(cfg.site_id, cfg.lane_id, "lane.update", data)
    topic = Topics(cfg.mqtt.topic_prefix, cfg.site_id, cfg.lane_id)("event")

    async def put() -> None:
        import json

        async with Store(cfg.storage) as store, Outbox(store) as outbox:
            await outbox.put(
                msg_id=message["event_id"],
                topic=topic,
                payload=json.dumps(message, separators=(",", ":")).encode(),
                priority=Priority.DECISION,
                kind="event",
            )

    try:
        asyncio.run(put())
    except (EdgeAgentError, OSError) as exc:
        return str(exc)
    return None


def apply(
    cfg: LaneConfig, what: str, file: Path, dest: Path, verified: Verified, service: Service
) -> tuple[bool, str]:
    """Install, restart, and roll back on failure; ``(ok, what happened)``. Reports upstream."""
    prev = install(dest, verified.data)
    outcome = service.restart(ready_timeout_s=cfg.updates.ready_timeout_s, settle_s=cfg.updates.settle_s)
    data: dict[str, Any] = {
        "what": what,
        "file": file.name[:128],
        "sha256": verified.sha256,
        "signed": verified.signed,
        "installed_at": str(dest),
    }
    if outcome.ready:
        if prev is not None:
            data["previous"] = str(prev)
        result = (True, f"updated {dest}: {outcome.detail}")
        data |= {"outcome": "applied", "detail": outcome.detail[:300]}
    else:
        restore(dest, prev)
        again = service.restart(ready_timeout_s=cfg.updates.ready_timeout_s, settle_s=cfg.updates.settle_s)
        state = (
            "the previous version is running"
            if again.ready
            else f"the previous version failed too: {again.detail}"
        )
        result = (False, f"{what} update failed ({outcome.detail}); rolled back {dest}; {state}")
        data |= {"outcome": "rolled_back", "detail": outcome.detail[:300], "previous_ready": again.ready}
    unsent = report_upstream(cfg, data)
    if unsent is not None:
        result = (result[0], f"{result[1]} (not reported upstream: {unsent})")
    return result


# ---------------------------------------------------------------------- edge-agent update
def register(sub: Any) -> None:
    """Add ``edge-agent update model|config FILE`` to the CLI's subparsers."""
    cmd = sub.add_parser("update", help="install a model or config with automatic rollback")
    kinds = cmd.add_subparsers(dest="update_kind", required=True)
    examples = {
        "model": "example: sudo edge-agent update model /media/usb/plate_ocr.tflite --card /media/usb/ocr.md",
        "config": "example: sudo edge-agent update config /media/usb/lane.toml --sha256 <hex of the release>",
    }
    for kind in ("model", "config"):
        p = kinds.add_parser(
            kind,
            help=f"install a new {kind} file",
            description=f"Verify a new {kind} file, install it beside the previous one, restart the service, "
            "and put the previous one back if the new version does not become READY or exits.",
            epilog=examples[kind],
        )
        p.add_argument("file", type=Path)
        p.add_argument(
            "--config", type=Path, default=Path("/etc/edge-agent/lane.toml"), help="the installed lane config"
        )
        p.add_argument(
            "--manager",
            choices=["systemd", "child"],
            default="systemd",
            help="restart through systemctl (default), or run the agent as a child of this command "
            "and stop it after the check (boards without systemd, tests)",
        )
        if kind == "model":
            p.add_argument("--role", choices=["plate", "container"], default="plate")
            p.add_argument("--card", type=Path, default=None, help="model card (default: FILE with .md)")
        else:
            p.add_argument("--sha256", default=None, help="the SHA-256 the release states for the file")
        p.set_defaults(func=_update_command)
    staged = kinds.add_parser(
        "apply-staged",
        help="install a config central pushed (config.apply), or roll back one that failed (ExecStartPre)",
        description="Run by the unit before each start, as root: install a staged config.apply on trial, "
        "or put the previous config back when the last start on a trial config never confirmed it. "
        "Always exits 0, so the lane starts on whichever config is in place.",
        epilog="example: sudo edge-agent update apply-staged --config /etc/edge-agent/lane.toml",
    )
    staged.add_argument("--config", type=Path, default=Path("/etc/edge-agent/lane.toml"))
    staged.set_defaults(func=_apply_staged_command)


def _apply_staged_command(args: Any) -> int:
    from edge_agent.config_apply import apply_staged

    try:
        print(f"apply-staged: {apply_staged(args.config)}")
    except Exception as exc:  # never keep the lane from starting on the config in place
        print(f"apply-staged: failed, leaving {args.config} as it is: {exc!r}", file=sys.stderr)
    return 0


def _update_command(args: Any) -> int:
    try:
        cfg = load_config(args.config)
    except ConfigInvalid as exc:
        for key, reason in exc.errors:
            print(f"{args.config}: {key}: {reason}", file=sys.stderr)
        return 2
    creds = args.config.parent / "credentials"
    env = dict(os.environ)
    if "CREDENTIALS_DIRECTORY" not in env and creds.is_dir():
        env["CREDENTIALS_DIRECTORY"] = str(creds)  # what systemd will hand the service
    try:
        if args.update_kind == "model":
            rec = cfg.recognition
            dest = getattr(rec, f"{args.role}_model", None)
            if rec.backend != "tflite" or dest is None:
                raise UpdateRefused(f"{args.config}: recognition has no {args.role}_model to replace")
            verified = verify_model(cfg, args.file, args.card)
        else:
            dest = args.config
            verified = verify_config(cfg, args.file, args.sha256, env)
    except UpdateRefused as exc:
        print(f"update refused: {exc}", file=sys.stderr)
        return 2
    service: Service
    service = ChildService(args.config) if args.manager == "child" else SystemdService(cfg.updates.unit)
    try:
        ok, detail = apply(cfg, args.update_kind, args.file, Path(dest), verified, service)
    finally:
        service.stop()
        if isinstance(service, ChildService):
            service.close()
    print(detail, file=sys.stdout if ok else sys.stderr)
    return 0 if ok else 1
