"""`edge-agent config check`: OK, or every error as `dotted.key.path: reason` with exit 2."""

from __future__ import annotations

from pathlib import Path

import pytest

from edge_agent.cli import main

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("name", ["lane.example.toml", "demo.toml"])
def test_shipped_configs_are_valid(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    # --schema-only: the files they name live on a lane (or in the demo's run directory), not here
    assert main(["config", "check", "--schema-only", str(ROOT / "config" / name)]) == 0
    assert capsys.readouterr().out.strip() == "OK"


def test_every_error_names_its_key(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "lane.toml"
    text = (ROOT / "config" / "lane.example.toml").read_text()
    text = text.replace("exit_loop_m = 45.0", "exit_loop_m = -1\nexit_lopo_m = 3")
    text = text.replace('backend = "r2000"', 'backend = "r3000"')
    text = text.replace('protocol = "5"', 'protocol = "4"')
    bad.write_text(text)
    assert main(["config", "check", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "geometry.exit_loop_m: Input should be greater than 0" in err
    assert "geometry.exit_lopo_m: unknown key" in err
    assert "devices.rfid.backend: unknown backend 'r3000'" in err
    assert "mqtt.protocol:" in err


def test_invalid_toml_names_line_and_column(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "lane.toml"
    bad.write_text('site_id = "X"\nlane_id = \n')
    assert main(["config", "check", str(bad)]) == 2
    assert "line 2, column" in capsys.readouterr().err


def test_missing_file_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["config", "check", str(tmp_path / "nope.toml")]) == 2
    assert "No such file" in capsys.readouterr().err


def test_missing_required_sections_are_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "lane.toml"
    bad.write_text('site_id = "X"\nlane_id = "L1"\n[devices]\n')
    assert main(["config", "check", str(bad)]) == 2
    err = capsys.readouterr().err
    for key in ("devices.rfid", "devices.loops", "devices.wim"):
        assert f"{key}: required key is missing" in err
