"""``edge-agent diag modbus`` against the simulated WIM controller and loop card."""

from __future__ import annotations

import argparse
import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from drivers.errors import ConfigError
from drivers.modbus.line import parse_url
from drivers.modbus.regmap import PointType, Table
from edge_agent.diag import modbus
from hw_sim.modbus_loops import LoopCard
from hw_sim.modbus_wim import WimController
from hw_sim.world import AxleLoad, VehicleWeighing

Cap = pytest.CaptureFixture[str]


class SimThread:
    """Runs simulated devices on their own loop, since the diagnostic runs its own ``asyncio.run``."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def call(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(10)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()


@pytest.fixture
def sims() -> Iterator[tuple[SimThread, WimController, LoopCard]]:
    st = SimThread()
    wim = WimController()
    card = LoopCard(addresses={"entry": 0, "exit": 1})
    st.call(wim.__aenter__())
    st.call(card.__aenter__())

    async def truck() -> None:
        wim.record(VehicleWeighing(7.5, (AxleLoad(5000, 0), AxleLoad(9000, 3.5))))
        card.set_presence("exit", True)
        await wim.flush()
        await card.update("exit")

    st.call(truck())
    yield st, wim, card
    st.call(wim.close())
    st.call(card.close())
    st.close()


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers()
    modbus.register(sub)
    return parser.parse_args(["modbus", *argv])


def write_config(tmp_path: Path, wim_url: str, loops_url: str) -> Path:
    path = tmp_path / "lane.toml"
    path.write_text(f"""
site_id = "pe01"
lane_id = "l3"
simulation = true
[devices.rfid]
backend = "r2000"
port = "/dev/ttyUSB9"
[devices.wim]
backend = "modbus"
url = "{wim_url}"
timeout_s = 0.3
[devices.loops]
backend = "modbus"
url = "{loops_url}"
""")
    return path


def test_device_map_is_read_and_decoded(sims: Any, tmp_path: Path, capsys: Cap) -> None:
    _, wim, card = sims
    path = write_config(tmp_path, wim.url, card.url)
    assert modbus.run(parse("--config", str(path), "--device", "wim")) == 0
    out = capsys.readouterr().out
    assert "2 read(s)" in out
    assert "pending          input:1     1" in out
    assert "speed            input:15    7.5 km/h" in out
    assert "axle_weight_2    input:22    9000 kg" in out
    assert (
        modbus.run(
            parse("--config", str(path), "--device", "loops", "--watch", "--count", "2", "--interval", "0.01")
        )
        == 0
    )
    out = capsys.readouterr().out
    assert out.count("exit             discrete:1     True") == 2


def test_device_that_does_not_answer_gets_a_hint(sims: Any, tmp_path: Path, capsys: Cap) -> None:
    _, wim, card = sims
    wim.server.silent = True
    path = write_config(tmp_path, wim.url, card.url)
    assert modbus.run(parse("--config", str(path), "--device", "wim")) == 1
    assert "no reply from unit 1 at 127.0.0.1" in capsys.readouterr().err


def test_raw_read_prints_registers_and_the_decoded_value(sims: Any, capsys: Cap) -> None:
    _, wim, _ = sims
    assert modbus.run(parse("--url", wim.url, "--read", "input:15:2:f32")) == 0
    out = capsys.readouterr().out
    assert "15    16624  0x40F0" in out
    assert "as f32 (big): 7.5" in out
    assert modbus.run(parse("--url", wim.url, "--read", "holding:21:2:u16")) == 0
    assert "as u16 (big): 500, 900" in capsys.readouterr().out  # raw: the map scales by 10 kg


def test_raw_read_errors(sims: Any, capsys: Cap) -> None:
    _, wim, card = sims
    args = parse("--url", wim.url, "--unit", "7", "--read", "holding:0:1", "--timeout", "0.2")
    assert modbus.run(args) == 1
    assert "no reply from unit 7" in capsys.readouterr().err
    assert modbus.run(parse("--url", wim.url, "--read", "holding:900:2")) == 1
    assert "refused" in capsys.readouterr().err
    assert modbus.run(parse("--url", "tcp://127.0.0.1:1", "--read", "holding:0:1")) == 1
    assert "cannot open" in capsys.readouterr().err
    assert modbus.run(parse("--url", card.url, "--read", "discrete:0:2")) == 0
    out = capsys.readouterr().out
    assert "  0     0\n  1     1\n" in out  # the exit loop's bit is set


def test_usage_errors(tmp_path: Path, capsys: Cap) -> None:
    assert modbus.run(parse("--url", "tcp://h:1")) == 2
    assert modbus.run(parse("--device", "wim")) == 2
    assert modbus.run(parse("--url", "ftp://x", "--read", "holding:0:1")) == 2
    bad = tmp_path / "bad.toml"
    bad.write_text('site_id = "x"\n')
    assert modbus.run(parse("--config", str(bad), "--device", "wim")) == 2
    assert "devices" in capsys.readouterr().err


def test_rtu_hint_names_the_line_settings() -> None:
    text = modbus.hint(parse_url("rtu:///dev/ttyUSB0?baud=19200"), 1)
    assert text.startswith("no reply from unit 1 at 19200 8N1 on /dev/ttyUSB0: check unit id, baud")
    assert "A/B wiring" in text


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("holding:1", "expected"),
        ("register:0:1", "table"),
        ("holding:x:1", "integers"),
        ("holding:0:126", "count"),
        ("coil:0:2:u16", "bool"),
        ("holding:0:1:f32", "needs 2"),
        ("holding:0:1:f64", "type"),
    ],
)
def test_parse_read_rejects_bad_specs(spec: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        modbus.parse_read(spec)


def test_parse_read_and_decode_block() -> None:
    req, point = modbus.parse_read("input:0x10:4:u32", "little")
    assert (req.table, req.address, req.count) == (Table.INPUT, 16, 4)
    assert point is not None
    assert point.type is PointType.U32
    assert modbus.decode_block(point, [1, 0, 0, 2]) == [1, 2 << 16]
    _, text = modbus.parse_read("holding:0:3:string")
    assert text is not None
    assert modbus.decode_block(text, [0x4142, 0x4344, 0x4500]) == ["ABCDE"]


def test_a_link_that_will_not_open_names_the_real_failure(tmp_path: Path, capsys: Cap) -> None:
    assert modbus.run(parse("--url", "tcp://127.0.0.1:1", "--read", "holding:0:1")) == 1
    err = capsys.readouterr().err
    assert "connection refused by 127.0.0.1:1" in err and "wrong port" in err
    missing = tmp_path / "ttyUSB-gone"
    assert modbus.run(parse("--url", f"rtu://{missing}?baud=19200", "--read", "holding:0:1")) == 1
    err = capsys.readouterr().err
    assert f"no such device {missing}" in err and "refused" not in err


def test_garbled_tcp_replies_get_tcp_hints_not_serial_ones() -> None:
    from drivers.modbus.client import ModbusFrameError

    tcp = modbus._problem(ModbusFrameError("read: bad frame"), parse_url("tcp://127.0.0.1:502"), 1)
    rtu = modbus._problem(ModbusFrameError("read: bad frame"), parse_url("rtu:///dev/ttyUSB0?baud=9600"), 1)
    assert "baud" not in tcp and "RTU-over-TCP" in tcp
    assert "baud" in rtu
