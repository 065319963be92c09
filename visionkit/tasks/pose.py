"""Human pose estimation: ``Detections`` of class "person" whose ``keypoints`` are (n, 17, 3) = x, y, confidence in
source-image pixels, in COCO keypoint order (``models/classes/coco_keypoints17.txt``).

Backends:
  ultralytics   YOLO-pose ``.pt`` checkpoints (yolov8n-pose, yolo11n-pose) run as ultralytics' ``PosePredictor``:
                its letterbox, NMS told the class count (the keypoints follow the class scores) and ``scale_coords``
  torchvision   Keypoint R-CNN (keypointrcnn_resnet50_fpn) with a state dict; thresholds go into the model
  onnx-movenet  MoveNet SinglePose (TensorFlow Lite int8 converted to ONNX): ONE person per image, or one per given
                box with ``predict_in_boxes``; ``visionkit.pipeline.PersonPose`` pairs it with a person detector
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from ..catalog import ModelEntry
from ..device import Device
from ..errors import WeightsError
from ..results import Detections, Speed
from ._runtime import onnx_session, onnx_signature
from .base import SIDE, Backend
from .detect import TorchvisionDetect, UltralyticsDetect, _to_detections, _yolo_nms

NUM_KEYPOINTS = 17
# MoveNet is trained on loose person crops: a person box is grown by this factor about its centre before cropping,
# as in the reference evaluation of the shared MoveNet file (shared/weights/MANIFEST.md). The crop is then padded,
# not widened, to the model's square: widening would bring the neighbours of a person in a crowd into view, and
# MoveNet might pose one of them instead.
MOVENET_CROP_SCALE = 1.25
# A MoveNet keypoint above this score counts as found: it shapes the person box (and the annotator draws it).
MOVENET_KEYPOINT_CONF = 0.3
# torchvision's categories for its COCO keypoint weights (``KeypointRCNN_ResNet50_FPN_Weights.meta``): 1 = person.
KEYPOINT_RCNN_CLASSES = ["no person", "person"]
# torchvision R-CNN builders resize the shorter side to 800 and cap the longer at 1333.
RCNN_MAX_TO_MIN_SIZE = 1333 / 800


class UltralyticsPose(UltralyticsDetect):
    """YOLO-pose checkpoints; boxes exactly as the detection backend, keypoints as ultralytics' ``PosePredictor``."""

    task = "pose"
    name = "ultralytics"
    EXPECTED_TASK = "pose"
    ONNX_BACKEND = None  # no ONNX Runtime backend for this head yet

    def __init__(self, entry: ModelEntry, weights: Path, device: Device, options: dict[str, Any]):
        super().__init__(entry, weights, device, options)
        self.kpt_shape = tuple(self.model.kpt_shape)

    def postprocess(self, raw: Any, batch: Any, images: list[np.ndarray]) -> list[Detections]:
        import torch
        from ultralytics.utils.ops import scale_coords

        preds = _yolo_nms(raw, self.options, self.end2end, nc=len(self.model.names))
        input_hw = batch.shape[2:]
        out = []
        for pred, im in zip(preds, images, strict=True):
            kpts = scale_coords(input_hw, pred[:, 6:].float().view(len(pred), *self.kpt_shape), im.shape)
            if self.kpt_shape[1] == 2:  # x, y only: every returned keypoint is taken as found
                kpts = torch.cat([kpts, torch.ones_like(kpts[..., :1])], -1)
            det = _to_detections(pred, input_hw, im, self.class_names)
            out.append(det.with_(keypoints=kpts.cpu().numpy()))
        return out


