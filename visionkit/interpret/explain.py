"""``explain(predictor, image)``: why did the model say that? One heat map per prediction, on the image."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import OptionError
from ..predictor import Predictor
from .cam import CAM_METHODS, cam_maps, onnx_eigencam, saliency_maps
from .differentiable import differentiable, has_differentiable, model_backend, runtime_of
from .occlusion import occlusion_maps, rise_maps
from .results import Explanation
from .targets import select_targets

GRADIENT_FREE = ("occlusion", "rise")
# Default method per result kind. Grad-CAM averages each channel's gradient over the whole map, so for a detector it
# lights up every object of the box's class (on zidane.jpg the left person's map peaked on the right person);
# HiResCAM keeps the gradient where it is (gradient x activation per pixel), so a box's map stays on its object
# (97-99 % of the mass inside each box there); a pose or instance-mask box likewise. For classifiers and semantic
# segmentation (pytorch-grad-cam's segmentation tutorial) Grad-CAM is the reference. A backend gradients cannot
# cross (e.g. a TFLite file) is explained gradient-free, with RISE (GRADIENT_FREE_DEFAULT).
DEFAULT_METHOD = {"classification": "gradcam", "detections": "hirescam", "semantic_mask": "gradcam"}
GRADIENT_FREE_DEFAULT = "rise"
METHODS = (*CAM_METHODS, "saliency", *GRADIENT_FREE)


def load_image(image: Any) -> np.ndarray:
    """A path, PIL image or array -> BGR uint8 (as ``Predictor`` reads inputs)."""
    from pathlib import Path

    from ..io.images import read_image, to_bgr

    return read_image(image) if isinstance(image, (str, Path)) else to_bgr(image)


def explain(predictor: Predictor, image: Any, method: str | None = None, target: str | int | None = None,
            layers: list[str] | None = None, max_targets: int = 10, **method_options: Any) -> Explanation:
    """Heat maps of why ``predictor`` predicted what it did on ``image`` (path, PIL image or BGR array).

    Args:
        method: gradcam, gradcam++, hirescam, layercam, eigencam, scorecam (pytorch-grad-cam), saliency (captum),
            occlusion (captum) or rise; None = DEFAULT_METHOD's for the task (rise where gradients cannot cross).
            Gradient methods need a PyTorch model or an ONNX model onnx2torch converts (QDQ int8 graphs such as
            MoveNet as fake quantization); occlusion, rise and eigencam also run on any ONNX model.
        target: None = the top class (classification), every detection or person (up to ``max_targets``) or every
            non-background class of a mask; a class name or id; for detections and poses also a box
            "x1,y1,x2,y2" in image pixels (the one overlapping it most).
        layers: CAM layers by module name (or ONNX tensor name for ONNX-Runtime EigenCAM); default: the last
            feature maps before the head.
        method_options: occlusion: window, stride; rise: samples, cells, keep, seed.
    """
    if method is not None and method not in METHODS:
        raise OptionError(f"unknown explanation method {method!r}: expected one of {', '.join(METHODS)}")
    bgr = load_image(image)
    prediction = predictor.predict([bgr])[0]
    if method is None:  # instance segmentation (boxes with masks) is explained per box, as detection
        method = DEFAULT_METHOD.get(prediction.kind, "gradcam") if has_differentiable(predictor) else \
            GRADIENT_FREE_DEFAULT
    targets = select_targets(prediction, predictor.class_names, target, max_targets)
    used_layers = list(layers or [])
    if not targets:
        maps = np.zeros((0, *bgr.shape[:2]), np.float32)
    elif method == "occlusion":
        maps = occlusion_maps(predictor, bgr, targets, **method_options)
    elif method == "rise":
        maps = rise_maps(predictor, bgr, targets, **method_options)
    elif method == "eigencam" and runtime_of(model_backend(predictor)) != "torch":
        maps = np.repeat(onnx_eigencam(model_backend(predictor), bgr, layers), len(targets), axis=0)
        used_layers = used_layers or list(_onnx_layers(predictor))
    else:
        d = differentiable(predictor, method)
        if method == "saliency":
            maps = saliency_maps(d, bgr, targets)
        else:
            maps = cam_maps(d, bgr, targets, method, layers)
            names = {m: n for n, m in d.network.named_modules()}
            used_layers = used_layers or [names[m] for m in d.layers]
    return Explanation(method=method, maps=maps, targets=targets, prediction=prediction, layers=used_layers,
                       image_shape=bgr.shape[:2])


def _onnx_layers(predictor: Predictor) -> tuple[str, ...]:
    from pathlib import Path

    from .cam import feature_tensors

    return feature_tensors(Path(model_backend(predictor).weights))
