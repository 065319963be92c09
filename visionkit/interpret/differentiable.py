"""Predictors as differentiable functions of the image the user sees, for gradient methods (CAMs, saliency,
attacks).

A backend's own ``preprocess`` works on uint8 numpy images, which no gradient can cross. A ``Differentiable``
redoes that step in torch on a (B, 3, H, W) RGB float image in 0..1 at source size, then runs the backend's
network, so ``forward(image)`` is the backend's raw output and its gradient lives on the image's pixels. The
network is the backend's own torch module, or, for an ONNX model, its ONNX file converted by ``onnx2torch``
(the official yolov5n.onnx converts and matches ONNX Runtime to 1e-3). Reported predictions still come from the
backend's stages; this view only supplies gradients.

Builders are registered per (task, backend name) with ``register_differentiable``; a backend without one (e.g. a
quantized QDQ graph, which onnx2torch cannot convert) is explained with the gradient-free methods instead.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import OptionError, WeightsError
from .geometry import input_geometry

Builder = Callable[[Any], "Differentiable"]
_BUILDERS: dict[tuple[str, str], Builder] = {}


class Differentiable(torch.nn.Module):
    """image (B, 3, H, W) RGB in 0..1 -> the backend's raw output, differentiable end to end.

    ``layers`` are the network's modules whose activations CAMs read by default (the last feature maps before
    the head). A classifier's raw output must be logits (what attacks' cross-entropy needs).
    """

    def __init__(self, backend: Any, network: torch.nn.Module, layers: list[torch.nn.Module]):
        super().__init__()
        self.backend = backend
        self.network = network
        self.layers = layers
        self.dtype = next(network.parameters()).dtype

    def preprocess(self, x: torch.Tensor) -> torch.Tensor:
        """What the backend's preprocess does to the image, in torch."""
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> Any:
        return self.network(self.preprocess(x))

    def image_tensor(self, images: list[np.ndarray]) -> torch.Tensor:
        """BGR uint8 images of one size -> the (B, 3, H, W) RGB 0..1 tensor ``forward`` takes, on the device."""
        x = np.stack([im[..., ::-1].transpose(2, 0, 1) for im in images]).astype(np.float32) / np.float32(255)
        return torch.from_numpy(x).to(self.backend.device.torch)


