"""Segmentation: a class per pixel (``SemanticMask``) or a mask per object (``Detections.masks``), at source size.

Backends:
  torchvision    DeepLabV3 / LR-ASPP / FCN builders with a state dict; preprocessing is the transforms object of the
                 catalog's ``weights_enum`` (shorter side to 520, ImageNet mean/std), so it is torchvision's own;
                 PyTorch, or its torch.onnx export (free height and width) on ONNX Runtime or OpenVINO
  onnx-deeplab   TensorFlow Lite DeepLab v3 (MobileNetV2, PASCAL VOC) converted to ONNX: the 257x257 float model
                 (logits NHWC at input size) and the 513x513 uint8 model (33x33 logits NCHW next to its ArgMax)
  ultralytics    YOLOv8/YOLO11-seg ``.pt`` checkpoints: ultralytics' letterbox, NMS and prototype-mask decoding
                 (``tasks/yolo.py``; PyTorch, ONNX Runtime or OpenVINO)

Semantic backends end the same way: the logits at the model's input size are bilinearly resampled to the source
image and the argmax taken there (``confidence`` = the winning class's softmax probability). The resampling runs in
row strips, so an 8000x6000 photo never holds a 21-channel full-size float map (4 GB) at once.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import cv2
import numpy as np

from ..catalog import ModelEntry, load_class_names
from ..device import Device
from ..errors import WeightsError
from ..results import SemanticMask
from ..runtimes import open_session
from ._runtime import load_state_dict, torch_net, torchvision_weights
from .base import SIDE, Backend, TrainedRunBackend
from .yolo import FILE_RUNTIMES, PT_RUNTIMES, YoloSegment, signature

__all__ = ["OnnxDeepLab", "TorchvisionSegment", "TrainedSegment", "YoloSegment"]

# Elements of float32 scratch per strip when resampling logits or masks to the source size (4 MB): bounded memory
# on huge images, and cache-sized strips run about 4x faster than one whole-image pass even on small ones.
_STRIP_ELEMENTS = 1 << 20
# The DeepLab ONNX models are PASCAL VOC models; a file given by path (no catalog entry) gets these names.
_DEEPLAB_CLASSES = "voc21"
# Keep-aspect padding for DeepLab: 128 is the uint8 model's zero point, i.e. the mean pixel DeepLab pads with.
_DEEPLAB_PAD_VALUE = 128


def _row_taps(out_size: int, in_size: int) -> tuple[Any, Any, Any]:
    """F.interpolate's bilinear taps along the height (``align_corners=False``): for output row i,
    ``(1 - w[i]) * in[lo[i]] + w[i] * in[hi[i]]``, computed in float32 with its formula (half-pixel centres,
    negative positions clamped to 0), so strips reproduce a whole-image ``F.interpolate``."""
    import torch

    scale = np.float32(in_size) / np.float32(out_size)
    pos = np.maximum(scale * (np.arange(out_size, dtype=np.float32) + np.float32(0.5)) - np.float32(0.5), 0)
    lo = np.minimum(pos.astype(np.int64), in_size - 1)
    hi = np.minimum(lo + 1, in_size - 1)
    w = np.clip(pos - lo, 0, 1).astype(np.float32)
    return torch.from_numpy(lo), torch.from_numpy(hi), torch.from_numpy(w)


def _logits_to_mask(logits: Any, image_hw: tuple[int, int], names: list[str]) -> SemanticMask:
    """(C, h, w) logits covering the whole image -> ``SemanticMask`` at ``image_hw``.

    Equal to ``F.interpolate(logits, image_hw, mode="bilinear")`` then argmax / softmax maximum, done in row strips
    of at most ``_STRIP_ELEMENTS``: each strip interpolates the rows it needs along the width with F.interpolate
    (the height kept, so exact) and then along the height with the same taps, the order of PyTorch's own kernel.
    """
    import torch
    import torch.nn.functional as F

    logits = logits.float()
    c, h_in = logits.shape[:2]
    h, w = image_hw
    class_map = np.empty((h, w), np.uint8 if c <= 256 else np.int32)
    confidence = np.empty((h, w), np.float32)
    step = max(1, _STRIP_ELEMENTS // (c * w))
    taps = _row_taps(h, h_in)
    for y0 in range(0, h, step):
        lo, hi, wy = (t[y0:y0 + step].to(logits.device) for t in taps)
        first, last = int(lo.min()), int(hi.max()) + 1
        band = F.interpolate(logits[None, :, first:last], (last - first, w), mode="bilinear")[0]
        strip = torch.index_select(band, 1, lo - first).mul_((1 - wy)[:, None])
        strip.addcmul_(torch.index_select(band, 1, hi - first), wy[:, None])
        top, ids = strip.max(0)
        class_map[y0:y0 + step] = ids.cpu().numpy()
        confidence[y0:y0 + step] = strip.sub_(top).exp_().sum(0).reciprocal_().cpu().numpy()
    return SemanticMask(class_map=class_map, class_names=names, confidence=confidence)


def _out_logits(out: dict[str, Any]) -> list[Any]:
    """A torchvision segmenter's outputs as visionkit reads them: only the main head's logits (``"out"``)."""
    return [out["out"]]


class TorchvisionSegment(Backend):
    """torchvision semantic segmentation (``COCO_WITH_VOC_LABELS_V1`` weights: 21 PASCAL VOC classes).

    Preprocessing is ``weights_enum.transforms()`` on the uint8 RGB tensor (antialiased bilinear resize of the
    shorter side to ``imgsz``, 0..1, ImageNet mean/std), and the model upsamples its logits to that input size.
    torchvision's reference evaluation (references/segmentation) scores the argmax at that resized scale against
    a nearest-resized target; visionkit instead resamples the logits once more, bilinearly to the source size,
    and takes the argmax there, so masks line up with the original pixels (at the input size the two coincide).
    """

    task = "segment"
    name = "torchvision"
    CONCURRENT = True
    OPTIONS = {"imgsz": 520}
    OPTION_TYPE_OVERRIDES = {"imgsz": SIDE}  # the shorter side

    @classmethod
    def runtimes(cls, suffix: str) -> tuple[str, ...]:
        return PT_RUNTIMES  # the network exports to ONNX (torch.onnx), which ONNX Runtime and OpenVINO run

    def __init__(self, entry: ModelEntry, weights: Path, device: Device, options: dict[str, Any]):
        super().__init__(entry, weights, device, options)
        import torchvision

        arch = entry.arch or entry.name
        # torchvision's official DeepLabV3/FCN files also hold the auxiliary head (torchvision turns aux_loss on
        # whenever it loads them); it only serves the training loss, so it is loaded to match and then dropped.
        aux = {"aux_loss": True} if entry.extra.get("aux_loss") else {}
        model = torchvision.models.get_model(arch, weights=None, weights_backbone=None,
                                             num_classes=len(self.class_names), **aux)
        load_state_dict(model, weights, arch)
        if aux:
            model.aux_classifier = None
        self.transforms = torchvision_weights(entry).transforms(resize_size=options["imgsz"])
        # The input's size follows each image's aspect (shorter side to imgsz), so the export frees height and width
        # as well as the batch: every runtime then sees the very input PyTorch would, and returns logits at it.
        side = options["imgsz"]
        free = {0: "batch", 2: "height", 3: "width"}
        net = torch_net(model, weights, device, (1, 3, side, side), f"{arch}-dynamic", outputs=_out_logits,
                        input_axes=free, output_axes=free)
        self.session, self.model, self.dtype = net.session, net.module, net.dtype

    def preprocess(self, images: list[np.ndarray]) -> list[Any]:
        import torch

        # uint8 RGB CHW on the device, then torchvision's own preset runs there (one tensor per image: the
        # resized sizes differ unless the sources share a shape).
        return [self.transforms(torch.from_numpy(np.ascontiguousarray(im[..., ::-1].transpose(2, 0, 1)))
                                .to(self.device.torch)).to(self.dtype) for im in images]

    def forward(self, batch: list[Any]) -> list[Any]:
        import torch

        if len({tuple(x.shape) for x in batch}) == 1:
            return list(torch.as_tensor(self.session.run([torch.stack(batch)])[0]))
        return [torch.as_tensor(self.session.run([x[None]])[0][0]) for x in batch]

    def postprocess(self, raw: list[Any], batch: Any, images: list[np.ndarray]) -> list[SemanticMask]:
        return [_logits_to_mask(logits, im.shape[:2], self.class_names) for logits, im in zip(raw, images, strict=True)]


class TrainedSegment(TrainedRunBackend):
    """A ``visionkit train segment`` run (semantic): the card's ``Preprocess`` (square resize, its mean/std), the
    logits resampled to the source size as for every semantic backend, the card's class names."""

    task = "segment"
    name = "visionkit"
    CONCURRENT = True

    def forward(self, batch: Any) -> Any:
        return self.model(batch)["out"]

    def postprocess(self, raw: Any, batch: Any, images: list[np.ndarray]) -> list[SemanticMask]:
        return [_logits_to_mask(logits, im.shape[:2], self.class_names) for logits, im in zip(raw, images, strict=True)]


