"""Sensor config: the WIM map defaults match the simulator; bad loop and WIM settings name the key."""

from __future__ import annotations

from typing import Any

import pytest

from drivers.modbus.regmap import PointType, Table
from drivers.modbus.wim_map import default_wim_points
from edge_agent.config import ConfigInvalid, validate_config
from edge_agent.config.sensors import GpioLoopsConfig, ModbusLoopsConfig, ModbusWimConfig, WimRegisterMap

RFID = {"backend": "r2000", "port": "/dev/ttyUSB0"}
WIM = {"backend": "modbus", "url": "tcp://192.0.2.10:502"}
LOOPS = {"backend": "gpio"}


def lane(**devices: Any) -> dict[str, Any]:
    base = {"rfid": RFID, "wim": WIM, "loops": LOOPS}
    signal = {"gpio": {"backend": "rpigpio"}}
    return {"site_id": "pe01", "lane_id": "l3", "devices": base | devices, "signal": signal}


def errors(data: dict[str, Any]) -> list[tuple[str, str]]:
    with pytest.raises(ConfigInvalid) as info:
        validate_config(data)
    return info.value.errors


def test_default_wim_map_is_the_simulators() -> None:
    assert WimRegisterMap.model_validate({}).points() == default_wim_points()


def test_both_backends_parse() -> None:
    cfg = validate_config(
        lane(
            loops={
                "backend": "modbus",
                "url": "rtu:///dev/ttyUSB1?baud=9600",
                "addresses": {"in": 4, "out": 5},
                "entry": "in",
                "exit": "out",
            }
        )
    )
    assert isinstance(cfg.devices.loops, ModbusLoopsConfig)
    assert cfg.devices.loops.addresses == {"in": 4, "out": 5}
    assert isinstance(cfg.devices.wim, ModbusWimConfig)
    assert isinstance(validate_config(lane()).devices.loops, GpioLoopsConfig)


def test_wim_map_can_be_moved_point_by_point() -> None:
    wim = WIM | {
        "registers": {
            "speed": {"address": 100, "type": "f32", "word_order": "little"},
            "axle_weights": {"address": 200, "count": 4, "type": "u32", "scale": 1},
            "axle_spacings": {"address": 300, "count": 4},
        }
    }
    pts = validate_config(lane(wim=wim)).devices.wim.registers.points()
    assert pts["speed"].word_order == "little"
    assert pts["speed"].table is Table.INPUT
    assert [pts[f"axle_weight_{i}"].address for i in range(1, 5)] == [200, 202, 204, 206]
    assert pts["axle_weight_1"].type is PointType.U32
    assert "axle_weight_5" not in pts


@pytest.mark.parametrize(
    ("devices", "key", "reason"),
    [
        ({"wim": WIM | {"url": "udp://x"}}, "devices.wim.url", "scheme"),
        ({"wim": WIM | {"unit": 300}}, "devices.wim.unit", "247"),
        ({"wim": WIM | {"pol_interval_s": 1}}, "devices.wim.pol_interval_s", "unknown key"),
        (
            {"wim": WIM | {"registers": {"ack": {"address": 8, "table": "input"}}}},
            "devices.wim.registers",
            "ack must be",
        ),
        (
            {"wim": WIM | {"registers": {"speed": {"address": 1, "type": "string"}}}},
            "devices.wim.registers.speed",
            "length",
        ),
        ({"wim": WIM | {"reconnect_min_s": 5, "reconnect_max_s": 1}}, "devices.wim", "reconnect_min"),
        ({"wim": {"backend": "sim"}}, "devices.wim.backend", "unknown backend 'sim'"),
        ({"loops": {"backend": "gpio", "pins": {"entry": 5}}}, "devices.loops", "'exit' has no entry"),
        ({"loops": {"backend": "gpio", "pins": {"entry": 5, "exit": 5}}}, "devices.loops", "share"),
        ({"loops": {"backend": "gpio", "pins": {"entry": 5, "exit": 40}}}, "devices.loops", "BCM"),
        (
            {"loops": {"backend": "modbus", "url": "tcp://h", "table": "holding"}},
            "devices.loops.table",
            "discrete",
        ),
        ({"loops": {"backend": "gpio", "entry": "exit"}}, "devices.loops", "different"),
    ],
)
def test_bad_settings_name_the_key(devices: dict[str, Any], key: str, reason: str) -> None:
    errs = errors(lane(**devices))
    assert any(k == key and reason in r for k, r in errs), errs
