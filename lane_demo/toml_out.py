"""Write a config back out as TOML (what ``edge-agent demo --workdir`` leaves beside its store).

Only what a lane config holds: tables of strings, numbers, booleans and lists of them; ``None`` values
are left out (TOML has no null, and every such key has that default).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any


def _value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if not math.isfinite(v):
            raise ValueError(f"{v!r} has no TOML form in a lane config")
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v)  # a JSON string is a valid TOML basic string
    if isinstance(v, list | tuple):
        return "[" + ", ".join(_value(x) for x in v) + "]"
    if isinstance(v, Mapping):
        return "{ " + ", ".join(f"{_key(k)} = {_value(x)}" for k, x in v.items() if x is not None) + " }"
    raise TypeError(f"cannot write {type(v).__name__} as TOML")


def _key(k: str) -> str:
    return k if k.replace("_", "").replace("-", "").isalnum() else json.dumps(k)


def dumps(data: Mapping[str, Any]) -> str:
    """``data`` (nested mappings) as a TOML document."""
    lines: list[str] = []

    def table(path: list[str], d: Mapping[str, Any]) -> None:
        scalars = [(k, v) for k, v in d.items() if v is not None and not isinstance(v, Mapping)]
        tables = [(k, v) for k, v in d.items() if isinstance(v, Mapping)]
        if path and (scalars or not tables):
            lines.append(f"\n[{'.'.join(_key(p) for p in path)}]")
        lines.extend(f"{_key(k)} = {_value(v)}" for k, v in scalars)
        for k, v in tables:
            table([*path, k], v)

    table([], data)
    return "\n".join(lines).lstrip() + "\n"