class Letterboxed(Differentiable):
    """YOLO: ultralytics' letterbox (fit, centre, pad 114), bilinear as its cv2.INTER_LINEAR resize."""

    def preprocess(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[2:]
        g = input_geometry(self.backend, (h, w), (h, w))
        h_in, w_in = g.input_hw
        nw, nh = round(w * g.sx), round(h * g.sy)
        if (nh, nw) != (h, w):
            x = F.interpolate(x, size=(nh, nw), mode="bilinear", align_corners=False)
        left, top = int(g.tx), int(g.ty)
        x = F.pad(x, (left, w_in - nw - left, top, h_in - nh - top), value=114 / 255)
        return x.to(self.dtype)


class Transformed(Differentiable):
    """A classifier whose preprocessing is a torch transform that takes float tensors (torchvision's presets:
    resize, centre crop, normalize)."""

    def __init__(self, backend: Any, network: torch.nn.Module, layers: list[torch.nn.Module], transform: Any):
        super().__init__(backend, network, layers)
        self.transform = transform

    def preprocess(self, x: torch.Tensor) -> torch.Tensor:
        return self.transform(x).to(self.dtype)


class Trained(Differentiable):
    """A ``visionkit train`` classifier: its card's preprocessing (grey or RGB, square resize, normalise) in torch.
    Grey is OpenCV's BGR2GRAY weighting; the resize is bilinear (antialiased when shrinking, as INTER_AREA)."""

    GREY = (0.299, 0.587, 0.114)  # R, G, B

    def preprocess(self, x: torch.Tensor) -> torch.Tensor:
        spec = self.backend.transform.spec
        if spec.channels == 1:
            x = (x * x.new_tensor(self.GREY).view(1, 3, 1, 1)).sum(1, keepdim=True)
        if tuple(x.shape[2:]) != (spec.size, spec.size):
            shrink = x.shape[2] > spec.size or x.shape[3] > spec.size
            x = F.interpolate(x, size=(spec.size, spec.size), mode="bilinear", align_corners=False, antialias=shrink)
        mean, std = x.new_tensor(spec.mean).view(1, -1, 1, 1), x.new_tensor(spec.std).view(1, -1, 1, 1)
        return ((x - mean) / std).to(self.dtype)


def register_differentiable(task: str, backend_name: str) -> Callable[[Builder], Builder]:
    """Declare how to build the ``Differentiable`` of backend ``backend_name`` of ``task`` (from the backend)."""
    def add(fn: Builder) -> Builder:
        _BUILDERS[(task, backend_name)] = fn
        return fn
    return add


def differentiable(predictor: Any, method: str = "gradient methods") -> Differentiable:
    """The ``Differentiable`` of a predictor's backend, or an OptionError that says which methods still work."""
    backend = predictor.backend
    builder = _BUILDERS.get((backend.task, backend.name))
    if builder is None:
        raise OptionError(f"{method} need a model that gradients can cross; {predictor.entry.name} "
                          f"({backend.name} backend) has none: use a gradient-free method (occlusion, rise, eigencam)")
    return builder(backend)


def last_feature_layers(network: torch.nn.Module, example: torch.Tensor) -> list[torch.nn.Module]:
    """The last module (in the order their outputs are produced) whose output is a feature map with more than one
    pixel: what CAMs conventionally read (``layer4`` of a ResNet, ``features`` of a MobileNet)."""
    found: list[torch.nn.Module] = []

    def hook(module: torch.nn.Module, _: Any, out: Any) -> None:
        if isinstance(out, torch.Tensor) and out.ndim == 4 and out.shape[2] * out.shape[3] > 1:
            found.append(module)

    handles = [m.register_forward_hook(hook) for m in network.modules() if m is not network]
    try:
        with torch.no_grad():
            network(example)
    finally:
        for h in handles:
            h.remove()
    if not found:
        raise OptionError(f"{type(network).__name__} has no feature map layer to explain")
    return [found[-1]]


def head_inputs(graph_module: torch.fx.GraphModule) -> list[torch.nn.Module]:
    """The modules feeding the head of a converted (torch.fx) detector: the producers of the inputs of the last
    convolutions, those whose output reaches no other convolution (YOLOv5: the P3, P4, P5 C3 outputs)."""
    convs = {n for n in graph_module.graph.nodes
             if n.op == "call_module" and isinstance(graph_module.get_submodule(n.target), torch.nn.Conv2d)}

    def reaches_conv(node: torch.fx.Node) -> bool:
        todo, seen = list(node.users), set()
        while todo:
            n = todo.pop()
            if n in convs:
                return True
            if n not in seen:
                seen.add(n)
                todo.extend(n.users)
        return False

    last = [n for n in convs if not reaches_conv(n)]
    producers = [n.args[0] for n in last if isinstance(n.args[0], torch.fx.Node) and n.args[0].op == "call_module"]
    return [graph_module.get_submodule(t) for t in dict.fromkeys(p.target for p in producers)]


@cache
def converted_onnx(path: Path) -> torch.fx.GraphModule:
    """An ONNX file as a torch module (onnx2torch), converted once per file."""
    import warnings

    from onnx2torch import convert

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return convert(str(path)).eval()
    except Exception as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise WeightsError(f"{path}: onnx2torch cannot convert it for gradient methods ({first})") from None


@register_differentiable("detect", "onnx-yolo")
def _onnx_yolo(backend: Any) -> Differentiable:
    network = converted_onnx(Path(backend.weights)).to(backend.device.torch)
    return Letterboxed(backend, network, head_inputs(network))


@register_differentiable("detect", "ultralytics")
def _ultralytics_yolo(backend: Any) -> Differentiable:
    layers = backend.model.model
    return Letterboxed(backend, backend.model, [layers[i] for i in layers[-1].f])


@register_differentiable("classify", "visionkit")
def _trained_classifier(backend: Any) -> Differentiable:
    spec = backend.transform.spec
    example = torch.zeros(1, spec.channels, spec.size, spec.size, device=backend.device.torch)
    return Trained(backend, backend.model, last_feature_layers(backend.model, example))


@register_differentiable("classify", "torchvision")
def _torchvision_classifier(backend: Any) -> Differentiable:
    crop = backend.crop_hw
    example = torch.zeros(1, 3, *crop, device=backend.device.torch, dtype=backend.dtype)
    return Transformed(backend, backend.model, last_feature_layers(backend.model, example), backend.transforms)
