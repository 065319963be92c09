"""Networks a classifier can be trained from: visionkit's own small ones and every torchvision classifier.

``lenet5`` and ``mlp`` are the two textbook networks (LeCun et al. 1998; a multi-layer perceptron on raw pixels);
they are catalog entries with ``backend = "visionkit"`` and no weights, so they appear in ``visionkit models``
next to the pretrained ones. Any other name is built by ``torchvision.models.get_model`` with random weights and
``num_classes`` outputs. Each architecture says what input it expects (``InputSpec``): the model card stores it,
and inference preprocesses exactly that way.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ..errors import OptionError

IMAGENET_MEAN = (0.485, 0.456, 0.406)  # torchvision's ImageNet normalisation, for its architectures
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class InputSpec:
    """What a network expects: square side in pixels, 1 (grey) or 3 (RGB) channels, normalisation."""

    size: int
    channels: int
    mean: tuple[float, ...]
    std: tuple[float, ...]


class LeNet5(nn.Module):
    """LeNet-5: two 5x5 conv + pool stages, then 120-84-classes fully connected layers, on 32x32 grey images.

    ReLU and max pooling replace the original's scaled tanh and trainable subsampling (the usual modern reading);
    the layer sizes are the paper's.
    """

    def __init__(self, num_classes: int = 10, in_channels: int = 1):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, 6, 5), nn.ReLU(), nn.MaxPool2d(2),   # 32 -> 28 -> 14
            nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2),            # 14 -> 10 -> 5
        )
        self.classifier = nn.Sequential(
            nn.Flatten(), nn.Linear(16 * 5 * 5, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(),
            nn.Linear(84, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


class MLP(nn.Module):
    """A two-hidden-layer perceptron on the flattened pixels: the baseline a convnet has to beat."""

    def __init__(self, num_classes: int = 10, in_features: int = 64, hidden: int = 128):
        super().__init__()
        self.layers = nn.Sequential(
            nn.Flatten(), nn.Linear(in_features, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(),
            nn.Linear(hidden, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


# visionkit's own architectures and the input each was designed for (LeNet-5: 32x32; the MLP: sklearn's 8x8 digits).
OWN_INPUTS = {"lenet5": InputSpec(32, 1, (0.5,), (0.5,)), "mlp": InputSpec(8, 1, (0.5,), (0.5,))}


def input_spec(arch: str, imgsz: int | None = None) -> InputSpec:
    """The input ``arch`` is trained and run at; ``imgsz`` overrides the side (torchvision's default is 224)."""
    own = OWN_INPUTS.get(arch)
    if own is not None:
        return own if imgsz is None else InputSpec(imgsz, own.channels, own.mean, own.std)
    _check_torchvision(arch)
    return InputSpec(imgsz or 224, 3, IMAGENET_MEAN, IMAGENET_STD)


def build(arch: str, num_classes: int, spec: InputSpec) -> nn.Module:
    """A randomly initialised ``arch`` with ``num_classes`` outputs for inputs of ``spec``."""
    if num_classes < 2:
        raise OptionError(f"a classifier needs at least 2 classes, got {num_classes}")
    if arch == "lenet5":
        if spec.size < 28:
            raise OptionError(f"lenet5 needs inputs of at least 28x28 pixels (two 5x5 conv stages), got {spec.size}")
        model: nn.Module = LeNet5(num_classes, spec.channels)
        if spec.size != 32:  # keep the paper's 16x5x5 feature map whatever the input side
            model.features.append(nn.AdaptiveAvgPool2d(5))
        return model
    if arch == "mlp":
        return MLP(num_classes, spec.size * spec.size * spec.channels)
    import torchvision

    _check_torchvision(arch)
    return torchvision.models.get_model(arch, weights=None, num_classes=num_classes)


def _check_torchvision(arch: str) -> None:
    import torchvision

    known = torchvision.models.list_models(module=torchvision.models)
    if arch not in known:
        raise OptionError(f"unknown classification architecture {arch!r}: expected lenet5, mlp or a torchvision "
                          f"classifier such as resnet18 or mobilenet_v3_large")


SEGMENT_SIZE = 520  # torchvision's segmentation presets resize the shorter side to 520


def segmentation_spec(arch: str, imgsz: int | None = None) -> InputSpec:
    """The square input a torchvision semantic segmentation ``arch`` is trained and run at (ImageNet mean/std)."""
    _check_torchvision_segmentation(arch)
    return InputSpec(imgsz or SEGMENT_SIZE, 3, IMAGENET_MEAN, IMAGENET_STD)


def build_segmenter(arch: str, num_classes: int) -> nn.Module:
    """A randomly initialised torchvision segmentation ``arch`` (backbone too: no weights are fetched) with
    ``num_classes`` outputs; its ``forward`` returns ``{"out": logits at the input size}``."""
    import torchvision

    _check_torchvision_segmentation(arch)
    return torchvision.models.get_model(arch, weights=None, weights_backbone=None, num_classes=num_classes)


def build_for(task: str, arch: str, num_classes: int, spec: InputSpec) -> nn.Module:
    """The network a ``task`` run of ``arch`` trains: a classifier, or a semantic segmenter for ``segment``."""
    return build_segmenter(arch, num_classes) if task == "segment" else build(arch, num_classes, spec)


def is_segmentation_architecture(name: str) -> bool:
    import torchvision

    return name in torchvision.models.list_models(module=torchvision.models.segmentation)


def _check_torchvision_segmentation(arch: str) -> None:
    if not is_segmentation_architecture(arch):
        raise OptionError(f"unknown semantic segmentation architecture {arch!r}: expected a torchvision one such as "
                          f"lraspp_mobilenet_v3_large, deeplabv3_mobilenet_v3_large or fcn_resnet50 (or a YOLO "
                          f".yaml/.pt for instance segmentation)")
