"""Reloading the config file while the lane runs: safe fields apply at once, others need a restart.

Safe fields only change how the *next* passage is judged (the decision policy, the tracker's
thresholds, how often health is reported); everything that opens ports, pins, files or links (devices,
the signal's outputs, the store, brokers, keys) needs a restart, so a reload that touches them is
refused with the list of keys and changes nothing. A reload is all or nothing: the new file must be
valid as a whole.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from edge_agent.config import ConfigInvalid, LaneConfig, load_config
from edge_agent.errors import CommandRejected

SAFE_PREFIXES: tuple[str, ...] = (
    "policy.",
    "geometry.read_range_m",
    "geometry.min_speed_kmh",
    "geometry.max_speed_kmh",
    "geometry.min_gap_m",
    "geometry.max_dwell_s",
    "geometry.wim_wait_s",
)
"""Dotted keys (or key prefixes) that a running lane may take over without a restart."""


def changed_keys(old: Any, new: Any, prefix: str = "") -> list[str]:
    """Dotted keys whose values differ between two config dumps (``model_dump(mode="json")``)."""
    if isinstance(old, dict) and isinstance(new, dict):
        out: list[str] = []
        for key in sorted(set(old) | set(new)):
            out += changed_keys(old.get(key), new.get(key), f"{prefix}{key}.")
        return out
    return [] if old == new else [prefix.rstrip(".")]


def is_safe(key: str) -> bool:
    """Whether ``key`` may change while the lane runs."""
    return any(key == p.rstrip(".") or key.startswith(p) for p in SAFE_PREFIXES)


def plan_reload(current: LaneConfig, path: Path) -> tuple[LaneConfig, list[str]]:
    """Read and validate ``path``; return the new config and the keys it changes.

    Raises :class:`CommandRejected` (``malformed``) naming every invalid key, or (``restart_required``)
    naming the changed keys that are not safe to change while running.
    """
    try:
        new = load_config(path)
    except ConfigInvalid as exc:
        raise CommandRejected("malformed", "; ".join(f"{k}: {r}" for k, r in exc.errors)) from None
    keys = changed_keys(current.model_dump(mode="json"), new.model_dump(mode="json"))
    unsafe = [k for k in keys if not is_safe(k)]
    if unsafe:
        raise CommandRejected("restart_required", "these keys need a restart: " + ", ".join(unsafe))
    return new, keys