class OnnxDeepLab(Backend):
    """TensorFlow Lite DeepLab v3 converted to ONNX: NHWC RGB input, float ``(x-127.5)/127.5`` or uint8 as is.

    The input is a plain bilinear resize of the whole photo to the model's square size, as the references do (the
    TFLite segmentation example and Coral's ``semantic_segmentation.py`` without ``--keep_aspect_ratio``); it
    reproduces the manifest's figures (bus.jpg 30 % bus / 13 % person, CamVid car IoU 0.62). ``keep_aspect=True``
    instead scales the longer side to fit and pads bottom/right with the mean pixel, as DeepLab's own evaluation
    does; logits outside the image are never sampled.

    Logits: the float model outputs them at input size (NHWC). The uint8 model's graph ends in an
    ``align_corners=True`` resize of 33x33 logits to 513 and an ArgMax; visionkit reads its ``logits_33x33``
    output and repeats that resize, so both models then go from input-size logits to the source like torchvision's
    (the argmax at 513 equals the graph's on 99.86 % of pixels: the graph resizes in int8).
    """

    task = "segment"
    name = "onnx-deeplab"
    CONCURRENT = True
    RUNTIME = "onnx"
    OPTIONS = {"keep_aspect": False, "imgsz": None}  # imgsz: only the file's own input size
    SUFFIXES = (".onnx",)

    @classmethod
    def runtimes(cls, suffix: str) -> tuple[str, ...]:
        return FILE_RUNTIMES

    def __init__(self, entry: ModelEntry, weights: Path, device: Device, options: dict[str, Any]):
        super().__init__(entry, weights, device, options)
        if not self.class_names:
            self.class_names = load_class_names(_DEEPLAB_CLASSES)
        self.session = open_session(weights, device)
        inp = self.session.inputs[0]
        if len(inp.shape) != 4 or inp.shape[3] != 3 or not all(isinstance(d, int) for d in inp.shape[1:3]):
            raise WeightsError(f"{weights}: not a DeepLab segmenter (NHWC RGB input [1, H, W, 3]); the file has "
                               f"{signature(self.session.inputs, self.session.outputs)}")
        self.input_hw = (int(inp.shape[1]), int(inp.shape[2]))
        self.uint8_input = inp.dtype == "uint8"
        n = len(self.class_names)
        logits = [i for i, o in enumerate(self.session.outputs) if o.dtype == "float32" and len(o.shape) == 4
                  and n in (o.shape[1], o.shape[3])]
        if not logits:
            raise WeightsError(f"{weights}: not a DeepLab segmenter (no float logits output with {n} classes, NHWC "
                               f"or NCHW); the file has {signature(self.session.inputs, self.session.outputs)}")
        self.logits_index = logits[0]
        self.nhwc = self.session.outputs[logits[0]].shape[3] == n

    def content_hw(self, image_hw: tuple[int, int]) -> tuple[int, int]:
        """Size of an image of ``image_hw`` inside the model input: all of it, or the aspect-kept part at the top
        left."""
        h, w = self.input_hw
        if not self.options["keep_aspect"]:
            return h, w
        scale = min(h / image_hw[0], w / image_hw[1])
        return max(1, min(h, round(image_hw[0] * scale))), max(1, min(w, round(image_hw[1] * scale)))

    def preprocess(self, images: list[np.ndarray]) -> list[np.ndarray]:
        batch = []
        for im in images:
            ch, cw = self.content_hw(im.shape[:2])
            x = np.full((*self.input_hw, 3), _DEEPLAB_PAD_VALUE, np.uint8)
            x[:ch, :cw] = cv2.cvtColor(cv2.resize(im, (cw, ch), interpolation=cv2.INTER_LINEAR), cv2.COLOR_BGR2RGB)
            batch.append(x[None] if self.uint8_input else ((x.astype(np.float32) - 127.5) / 127.5)[None])
        return batch

    def forward(self, batch: list[np.ndarray]) -> list[np.ndarray]:
        return [np.asarray(self.session.run([x])[self.logits_index][0]) for x in batch]

    def postprocess(self, raw: list[np.ndarray], batch: Any, images: list[np.ndarray]) -> list[SemanticMask]:
        import torch
        import torch.nn.functional as F

        out = []
        for logits, im in zip(raw, images, strict=True):
            logits = torch.from_numpy(logits.transpose(2, 0, 1) if self.nhwc else logits)
            if tuple(logits.shape[1:]) != self.input_hw:  # low-res logits: the graph's own align_corners=True resize
                logits = F.interpolate(logits[None], self.input_hw, mode="bilinear", align_corners=True)[0]
            ch, cw = self.content_hw(im.shape[:2])
            out.append(_logits_to_mask(logits[:, :ch, :cw], im.shape[:2], self.class_names))
        return out


from . import mediapipe  # noqa: E402,F401  (registers the TFLite backends)
