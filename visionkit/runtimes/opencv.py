"""OpenCV DNN: ``.onnx`` files through ``cv2.dnn`` (no extra dependency: OpenCV is a core one). A fallback engine
for machines without ONNX Runtime; it drifts on int8 (QDQ) files, so it is never chosen unless asked for. One call
at a time: a ``cv2.dnn.Net`` keeps its input and outputs on itself."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..device import Device
from .base import Runtime, Session, TensorSpec, file_facts


class OpenCvSession(Session):
    runtime = "opencv"
    concurrent = False

    def __init__(self, net: Any, path: Path, precision: str, metadata: dict[str, str]):
        import onnx

        graph = onnx.load(str(path), load_external_data=False).graph
        initialisers = {i.name for i in graph.initializer}

        def spec(value: Any) -> TensorSpec:
            tensor = value.type.tensor_type
            return TensorSpec(value.name, tuple(d.dim_value or d.dim_param or None for d in tensor.shape.dim),
                              onnx.helper.tensor_dtype_to_np_dtype(tensor.elem_type).name)

        inputs = [spec(i) for i in graph.input if i.name not in initialisers]
        super().__init__(precision, inputs, [spec(o) for o in graph.output], metadata)
        self.net = net

    def run(self, inputs: Sequence[Any]) -> list[Any]:
        for spec, x in zip(self.inputs, inputs):
            self.net.setInput(x, spec.name)
        out = self.net.forward([o.name for o in self.outputs])
        return list(out)


class OpenCvRuntime(Runtime):
    concurrent = False
    name = "opencv"
    label = "OpenCV DNN"
    module = "cv2"
    reads = (".onnx",)

    @classmethod
    def precisions(cls, device: Device) -> tuple[str, ...]:
        return ("fp32", "int8")

    @classmethod
    def load(cls, path: Path, device: Device) -> Session:
        import cv2

        facts = file_facts(path)
        precision = cls.check_precision(device, facts.quantized, path.name)
        net = cv2.dnn.readNetFromONNX(str(path))
        return OpenCvSession(net, path, precision, facts.metadata)
