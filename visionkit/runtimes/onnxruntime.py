"""ONNX Runtime: ``.onnx`` files on the CPU, on CUDA through its CUDA execution provider and, with TensorRT
installed, through its TensorRT provider (fp16 there), whichever the installed build offers."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..device import Device
from .base import Runtime, Session, TensorSpec, file_facts

_TYPES = {"tensor(float)": "float32", "tensor(float16)": "float16", "tensor(uint8)": "uint8",
          "tensor(int8)": "int8", "tensor(int64)": "int64", "tensor(int32)": "int32", "tensor(bool)": "bool"}


class OnnxSession(Session):
    runtime = "onnx"

    def __init__(self, session: Any, precision: str, metadata: dict[str, str], target: str):
        inputs = [TensorSpec(a.name, tuple(a.shape), _TYPES.get(a.type, a.type)) for a in session.get_inputs()]
        outputs = [TensorSpec(a.name, tuple(a.shape), _TYPES.get(a.type, a.type)) for a in session.get_outputs()]
        super().__init__(precision, inputs, outputs, metadata, target)
        self.session = session
        self._names = [i.name for i in inputs]

    def run(self, inputs: Sequence[Any]) -> list[Any]:
        # InferenceSession.run is thread-safe: several threads may run one session at once.
        return self.session.run(None, {n: np.asarray(x) for n, x in zip(self._names, inputs)})

    def describe(self) -> str:
        """E.g. ``ONNX Runtime CUDA fp16 (TensorrtExecutionProvider, CUDAExecutionProvider, ...)``: the execution
        providers ONNX Runtime actually took, best first (a GPU build without its libraries falls back to CPU)."""
        return f"{super().describe()} ({', '.join(self.session.get_providers())})"


class OnnxRuntime(Runtime):
    name = "onnx"
    label = "ONNX Runtime"
    module = "onnxruntime"
    reads = (".onnx",)

    @classmethod
    def precisions(cls, device: Device) -> tuple[str, ...]:
        # int8: a quantized (QDQ) file runs as it is; fp16 only through TensorRT on a GPU.
        return ("fp32", "int8", "fp16") if device.type == "cuda" and _has("TensorrtExecutionProvider") else \
            ("fp32", "int8")

    @classmethod
    def load(cls, path: Path, device: Device) -> Session:
        import onnxruntime as ort

        facts = file_facts(path)
        precision = cls.check_precision(device, facts.quantized, path.name)
        providers: list[Any] = ["CPUExecutionProvider"]
        if device.type == "cuda" and _has("CUDAExecutionProvider"):
            providers.insert(0, ("CUDAExecutionProvider", {"device_id": device.index}))
            if _has("TensorrtExecutionProvider"):
                providers.insert(0, ("TensorrtExecutionProvider", {"device_id": device.index,
                                                                   "trt_fp16_enable": precision == "fp16"}))
        options = ort.SessionOptions()
        options.log_severity_level = 3  # errors only: QDQ models log one warning per node otherwise
        if device.threads:
            options.intra_op_num_threads = device.threads
        # No spin-waiting: the codec's postprocess (NMS) runs on the same cores right after, and spinning intra-op
        # threads made torch's NMS take 21-32 ms instead of 2-8 ms on 2 cores. Spinning only within a run
        # (session.force_spinning_stop) was measured too: 3-4 ms faster on yolov5n on an idle CPU, but 1.5-3x slower
        # than no spinning once other work shares the cores (load ~4: yolov5n 165 vs 58 ms, MoveNet 21 vs 13 ms).
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        # No fallback: on a file it cannot load, ONNX Runtime would print a four-line "EP Error ... Falling back"
        # banner on stdout (print(), whatever the log level) and retry the same file; the caller reports it instead.
        session = ort.InferenceSession(str(path), sess_options=options, providers=providers, enable_fallback=0)
        metadata = {**facts.metadata, **session.get_modelmeta().custom_metadata_map}
        target = "CUDA" if session.get_providers()[0] != "CPUExecutionProvider" else "CPU"
        return OnnxSession(session, precision, metadata, target)


def _has(provider: str) -> bool:
    import onnxruntime as ort

    return provider in ort.get_available_providers()