class TorchvisionPose(TorchvisionDetect):
    """Keypoint R-CNN. The keypoint confidence is the sigmoid of torchvision's ``keypoints_scores`` (heatmap logits,
    unbounded) so that it lies in 0..1 like the other backends' and the annotator's threshold means the same.

    ``imgsz`` is the shorter side the model resizes to (torchvision's ``min_size``; the longer side is capped in
    torchvision's 800:1333 ratio): smaller is much faster on a CPU, at the cost of small people.
    """

    task = "pose"
    name = "torchvision"
    # torchvision's own defaults for this builder, i.e. the settings of its published AP.
    OPTIONS = {"conf": 0.05, "iou": 0.5, "max_det": 100, "imgsz": 800}
    OPTION_TYPE_OVERRIDES = {"imgsz": SIDE}  # the shorter side

    def __init__(self, entry: ModelEntry, weights: Path, device: Device, options: dict[str, Any]):
        super().__init__(entry, weights, device, options)
        self.class_names = entry.class_names or KEYPOINT_RCNN_CLASSES

    def builder_kwargs(self) -> dict[str, Any]:
        size = self.options["imgsz"]
        return {"num_classes": len(KEYPOINT_RCNN_CLASSES), "num_keypoints": NUM_KEYPOINTS,
                "box_score_thresh": self.options["conf"], "box_nms_thresh": self.options["iou"],
                "box_detections_per_img": self.options["max_det"], "min_size": size,
                "max_size": round(size * RCNN_MAX_TO_MIN_SIZE)}

    def postprocess(self, raw: list[dict[str, Any]], batch: Any, images: list[np.ndarray]) -> list[Detections]:
        out = []
        for r in raw:
            keypoints = r["keypoints"].float().clone()
            keypoints[..., 2] = r["keypoints_scores"].float().sigmoid()
            out.append(Detections.from_arrays(r["boxes"].float().cpu().numpy(), r["scores"].float().cpu().numpy(),
                                              r["labels"].cpu().numpy(), self.class_names,
                                              keypoints=keypoints.cpu().numpy()))
        return out


class OnnxMoveNet(Backend):
    """MoveNet SinglePose: uint8 [1, S, S, 3] RGB in, [1, 1, 17, 3] (y, x, score normalised to the input square) out.

    The model's input is a region of the image letterboxed to S (aspect kept, centred, zero padding, as
    ``tf.image.resize_with_pad``): the whole image, or in ``predict_in_boxes`` a person box grown by
    ``MOVENET_CROP_SCALE``. On a whole image the person box is the extent of the keypoints scoring at least
    ``MOVENET_KEYPOINT_CONF`` and the person score the mean of all 17 keypoint scores, reported when at least
    ``conf``. The model sees one person: with several in view it picks one; ``visionkit.pipeline.PersonPose``
    runs it per detected person instead.
    """

    task = "pose"
    name = "onnx-movenet"
    CONCURRENT = True
    RUNTIME = "onnx"
    OPTIONS = {"conf": 0.2, "imgsz": None}  # imgsz: only the file's own input size
    SUFFIXES = (".onnx",)

    def __init__(self, entry: ModelEntry, weights: Path, device: Device, options: dict[str, Any]):
        super().__init__(entry, weights, device, options)
        from ultralytics.data.augment import LetterBox

        self.session = onnx_session(weights, device)
        inp, out = self.session.get_inputs()[0], self.session.get_outputs()[0]
        square = len(inp.shape) == 4 and isinstance(inp.shape[1], int) and inp.shape[1] == inp.shape[2]
        if not (inp.type == "tensor(uint8)" and square and inp.shape[3] == 3 and
                list(out.shape[-2:]) == [NUM_KEYPOINTS, 3]):
            raise WeightsError(f"{weights}: not a MoveNet pose model (uint8 [1, S, S, 3] -> [1, 1, 17, 3]); the file "
                               f"has {onnx_signature(self.session)}")
        self.input_name = inp.name
        self.size = int(inp.shape[1])
        self.input_hw = (self.size, self.size)
        self.letterbox = LetterBox(self.size, auto=False, padding_value=0)
        self.class_names = entry.class_names or ["person"]

    def _inputs(self, image: np.ndarray, regions: np.ndarray) -> list[np.ndarray]:
        """Each (x0, y0, x1, y1) region of a BGR image letterboxed to the model's RGB input."""
        return [cv2.cvtColor(self.letterbox(image=image[y0:y1, x0:x1]), cv2.COLOR_BGR2RGB)
                for x0, y0, x1, y1 in regions]

    def preprocess(self, images: list[np.ndarray]) -> tuple[list[np.ndarray], list[np.ndarray]]:
        regions = [np.array([[0, 0, im.shape[1], im.shape[0]]]) for im in images]
        return [self._inputs(im, r)[0] for im, r in zip(images, regions, strict=True)], regions

    def forward(self, batch: tuple[list[np.ndarray], Any]) -> np.ndarray:
        out = [self.session.run(None, {self.input_name: x[None]})[0].reshape(NUM_KEYPOINTS, 3) for x in batch[0]]
        return np.stack(out) if out else np.zeros((0, NUM_KEYPOINTS, 3), np.float32)

    def postprocess(self, raw: np.ndarray, batch: tuple[list[np.ndarray], list[np.ndarray]],
                    images: list[np.ndarray]) -> list[Detections]:
        out = []
        for kpts, regions in zip(raw, batch[1], strict=True):
            kpts = _to_source(kpts[None], regions, self.size)[0]
            found = kpts[:, 2] >= MOVENET_KEYPOINT_CONF
            score = float(kpts[:, 2].mean())
            if not found.any() or score < self.options["conf"]:
                out.append(Detections.empty(keypoints=np.zeros((0, NUM_KEYPOINTS, 3), np.float32)))
                continue
            xy = kpts[found, :2]
            box = np.concatenate([xy.min(0), xy.max(0)])[None]
            out.append(Detections.from_arrays(box, [score], [0], self.class_names, keypoints=kpts[None]))
        return out

    def predict_in_boxes(self, image: np.ndarray, xyxy: np.ndarray) -> Detections:
        """One pose per person box of a BGR image (e.g. a detector's boxes), each estimated on the box grown by
        ``MOVENET_CROP_SCALE`` about its centre (clipped to the image), letterboxed to the model's square input.

        Returns the given boxes with ``keypoints`` in image pixels and score = mean keypoint score; nothing is
        filtered, so row i always belongs to box i.
        """
        xyxy = as_boxes(xyxy)
        t0 = time.perf_counter()
        regions = crop_regions(xyxy, image.shape[:2])
        inputs = self._inputs(image, regions)
        t1 = time.perf_counter()
        raw = self.forward((inputs, regions))
        t2 = time.perf_counter()
        kpts = _to_source(raw, regions, self.size)
        speed = Speed((t1 - t0) * 1e3, (t2 - t1) * 1e3, (time.perf_counter() - t2) * 1e3)
        return Detections.from_arrays(xyxy, kpts[:, :, 2].mean(1), np.zeros(len(xyxy)), self.class_names,
                                      keypoints=kpts, image_shape=image.shape[:2], speed=speed)


