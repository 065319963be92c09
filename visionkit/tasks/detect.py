"""Object detection: preprocess -> model -> postprocess for each model family, into ``Detections``.

Backends:
  ultralytics   YOLOv8/YOLO11/YOLO26 ``.pt`` checkpoints, run through ultralytics' own model, letterbox and NMS
  onnx-yolo     YOLO exported to ONNX without NMS: v5 layout [B, N, 5+nc] or v8/11 layout [B, 4+nc, N]
  onnx-ssd      TensorFlow Lite SSD converted to ONNX, NMS inside the graph (boxes/classes/scores/count)
  torchvision   torchvision's SSD builders (ssdlite320_mobilenet_v3_large, ssd300_vgg16) with a state dict
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from ..catalog import ModelEntry
from ..device import Device
from ..errors import WeightsError
from ..results import Detections
from ._runtime import (
    ModulePool,
    export_ultralytics_onnx,
    load_state_dict,
    load_ultralytics,
    onnx_output_names,
    onnx_session,
    onnx_signature,
    stride_multiple,
)
from .base import Backend, as_hw

YOLO_OPTIONS = {"conf": 0.25, "iou": 0.7, "max_det": 300, "imgsz": 640, "classes": None, "agnostic": False,
                "multi_label": False}
# ultralytics' validator settings (``DetectionValidator``: conf 0.001, iou 0.7, every class above conf per box).
YOLO_EVAL_OPTIONS = {"conf": 0.001, "iou": 0.7, "max_det": 300, "multi_label": True}
SSD_OUTPUTS = ("detection_boxes", "detection_classes", "detection_scores", "num_detections")


def _yolo_nms(pred: Any, options: dict[str, Any], end2end: bool = False, nc: int = 0) -> list[Any]:
    """ultralytics' NMS on [B, 4+nc, N] predictions (or end-to-end [B, N, 6]).

    ``nc`` is the class count for heads with extra channels after the class scores (mask coefficients,
    keypoints), which ultralytics' predictors pass as ``len(model.names)``; 0 = all channels are classes.

    ultralytics stops a batch's NMS after 2 s + 0.05 s per image (a training-time guard) and leaves the remaining
    images with no boxes; at eval settings (conf 0.001) on a CPU that silently emptied most images of a batch,
    so the limit is lifted.

    It switches from a per-box Python loop to torchvision's compiled NMS (the same boxes, ~20x faster with a few
    hundred candidates) only when torchvision is already imported, as its own predictors ensure: so import it.
    """
    import torchvision  # noqa: F401
    from ultralytics.utils.nms import non_max_suppression

    return non_max_suppression(pred, options["conf"], options["iou"], options["classes"], options["agnostic"],
                               multi_label=options["multi_label"], max_det=options["max_det"], nc=nc, end2end=end2end,
                               max_time_img=float("inf"))


def _letterbox(images: list[np.ndarray], imgsz: int | tuple[int, int], stride: int, auto: bool) -> np.ndarray:
    """ultralytics' LetterBox (centred, pad 114); ``auto`` pads only to a stride multiple (rectangular input)."""
    from ultralytics.data.augment import LetterBox

    same = len({im.shape for im in images}) == 1
    box = LetterBox(imgsz, auto=auto and same, stride=stride)
    boxed = [box(image=im) for im in images]
    return boxed[0][None] if len(boxed) == 1 else np.stack(boxed)


def _to_detections(pred: Any, input_hw: tuple[int, int], image: np.ndarray, names: list[str]) -> Detections:
    """[n, 6] (x1, y1, x2, y2, score, class) in letterboxed-input pixels -> Detections in image pixels."""
    from ultralytics.utils.ops import scale_boxes

    pred = pred.float()
    boxes = scale_boxes(input_hw, pred[:, :4].clone(), image.shape).cpu().numpy()
    return Detections.from_arrays(boxes, pred[:, 4].cpu().numpy(), pred[:, 5].cpu().numpy().astype(np.int64), names)


