"""Backend selection: lazy imports, clear errors off a Pi, the simboard wire format."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from drivers.errors import BackendUnavailable, ConfigError
from drivers.gpio import BACKENDS, backend_class, open_backend
from drivers.gpio.simboard import decode_message, encode_message

ON_A_PI = importlib.util.find_spec("RPi") is not None


@pytest.fixture
def no_rpi_modules() -> Iterator[None]:
    saved = {k: v for k, v in sys.modules.items() if k == "RPi" or k.startswith("RPi.")}
    for k in saved:
        del sys.modules[k]
    yield
    for k in [k for k in sys.modules if k == "RPi" or k.startswith("RPi.")]:
        del sys.modules[k]
    sys.modules.update(saved)


def test_every_backend_module_imports_without_its_library() -> None:
    for name in BACKENDS:
        assert backend_class(name).__name__  # the rpigpio module loads anywhere; RPi.GPIO does not


@pytest.mark.skipif(ON_A_PI, reason="RPi.GPIO is installed here")
def test_missing_rpi_gpio_says_what_to_install_and_what_to_choose() -> None:
    with pytest.raises(BackendUnavailable) as err:
        open_backend("rpigpio")
    text = str(err.value)
    assert "rpi-lgpio" in text
    assert 'signal.gpio.backend = "sim"' in text
    assert isinstance(err.value, ImportError)
    assert isinstance(err.value, ConfigError)


def test_rpi_gpio_refusing_to_run_off_a_pi_becomes_backend_unavailable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, no_rpi_modules: None
) -> None:
    # RPi.GPIO's own import-time check off a Pi, reproduced as its package does it.
    pkg = tmp_path / "RPi"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "GPIO.py").write_text('raise RuntimeError("This module can only be run on a Raspberry Pi!")\n')
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(BackendUnavailable, match="can only be run on a Raspberry Pi") as err:
        open_backend("rpigpio")
    assert 'backend = "sim"' in str(err.value)


def test_unknown_backend_names_the_choices() -> None:
    with pytest.raises(ConfigError, match=r"unknown GPIO backend 'gpiod'.*'rpigpio'"):
        open_backend("gpiod")


def test_simboard_messages_round_trip() -> None:
    line = encode_message("write", pin=17, value=True)
    assert line.endswith(b"\n")
    assert decode_message(line.rstrip(b"\n")) == {"op": "write", "pin": 17, "value": True}


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        (b"{", "not JSON"),
        (b'{"op":"explode"}', "not a board message"),
        (b'{"op":"write","pin":"17","value":true}', "bad pin"),
        (b'{"op":"write","pin":true,"value":true}', "bad pin"),
        (b'{"op":"write","pin":99,"value":true}', "bad pin"),
        (b'{"op":"write","pin":17,"value":1}', "value must be"),
        (b"\xff\xfe", "not JSON"),
        (b"x" * 5000, "exceeds"),
        (b"[" * 4000, "not JSON"),  # nesting past the recursion limit
    ],
)
def test_simboard_bad_lines_are_refused_with_a_reason(line: bytes, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        decode_message(line)


@given(st.binary(max_size=200))
def test_simboard_decoder_never_raises_anything_but_value_error(data: bytes) -> None:
    try:
        msg = decode_message(data)
    except ValueError:
        return
    assert msg["op"] in {"setup_output", "setup_input", "write", "close", "level"}
