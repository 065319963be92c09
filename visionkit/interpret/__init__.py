"""The limits of CNNs, made visible: ``explain`` (why did it say that?) and ``attack`` (how easily is it fooled?).

    from visionkit import load
    from visionkit.interpret import explain, attack_report
    det = load("detect", "yolov5n")
    ex = explain(det, "bus.jpg", method="gradcam")      # one heat map per box: ex.maps (n, H, W)
    overlay = ex.plot(image, index=0)

Heavy libraries (pytorch-grad-cam, captum, torchattacks, onnx2torch: ``pip install visionkit[explain]``) are
imported when a function runs, not with visionkit.
"""

from __future__ import annotations

from typing import Any


def explain(predictor: Any, image: Any, method: str = "gradcam", **options: Any) -> Any:
    """See ``visionkit.interpret.explain.explain``."""
    from .explain import explain as run

    return run(predictor, image, method, **options)
