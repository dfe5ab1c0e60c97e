"""``edge-agent status``: is this lane healthy, and if not, which device and why.

The running agent builds the report (:func:`build_status`, served on the control socket); the CLI
renders it as a table for people (colour only on a terminal) or JSON for scripts, and exits 0 when
healthy, 1 when degraded or faulted, 3 when no agent answers (the ``systemctl status`` convention).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import sys
import time
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from edge_agent import __version__
from edge_agent.config.control import DEFAULT_CONFIG, socket_for

if TYPE_CHECKING:
    from edge_agent.app import Agent

EXIT_HEALTHY, EXIT_DEGRADED, EXIT_NO_AGENT, EXIT_USAGE = 0, 1, 3, 2
HEALTHY, DEGRADED, FAULTED = "healthy", "degraded", "faulted"


@lru_cache(maxsize=16)
def _sha256(path: Path, mtime_ns: int) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def model_files(agent: Agent) -> list[dict[str, Any]]:
    """The recognition models the agent runs, with their sha256 (cached per file version)."""
    rec = agent.cfg.recognition
    out: list[dict[str, Any]] = []
    if not agent.cfg.devices.cameras or rec.backend != "tflite":
        return out
    overridden = set(agent.hooks.recognisers) | {  # cameras read by label, not by a model
        n for n, c in agent.cfg.devices.cameras.items() if getattr(c, "read_labels", False)
    }
    roles = {cam.role for name, cam in agent.cfg.devices.cameras.items() if name not in overridden}
    for role in sorted(roles):
        path = Path(getattr(rec, f"{role}_model", ""))
        try:
            sha = _sha256(path, path.stat().st_mtime_ns)
        except OSError as exc:
            sha = f"unreadable: {exc.strerror}"
        out.append({"name": path.name, "role": role, "path": str(path), "sha256": sha})
    return out


def _backend(agent: Agent, name: str, kind: str) -> str | None:
    """The configured backend of a device, by its health's name and kind."""
    devices = agent.cfg.devices
    if kind == "camera" and name in devices.cameras:
        return devices.cameras[name].backend
    section = getattr(devices, kind, None)
    backend = getattr(section, "backend", None)
    return str(backend) if backend is not None else None


async def build_status(agent: Agent) -> dict[str, Any]:
    """The whole status report, JSON-ready (the agent side of the control socket)."""
    now_mono = agent.clock.monotonic()
    sig = agent.signal.status()
    state = "closed" if sig["closed"] else "held" if sig["held"] else "open"
    devices = []
    for source in agent.sources:
        h = source.health()
        d = h.as_dict()
        d["backend"] = _backend(agent, h.name, h.kind)
        d["age_s"] = None if h.last_ok_mono is None else round(max(0.0, now_mono - h.last_ok_mono), 3)
        devices.append(d)
    up = agent.uplink.health()
    try:
        outbox: dict[str, Any] = (await agent.outbox.stats()).as_dict()
    except Exception as exc:  # a store in trouble must not hide the rest of the status
        outbox = {"error": str(exc)[:200]}
    since = agent.uplink.connected_since
    ref = agent.reference
    models = await asyncio.to_thread(model_files, agent)
    report: dict[str, Any] = {
        "version": __version__,
        "pid": os.getpid(),
        "uptime_s": round(time.monotonic() - agent.started_wall_mono, 1),
        "site_id": agent.cfg.site_id,
        "lane_id": agent.cfg.lane_id,
        "simulation": agent.cfg.simulation,
        "lane": {
            "state": state,
            "aspect": sig["aspect"],
            "faults": sig["faults"],
            "closed_reason": sig["closed_reason"],
            "hold_reason": sig["hold_reason"],
            "open_passages": len(agent.lane.tracker.open_passages),
            "counters": dict(agent.lane.counters),
            "unsaved_writes": agent.lane.unsaved,
        },
        "devices": devices,
        "uplink": {
            "broker": agent.uplink.broker_url,
            "state": up.state.value,
            "detail": up.detail,
            "connected_since": since.isoformat() if since else None,
            "outbox": outbox,
        },
        "reference": {
            "version": ref.view.version,
            "age_s": None if ref.updated_at is None else round(time.time() - ref.updated_at.timestamp(), 1),
        },
        "store": {"path": str(agent.cfg.storage.path), "fault": agent.store.fault},
        "models": models,
    }
    watch = getattr(agent, "clock_watch", None)
    if watch is not None:
        report["clock"] = watch.status()
    report["health"] = overall(report)
    return report


def overall(report: dict[str, Any]) -> str:
    """``faulted`` (a fault holds red), ``degraded`` (a device or the link not up), or ``healthy``."""
    lane = report["lane"]
    if lane["faults"] or report["store"]["fault"]:
        return FAULTED
    if any(d["state"] != "up" for d in report["devices"]) or report["uplink"]["state"] != "up":
        return DEGRADED
    return HEALTHY


# --- the CLI side -------------------------------------------------------------------------------------------
_COLOURS = {"up": "32", HEALTHY: "32", "degraded": "33", "starting": "33", "down": "31", FAULTED: "31"}


def _paint(text: str, key: str, colour: bool) -> str:
    code = _COLOURS.get(key)
    return f"\033[{code}m{text}\033[0m" if colour and code else text


