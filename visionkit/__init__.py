"""visionkit: computer-vision applications behind one predictor interface.

    import visionkit
    det = visionkit.load("detect", "yolo11n")       # any catalog name or a model file
    result = det("bus.jpg")                          # -> Detections
    annotated = result.plot(image)                   # drawing is separate from inference
    why = visionkit.explain(det, "bus.jpg")          # -> Explanation: a heat map per box
    for frame, result in det.stream("clip.mp4"):     # any source, one frame at a time
        print(frame.index, result.to_json())
    table = visionkit.results_to_frame(det.stream("clip.mp4"))  # pandas, one row per object
    run = visionkit.train("classify", data="digits/", model="lenet5")  # a run folder = a model
    visionkit.load("classify", run.run_dir)("digit.png")
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .errors import (
    DataError,
    ModelNotFoundError,
    OptionError,
    ResultFormatError,
    SinkError,
    SourceError,
    VisionkitError,
    WeightsError,
)

if TYPE_CHECKING:
    from .batch import read_results
    from .batch.schema import results_to_frame
    from .catalog import ModelEntry, list_models
    from .composites.person_pose import PersonPose
    from .io.sources import Frame, open_source
    from .predictor import Predictor, export_onnx, load
    from .results import ActionPrediction, Classification, Detections, Result, SemanticMask, Speed

__version__ = "0.1.0"

# The rest of the API is imported on first use (PEP 562): `import visionkit` and the `visionkit` command then
# start without loading numpy, OpenCV and the model code, so Ctrl-C or `--help` in the first half second is
# handled by the command like at any other time, instead of interrupting a chain of imports.
_LAZY = {
    ".batch": ("read_results",),
    ".batch.schema": ("results_to_frame",),
    ".catalog": ("ModelEntry", "list_models"),
    ".heatmap": ("Heatmap", "heatmap_of"),
    ".interpret": ("attack_report", "explain"),
    ".io.sources": ("Frame", "open_source"),
    ".composites.multistream": ("MultiStream", "StreamResult"),
    ".composites.person_pose": ("PersonPose",),
    ".predictor": ("Predictor", "export_onnx", "load"),
    ".results": ("ActionPrediction", "Classification", "Detections", "Result", "SemanticMask", "Speed"),
}
_MODULE_OF = {name: module for module, names in _LAZY.items() for name in names}


def __getattr__(name: str) -> Any:
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module 'visionkit' has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


def train(task: str, data: str | None = None, model: str | None = None, **options: Any) -> Any:
    """Train a model into a run folder that ``load(task, run.run_dir)`` runs; see ``visionkit.training.train``."""
    from . import training  # torch and the trainers load only when training

    return training.train(task, data, model, **options)


def available_models(task: str | None = None) -> list[str]:
    """Catalog model names, optionally for one task."""
    from .catalog import list_models

    return [e.name for e in list_models(task)]


__all__ = [
    "ActionPrediction", "Classification", "DataError", "Detections", "Frame", "Heatmap", "ModelEntry",
    "ModelNotFoundError",
    "MultiStream", "OptionError", "PersonPose", "Predictor", "Result", "ResultFormatError", "SemanticMask", "SinkError",
    "SourceError", "Speed", "StreamResult", "VisionkitError", "WeightsError", "attack_report", "available_models",
    "explain", "export_onnx", "heatmap_of", "list_models", "load", "open_source", "read_results",
    "results_to_frame", "train",
]
