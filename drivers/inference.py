"""The inference engine: a TFLite model run by LiteRT (``ai-edge-litert``) or the legacy ``tflite-runtime``.

The runtime is imported only when a model is opened, so a machine without either fails only when
recognition by model is configured, with :class:`~drivers.errors.BackendUnavailable` saying what to
install. Quantised models (int8/uint8 input or output) are handled here: callers always pass and get
float32 arrays (``q = round(x / scale) + zero_point``; ``x = scale * (q - zero_point)``).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from drivers.errors import BackendUnavailable, ConfigError

RUNTIMES: tuple[str, ...] = ("ai_edge_litert.interpreter", "tflite_runtime.interpreter")
"""Modules tried in order; each must provide ``Interpreter``."""

FloatArray = npt.NDArray[np.float32]
Importer = Callable[[str], ModuleType]


class Inference(Protocol):
    """A loaded model with one input and one output tensor."""

    @property
    def input_shape(self) -> tuple[int, ...]:
        """The input tensor's shape, batch first."""
        ...

    def invoke(self, x: npt.NDArray[np.floating[Any]]) -> FloatArray:
        """Run the model on ``x`` (float, shaped like the input) and return the output as float32."""
        ...

    def close(self) -> None:
        """Release the interpreter; safe to call twice."""
        ...


def load_runtime(
    modules: tuple[str, ...] = RUNTIMES, import_module: Importer = importlib.import_module
) -> tuple[str, Any]:
    """The first importable runtime of ``modules`` as ``(module name, Interpreter class)``."""
    errors: list[str] = []
    for name in modules:
        try:
            module = import_module(name)
        except ImportError as exc:
            errors.append(f"{name}: {exc}")
            continue
        interpreter = getattr(module, "Interpreter", None)
        if interpreter is None:
            errors.append(f"{name}: has no Interpreter")
            continue
        return name, interpreter
    raise BackendUnavailable(
        "no TFLite runtime: install ai-edge-litert (pip install ai-edge-litert) or, where it has no "
        "wheel, tflite-runtime; tried " + "; ".join(errors)
    )


def _quantisation(detail: dict[str, Any]) -> tuple[float, int] | None:
    """``(scale, zero_point)`` of an integer tensor, ``None`` for a float one."""
    if np.dtype(detail["dtype"]).kind not in "iu":
        return None
    scale, zero = detail.get("quantization", (0.0, 0))
    if not scale:
        raise ConfigError(f"tensor {detail.get('name')!r} is integer but carries no quantisation scale")
    return float(scale), int(zero)


class TfliteModel:
    """One ``.tflite`` model in one interpreter (not thread-safe: callers serialise ``invoke``)."""

    def __init__(
        self, path: Path, interpreter_class: Any, *, num_threads: int = 1, runtime: str = ""
    ) -> None:
        if not path.is_file():
            raise ConfigError(f"model file {path} does not exist")
        self.path = path
        self.runtime = runtime
        try:
            self._interp: Any = interpreter_class(model_path=str(path), num_threads=num_threads)
            self._interp.allocate_tensors()
        except (ValueError, RuntimeError) as exc:
            raise ConfigError(f"model {path} cannot be loaded: {exc}") from exc
        inputs, outputs = self._interp.get_input_details(), self._interp.get_output_details()
        if len(inputs) != 1 or len(outputs) != 1:
            raise ConfigError(f"model {path}: expected one input and one output tensor")
        self._in, self._out = inputs[0], outputs[0]
        self._in_dtype = np.dtype(self._in["dtype"])
        self._in_q = _quantisation(self._in)
        self._out_q = _quantisation(self._out)
        self._closed = False

    @property
    def input_shape(self) -> tuple[int, ...]:
        """The input tensor's shape, batch first."""
        return tuple(int(d) for d in self._in["shape"])

    @property
    def quantised(self) -> tuple[bool, bool]:
        """Whether the input and the output tensors are integer (quantised)."""
        return self._in_q is not None, self._out_q is not None

    def invoke(self, x: npt.NDArray[np.floating[Any]]) -> FloatArray:
        """Quantise ``x`` if the model wants integers, run, dequantise the output."""
        if self._closed:
            raise ConfigError(f"model {self.path} is closed")
        if tuple(x.shape) != self.input_shape:
            raise ValueError(f"model {self.path.name}: input shape {x.shape}, expected {self.input_shape}")
        self._interp.set_tensor(self._in["index"], quantise(x, self._in_dtype, self._in_q))
        self._interp.invoke()
        return dequantise(self._interp.get_tensor(self._out["index"]), self._out_q)

    def close(self) -> None:
        """Drop the interpreter (LiteRT frees it with the object)."""
        self._closed = True
        self._interp = None


def quantise(
    x: npt.NDArray[np.floating[Any]], dtype: np.dtype[Any], q: tuple[float, int] | None
) -> npt.NDArray[Any]:
    """``x`` as the model's input type: ``clip(round(x / scale) + zero_point)`` for integer inputs."""
    if q is None:
        return x.astype(dtype, copy=False)
    scale, zero = q
    info = np.iinfo(dtype)
    q_x: npt.NDArray[Any] = np.clip(np.round(x / scale) + zero, info.min, info.max).astype(dtype)
    return q_x


def dequantise(y: npt.NDArray[Any], q: tuple[float, int] | None) -> FloatArray:
    """A model output as float32: ``scale * (q - zero_point)`` for integer outputs."""
    if q is None:
        return y.astype(np.float32)
    scale, zero = q
    return ((y.astype(np.float32) - np.float32(zero)) * np.float32(scale)).astype(np.float32)


def open_interpreter(
    model_path: Path | str,
    num_threads: int = 1,
    *,
    runtimes: tuple[str, ...] = RUNTIMES,
    import_module: Importer = importlib.import_module,
) -> TfliteModel:
    """Load ``model_path`` in the first available runtime (LiteRT, then tflite-runtime).

    Raises :class:`BackendUnavailable` when no runtime is installed, :class:`ConfigError` when the
    file is missing or not a usable model.
    """
    runtime, interpreter_class = load_runtime(runtimes, import_module)
    return TfliteModel(Path(model_path), interpreter_class, num_threads=num_threads, runtime=runtime)
