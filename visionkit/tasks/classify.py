"""Image classification: preprocess -> model -> postprocess for each model family, into ``Classification``.

Backends (each reports the ``top_k`` best classes, best first; ImageNet models report ImageNet-1k indices 0..999):
  ultralytics    YOLO-cls ``.pt`` checkpoints (yolov8n-cls, yolo11n-cls): ultralytics' own ``classify_transforms``
                 (shortest side to imgsz, centre crop, 0..1 RGB) and the softmax inside the model
  torchvision    torchvision ImageNet classifiers with a state dict; preprocessing is the transforms object carried
                 by the weights enum named in the catalog (``weights_enum``), so resize, crop, interpolation and
                 mean/std are torchvision's, not a copy of them
  visionkit      classifiers trained by ``visionkit train classify``: a checkpoint of a run folder (the folder or
                 its card.json stand for best.pth); architecture, classes and preprocessing come from its model
                 card (``training/card.py``)
  onnx-classify  TensorFlow Lite quantized classifiers converted to ONNX (uint8 NHWC RGB in, uint8 softmax out),
                 e.g. MobileNet V2 quant: central 87.5 % crop, resize, optional background class at index 0
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import cv2
import numpy as np

from ..catalog import ModelEntry, load_class_names
from ..device import Device
from ..errors import WeightsError
from ..results import Classification
from ..runtimes import open_session
from ._runtime import load_state_dict, torch_net, torchvision_weights
from .base import SIDE, Backend, TrainedRunBackend
from .yolo import FILE_RUNTIMES, PT_RUNTIMES, YoloClassify, signature

__all__ = ["OnnxClassify", "TorchvisionClassify", "TrainedClassify", "YoloClassify"]

# TensorFlow-slim's evaluation crop for ImageNet models (``tf.image.central_crop(image, 0.875)``).
TF_CENTRAL_FRACTION = 0.875
# TFLite fixes the quantization of a uint8 softmax output to scale 1/256, zero point 0.
TFLITE_SOFTMAX_SCALE = 1.0 / 256


class _Classifier(Backend):
    """What every classifier shares: the ``top_k`` option and probabilities -> ``Classification``."""

    task = "classify"
    OPTIONS = {"top_k": 5}
    CONCURRENT = True  # PyTorch modules and ONNX Runtime sessions, all of them

    def _classifications(self, probs: np.ndarray) -> list[Classification]:
        """(B, C) class probabilities -> one top-k ``Classification`` per image, the full distribution kept in
        ``probs`` (gradient-free explanations score any class on it, not only the top k)."""
        return [Classification.from_probs(p, self.class_names, int(self.options["top_k"]), keep_probs=True)
                for p in probs]


class TorchvisionClassify(_Classifier):
    """torchvision ImageNet classifiers; ``imgsz`` other than the weights' crop keeps their resize/crop ratio."""

    name = "torchvision"
    OPTIONS = {"top_k": 5, "imgsz": None}
    OPTION_TYPE_OVERRIDES = {"imgsz": SIDE}  # the square crop

    @classmethod
    def runtimes(cls, suffix: str) -> tuple[str, ...]:
        return PT_RUNTIMES  # the network exports to ONNX (torch.onnx), which ONNX Runtime and OpenVINO run

    def __init__(self, entry: ModelEntry, weights: Path, device: Device, options: dict[str, Any]):
        super().__init__(entry, weights, device, options)
        import torchvision

        arch = entry.arch or entry.name
        model = torchvision.models.get_model(arch, weights=None)
        load_state_dict(model, weights, arch)
        self.transforms = _torchvision_transforms(entry, options["imgsz"])
        crop = self.transforms.crop_size[0]
        self.crop_hw = (crop, crop)
        # Off PyTorch: the same network, exported at the crop size with a free batch axis.
        net = torch_net(model, weights, device, (1, 3, *self.crop_hw), f"{arch}-{crop}")
        self.session, self.model, self.dtype = net.session, net.module, net.dtype

    def warmup_input(self) -> list[np.ndarray]:
        return [np.zeros((*self.crop_hw, 3), np.uint8)]

    def preprocess(self, images: list[np.ndarray]) -> Any:
        import torch

        # uint8 RGB CHW on the device, then torchvision's own preset (resize, crop, scale, normalize) runs there.
        tensors = [torch.from_numpy(np.ascontiguousarray(im[..., ::-1].transpose(2, 0, 1))).to(self.device.torch)
                   for im in images]
        return torch.stack([self.transforms(t) for t in tensors]).to(self.dtype)

    def forward(self, batch: Any) -> Any:
        return self.session.run([batch])[0]

    def postprocess(self, raw: Any, batch: Any, images: list[np.ndarray]) -> list[Classification]:
        import torch

        return self._classifications(torch.as_tensor(raw).float().softmax(1).cpu().numpy())