def _age(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 120:
        return f"{seconds:.1f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def render(report: dict[str, Any], *, colour: bool) -> str:
    """The report as a table for people."""
    lane, up = report["lane"], report["uplink"]
    ob = up["outbox"]
    lines = [
        f"lane {report['site_id']}/{report['lane_id']}: "
        f"{_paint(report['health'].upper(), report['health'], colour)}"
        f"{'  (SIMULATED)' if report['simulation'] else ''}",
        f"  signal   {lane['state']}, {lane['aspect']}"
        + (f"; closed: {lane['closed_reason']}" if lane["closed_reason"] else "")
        + (f"; held: {lane['hold_reason']}" if lane["hold_reason"] else ""),
    ]
    for name, detail in sorted(lane["faults"].items()):
        lines.append(f"  fault    {_paint(name, FAULTED, colour)}: {detail}")
    if report["store"]["fault"]:
        lines.append(f"  store    {_paint('FAULT', FAULTED, colour)}: {report['store']['fault']}")
    lines.append(f"  passages open {lane['open_passages']}; unsaved writes {lane['unsaved_writes']}")
    lines.append("")
    lines.append(f"  {'device':<14} {'backend':<10} {'state':<9} {'last data':>10}  errors / detail")
    for d in report["devices"]:
        errors = {
            k: v
            for k, v in d["counters"].items()
            if any(w in k for w in ("error", "timeout", "bad", "fault"))
        }
        err_text = ", ".join(f"{k}={v}" for k, v in sorted(errors.items())) or "-"
        state = _paint(f"{d['state']:<9}", d["state"], colour)
        lines.append(
            f"  {d['name']:<14} {d.get('backend') or d['kind']:<10} {state} "
            f"{_age(d['age_s']):>10}  {err_text}"
        )
        if d["detail"]:
            lines.append(f"  {'':<14} {'':<10} {'':<9} {'':>10}  {d['detail']}")
    lines.append("")
    pending = ob.get("pending", {})
    lines.append(
        f"  uplink   {_paint(up['state'], up['state'], colour)} {up['broker'] or '-'}"
        f" since {up['connected_since'] or '-'}; {up['detail']}"
    )
    if "error" in ob:
        lines.append(f"  outbox   unreadable: {ob['error']}")
    else:
        by_kind = ", ".join(f"{k} {v}" for k, v in pending.items()) or "empty"
        lines.append(
            f"  outbox   {ob['pending_total']} waiting ({by_kind}); oldest {_age(ob['oldest_age_s'])}; "
            f"quota {ob['quota_state']}"
        )
    ref = report["reference"]
    lines.append(f"  reference data version {ref['version']}, updated {_age(ref['age_s'])} ago")
    for m in report["models"]:
        lines.append(f"  model    {m['name']} ({m['role']}) sha256 {m['sha256'][:16]}")
    clock = report.get("clock")
    if isinstance(clock, dict):
        sync = "synchronised" if clock.get("synchronised") else _paint("NOT synchronised", DEGRADED, colour)
        jumps = f"; {clock['jumps']} wall-clock jump(s)" if clock.get("jumps") else ""
        lines.append(f"  clock    {sync} ({clock.get('source', 'unknown')}){jumps}")
    lines.append(f"  agent    {report['version']}, pid {report['pid']}, up {_age(report['uptime_s'])}")
    return "\n".join(lines)


def exit_code(report: dict[str, Any]) -> int:
    """0 healthy, 1 degraded or faulted."""
    return EXIT_HEALTHY if report["health"] == HEALTHY else EXIT_DEGRADED


def socket_path(config: Path | None) -> Path:
    """Where to ask: the ``control.socket`` the config means (``--config``, else the lane's default file)."""
    from edge_agent.config import load_config

    cfg = load_config(config or DEFAULT_CONFIG)
    return socket_for(cfg.control, cfg.storage.path)


def run(args: argparse.Namespace, out: TextIO = sys.stdout) -> int:
    """``edge-agent status``."""
    from edge_agent.config import ConfigInvalid
    from edge_agent.control import NoAgent, request

    try:
        path = socket_path(args.config)
    except (ConfigInvalid, OSError) as exc:
        print(f"error: cannot read {args.config}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    try:
        reply = asyncio.run(request(path, "status"))
    except NoAgent as exc:
        if args.json:
            print(json.dumps({"health": "no_agent", "detail": str(exc), "socket": str(path)}), file=out)
        else:
            print(str(exc), file=out)
        return EXIT_NO_AGENT
    if not reply.get("ok"):
        print(f"error: the agent answered: {reply.get('error')}", file=sys.stderr)
        return EXIT_DEGRADED
    report = reply["status"]
    if args.json:
        print(json.dumps(report, sort_keys=True), file=out)
    else:
        print(render(report, colour=out.isatty() and os.environ.get("NO_COLOR") is None), file=out)
    return exit_code(report)


def register(sub: Any) -> None:
    """Add ``status`` to the CLI."""
    p = sub.add_parser(
        "status",
        help="is this lane healthy? (asks the running agent)",
        description="Ask the running agent how the lane is: signal, faults, each device, uplink and "
        "outbox, reference data, models. Exit 0 healthy, 1 degraded or faulted, 3 no agent running.",
        epilog="example: edge-agent status --config /etc/edge-agent/lane.toml --json | jq .devices",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--config",
        type=Path,
        default=None,
        help=f"lane TOML whose control.socket to ask (default {DEFAULT_CONFIG})",
    )
    p.add_argument("--json", action="store_true", help="one JSON object, for scripts")
    p.set_defaults(func=run)
