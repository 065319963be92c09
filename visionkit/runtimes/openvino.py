"""OpenVINO: ``.onnx`` files (read directly) and OpenVINO IR (``.xml`` + ``.bin``) on Intel CPUs and GPUs.

Precision is forced, not left to the plugin: OpenVINO's CPU plugin runs bf16 by default on CPUs with AVX-512 BF16
or AMX (measured: boxes of a random-weight YOLO moved by up to 42 px), so fp32 sets the f32 inference hint and bf16
or fp16 are used only when asked for. A model with dynamic input axes is compiled once per input shape it meets
(static shapes run faster on the CPU plugin than a dynamic compile), keeping the last few compiles.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

from ..device import Device
from ..errors import OptionError, WeightsError
from .base import Runtime, Session, TensorSpec, file_facts
from .pool import Pool

_HINTS = {"fp32": "f32", "bf16": "bf16", "fp16": "f16", "int8": "f32"}  # int8: the quantized ops; the rest in f32
_CAPABILITY = {"bf16": "BF16", "fp16": "FP16"}
SHAPES_KEPT = 8


class OpenVinoSession(Session):
    runtime = "openvino"

    def __init__(self, model: Any, config: dict[str, Any], target: str, precision: str, metadata: dict[str, str]):
        inputs = [TensorSpec(p.get_any_name(), _shape(p.get_partial_shape()), p.get_element_type().to_dtype().name)
                  for p in model.inputs]
        outputs = [TensorSpec(p.get_any_name(), _shape(p.get_partial_shape()), p.get_element_type().to_dtype().name)
                   for p in model.outputs]
        super().__init__(precision, inputs, outputs, metadata, target)
        self._model = model
        self._config = config
        self._dynamic = any(p.get_partial_shape().is_dynamic for p in model.inputs)
        self._compiled: OrderedDict[tuple[tuple[int, ...], ...], Pool[Any]] = OrderedDict()
        self._lock = threading.Lock()
        if not self._dynamic:
            self._requests(())

    def _requests(self, shapes: tuple[tuple[int, ...], ...]) -> Pool[Any]:
        """The infer-request pool of the model compiled for these input shapes (one compile per shape)."""
        with self._lock:
            pool = self._compiled.get(shapes)
            if pool is not None:
                self._compiled.move_to_end(shapes)
                return pool
            model = self._model
            if shapes:
                model = model.clone()
                model.reshape({i: list(s) for i, s in enumerate(shapes)})
            compiled = _core().compile_model(model, self.target, self._config)
            pool = Pool(compiled.create_infer_request)
            self._compiled[shapes] = pool
            if len(self._compiled) > SHAPES_KEPT:
                self._compiled.popitem(last=False)
            return pool

    def run(self, inputs: Sequence[Any]) -> list[Any]:
        arrays = [np.asarray(x) for x in inputs]
        shapes = tuple(tuple(x.shape) for x in arrays) if self._dynamic else ()
        with self._requests(shapes).borrow() as request:
            request.infer(arrays)
            # Copies: a request reuses its output buffers on the next call, which another thread may make next.
            return [request.get_output_tensor(i).data.copy() for i in range(len(self.outputs))]


class OpenVinoRuntime(Runtime):
    name = "openvino"
    label = "OpenVINO"
    extra = "openvino"
    module = "openvino"
    reads = (".onnx", ".xml")

    @classmethod
    def precisions(cls, device: Device) -> tuple[str, ...]:
        if device.type == "cuda":
            return ()
        capabilities = set(_core().get_property("CPU", "OPTIMIZATION_CAPABILITIES"))
        return ("fp32", *(p for p, cap in _CAPABILITY.items() if cap in capabilities))

    @classmethod
    def load(cls, path: Path, device: Device) -> Session:
        if device.type == "cuda":
            raise OptionError("runtime openvino runs on Intel CPUs and GPUs, not CUDA devices: use --runtime onnx "
                              "(CUDA/TensorRT) or torch with --device cuda, or --device cpu")
        if path.suffix.lower() == ".xml" and not path.with_suffix(".bin").is_file():
            raise WeightsError(f"{path}: its weights file {path.with_suffix('.bin').name} is missing (an OpenVINO IR "
                               f"is the .xml and the .bin beside it)")
        facts = file_facts(path)
        precision = cls.check_precision(device, facts.quantized, path.name)
        config: dict[str, Any] = {"INFERENCE_PRECISION_HINT": _HINTS[precision], "PERFORMANCE_HINT": "LATENCY"}
        if device.threads:
            config["INFERENCE_NUM_THREADS"] = device.threads
        model = _core().read_model(str(path))
        return OpenVinoSession(model, config, "CPU", precision, facts.metadata)


@cache
def _core() -> Any:
    import openvino as ov

    return ov.Core()


def _shape(partial: Any) -> tuple[int | None, ...]:
    return tuple(d.get_length() if d.is_static else None for d in partial)
