"""Runtimes: the engines that execute a model, one module each, with no knowledge of any model family.

Layering (see ARCHITECTURE.md): ``runtimes`` load a model file (or wrap a PyTorch module) and run a batch of arrays;
``tasks`` hold the codecs, one class per model family, that turn images into model inputs and model outputs into
results and never import an engine; ``composites`` build predictors (tracking, sliding-window action, person pose,
many streams) on the ``Predictor``'s public surface. A new runtime is one module here plus its line in ``RUNTIMES``.

    session = open_session(Path("yolov8n.onnx"), Device("cpu", runtime="openvino", precision="bf16"))
    outputs = session.run([batch])            # list of arrays in, list of arrays out, in the file's output order

TensorRT plugs in through ONNX Runtime's TensorRT execution provider (``runtime="onnx"`` on CUDA with the
``onnxruntime-gpu`` build: the provider list is ``TensorrtExecutionProvider, CUDAExecutionProvider, CPU``) or through
torch-tensorrt as a further module here.
"""

from __future__ import annotations

from .base import (
    PRECISIONS,
    RUNTIMES,
    Runtime,
    Session,
    TensorSpec,
    available_runtimes,
    file_facts,
    get_runtime,
    open_session,
)

__all__ = ["PRECISIONS", "RUNTIMES", "Runtime", "Session", "TensorSpec", "available_runtimes", "file_facts",
           "get_runtime", "open_session"]
