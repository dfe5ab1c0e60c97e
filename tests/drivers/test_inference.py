"""The inference engine: runtime selection, clear errors, int8 I/O, the shipped models in real LiteRT."""

from __future__ import annotations

import importlib
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

from drivers.errors import BackendUnavailable, ConfigError
from drivers.inference import RUNTIMES, dequantise, load_runtime, open_interpreter, quantise

MODELS = Path(__file__).resolve().parents[2] / "models"
SHIPPED = [
    pytest.param(
        path,
        marks=pytest.mark.skipif(not path.is_file(), reason=f"{path.name} not shipped yet"),
    )
    for path in (
        MODELS / "plate_ocr.tflite",
        MODELS / "plate_reader.tflite",
        MODELS / "container_reader.tflite",
        MODELS / "container_locator.tflite",
    )
]


def _refuse(name: str) -> ModuleType:
    raise ModuleNotFoundError(f"No module named {name!r}")


def test_no_runtime_installed_is_backend_unavailable_naming_the_package() -> None:
    with pytest.raises(BackendUnavailable, match="ai-edge-litert") as err:
        open_interpreter(MODELS / "plate_ocr.tflite", import_module=_refuse)
    assert isinstance(err.value, ImportError)
    assert isinstance(err.value, ConfigError)
    assert "tflite_runtime.interpreter" in str(err.value)


def test_falls_back_to_the_next_runtime() -> None:
    name, interpreter = load_runtime(("no_such_runtime_xyz.interpreter", RUNTIMES[0]))
    assert name == RUNTIMES[0]
    assert interpreter is importlib.import_module(RUNTIMES[0]).Interpreter


def test_a_module_without_interpreter_is_skipped() -> None:
    with pytest.raises(BackendUnavailable, match="has no Interpreter"):
        load_runtime(("json",))


def test_int8_quantisation_follows_scale_and_zero_point() -> None:
    x = np.array([0.0, 0.6, 1.0, 2.0, -2.0], dtype=np.float32)
    q = quantise(x, np.dtype(np.int8), (1 / 255, -128))
    assert q.dtype == np.int8
    assert q.tolist() == [-128, 25, 127, 127, -128]  # round(x / scale) + zp, clipped to int8
    u = quantise(x, np.dtype(np.uint8), (0.5, 10))
    assert u.tolist() == [10, 11, 12, 14, 6]
    back = dequantise(np.array([-128, 0, 127], dtype=np.int8), (1 / 256, -128))
    assert back.dtype == np.float32
    np.testing.assert_allclose(back, [0.0, 0.5, 255 / 256])


def test_float_tensors_pass_through() -> None:
    x = np.array([0.25], dtype=np.float64)
    assert quantise(x, np.dtype(np.float32), None).dtype == np.float32
    assert dequantise(np.array([1], dtype=np.int32), None).dtype == np.float32


def test_missing_model_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        open_interpreter(tmp_path / "none.tflite")


def test_garbage_model_file_is_a_config_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.tflite"
    bad.write_bytes(b"this is not a flatbuffer" * 10)
    with pytest.raises(ConfigError, match="cannot be loaded"):
        open_interpreter(bad)


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_shipped_model_runs_with_quantised_io(path: Path) -> None:
    model = open_interpreter(path, num_threads=1)
    assert model.runtime == RUNTIMES[0]
    assert model.quantised == (True, True)
    batch, h, w, c = model.input_shape
    assert (batch, c) == (1, 1)
    probs = model.invoke(np.random.default_rng(0).random((1, h, w, 1)).astype(np.float32))
    assert probs.dtype == np.float32
    assert probs.shape[0] == 1 and probs.shape[-1] == 37
    np.testing.assert_allclose(probs.sum(axis=-1), 1.0, atol=0.05)  # softmax survives int8
    with pytest.raises(ValueError, match="input shape"):
        model.invoke(np.zeros((1, h, w + 1, 1), dtype=np.float32))
    model.close()
    model.close()
    with pytest.raises(ConfigError, match="closed"):
        model.invoke(np.zeros((1, h, w, 1), dtype=np.float32))


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_shipped_model_is_small(path: Path) -> None:
    assert path.stat().st_size < 2_000_000
