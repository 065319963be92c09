"""The limits of CNNs, made visible: ``explain`` (why did it say that?) and ``attack`` (how easily is it fooled?).

    from visionkit import load
    from visionkit.interpret import attack_report, explain
    det = load("detect", "yolov5n")
    ex = explain(det, "bus.jpg")                        # one heat map per box: ex.maps (n, H, W)
    overlay = ex.plot(image, index=0)
    report = attack_report(load("classify", "resnet18"), "imagenet_sample/", "pgd", steps=10)

Heavy libraries (pytorch-grad-cam, captum, torchattacks, onnx2torch: ``pip install visionkit[explain]``) are
imported when a function runs, not with this package.
"""

from __future__ import annotations

# Imported here, not wrapped: the names then stay the functions even after their submodules are imported (a
# submodule import would otherwise rebind ``visionkit.interpret.explain`` to the module).
from .attack import attack_report
from .explain import explain

__all__ = ["attack_report", "explain"]
