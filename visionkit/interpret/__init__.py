"""The limits of CNNs, made visible: ``explain`` (why did it say that?) and ``attack`` (how easily is it fooled?).

    from visionkit import load
    from visionkit.interpret import attack_report, explain
    det = load("detect", "yolov5n")
    ex = explain(det, "bus.jpg")                        # one heat map per box: ex.maps (n, H, W)
    overlay = ex.plot(image, index=0)
    report = attack_report(load("classify", "resnet18"), "imagenet_sample/", "pgd", steps=10)

Heavy libraries (pytorch-grad-cam, captum, torchattacks, onnx2torch: ``pip install visionkit[explain]``) are
imported when a function runs, not with visionkit.
"""

from __future__ import annotations

from typing import Any


def explain(predictor: Any, image: Any, method: str | None = None, **options: Any) -> Any:
    """See ``visionkit.interpret.explain.explain``."""
    from .explain import explain as run

    return run(predictor, image, method, **options)


def attack_report(predictor: Any, data: Any, method: str = "fgsm", **options: Any) -> Any:
    """See ``visionkit.interpret.attack.attack_report``."""
    from .attack import attack_report as run

    return run(predictor, data, method, **options)