def _torchvision_transforms(entry: ModelEntry, imgsz: int | None) -> Any:
    """The inference transforms of the catalog's ``weights_enum`` (e.g. ``ResNet50_Weights.IMAGENET1K_V2``);
    a different ``imgsz`` scales the resize size with the crop, as torchvision's recipes do."""
    enum_member = torchvision_weights(entry)
    preset = enum_member.transforms()  # torchvision's ImageClassification preset
    crop, resize = preset.crop_size[0], preset.resize_size[0]
    if imgsz is None or imgsz == crop:
        return preset
    return type(preset)(crop_size=imgsz, resize_size=round(imgsz * resize / crop), mean=preset.mean,
                        std=preset.std, interpolation=preset.interpolation)


class OnnxClassify(_Classifier):
    """TFLite-style quantized classifiers converted to ONNX, preprocessed as the TensorFlow reference evaluation:
    central 87.5 % crop, then PIL's bicubic resize (PIL's default filter) to the input size.

    The manifest's reference (86/100 top-1, 97/100 top-5 on imagenet_sample) names the crop but not the filter; of
    the usual filters, this one reproduces both counts exactly (others land 81..87 top-1: the score is sensitive).
    """

    name = "onnx-classify"
    RUNTIME = "onnx"
    SUFFIXES = (".onnx",)
    OPTIONS = {"top_k": 5, "imgsz": None}  # imgsz: only the file's own input size

    @classmethod
    def runtimes(cls, suffix: str) -> tuple[str, ...]:
        return FILE_RUNTIMES

    def __init__(self, entry: ModelEntry, weights: Path, device: Device, options: dict[str, Any]):
        super().__init__(entry, weights, device, options)
        self.session = open_session(weights, device)
        inp, out = self.session.inputs[0], self.session.outputs[0]
        nhwc_uint8 = inp.dtype == "uint8" and len(inp.shape) == 4 and inp.shape[3] == 3
        # One [1, C] output of class scores: a detector's boxes or a segmenter's map would pass for C scores else.
        scores = len(self.session.outputs) == 1 and len(out.shape) == 2 and isinstance(out.shape[1], int)
        if not (nhwc_uint8 and all(isinstance(d, int) for d in inp.shape[1:3]) and scores):
            raise WeightsError(f"{weights}: not a TFLite-style classifier (uint8 [1, H, W, 3] RGB -> one [1, C] "
                               f"class scores output); the file has "
                               f"{signature(self.session.inputs, self.session.outputs)}")
        self.input_hw = (int(inp.shape[1]), int(inp.shape[2]))
        # A float output (a float TFLite model) already holds the softmax probabilities.
        self.scale = TFLITE_SOFTMAX_SCALE if out.dtype == "uint8" else 1.0
        n_out = int(out.shape[-1])
        if not self.class_names:  # a file given by path: TFLite ImageNet models have 1000 or 1001 outputs
            imagenet = n_out in (1000, 1001)
            self.class_names = load_class_names("imagenet1k") if imagenet else [str(i) for i in range(n_out)]
        # TF-slim ImageNet models add a background class in front: 1001 outputs for 1000 classes.
        self.offset = n_out - len(self.class_names)
        if self.offset not in (0, 1):
            raise WeightsError(f"{weights} has {n_out} outputs but {entry.name} lists {len(self.class_names)} classes")

    def preprocess(self, images: list[np.ndarray]) -> list[np.ndarray]:
        from PIL import Image

        h, w = self.input_hw
        return [np.asarray(Image.fromarray(_central_crop(cv2.cvtColor(im, cv2.COLOR_BGR2RGB), TF_CENTRAL_FRACTION))
                           .resize((w, h), Image.BICUBIC))[None] for im in images]

    def forward(self, batch: list[np.ndarray]) -> np.ndarray:
        return np.concatenate([np.asarray(self.session.run([x])[0]) for x in batch])

    def postprocess(self, raw: np.ndarray, batch: Any, images: list[np.ndarray]) -> list[Classification]:
        return self._classifications(raw[:, self.offset:].astype(np.float32) * np.float32(self.scale))


def _central_crop(image: np.ndarray, fraction: float) -> np.ndarray:
    """``tf.image.central_crop``: the offsets are truncated, so the crop stays centred to the pixel."""
    h, w = image.shape[:2]
    top, left = int((h - h * fraction) / 2), int((w - w * fraction) / 2)
    return np.ascontiguousarray(image[top:h - top, left:w - left])


class TrainedClassify(TrainedRunBackend, _Classifier):
    """A ``visionkit train classify`` run: preprocessed exactly as in training, through the card's ``Preprocess``."""

    name = "visionkit"

    def forward(self, batch: Any) -> Any:
        return self.model(batch)

    def postprocess(self, raw: Any, batch: Any, images: list[np.ndarray]) -> list[Classification]:
        return self._classifications(raw.float().softmax(1).cpu().numpy())