def as_boxes(xyxy: Any) -> np.ndarray:
    """Person boxes given to ``predict_in_boxes`` as float32 (n, 4); any other shape is the caller's error."""
    xyxy = np.asarray(xyxy, np.float32)
    if xyxy.size == 0:
        xyxy = xyxy.reshape(0, 4)
    if xyxy.ndim != 2 or xyxy.shape[1] != 4:
        raise ValueError(f"boxes must have shape (n, 4) as x1, y1, x2, y2, but got shape {xyxy.shape}")
    return xyxy


def crop_regions(xyxy: np.ndarray, image_hw: tuple[int, int], scale: float = MOVENET_CROP_SCALE,
                  clip: bool = True) -> np.ndarray:
    """(n, 4) integer pixel regions (x0, y0, x1, y1): each box grown by ``scale`` about its centre, clipped to the
    image (``clip``; else a region may reach past the border, to be padded); never empty, so a degenerate or
    off-image box still gets a (tiny) crop."""
    h, w = image_hw
    xyxy = np.asarray(xyxy, np.float64).reshape(-1, 4)
    centre, half = (xyxy[:, :2] + xyxy[:, 2:]) / 2, (xyxy[:, 2:] - xyxy[:, :2]) * scale / 2
    if not clip:
        lo = np.floor(centre - half).astype(np.int64)
        return np.column_stack([lo, np.maximum(np.ceil(centre + half).astype(np.int64), lo + 1)])
    lo = np.clip((centre - half).astype(np.int64), 0, [w - 1, h - 1])
    hi = np.clip((centre + half).astype(np.int64), lo + 1, [w, h])
    return np.column_stack([lo, hi])


def _to_source(raw: np.ndarray, regions: np.ndarray, size: int) -> np.ndarray:
    """MoveNet's (n, 17, [y, x, score]) on each letterboxed region -> (n, 17, [x, y, score]) in image pixels,
    undone with ultralytics' ``scale_coords`` (the inverse of its ``LetterBox``, clipped to the region)."""
    import torch
    from ultralytics.utils.ops import scale_coords

    kpts = torch.from_numpy(np.asarray(raw, np.float32).reshape(-1, NUM_KEYPOINTS, 3)[..., [1, 0, 2]].copy())
    kpts[..., :2] *= size
    for k, (x0, y0, x1, y1) in zip(kpts, regions, strict=True):
        k[:] = scale_coords((size, size), k, (int(y1 - y0), int(x1 - x0)))
        k[:, 0] += float(x0)
        k[:, 1] += float(y0)
    return kpts.numpy()


from . import mediapipe  # noqa: E402,F401  (registers the TFLite backends)
