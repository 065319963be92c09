"""Differentiable views of the dense-output backends: single-person pose (MoveNet) and semantic segmentation
(TFLite DeepLab as ONNX, torchvision, ``visionkit train`` runs).

MoveNet and the 513 DeepLab are int8 QDQ graphs; ``converted_onnx`` turns them into fake-quantized torch modules
(``quantized.py``), so the real official files are explained and attacked, not random-weight stand-ins.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from ..tasks.pose import MOVENET_CROP_SCALE, NUM_KEYPOINTS, crop_regions
from .differentiable import (
    Differentiable,
    Trained,
    Transformed,
    converted_onnx,
    head_inputs,
    last_feature_layers,
    letterboxed,
    register_differentiable,
)
from .geometry import Geometry, fit_geometry, register_geometry
from .targets import Target, keypoint_confidence, soft_oks


class MoveNetCrops(Differentiable):
    """MoveNet: each region (a person box grown as the backend grows it, or the whole image) letterboxed with zero
    padding to the model's square and fed as NHWC 0..255 floats (the graph casts its uint8 input to float first);
    ``run`` gives (R, 17, 3) = y, x, score normalised to each crop, as the ONNX output."""

    def __init__(self, backend: Any, network: torch.nn.Module, layers: list[torch.nn.Module]):
        super().__init__(backend, network, layers)
        self.regions: np.ndarray | None = None  # (R, 4) integer x0, y0, x1, y1; None = the whole image

    def focus_all(self, image_hw: tuple[int, int], xyxy: np.ndarray) -> None:
        """See each person box (top-down) or, for a whole-image model, the whole image."""
        h, w = image_hw
        self.regions = crop_regions(xyxy, image_hw) if self.in_boxes else np.array([[0, 0, w, h]])

    def focus(self, image_hw: tuple[int, int], target: Target) -> None:
        self.focus_all(image_hw, np.array([target.box], np.float32))

    def adversarial_loss(self, clean: torch.Tensor, target: int | None = None) -> Callable[[Any], torch.Tensor]:
        """Untargeted only (keypoints have no class to aim at): soft OKS of each crop's keypoints to the clean ones
        (normalised crop coordinates; the person fills about 1 / MOVENET_CROP_SCALE of the crop each way, hence the
        area)."""
        area = torch.full(clean.shape[:1] + (1,), 1 / MOVENET_CROP_SCALE ** 2, device=clean.device)
        return lambda out: soft_oks(out[..., :2], clean[..., :2], out[..., 2], area).sum()

    def _regions(self, image_hw: tuple[int, int]) -> np.ndarray:
        h, w = image_hw
        return np.array([[0, 0, w, h]]) if self.regions is None else self.regions

    def preprocess(self, x: torch.Tensor) -> torch.Tensor:
        size = self.backend.input_hw
        crops = [letterboxed(x[:, :, y0:y1, x0:x1], fit_geometry((int(y1 - y0), int(x1 - x0)), size), 0.0)
                 for x0, y0, x1, y1 in self._regions(tuple(x.shape[2:]))]
        return torch.cat(crops) * 255 if crops else x.new_zeros((0, 3, *size))

    def run(self, x: torch.Tensor) -> torch.Tensor:
        if not len(x):  # no person to see
            return x.new_zeros((0, NUM_KEYPOINTS, 3))
        # the converted graph has a fixed batch of 1
        return torch.cat([self.network(c[None].permute(0, 2, 3, 1)).reshape(1, NUM_KEYPOINTS, 3) for c in x])

    def geometry(self, image_hw: tuple[int, int], input_hw: tuple[int, int]) -> Geometry:
        x0, y0, x1, y1 = (int(v) for v in self._regions(image_hw)[0])
        g = fit_geometry((y1 - y0, x1 - x0), input_hw)
        return Geometry(g.sx, g.sy, g.tx - x0 * g.sx, g.ty - y0 * g.sy, input_hw)

    def score(self, target: Target, geometry: Geometry) -> Callable[[Any], torch.Tensor]:
        return keypoint_confidence


class Segmenter(Differentiable):
    """A semantic segmenter: ``run`` gives (B, C, h, w) logits over the image; a target class scores its logits
    summed over the pixels the model gives it (pytorch-grad-cam's ``SemanticSegmentationTarget``, the mask taken
    from the output itself, so no extra pass)."""

    def adversarial_loss(self, clean: torch.Tensor, target: int | None = None) -> Callable[[Any], torch.Tensor]:
        """Per-pixel logits: minus the cross-entropy against the clean labels, so every pixel is pushed off the
        class it had (the untargeted attack of Xie et al. 2017's dense adversary, on all pixels); targeted, the
        cross-entropy against ``target`` on every pixel, so every pixel is pulled to it (their targeted one)."""
        if target is None:
            labels, sign = clean.argmax(1), -1.0
        else:
            labels, sign = torch.full_like(clean[:, 0], target, dtype=torch.long), 1.0
        return lambda out: sign * F.cross_entropy(out.float(), labels, reduction="sum")

    def score(self, target: Target, geometry: Geometry) -> Callable[[Any], torch.Tensor]:
        def class_pixels(logits: torch.Tensor) -> torch.Tensor:
            mask = (logits.argmax(0) == target.class_id).detach()
            return (logits[target.class_id] * mask).sum()

        return class_pixels


class TorchvisionSegmenter(Segmenter, Transformed):
    """torchvision's segmentation preset (resize, normalise) in torch; the model's "out" logits."""

    def run(self, x: torch.Tensor) -> torch.Tensor:
        return self.network(x)["out"]


class TrainedSegmenter(Segmenter, Trained):
    """A ``visionkit train segment`` run: its card's preprocessing in torch; the model's "out" logits."""

    def run(self, x: torch.Tensor) -> torch.Tensor:
        return self.network(x)["out"]


class DeepLabResized(Segmenter):
    """TFLite DeepLab as ONNX: the photo resized bilinearly onto the square input (or, with ``keep_aspect``, fitted
    at the top left and padded with 128), as NHWC: (x - 127.5) / 127.5 for the float model, 0..255 for the uint8
    one (cast first thing in its graph). ``run`` gives the logits at input size over the image part, the 33x33
    logits of the uint8 model resized with ``align_corners=True`` as its graph does."""

    def __init__(self, backend: Any, network: torch.nn.Module, layers: list[torch.nn.Module]):
        super().__init__(backend, network, layers)
        self.output = backend.logits_index
        self.content: tuple[int, int] = backend.input_hw

    def preprocess(self, x: torch.Tensor) -> torch.Tensor:
        self.content = ch, cw = self.backend.content_hw(tuple(x.shape[2:]))
        h, w = self.backend.input_hw
        x = F.interpolate(x, size=(ch, cw), mode="bilinear", align_corners=False) if (ch, cw) != x.shape[2:] else x
        x = F.pad(x, (0, w - cw, 0, h - ch), value=128 / 255) * 255
        return x if self.backend.uint8_input else (x - 127.5) / 127.5

    def run(self, x: torch.Tensor) -> torch.Tensor:
        out = self.network(x.permute(0, 2, 3, 1))
        logits = out[self.output] if isinstance(out, (list, tuple)) else out
        logits = logits.permute(0, 3, 1, 2) if self.backend.nhwc else logits
        if tuple(logits.shape[2:]) != self.backend.input_hw:
            logits = F.interpolate(logits, self.backend.input_hw, mode="bilinear", align_corners=True)
        ch, cw = self.content
        return logits[:, :, :ch, :cw]


@register_geometry("segment", "onnx-deeplab")
def _deeplab_fit(backend: Any, image_hw: tuple[int, int]) -> Geometry:
    """The image's part of the DeepLab input (all of it, or the aspect-kept part at the top left)."""
    (h, w), (ch, cw) = image_hw, backend.content_hw(image_hw)
    return Geometry(cw / w, ch / h, 0.0, 0.0, backend.input_hw)


def reached_layers(d: Differentiable, score: Callable[[Any], torch.Tensor]) -> list[torch.nn.Module]:
    """The layers of ``d`` whose output the score's gradient reaches, on a grey image: MoveNet's four head branches
    (centre, heatmap, offset, regression) each read their own feature map, and its keypoint scores come from the
    heatmap branch only (a layer without gradient would leave a CAM undefined)."""
    found: dict[torch.nn.Module, torch.Tensor] = {}
    handles = [m.register_forward_hook(lambda module, _, out: found.__setitem__(module, out)) for m in d.layers]
    try:
        out = d(torch.full((1, 3, *d.backend.input_hw), 0.5, device=d.backend.device.torch))
    finally:
        for h in handles:
            h.remove()
    grads = torch.autograd.grad(score(out[0]), [found[m] for m in d.layers], allow_unused=True)
    return [m for m, g in zip(d.layers, grads, strict=True) if g is not None]


@register_differentiable("pose", "onnx-movenet")
def _movenet(backend: Any) -> Differentiable:
    network = converted_onnx(Path(backend.weights)).to(backend.device.torch)
    d = MoveNetCrops(backend, network, head_inputs(network))
    d.layers = reached_layers(d, keypoint_confidence)
    return d


@register_differentiable("segment", "onnx-deeplab")
def _deeplab(backend: Any) -> Differentiable:
    network = converted_onnx(Path(backend.weights)).to(backend.device.torch)
    return DeepLabResized(backend, network, head_inputs(network))


def _backbone_layers(model: torch.nn.Module, example: torch.Tensor) -> list[torch.nn.Module]:
    """torchvision segmenters: the backbone's last feature map (what pytorch-grad-cam's segmentation tutorial
    reads), not the classifier's logits."""
    backbone = getattr(model, "backbone", model)
    return last_feature_layers(backbone, example)


@register_differentiable("segment", "torchvision")
def _torchvision_segmenter(backend: Any) -> Differentiable:
    example = torch.zeros(1, 3, 64, 64, device=backend.device.torch, dtype=backend.dtype)
    return TorchvisionSegmenter(backend, backend.model, _backbone_layers(backend.model, example), backend.transforms)


@register_differentiable("segment", "visionkit")
def _trained_segmenter(backend: Any) -> Differentiable:
    spec = backend.transform.spec
    example = torch.zeros(1, spec.channels, spec.size, spec.size, device=backend.device.torch)
    return TrainedSegmenter(backend, backend.model, _backbone_layers(backend.model, example))
