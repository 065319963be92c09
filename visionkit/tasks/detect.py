"""Object detection: preprocess -> model -> postprocess for each model family, into ``Detections``.

Backends:
  ultralytics   YOLOv8/YOLO11/YOLO26 ``.pt`` checkpoints, on PyTorch, ONNX Runtime or OpenVINO (``tasks/yolo.py``)
  onnx-yolo     YOLO exported to ONNX or OpenVINO IR without NMS: v5 layout [B, N, 5+nc] or v8/11 [B, 4+nc, N]
  onnx-ssd      TensorFlow Lite SSD converted to ONNX, NMS inside the graph (boxes/classes/scores/count)
  torchvision   torchvision's SSD builders (ssdlite320_mobilenet_v3_large, ssd300_vgg16) with a state dict
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import cv2
import numpy as np

from ..catalog import ModelEntry, load_class_names
from ..device import Device
from ..errors import WeightsError
from ..results import Detections
from ..runtimes import file_facts, open_session
from ..runtimes.torch import TorchRuntime
from ._runtime import load_state_dict
from .base import Backend
from .yolo import FILE_RUNTIMES, SSD_OUTPUTS, OnnxYoloDetect, YoloDetect, signature

__all__ = ["OnnxSsdDetect", "OnnxYoloDetect", "TorchvisionDetect", "YoloDetect"]


class OnnxSsdDetect(Backend):
    """TFLite-style SSD: plain resize to the input size (no aspect kept), uint8 NHWC in, NMS in the graph."""

    task = "detect"
    name = "onnx-ssd"
    CONCURRENT = True
    RUNTIME = "onnx"
    OPTIONS = {"conf": 0.5, "classes": None, "imgsz": None}  # imgsz: only the file's own input size
    EVAL_OPTIONS = {"conf": 0.0}  # every box the graph's NMS returns, as the TF Object Detection API scores
    SUFFIXES = (".onnx",)

    @classmethod
    def accepts(cls, path: Path) -> bool:
        return path.suffix.lower() == ".onnx" and set(SSD_OUTPUTS) <= set(file_facts(path).outputs)

    @classmethod
    def runtimes(cls, suffix: str) -> tuple[str, ...]:
        return FILE_RUNTIMES

    def __init__(self, entry: ModelEntry, weights: Path, device: Device, options: dict[str, Any]):
        super().__init__(entry, weights, device, options)
        self.session = open_session(weights, device)
        names = [o.name for o in self.session.outputs]
        if not set(SSD_OUTPUTS) <= set(names):
            raise WeightsError(f"{weights}: not an SSD with its NMS in the graph; the file has "
                               f"{signature(self.session.inputs, self.session.outputs)}")
        self.outputs = [names.index(o) for o in SSD_OUTPUTS]
        inp = self.session.inputs[0]
        self.input_hw = (int(inp.shape[1]), int(inp.shape[2]))
        if not self.class_names:
            self.class_names = load_class_names("coco91")
        # Class c of the graph is line c+1 of the label map (line 0 is the background).
        self.offset = 1

    def preprocess(self, images: list[np.ndarray]) -> list[np.ndarray]:
        h, w = self.input_hw
        return [cv2.cvtColor(cv2.resize(im, (w, h), interpolation=cv2.INTER_LINEAR), cv2.COLOR_BGR2RGB)[None]
                for im in images]

    def forward(self, batch: list[np.ndarray]) -> list[list[np.ndarray]]:
        return [[out[i] for i in self.outputs] for out in (self.session.run([x]) for x in batch)]

    def postprocess(self, raw: list[list[np.ndarray]], batch: Any, images: list[np.ndarray]) -> list[Detections]:
        out = []
        for (boxes, classes, scores, count), im in zip(raw, images):
            n = int(count[0])
            h, w = im.shape[:2]
            yxyx = boxes[0, :n] * np.array([h, w, h, w], np.float32)
            xyxy = np.clip(yxyx[:, [1, 0, 3, 2]], 0, [w, h, w, h])
            ids = classes[0, :n].astype(np.int64) + self.offset
            det = Detections.from_arrays(xyxy, scores[0, :n], ids, self.class_names)
            keep = det.scores >= self.options["conf"]
            if self.options["classes"] is not None:
                keep &= np.isin(det.class_ids, self.options["classes"])
            out.append(det[keep])
        return out


class TorchvisionDetect(Backend):
    """torchvision detection builders; thresholds go into the model, which resizes and runs NMS itself."""

    task = "detect"
    name = "torchvision"
    CONCURRENT = True
    OPTIONS = {"conf": 0.25, "iou": 0.45, "max_det": 300, "classes": None}

    def __init__(self, entry: ModelEntry, weights: Path, device: Device, options: dict[str, Any]):
        super().__init__(entry, weights, device, options)
        import torchvision

        model = torchvision.models.get_model(entry.arch or entry.name, weights=None, weights_backbone=None,
                                             **self.builder_kwargs())
        load_state_dict(model, weights, entry.arch or entry.name)
        self.session = TorchRuntime.session(model.eval(), device)
        self.model = self.session.module

    def builder_kwargs(self) -> dict[str, Any]:
        """The builder's class count and thresholds, under SSD's argument names. Families that name them otherwise
        (R-CNN: ``box_score_thresh``...) override this: torchvision drops unknown names silently, so a wrong name
        would leave the threshold at its default without a word."""
        return {"num_classes": len(self.class_names), "score_thresh": self.options["conf"],
                "nms_thresh": self.options["iou"], "detections_per_img": self.options["max_det"]}

    def preprocess(self, images: list[np.ndarray]) -> list[Any]:
        import torch

        return [torch.from_numpy(np.ascontiguousarray(im[..., ::-1].transpose(2, 0, 1))).to(self.device.torch)
                .to(self.session.dtype).div_(255) for im in images]

    def forward(self, batch: list[Any]) -> list[dict[str, Any]]:
        return self.session.run([batch])  # the module's own output: one dict per image

    def postprocess(self, raw: list[dict[str, Any]], batch: Any, images: list[np.ndarray]) -> list[Detections]:
        out = []
        for r in raw:
            det = Detections.from_arrays(r["boxes"].float().cpu().numpy(), r["scores"].float().cpu().numpy(),
                                         r["labels"].cpu().numpy(), self.class_names)
            if self.options["classes"] is not None:
                det = det[np.isin(det.class_ids, self.options["classes"])]
            out.append(det)
        return out


# Register the YuNet backend, and (through pose, which imports the MediaPipe module after its own helpers) MediaPipe's
# pose detector, a detect backend.
from . import faces, pose  # noqa: E402,F401
