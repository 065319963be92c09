"""visionkit: computer-vision applications behind one predictor interface.

    import visionkit
    det = visionkit.load("detect", "yolo11n")       # any catalog name or a model file
    result = det("bus.jpg")                          # -> Detections
    annotated = result.plot(image)                   # drawing is separate from inference
    for frame, result in det.stream("clip.mp4"):     # any source, one frame at a time
        print(frame.index, result.to_json())
"""

from .catalog import ModelEntry, list_models
from .errors import ModelNotFoundError, OptionError, SinkError, SourceError, VisionkitError, WeightsError
from .io.sources import Frame, open_source
from .multistream import MultiStream, StreamResult
from .pipeline import PersonPose
from .predictor import Predictor, export_onnx, load
from .results import ActionPrediction, Classification, Detections, Result, SemanticMask, Speed

__version__ = "0.1.0"


def available_models(task: str | None = None) -> list[str]:
    """Catalog model names, optionally for one task."""
    return [e.name for e in list_models(task)]


__all__ = [
    "ActionPrediction", "Classification", "Detections", "Frame", "ModelEntry", "ModelNotFoundError", "MultiStream",
    "OptionError", "PersonPose", "Predictor", "Result", "SemanticMask", "SinkError", "SourceError", "Speed",
    "StreamResult", "VisionkitError", "WeightsError", "available_models", "export_onnx", "list_models", "load",
    "open_source",
]
