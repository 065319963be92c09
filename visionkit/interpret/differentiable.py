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
from .geometry import Geometry, input_geometry
from .report import DISPLAY_CONF
from .targets import (
    BoxScore,
    PoseBoxScore,
    Target,
    misclassification,
    soft_oks,
    yolo_candidates,
    yolo_keypoints,
)

# Raw candidates scoring below this are left alone by the vanishing attack (they are no detection anyway).
VANISH_FLOOR = 0.01

Builder = Callable[[Any], "Differentiable"]
_BUILDERS: dict[tuple[str, str], Builder] = {}


class Differentiable(torch.nn.Module):
    """image (B, 3, H, W) RGB in 0..1 -> the backend's raw output, differentiable end to end.

    Two steps: ``preprocess`` builds the model input as an NCHW tensor (what CAMs size their maps on), ``run``
    feeds it to the network and returns what targets and attacks score: a classifier's logits (what attacks'
    cross-entropy needs), a detector head's raw candidates, a segmenter's (B, C, h, w) logits over the image, a
    single-person pose model's (R, 17, 3) keypoints. ``layers`` are the network's modules whose activations CAMs
    read by default (the last feature maps before the head).
    """

    def __init__(self, backend: Any, network: torch.nn.Module, layers: list[torch.nn.Module]):
        super().__init__()
        self.backend = backend
        self.network = network
        self.layers = layers
        self.dtype = next(network.parameters()).dtype
        self.in_boxes = False  # crop-based pose models: one crop per person box (top-down), else the whole image

    def preprocess(self, x: torch.Tensor) -> torch.Tensor:
        """What the backend's preprocess does to the image, in torch."""
        raise NotImplementedError

    def run(self, x: torch.Tensor) -> Any:
        """The network on a preprocessed input."""
        return self.network(x)

    def forward(self, x: torch.Tensor) -> Any:
        return self.run(self.preprocess(x))

    def focus(self, image_hw: tuple[int, int], target: Target) -> None:
        """Point ``preprocess`` at the part of the image ``target`` is seen in; nothing to do but for crop-based
        models, which see one region per person."""

    def geometry(self, image_hw: tuple[int, int], input_hw: tuple[int, int]) -> Geometry:
        """Where the model input's pixels come from in the image (as focused)."""
        return input_geometry(self.backend, image_hw, input_hw)

    def score(self, target: Target, geometry: Geometry) -> Callable[[Any], torch.Tensor]:
        """A pytorch-grad-cam target: ``target``'s scalar score on one image's ``run`` output."""
        raise NotImplementedError

    def focus_all(self, image_hw: tuple[int, int], xyxy: np.ndarray) -> None:
        """Point ``preprocess`` at every box of a prediction (crop-based models; nothing to do for the others)."""

    def adversarial_loss(self, clean: Any, target: int | None = None) -> Callable[[Any], torch.Tensor]:
        """What an attack minimises, given the clean image's ``forward`` output: untargeted (``target`` None), or
        pushing what the clean image shows towards class ``target`` (detectors, segmenters)."""
        raise OptionError(f"no attack is defined for {self.backend.task} models of the {self.backend.name} backend")

    def image_tensor(self, images: list[np.ndarray]) -> torch.Tensor:
        """BGR uint8 images of one size -> the (B, 3, H, W) RGB 0..1 tensor ``forward`` takes, on the device."""
        x = np.stack([im[..., ::-1].transpose(2, 0, 1) for im in images]).astype(np.float32) / np.float32(255)
        return torch.from_numpy(x).to(self.backend.device.torch)


class OnInput(torch.nn.Module):
    """``d.run`` as a module: what pytorch-grad-cam calls on the preprocessed input."""

    def __init__(self, d: Differentiable):
        super().__init__()
        self.d = d

    def forward(self, x: torch.Tensor) -> Any:
        return self.d.run(x)


def letterboxed(x: torch.Tensor, g: Geometry, value: float) -> torch.Tensor:
    """ultralytics' LetterBox in torch: resize to the geometry's scale (bilinear, as its cv2.INTER_LINEAR), pad
    the rest of ``g.input_hw`` with ``value``."""
    h, w = x.shape[2:]
    h_in, w_in = g.input_hw
    nw, nh = round(w * g.sx), round(h * g.sy)
    if (nh, nw) != (h, w):
        x = F.interpolate(x, size=(nh, nw), mode="bilinear", align_corners=False)
    left, top = int(g.tx), int(g.ty)
    return F.pad(x, (left, w_in - nw - left, top, h_in - nh - top), value=value)


