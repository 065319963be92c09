"""TensorFlow Lite (LiteRT): ``.tflite`` files on the CPU (the interpreter has no CUDA path), one call at a time
(an interpreter holds its tensors on itself, so the Predictor serialises calls)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..device import Device
from ..errors import WeightsError
from .base import Runtime, Session, TensorSpec, first_line


class TfliteSession(Session):
    runtime = "tflite"
    concurrent = False

    def __init__(self, interpreter: Any, precision: str):
        ins, outs = interpreter.get_input_details(), interpreter.get_output_details()
        super().__init__(precision, [_spec(d) for d in ins], [_spec(d) for d in outs])
        self.interpreter = interpreter
        self._in = [d["index"] for d in ins]
        self._out = [d["index"] for d in outs]

    def run(self, inputs: Sequence[Any]) -> list[Any]:
        for index, x in zip(self._in, inputs):
            self.interpreter.set_tensor(index, x)
        self.interpreter.invoke()
        return [self.interpreter.get_tensor(i) for i in self._out]


class TfliteRuntime(Runtime):
    concurrent = False
    name = "tflite"
    label = "TensorFlow Lite"
    extra = "tflite"
    module = "ai_edge_litert"
    reads = (".tflite",)

    @classmethod
    def precisions(cls, device: Device) -> tuple[str, ...]:
        return ("fp32", "int8")

    @classmethod
    def load(cls, path: Path, device: Device) -> Session:
        from ai_edge_litert.interpreter import Interpreter

        try:
            interpreter = Interpreter(model_path=str(path), num_threads=device.threads)
            interpreter.allocate_tensors()
        except (ValueError, RuntimeError) as e:
            raise WeightsError(f"{path}: not a loadable TensorFlow Lite model ({first_line(e)})") from None
        quantized = any(np.dtype(d["dtype"]) in (np.uint8, np.int8) for d in interpreter.get_input_details())
        return TfliteSession(interpreter, cls.check_precision(device, quantized, path.name))


def _spec(detail: dict[str, Any]) -> TensorSpec:
    return TensorSpec(detail["name"], tuple(int(v) for v in detail["shape"]), np.dtype(detail["dtype"]).name)