class UltralyticsDetect(Backend):
    task = "detect"
    name = "ultralytics"
    CONCURRENT = True
    OPTIONS = {**YOLO_OPTIONS, "rect": True}
    EVAL_OPTIONS = YOLO_EVAL_OPTIONS
    SUFFIXES = (".pt",)
    EXPECTED_TASK = "detect"
    ONNX_BACKEND = "onnx-yolo"

    @classmethod
    def export_onnx(cls, weights: Path) -> Path:
        return export_ultralytics_onnx(weights)

    def __init__(self, entry: ModelEntry, weights: Path, device: Device, options: dict[str, Any]):
        super().__init__(entry, weights, device, options)
        self.model = load_ultralytics(weights, device, self.EXPECTED_TASK)
        self.runner = ModulePool(self.model)  # CONCURRENT, but the heads cache anchors per input shape on themselves
        self.stride = max(int(self.model.stride.max()), 32)
        self.imgsz = stride_multiple(options["imgsz"], self.stride, entry.name)
        self.end2end = bool(getattr(self.model, "end2end", False))
        names = self.model.names
        self.class_names = entry.class_names or [names[i] for i in range(len(names))]

    def warmup_input(self) -> list[np.ndarray]:
        h, w = as_hw(self.imgsz)
        return [np.zeros((h, w, 3), np.uint8)]

    def preprocess(self, images: list[np.ndarray]) -> Any:
        import torch

        x = torch.from_numpy(_letterbox(images, self.imgsz, self.stride, self.options["rect"]))
        x = x.to(self.device.torch).permute(0, 3, 1, 2).contiguous().flip(1)  # BHWC BGR -> BCHW RGB
        return (x.half() if self.device.half else x.float()).div_(255)

    def forward(self, batch: Any) -> Any:
        with self.runner.borrow() as model:
            return model(batch)

    def postprocess(self, raw: Any, batch: Any, images: list[np.ndarray]) -> list[Detections]:
        preds = _yolo_nms(raw, self.options, self.end2end)
        return [_to_detections(p, batch.shape[2:], im, self.class_names) for p, im in zip(preds, images)]


class OnnxYoloDetect(Backend):
    task = "detect"
    name = "onnx-yolo"
    CONCURRENT = True
    EVAL_OPTIONS = YOLO_EVAL_OPTIONS
    # rect: letterbox to a stride multiple only (dynamic-size exports); a fixed-size export takes only its own imgsz
    OPTIONS = {**YOLO_OPTIONS, "rect": True}
    SUFFIXES = (".onnx",)
    RUNTIME = "onnx"

    @classmethod
    def accepts(cls, path: Path) -> bool:
        return path.suffix.lower() == ".onnx" and not set(SSD_OUTPUTS) <= set(onnx_output_names(path))

    def __init__(self, entry: ModelEntry, weights: Path, device: Device, options: dict[str, Any]):
        super().__init__(entry, weights, device, options)
        self.session = onnx_session(weights, device)
        meta = self.session.get_modelmeta().custom_metadata_map
        if meta.get("task", "detect") != "detect":
            raise WeightsError(f"{weights} is an ultralytics {meta['task']} model, not a detect model")
        if not _yolo_like(self.session):
            raise WeightsError(f"{weights}: not a YOLO detector (float [B, 3, H, W] -> [B, 4 + classes, anchors], "
                               f"[B, anchors, 5 + classes] or [B, max_det, 6]); the file has "
                               f"{onnx_signature(self.session)}")
        inp = self.session.get_inputs()[0]
        self.input_name = inp.name
        self.fixed_batch = isinstance(inp.shape[0], int)
        h, w = inp.shape[2:4]
        self.input_hw = (h, w) if isinstance(h, int) and isinstance(w, int) else None
        self.stride = int(meta.get("stride", 32))
        self.imgsz = self.input_hw or stride_multiple(options["imgsz"], self.stride, entry.name)
        self.end2end = meta.get("end2end") == "True"  # NMS-free heads (YOLO26, YOLOv10): [B, max_det, 6] out
        if not self.class_names and "names" in meta:
            names = ast.literal_eval(meta["names"])  # ultralytics and YOLOv5 exports store {id: name}
            self.class_names = [names[i] for i in range(len(names))] if isinstance(names, dict) else list(names)

    def warmup_input(self) -> list[np.ndarray]:
        h, w = as_hw(self.imgsz)
        return [np.zeros((h, w, 3), np.uint8)]

    def preprocess(self, images: list[np.ndarray]) -> np.ndarray:
        x = _letterbox(images, self.imgsz, self.stride, auto=self.input_hw is None and self.options["rect"])
        x = x[..., ::-1].transpose(0, 3, 1, 2)  # BHWC BGR -> BCHW RGB
        return np.ascontiguousarray(x, dtype=np.float32) / np.float32(255)

    def forward(self, batch: np.ndarray) -> np.ndarray:
        if self.fixed_batch and len(batch) != 1:
            return np.concatenate([self.session.run(None, {self.input_name: b[None]})[0] for b in batch])
        return self.session.run(None, {self.input_name: batch})[0]

    def postprocess(self, raw: np.ndarray, batch: np.ndarray, images: list[np.ndarray]) -> list[Detections]:
        import torch

        pred = torch.from_numpy(raw)
        if not self.end2end and pred.shape[1] > pred.shape[2]:  # v5 layout [B, N, 5+nc]: objectness x class prob.
            pred = torch.cat([pred[..., :4], pred[..., 5:] * pred[..., 4:5]], -1).transpose(1, 2)
        preds = _yolo_nms(pred, self.options, self.end2end)
        return [_to_detections(p, batch.shape[2:], im, self.class_names) for p, im in zip(preds, images)]


