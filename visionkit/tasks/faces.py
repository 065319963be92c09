"""Face detection with OpenCV Zoo's YuNet, run through OpenCV's own ``cv2.FaceDetectorYN`` (the reference).

YuNet takes any input size: ``FaceDetectorYN`` pads the image to a multiple of 32 itself, decodes its anchor-free
heads and runs NMS. So the only preprocessing here is an optional downscale: an image whose longer side exceeds
``imgsz`` is resized (INTER_AREA) to that side before detection and the boxes are scaled back. At or below
``imgsz`` the image goes in untouched, which gives exactly the reference's output; above it, the cost no longer
grows with the photo (an 8000x6000 photo at full size takes seconds and gigabytes), at the price of missing faces
smaller than about 10 px in the downscaled image.

Each face is a ``Detections`` row of class "face" with 5 keypoints (right eye, left eye, nose tip, right and left
mouth corner; "right" is the subject's right) whose confidence is the face score, as YuNet scores no single point.
OpenCV's DNN module runs on the CPU here whatever ``device`` says (pip OpenCV builds carry no CUDA backend);
the model is 0.23 MB and runs in milliseconds.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import cv2
import numpy as np

from ..catalog import ModelEntry
from ..device import Device
from ..results import Detections
from .base import Backend, OptionType

# A scaled image and the (x, y) factors that map its pixels back to the source image's ((1, 1) = not resized).
Scaled = tuple[np.ndarray, np.ndarray]


class YuNetFaces(Backend):
    task = "detect"
    name = "opencv-yunet"
    RUNTIME = "opencv"
    # conf / iou / max_det are FaceDetectorYN's score_threshold / nms_threshold / top_k (top_k caps the faces
    # kept after NMS); imgsz is the longest side an image is detected at (0 = always full size).
    OPTIONS = {"conf": 0.6, "iou": 0.3, "max_det": 5000, "imgsz": 1280}
    OPTION_TYPE_OVERRIDES = {"imgsz": OptionType("size", 0)}  # one side (the longest), 0 allowed

    def __init__(self, entry: ModelEntry, weights: Path, device: Device, options: dict[str, Any]):
        super().__init__(entry, weights, device, options)
        self.class_names = self.class_names or ["face"]
        # The input size given here is a placeholder: forward() sets each image's own size before detecting.
        # OpenCV 5 warns on every create that its new graph engine ignores the (default CPU) target: a line of
        # noise per run, so its log level is lowered for this call only and restored.
        level = cv2.utils.logging.getLogLevel()
        cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)
        try:
            self.detector = cv2.FaceDetectorYN.create(str(weights), "", (320, 320), float(options["conf"]),
                                                      float(options["iou"]), int(options["max_det"]))
        finally:
            cv2.utils.logging.setLogLevel(level)

    def warmup_input(self) -> list[np.ndarray]:
        return [np.zeros((480, 640, 3), np.uint8)]

    def preprocess(self, images: list[np.ndarray]) -> list[Scaled]:
        limit = self.options["imgsz"]
        out = []
        for im in images:
            side = max(im.shape[:2])
            if not limit or side <= limit:
                out.append((im, np.ones(2, np.float32)))
                continue
            h, w = im.shape[:2]
            size = (max(round(w * limit / side), 1), max(round(h * limit / side), 1))
            scale = np.array([w / size[0], h / size[1]], np.float32)
            out.append((cv2.resize(im, size, interpolation=cv2.INTER_AREA), scale))
        return out

    def forward(self, batch: list[Scaled]) -> list[np.ndarray]:
        """One (n, 15) array per image: x, y, w, h, five landmark (x, y) pairs, score; in scaled-image pixels."""
        faces = []
        for im, _ in batch:
            self.detector.setInputSize((im.shape[1], im.shape[0]))
            _, found = self.detector.detect(im)
            faces.append(np.zeros((0, 15), np.float32) if found is None else found)
        return faces

    def postprocess(self, raw: list[np.ndarray], batch: list[Scaled], images: list[np.ndarray]) -> list[Detections]:
        out = []
        for faces, (_, scale), im in zip(raw, batch, images):
            h, w = im.shape[:2]
            xyxy = np.concatenate([faces[:, :2], faces[:, :2] + faces[:, 2:4]], axis=1) * np.tile(scale, 2)
            xyxy = np.clip(xyxy, 0, [w, h, w, h])
            scores = faces[:, 14]
            points = faces[:, 4:14].reshape(-1, 5, 2) * scale
            keypoints = np.concatenate([points, np.repeat(scores[:, None, None], 5, axis=1)], axis=2)
            out.append(Detections.from_arrays(xyxy, scores, np.zeros(len(faces), np.int64), self.class_names,
                                              keypoints=keypoints.astype(np.float32)))
        return out
