"""Device URLs and RTU line timing."""

from __future__ import annotations

import pytest

from drivers.errors import ConfigError
from drivers.modbus.line import Endpoint, char_time, cycle_time, frame_gap, parse_url, transaction_time
from drivers.modbus.regmap import ReadRequest, Table


def test_tcp_urls() -> None:
    assert parse_url("tcp://192.0.2.10:5020") == Endpoint("tcp", host="192.0.2.10", port=5020)
    assert parse_url("tcp://wim.lane3").port == 502
    assert parse_url("tcp://127.0.0.1:1").describe() == "127.0.0.1:1"


def test_rtu_urls() -> None:
    ep = parse_url("rtu:///dev/ttyUSB0?baud=9600&parity=e&stopbits=1")
    assert (ep.device, ep.baud, ep.parity, ep.stopbits, ep.bytesize) == ("/dev/ttyUSB0", 9600, "E", 1, 8)
    assert ep.is_serial
    assert ep.line == "9600 8E1"
    assert parse_url("rtu:///dev/pts/3").baud == 19200


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("udp://1.2.3.4", "scheme"),
        ("tcp://", "needs a host"),
        ("tcp://h:99999", "bad port"),
        ("tcp://h:502?baud=9600", "no options"),
        ("rtu://host/dev/ttyUSB0", "device path"),
        ("rtu:///dev/ttyUSB0?baud=1234", "baud 1234"),
        ("rtu:///dev/ttyUSB0?baud=fast", "integers"),
        ("rtu:///dev/ttyUSB0?parity=X", "parity"),
        ("rtu:///dev/ttyUSB0?speed=9600", "unknown option"),
    ],
)
def test_bad_urls_name_the_problem(url: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_url(url)


def test_rtu_timing_follows_the_spec() -> None:
    assert char_time(9600) == pytest.approx(11 / 9600)
    assert frame_gap(9600) == pytest.approx(3.5 * 11 / 9600)
    assert frame_gap(115200) == pytest.approx(0.00175)
    one = ReadRequest(Table.HOLDING, 0, 1)  # 8 bytes out, 7 back
    assert transaction_time(one, 9600) == pytest.approx(15 * 11 / 9600 + 7 * 11 / 9600)
    bits = ReadRequest(Table.DISCRETE, 0, 9)  # 2 data bytes
    assert transaction_time(bits, 19200) == pytest.approx((8 + 7) * 11 / 19200 + 7 * 11 / 19200)
    plan = [one, bits]
    rtu = parse_url("rtu:///dev/ttyUSB0?baud=9600")
    assert cycle_time(plan, rtu) == pytest.approx(transaction_time(one, 9600) + transaction_time(bits, 9600))
    assert cycle_time(plan, parse_url("tcp://h")) == 0.0
