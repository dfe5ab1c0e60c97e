"""Rules across a lane config's sections: one pin one master, floors, finite numbers, nothing simulated.

Each is checked the way a technician meets it, through ``edge-agent config check`` on a file, and the
error names the key (for a shared pin: both keys).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from edge_agent.cli import main
from edge_agent.config import ConfigInvalid, LaneConfig, parse_config

ROOT = Path(__file__).resolve().parents[2]
LANE = (ROOT / "config" / "lane.example.toml").read_text()
DEMO = (ROOT / "config" / "demo.toml").read_text()


def edited(text: str, **replace: str) -> str:
    for old, new in replace.items():
        assert old in text, old
        text = text.replace(old, new)
    return text


def errors(text: str) -> list[tuple[str, str]]:
    with pytest.raises(ConfigInvalid) as info:
        parse_config(text)
    return info.value.errors


def check(tmp_path: Path, text: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    path = tmp_path / "lane.toml"
    path.write_text(text)
    code = main(["config", "check", "--schema-only", str(path)])
    return code, capsys.readouterr().err


def test_shipped_lane_config_passes_every_rule() -> None:
    assert isinstance(parse_config(LANE), LaneConfig)
    assert parse_config(DEMO).simulation


# ---- one pin, one master -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pins", "message"),
    [
        ("{ entry = 17, exit = 6 }", "devices.loops.pins.entry: pin 17 is also signal.pins.red"),
        ("{ entry = 5, exit = 16 }", "devices.loops.pins.exit: pin 16 is also signal.watchdog.heartbeat_pin"),
        ("{ entry = 23, exit = 6 }", "devices.loops.pins.entry: pin 23 is also signal.readback.red"),
        ("{ entry = 5, exit = 22 }", "devices.loops.pins.exit: pin 22 is also signal.pins.green"),
    ],
)
def test_a_loop_input_on_a_signal_pin_names_both_keys(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], pins: str, message: str
) -> None:
    code, err = check(tmp_path, edited(LANE, **{"pins = { entry = 5, exit = 6 }": f"pins = {pins}"}), capsys)
    assert code == 2
    assert message in err


def test_a_second_rpigpio_bank_is_the_same_header() -> None:
    text = edited(
        LANE,
        **{
            "pins = { entry = 5, exit = 6 }": "pins = { entry = 27, exit = 6 }\n"
            'gpio = { backend = "rpigpio" }'
        },
    )
    assert ("devices.loops.pins.entry", "pin 27 is also signal.pins.amber") in errors(text)


def test_loops_on_a_bank_of_their_own_may_reuse_numbers() -> None:
    start, end = DEMO.index("[devices.loops]"), DEMO.index("[devices.cameras.front]")
    loops = '[devices.loops]\nbackend = "gpio"\npins = { entry = 17, exit = 6 }\ngpio = { backend = "sim" }\n'
    assert parse_config(DEMO[:start] + loops + DEMO[end:]).devices.loops.backend == "gpio"


def test_a_loop_input_on_a_simulated_lamp_wire_names_it() -> None:
    start, end = DEMO.index("[devices.loops]"), DEMO.index("[devices.cameras.front]")
    loops = '[devices.loops]\nbackend = "gpio"\npins = { entry = 5, exit = 6 }\n'
    text = edited(
        DEMO[:start] + loops + DEMO[end:],
        **{'gpio = { backend = "sim" }': 'gpio = { backend = "sim", loopback = { 17 = 5 } }'},
    )
    assert ("devices.loops.pins.entry", "pin 5 is also signal.gpio.loopback.17") in errors(text)


# ---- bounds and floors -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("old", "new", "key", "reason"),
    [
        ("amber_s = 3.0", "amber_s = 0", "signal.amber_s", "below the floor of 3"),
        ("amber_s = 3.0", "amber_s = 2.5", "signal.amber_s", "below the floor of 3"),
        ("amber_s = 3.0", "min_red_s = 0\ndark_ms = 0", "signal.min_red_s", "below the floor of 1"),
        ("amber_s = 3.0", "min_red_s = 0\ndark_ms = 0", "signal.dark_ms", "below the floor of 10"),
        ("health_interval_s = 30", "health_interval_s = 1e-6", "mqtt.health_interval_s", "floor of 1"),
        ("quota_mb = 512", "quota_mb = 0.001", "storage.quota_mb", "floor of 16"),
        ("poll_interval_s = 0.2", "poll_interval_s = 0.001", "devices.wim.poll_interval_s", "floor"),
        ("max_speed_kmh = 20.0", "max_speed_kmh = 1e9", "geometry.max_speed_kmh", "less than or equal"),
        (
            "weight_tolerance_kg = 500.0",
            "weight_tolerance_kg = 1e12",
            "policy.weight_tolerance_kg",
            "less than or equal",
        ),
        ("max_dwell_s = 120.0", "max_dwell_s = 1e9", "geometry.max_dwell_s", "less than or equal"),
        (
            "weight_tolerance_pct = 5.0",
            "weight_tolerance_pct = nan",
            "policy.weight_tolerance_pct",
            "finite number",
        ),
        ("max_speed_kmh = 20.0", "max_speed_kmh = inf", "geometry.max_speed_kmh", "finite number"),
        ("amber_s = 3.0", "amber_s = nan", "signal.amber_s", "finite number"),
        ("min_rssi_dbm = -70", "min_rssi_dbm = -inf", "devices.rfid.cross_read.min_rssi_dbm", "finite"),
    ],
)
def test_unsafe_settings_are_refused_naming_the_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], old: str, new: str, key: str, reason: str
) -> None:
    code, err = check(tmp_path, edited(LANE, **{old: new}), capsys)
    assert code == 2
    assert any(line.startswith(f"{key}: ") and reason in line for line in err.splitlines()), err


def test_every_floor_problem_is_listed_at_once() -> None:
    text = edited(
        LANE,
        **{
            "amber_s = 3.0": "amber_s = 0\nmin_red_s = 0\ndark_ms = 0",
            "health_interval_s = 30": "health_interval_s = 0.5",
        },
    )
    keys = {k for k, _ in errors(text)}
    assert {"signal.amber_s", "signal.min_red_s", "signal.dark_ms", "mqtt.health_interval_s"} <= keys


def test_a_simulation_may_scale_time_down_but_never_to_zero() -> None:
    fast = edited(DEMO, **{"amber_s = 3.0": "amber_s = 0.3\nmin_red_s = 0.1\ndark_ms = 1"})
    assert parse_config(fast).signal.amber_s == 0.3
    zero = edited(DEMO, **{"amber_s = 3.0": "amber_s = 0\nmin_red_s = 0"})
    errs = dict(errors(zero))
    assert "above 0" in errs["signal.amber_s"] and "above 0" in errs["signal.min_red_s"]


# ---- nothing simulated by accident -------------------------------------------------------------


def test_a_lane_without_a_signal_section_does_not_fall_onto_simulated_pins() -> None:
    start = LANE.index("[signal]\n")
    end = LANE.index("[commands]")
    text = LANE[:start] + LANE[end:]
    errs = dict(errors(text))
    assert "required key is missing" in errs["signal.gpio"]


@pytest.mark.parametrize("backend", ["sim", "simboard"])
def test_simulated_pins_need_a_simulation(backend: str) -> None:
    bank = '{ backend = "sim" }' if backend == "sim" else '{ backend = "simboard", socket = "/run/b.sock" }'
    text = edited(LANE, **{'gpio = { backend = "rpigpio" }': f"gpio = {bank}"})
    assert (
        "signal.gpio.backend",
        f"simulated backend '{backend}' in a config that does not declare simulation = true",
    ) in errors(text)


def test_simulated_cameras_and_recognition_need_a_simulation() -> None:
    sim_cam = '[devices.cameras.front]\nbackend = "sim"\nrole = "plate"\n\n[devices.wim]'
    errs = dict(errors(edited(LANE, **{"[devices.wim]": sim_cam})))
    assert "simulated backend 'sim'" in errs["devices.cameras.front.backend"]
    assert "required key is missing" in errs["recognition"]  # cameras need a named recogniser
    pi_cam = '[devices.cameras.front]\nbackend = "picamera2"\nrole = "plate"\n\n[devices.wim]'
    with_sim_rec = edited(LANE, **{"[devices.wim]": pi_cam}) + '\n[recognition]\nbackend = "sim"\n'
    assert (
        "recognition.backend",
        "simulated backend 'sim' in a config that does not declare simulation = true",
    ) in errors(with_sim_rec)


def test_the_demo_declares_itself_a_simulation() -> None:
    text = edited(DEMO, **{"simulation = true": "simulation = false"})
    keys = {k for k, _ in errors(text)}
    assert {
        "signal.gpio.backend",
        "devices.cameras.front.backend",
        "devices.cameras.container.backend",
    } <= keys
