"""Typed lane configuration, loaded from one TOML file.

``load_config(path)`` returns a :class:`LaneConfig` or raises :class:`ConfigInvalid` whose
``errors`` are ``(dotted.key.path, reason)`` pairs, every one of them, so a technician can fix a file
in one pass.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_core import PydanticCustomError

from edge_agent.config.base import Model
from edge_agent.config.camera import CameraConfig, RecognitionConfig, SimRecognitionConfig
from edge_agent.config.commands import CommandsConfig
from edge_agent.config.control import ControlConfig
from edge_agent.config.lane import GeometryConfig, PolicyConfig
from edge_agent.config.logs import LogsConfig
from edge_agent.config.mqtt import MqttConfig
from edge_agent.config.retention import RetentionConfig
from edge_agent.config.rfid import RfidConfig
from edge_agent.config.sensors import LoopsConfig, WimConfig
from edge_agent.config.signal import SignalConfig
from edge_agent.config.storage import StorageConfig
from edge_agent.config.updates import UpdatesConfig
from edge_agent.errors import ConfigError

_ID = r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$"
_LANE_PROBLEMS = "lane_problems"  # error type carrying (key, reason) pairs of rules across sections


class DevicesConfig(Model):
    """Every input device of the lane, each with its backend."""

    rfid: RfidConfig
    loops: LoopsConfig
    wim: WimConfig
    cameras: dict[str, CameraConfig] = Field(default_factory=dict, description="Cameras by name.")


class LaneConfig(Model):
    """The whole agent configuration."""

    site_id: str = Field(pattern=_ID, description="Port of entry (topic level).")
    lane_id: str = Field(pattern=_ID, description="Lane at that port (topic level).")
    simulation: bool = Field(
        False,
        description="This config runs a simulated lane (the demo, CI): simulated backends are allowed, "
        "and timing floors may be scaled down (never to zero). A lane's config leaves it false.",
    )
    time_scale: float = Field(
        1.0,
        ge=1.0,
        le=20.0,
        description="Lane time per wall second, for a simulation only (edge-agent sim and run agree on "
        "it); a lane runs on wall time (1). At most 20: faster, the simulators fall behind.",
    )
    geometry: GeometryConfig = GeometryConfig()
    policy: PolicyConfig = PolicyConfig()
    storage: StorageConfig = StorageConfig()
    mqtt: MqttConfig = MqttConfig()
    devices: DevicesConfig
    recognition: RecognitionConfig = SimRecognitionConfig()
    signal: SignalConfig = SignalConfig()
    commands: CommandsConfig = CommandsConfig()
    retention: RetentionConfig = RetentionConfig()
    logging: LogsConfig = LogsConfig()
    updates: UpdatesConfig = UpdatesConfig()
    control: ControlConfig = ControlConfig()

    @field_validator("devices")
    @classmethod
    def _cameras_named(cls, devices: DevicesConfig) -> DevicesConfig:
        for name in devices.cameras:
            if not name.replace("_", "").replace("-", "").isalnum():
                raise ValueError(f"camera name {name!r} must be letters, digits, '-' or '_'")
        return devices

    @model_validator(mode="after")
    def _across_sections(self) -> LaneConfig:
        from edge_agent.config.checks import lane_problems

        problems = lane_problems(self)
        if self.time_scale != 1.0 and not self.simulation:
            problems = [
                *problems,
                ("time_scale", "only a config that declares simulation = true may scale time"),
            ]
        if problems:
            summary = "; ".join(f"{key}: {reason}" for key, reason in problems)
            raise PydanticCustomError(_LANE_PROBLEMS, "{summary}", {"summary": summary, "problems": problems})
        return self


class ConfigInvalid(ConfigError):
    """The config file is not valid; ``errors`` lists ``(dotted.key.path, reason)``."""

    def __init__(self, source: str, errors: list[tuple[str, str]]) -> None:
        self.source = source
        self.errors = errors
        super().__init__(f"{source}: " + "; ".join(f"{k}: {r}" for k, r in errors))


def _dotted(loc: tuple[int | str, ...], data: Any) -> str:
    """``loc`` as the key path a user wrote, without pydantic's union tags and validator labels."""
    parts: list[str] = []
    node = data
    for item in loc:
        if isinstance(node, dict) and item not in node and node.get("backend") == item:
            continue  # the tag pydantic adds inside a discriminated union (e.g. "r2000")
        if isinstance(item, str) and item.startswith("function-"):
            continue
        if isinstance(item, int):
            parts.append(f"[{item}]")
        else:
            parts.append(("." if parts else "") + str(item))
        if isinstance(node, dict):
            node = node.get(item)
        elif isinstance(node, list) and isinstance(item, int) and item < len(node):
            node = node[item]
        else:
            node = None
    return "".join(parts) or "(root)"


def _reason(err: Any) -> str:
    kind = err.get("type", "")
    if kind == "extra_forbidden":
        return "unknown key"
    if kind == "missing":
        return "required key is missing"
    if kind == "union_tag_invalid":
        ctx = err.get("ctx", {})
        return f"unknown backend {ctx.get('tag')!r}; choose one of {ctx.get('expected_tags')}"
    msg: str = err.get("msg", "invalid value")
    return msg.removeprefix("Value error, ")


def validate_config(data: dict[str, Any], source: str = "<config>") -> LaneConfig:
    """Validate already-parsed TOML data; raise :class:`ConfigInvalid` naming every bad key."""
    try:
        return LaneConfig.model_validate(data)
    except ValidationError as exc:
        errors: list[tuple[str, str]] = []
        for e in exc.errors():
            if e.get("type") == _LANE_PROBLEMS:
                errors.extend(e.get("ctx", {}).get("problems", []))
                continue
            key = _dotted(tuple(e["loc"]), data)
            if e.get("type") == "union_tag_invalid":
                key += "." + str(e.get("ctx", {}).get("discriminator", "backend")).strip("'")
            errors.append((key, _reason(e)))
        raise ConfigInvalid(source, errors) from None


def parse_config(text: str, source: str = "<config>") -> LaneConfig:
    """Parse and validate TOML text; syntax errors name the line and column."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigInvalid(source, [("(toml)", str(exc))]) from None
    return validate_config(data, source)


def load_config(path: Path | str) -> LaneConfig:
    """Read, parse and validate the config file at ``path``."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigInvalid(str(p), [("(file)", exc.strerror or str(exc))]) from None
    return parse_config(text, str(p))


__all__ = ["ConfigInvalid", "LaneConfig", "load_config", "parse_config", "validate_config"]
