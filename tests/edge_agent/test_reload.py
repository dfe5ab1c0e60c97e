"""config.reload: safe fields apply while running; anything else is refused and changes nothing."""

from __future__ import annotations

from pathlib import Path

import pytest

from edge_agent.config import load_config
from edge_agent.errors import CommandRejected
from edge_agent.reload import changed_keys, is_safe, plan_reload

ROOT = Path(__file__).resolve().parents[2]


def copy(tmp_path: Path, **replace: str) -> Path:
    text = (ROOT / "config" / "lane.example.toml").read_text()
    for old, new in replace.items():
        assert old in text
        text = text.replace(old, new)
    out = tmp_path / "lane.toml"
    out.write_text(text)
    return out


def test_changed_keys_walks_nested_sections() -> None:
    assert changed_keys({"a": {"b": 1, "c": 2}, "d": 3}, {"a": {"b": 1, "c": 5}, "d": 4}) == ["a.c", "d"]
    assert changed_keys({"a": [1]}, {"a": [1, 2]}) == ["a"]


@pytest.mark.parametrize(
    ("key", "safe"),
    [
        ("policy.weight_tolerance_pct", True),
        ("geometry.min_gap_m", True),
        ("geometry.exit_loop_m", False),
        ("devices.rfid.port", False),
        ("mqtt.urls", False),
        ("commands.keys", False),
    ],
)
def test_safety_of_keys(key: str, safe: bool) -> None:
    assert is_safe(key) is safe


def test_policy_change_is_planned(tmp_path: Path) -> None:
    current = load_config(ROOT / "config" / "lane.example.toml")
    path = copy(
        tmp_path,
        **{"weight_tolerance_pct = 5.0": "weight_tolerance_pct = 3.0", "min_gap_m = 6.0": "min_gap_m = 8.0"},
    )
    new, keys = plan_reload(current, path)
    assert keys == ["geometry.min_gap_m", "policy.weight_tolerance_pct"]
    assert new.policy.weight_tolerance_pct == 3.0


def test_unsafe_change_needs_a_restart(tmp_path: Path) -> None:
    current = load_config(ROOT / "config" / "lane.example.toml")
    path = copy(
        tmp_path,
        **{"baud = 115200": "baud = 57600", "weight_tolerance_pct = 5.0": "weight_tolerance_pct = 3.0"},
    )
    with pytest.raises(CommandRejected) as info:
        plan_reload(current, path)
    assert info.value.reason == "restart_required"
    assert "devices.rfid.baud" in info.value.detail and "policy" not in info.value.detail


def test_invalid_file_is_refused_naming_the_key(tmp_path: Path) -> None:
    current = load_config(ROOT / "config" / "lane.example.toml")
    path = copy(tmp_path, **{"weight_tolerance_pct = 5.0": "weight_tolerance_pct = 500.0"})
    with pytest.raises(CommandRejected) as info:
        plan_reload(current, path)
    assert info.value.reason == "malformed" and "policy.weight_tolerance_pct" in info.value.detail