class Letterboxed(Differentiable):
    """YOLO: ultralytics' letterbox (fit, centre, pad 114), bilinear as its cv2.INTER_LINEAR resize; ``run`` gives
    the head's raw candidates (ultralytics' extra outputs, e.g. -seg prototypes, dropped)."""

    def preprocess(self, x: torch.Tensor) -> torch.Tensor:
        hw = tuple(x.shape[2:])
        return letterboxed(x, input_geometry(self.backend, hw, hw), 114 / 255).to(self.dtype)

    def run(self, x: torch.Tensor) -> Any:
        out = self.network(x)
        while isinstance(out, (list, tuple)):  # e.g. -seg in eval mode: ((candidates, prototypes), features)
            out = out[0]
        return out

    def score(self, target: Target, geometry: Geometry) -> Callable[[Any], torch.Tensor]:
        box = geometry.boxes_to_input(np.array([target.box]))[0]
        nc = len(self.backend.class_names)
        if self.backend.task == "pose":
            return PoseBoxScore(box, target.class_id, nc, tuple(self.backend.facts.kpt_shape or (17, 3)))
        return BoxScore(box, target.class_id, nc)

    def adversarial_loss(self, clean: Any, target: int | None = None) -> Callable[[Any], torch.Tensor]:
        """Detectors (and -seg): the vanishing attack, every raw candidate's best class score above VANISH_FLOOR
        pushed down; targeted (a misclassification attack), the candidates the clean image detects (best score >=
        DISPLAY_CONF: what a user sees; pushing the faint ones too would add dozens of target boxes) pushed towards
        the target (``misclassification``), so what was found stays found but changes class. -pose
        (untargeted only): also each such candidate's keypoints pushed off where they were (soft OKS)."""
        nc = len(self.backend.class_names)
        boxes, scores = yolo_candidates(clean, nc)
        if target is not None:
            shown = (scores.amax(-1) >= DISPLAY_CONF).float()
            return lambda out: (misclassification(yolo_candidates(out, nc)[1], target) * shown).sum()
        live = (scores.amax(-1) > VANISH_FLOOR).float()
        if self.backend.task != "pose":
            return lambda out: (yolo_candidates(out, nc)[1].amax(-1) * live).sum()
        shape = tuple(self.backend.facts.kpt_shape or (17, 3))
        ref = yolo_keypoints(clean, nc, shape)
        area = ((boxes[..., 2] - boxes[..., 0]) * (boxes[..., 3] - boxes[..., 1]))[..., None]

        def loss(out: Any) -> torch.Tensor:
            kpts = yolo_keypoints(out, nc, shape)
            conf = kpts[..., 2] if shape[1] == 3 else torch.ones_like(kpts[..., 0])
            similar = soft_oks(kpts[..., :2], ref[..., :2], conf, area)
            return (yolo_candidates(out, nc)[1].amax(-1) * live * (1 + similar)).sum()

        return loss


class Classifier(Differentiable):
    """A classifier: ``run`` gives logits, a target is its class's logit."""

    def score(self, target: Target, geometry: Geometry) -> Callable[[Any], torch.Tensor]:
        from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

        return ClassifierOutputTarget(target.class_id)


class Transformed(Classifier):
    """A classifier whose preprocessing is a torch transform that takes float tensors (torchvision's presets:
    resize, centre crop, normalize)."""

    def __init__(self, backend: Any, network: torch.nn.Module, layers: list[torch.nn.Module], transform: Any):
        super().__init__(backend, network, layers)
        self.transform = transform

    def preprocess(self, x: torch.Tensor) -> torch.Tensor:
        return self.transform(x).to(self.dtype)


class Trained(Classifier):
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


def model_backend(predictor: Any) -> Any:
    """The backend of the model a predictor explains: its own, or a top-down pose pipeline's pose model's."""
    return getattr(predictor, "pose", predictor).backend


def runtime_of(backend: Any) -> str:
    """The runtime a backend's model runs on: its session's, or (no session) the family's own."""
    session = getattr(backend, "session", None)
    return str(session.runtime) if session is not None else str(backend.RUNTIME)


def _builder_key(backend: Any) -> tuple[str, str]:
    """Which builder differentiates ``backend``: its own, except that a PyTorch family run on another runtime has
    no module to differentiate, so its exported ONNX file (``backend.weights``) is taken as that runtime's family
    (an ultralytics detector on ONNX Runtime is an onnx-yolo detector to onnx2torch)."""
    if backend.RUNTIME == "torch" and runtime_of(backend) != "torch" and str(backend.weights).endswith(".onnx"):
        return backend.task, f"onnx-{'yolo' if backend.name == 'ultralytics' else backend.name}"
    return backend.task, backend.name


def has_differentiable(predictor: Any) -> bool:
    return _builder_key(model_backend(predictor)) in _BUILDERS


def differentiable(predictor: Any, method: str = "gradient methods") -> Differentiable:
    """The ``Differentiable`` of a predictor's backend, or an OptionError that says which methods still work. For
    a top-down pose pipeline (``PersonPose``) it is the pose model's, seeing each person box's crop."""
    backend = model_backend(predictor)
    builder = _BUILDERS.get(_builder_key(backend))
    if builder is None:
        raise OptionError(f"{method} need a model that gradients can cross; {predictor.entry.name} "
                          f"({backend.name} backend) has none: use a gradient-free method (occlusion, rise, eigencam)")
    d = builder(backend)
    d.in_boxes = hasattr(predictor, "persons")
    return d


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
    """An ONNX file as a torch module (onnx2torch), converted once per file; QDQ graphs as fake quantization."""
    import warnings

    import onnx
    from onnx2torch import convert

    from .quantized import fold_weight_dequantization, register_qdq_converters

    register_qdq_converters()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return convert(fold_weight_dequantization(onnx.load(str(path)))).eval()
    except Exception as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise WeightsError(f"{path}: onnx2torch cannot convert it for gradient methods ({first})") from None


@register_differentiable("detect", "onnx-yolo")
def _onnx_yolo(backend: Any) -> Differentiable:
    network = converted_onnx(Path(backend.weights)).to(backend.device.torch)
    return Letterboxed(backend, network, head_inputs(network))


@register_differentiable("detect", "ultralytics")
@register_differentiable("pose", "ultralytics")
@register_differentiable("segment", "ultralytics")
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


from . import dense  # noqa: E402,F401  (registers the pose and semantic segmentation builders)