def _yolo_like(session: Any) -> bool:
    """Whether an ONNX session has a YOLO export's signature: one float image input [B, 3, H, W] and a first output
    of rank 3 whose fixed axes all hold at least 5 values (a box and a score), as every layout above does. Any
    ONNX file without SSD outputs is offered to this backend, so a classifier, a pose or face model is refused here,
    at load, not on the first image."""
    inputs, out = session.get_inputs(), session.get_outputs()[0]
    shape = inputs[0].shape
    image = (len(inputs) == 1 and inputs[0].type in ("tensor(float)", "tensor(float16)") and len(shape) == 4
             and shape[1] == 3)
    return image and len(out.shape) == 3 and all(d >= 5 for d in out.shape[1:] if isinstance(d, int))


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
        return path.suffix.lower() == ".onnx" and set(SSD_OUTPUTS) <= set(onnx_output_names(path))

    def __init__(self, entry: ModelEntry, weights: Path, device: Device, options: dict[str, Any]):
        super().__init__(entry, weights, device, options)
        self.session = onnx_session(weights, device)
        inp = self.session.get_inputs()[0]
        self.input_name = inp.name
        self.input_hw = (int(inp.shape[1]), int(inp.shape[2]))
        if not self.class_names:
            from ..catalog import load_class_names

            self.class_names = load_class_names("coco91")
        # Class c of the graph is line c+1 of the label map (line 0 is the background).
        self.offset = 1

    def preprocess(self, images: list[np.ndarray]) -> list[np.ndarray]:
        h, w = self.input_hw
        return [cv2.cvtColor(cv2.resize(im, (w, h), interpolation=cv2.INTER_LINEAR), cv2.COLOR_BGR2RGB)[None]
                for im in images]

    def forward(self, batch: list[np.ndarray]) -> list[list[np.ndarray]]:
        return [self.session.run(list(SSD_OUTPUTS), {self.input_name: x}) for x in batch]

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
        model = model.eval().to(device.torch)
        self.model = model.half() if device.half else model

    def builder_kwargs(self) -> dict[str, Any]:
        """The builder's class count and thresholds, under SSD's argument names. Families that name them otherwise
        (R-CNN: ``box_score_thresh``...) override this: torchvision drops unknown names silently, so a wrong name
        would leave the threshold at its default without a word."""
        return {"num_classes": len(self.class_names), "score_thresh": self.options["conf"],
                "nms_thresh": self.options["iou"], "detections_per_img": self.options["max_det"]}

    def preprocess(self, images: list[np.ndarray]) -> list[Any]:
        import torch

        dtype = torch.float16 if self.device.half else torch.float32
        return [torch.from_numpy(np.ascontiguousarray(im[..., ::-1].transpose(2, 0, 1))).to(self.device.torch)
                .to(dtype).div_(255) for im in images]

    def forward(self, batch: list[Any]) -> list[dict[str, Any]]:
        return self.model(batch)

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
