"""Seeded random real architectures made image-dependent, for parity tests and pipelines that need a .pt.

Official YOLOv8/YOLO11 weights are not available offline. Random weights alone make a useless test (every
score ~1e-5, boxes that do not depend on the picture), so BatchNorm statistics are calibrated on real photos
and the class bias is raised: then a few dozen to a few hundred boxes per image clear a 0.1 threshold, with
distinct scores and many classes, and they change when the image does.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

BIAS_SHIFT = 6.0  # added to the YOLO Detect head's class bias (init is about -11.5, -10.2, -8.8 per level)


def calibrate_bn(model: torch.nn.Module, run: Any) -> None:
    """Set every BatchNorm's running stats to those of one real batch (``run`` does the forward pass)."""
    bns = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    for bn in bns:
        bn.reset_running_stats()
        bn.momentum = None  # cumulative average: after one batch, exactly that batch's statistics
    model.train()
    with torch.no_grad():
        run()
    model.eval()


def build_yolo(yaml: str, path: Path, calib: list[np.ndarray], bias_shift: float = BIAS_SHIFT, seed: int = 0) -> Path:
    """A seeded random ultralytics model from ``yaml``, made image-dependent on the ``calib`` images (BGR),
    saved as a real checkpoint. Also used by benchmarks/ (which put this folder on ``sys.path``)."""
    from ultralytics import YOLO
    from ultralytics.data.augment import LetterBox

    from visionkit.catalog import load_class_names

    torch.manual_seed(seed)
    yolo = YOLO(yaml)
    net = yolo.model
    box = LetterBox(640, auto=False)
    x = np.stack([box(image=im) for im in calib])[..., ::-1].transpose(0, 3, 1, 2)
    x = torch.from_numpy(np.ascontiguousarray(x)).float() / 255
    calibrate_bn(net, lambda: net(x))
    head = net.model[-1]
    for seq in getattr(head, "cv3", ()):  # last conv of each level's class branch (classifiers have none)
        seq[-1].bias.data += bias_shift
    nc = int(head.nc if hasattr(head, "nc") else head.linear.out_features)
    # COCO's names for an 80-class head, "person" for a pose head (1 class), else numbered classes.
    names = load_class_names("coco80") if nc == 80 else ["person"] if nc == 1 else [f"class{i}" for i in range(nc)]
    net.names = dict(enumerate(names))
    yolo.save(path)  # ultralytics' own checkpoint format (fp16 weights + metadata), as `yolo train` writes
    return path


def build_yolo_pose(yaml: str, path: Path, calib: list[np.ndarray], bias_shift: float = BIAS_SHIFT) -> Path:
    """A seeded random one-class ultralytics pose model, made image-dependent (see test_parity_detect), saved as
    ultralytics' own checkpoint format."""
    from ultralytics import YOLO
    from ultralytics.data.augment import LetterBox
    from ultralytics.nn.tasks import PoseModel

    torch.manual_seed(0)
    yolo = YOLO(yaml)
    net = PoseModel(yaml, nc=1, verbose=False)  # yolo11-pose.yaml says nc 80; COCO pose models have 1 class
    net.names, net.task, net.args = {0: "person"}, "pose", yolo.model.args  # what YOLO(yaml) sets on its model
    yolo.model = net
    box = LetterBox(640, auto=False)
    batch = np.stack([box(image=im) for im in calib])[..., ::-1].transpose(0, 3, 1, 2)  # BHWC BGR -> BCHW RGB
    x = torch.from_numpy(np.ascontiguousarray(batch))
    calibrate_bn(net, lambda: net(x.float() / 255))
    for seq in net.model[-1].cv3:
        seq[-1].bias.data += bias_shift
    yolo.save(path)
    return path


def build_torchvision(arch: str, path: Path, calib: torch.Tensor, seed: int = 0, **kwargs: Any) -> Path:
    """torchvision's ``arch`` with seeded random weights (``kwargs`` go to ``get_model``), its BatchNorm statistics
    calibrated on ``calib`` (a preprocessed batch of real images or clips) so the outputs depend on the input, and
    its state dict saved to ``path``: what visionkit loads as that model's ``weights``."""
    import torchvision

    torch.manual_seed(seed)
    model = torchvision.models.get_model(arch, weights=None, **kwargs)
    calibrate_bn(model, lambda: model(calib))
    torch.save(model.state_dict(), path)
    return path


def random_video_classifier(arch: str, path: Path) -> Path:
    """Seeded random weights for ``arch`` as a torchvision state dict file.

    Convolutions are re-drawn variance-preserving (He, fan-in) and the classifier wider than torchvision's init: with
    the builders' own init, S3D's activations fade to nothing over its depth and all 400 scores come out equal to 1e-7,
    which would make a top-k comparison meaningless.
    """
    import torchvision

    torch.manual_seed(0)
    model = torchvision.models.get_model(arch, weights=None)
    layers = [m for m in model.modules() if isinstance(m, (torch.nn.Linear, torch.nn.Conv3d))]
    for conv in layers[:-1]:
        if isinstance(conv, torch.nn.Conv3d):
            torch.nn.init.kaiming_normal_(conv.weight, mode="fan_in", nonlinearity="relu")
    torch.nn.init.normal_(layers[-1].weight, std=0.05)
    torch.save(model.state_dict(), path)
    return path
