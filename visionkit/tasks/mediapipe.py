"""MediaPipe's own TensorFlow Lite models run by a TFLite interpreter (``ai-edge-litert``), no mediapipe package.

Backends:
  tflite-selfie     (segment) MediaPipe Selfie Segmentation: person vs background, a ``SemanticMask`` over
                    ["background", "person"]
  tflite-blazepose  (pose) BlazePose GHUM landmark model (stage 2 of MediaPipe Pose): 33 body landmarks for ONE person
                    per image, or one per given box with ``predict_in_boxes`` (``visionkit.pipeline.PersonPose``)

The files are the ones the ``mediapipe==0.10.14`` wheel bundles for ``mp.solutions``; their graphs are reproduced
here: inputs are float32 RGB NHWC in 0..1, outputs are read by shape (the tensor names are generic ``Identity_k``).
  tflite-pose-detector  (detect) MediaPipe Pose's first stage (``pose_detection.tflite``): an SSD over fixed anchors
                    whose keypoints give each person's ROI; the default person finder for BlazePose in
                    ``visionkit.load("pose", "blazepose_full")`` (any detector's boxes work too, as for MoveNet)
"""

from __future__ import annotations

import time
from functools import cache
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from ..catalog import ModelEntry
from ..device import Device
from ..errors import WeightsError
from ..results import Detections, SemanticMask, Speed
from .base import Backend
from .pose import as_boxes, crop_regions

SELFIE_CLASSES = ["background", "person"]
# BlazePose's 33 landmarks; the model outputs 39, the last 6 being auxiliary ROI points MediaPipe tracks with.
BLAZEPOSE_KEYPOINTS = 33
BLAZEPOSE_OUTPUT_LANDMARKS = 39
# Each landmark row of the model: x, y, z (input pixels), visibility and presence logits.
BLAZEPOSE_VALUES = 5
# A landmark whose visibility is at least this counts as found: it shapes the person box on whole images.
BLAZEPOSE_KEYPOINT_CONF = 0.5


# MediaPipe's pose_detection_cpu.pbtxt (0.10.14): SsdAnchorsCalculator over a 224 input with strides 8, 16, 32, 32,
# 32 and fixed-size anchors, two per cell and layer (aspect 1 and the interpolated scale); layers of the same stride
# share a grid, so 28x28x2 + 14x14x2 + 7x7x6 = 2254 anchors.
POSE_DETECTOR_STRIDES = (8, 16, 32, 32, 32)
POSE_DETECTOR_ANCHORS_PER_LAYER = 2
# TensorsToDetectionsCalculator: 12 values per anchor = box (cx, cy, w, h) then 4 keypoints (x, y), in input pixels
# relative to the anchor centre; scores are logits clipped to +-100. NonMaxSuppressionCalculator: IoU 0.3.
POSE_DETECTOR_KEYPOINTS = 4
POSE_DETECTOR_SCORE_CLIP = 100.0
POSE_DETECTOR_NMS_IOU = 0.3


@cache
def _signature(path: Path) -> tuple[tuple[int, ...], tuple[tuple[int, ...], ...]]:
    """(input shape, output shapes) of a .tflite file; a user-facing WeightsError when it is not one."""
    interpreter = _interpreter(path)
    return (tuple(interpreter.get_input_details()[0]["shape"]),
            tuple(tuple(d["shape"]) for d in interpreter.get_output_details()))


def _interpreter(path: Path) -> Any:
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ModuleNotFoundError:
        raise WeightsError(f"{path}: TensorFlow Lite models need the TFLite runtime: "
                           "pip install 'visionkit[tflite]' (ai-edge-litert)") from None
    try:
        interpreter = Interpreter(model_path=str(path))
        interpreter.allocate_tensors()
    except (ValueError, RuntimeError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise WeightsError(f"{path}: not a loadable TensorFlow Lite model ({first})") from None
    return interpreter


class _TFLiteBackend(Backend):
    """One TFLite interpreter with a single float32 [1, H, W, 3] input; runs on the CPU whatever the device
    (the interpreter has no CUDA path). Subclasses say which output shapes they expect in ``_fits``."""

    SUFFIXES = (".tflite",)
    RUNTIME = "tflite"

    def __init__(self, entry: ModelEntry, weights: Path, device: Device, options: dict[str, Any]):
        super().__init__(entry, weights, device, options)
        self.interpreter = _interpreter(weights)
        inp = self.interpreter.get_input_details()[0]
        outputs = self.interpreter.get_output_details()
        shape = tuple(int(v) for v in inp["shape"])
        if inp["dtype"] != np.float32 or not self._fits(shape, tuple(tuple(d["shape"]) for d in outputs)):
            raise WeightsError(f"{weights}: not a {self.name} model: input {inp['dtype'].__name__} {list(shape)}, "
                               f"outputs {[list(d['shape']) for d in outputs]}")
        self.input_index = inp["index"]
        self.input_hw = (shape[1], shape[2])
        self.output_index = {tuple(d["shape"]): d["index"] for d in outputs}

    @classmethod
    def accepts(cls, path: Path) -> bool:
        return super().accepts(path) and cls._fits(*_signature(path))

    @staticmethod
    def _fits(input_shape: tuple[int, ...], output_shapes: tuple[tuple[int, ...], ...]) -> bool:
        raise NotImplementedError

    def _to_input(self, image: np.ndarray) -> np.ndarray:
        """BGR uint8 (already at the model's size) -> float32 RGB [1, H, W, 3] in 0..1, MediaPipe's tensor range."""
        return (cv2.cvtColor(image, cv2.COLOR_BGR2RGB).astype(np.float32) / 255)[None]

    def _invoke(self, x: np.ndarray, *shapes: tuple[int, ...]) -> list[np.ndarray]:
        self.interpreter.set_tensor(self.input_index, x)
        self.interpreter.invoke()
        return [self.interpreter.get_tensor(self.output_index[s]) for s in shapes]


def padded_crop(image: np.ndarray, region: np.ndarray) -> np.ndarray:
    """The (x0, y0, x1, y1) region of an image, zero where it reaches past the image's border."""
    x0, y0, x1, y1 = (int(v) for v in region)
    h, w = image.shape[:2]
    inside = image[max(y0, 0):max(min(y1, h), 0), max(x0, 0):max(min(x1, w), 0)]
    if inside.size == 0:
        return np.zeros((y1 - y0, x1 - x0, 3), image.dtype)
    return cv2.copyMakeBorder(inside, max(-y0, 0), max(y1 - h, 0), max(-x0, 0), max(x1 - w, 0), cv2.BORDER_CONSTANT)


class TFLiteSelfie(_TFLiteBackend):
    """MediaPipe Selfie Segmentation (the 256x256 "general" model): one person probability per pixel.

    As ``mp.solutions.selfie_segmentation`` (``selfie_segmentation_cpu.pbtxt``): a plain bilinear resize of the
    whole photo to the input (aspect not kept), 0..1 RGB; the probability map is resized bilinearly to the source
    size, and a pixel is "person" above ``conf`` (0.5). ``confidence`` holds the winning class's probability
    (p for person pixels, 1 - p for background), as every ``SemanticMask`` does. This reproduces MediaPipe's own
    figures: 54 % person on zidane.jpg (MediaPipe 54.6 %), 10 % on bus.jpg (MediaPipe 10 %).
    """

    task = "segment"
    name = "tflite-selfie"
    OPTIONS = {"conf": 0.5, "imgsz": None}  # imgsz: only the file's own input size

    def __init__(self, entry: ModelEntry, weights: Path, device: Device, options: dict[str, Any]):
        super().__init__(entry, weights, device, options)
        self.class_names = SELFIE_CLASSES

    @staticmethod
    def _fits(input_shape: tuple[int, ...], output_shapes: tuple[tuple[int, ...], ...]) -> bool:
        return len(output_shapes) == 1 and output_shapes[0] == (*input_shape[:3], 1)

    def preprocess(self, images: list[np.ndarray]) -> list[np.ndarray]:
        h, w = self.input_hw
        return [self._to_input(cv2.resize(im, (w, h), interpolation=cv2.INTER_LINEAR)) for im in images]

    def forward(self, batch: list[np.ndarray]) -> list[np.ndarray]:
        return [self._invoke(x, (*x.shape[:3], 1))[0][0, :, :, 0] for x in batch]

    def postprocess(self, raw: list[np.ndarray], batch: Any, images: list[np.ndarray]) -> list[SemanticMask]:
        out = []
        for prob, im in zip(raw, images, strict=True):
            prob = cv2.resize(prob, (im.shape[1], im.shape[0]), interpolation=cv2.INTER_LINEAR)
            person = prob > self.options["conf"]
            np.subtract(1, prob, out=prob, where=~person)
            out.append(SemanticMask(class_map=person.view(np.uint8), class_names=self.class_names, confidence=prob))
        return out


class TFLiteBlazePose(_TFLiteBackend):
    """BlazePose GHUM landmark model: [1, 256, 256, 3] in; 39 x (x, y, z, visibility, presence) in input pixels
    and a pose-presence probability out.

    The input is a region of the image letterboxed to the model's square (aspect kept, centred, zero border, as
    MediaPipe's ``ImageToTensorCalculator`` with ``keep_aspect_ratio``): the whole image, or in ``predict_in_boxes``
    a person box grown by 1.25 (MoveNet's crop, close to MediaPipe's own 1.25-scaled ROI but not rotated).
    Keypoints are the first 33 landmarks, (x, y, sigmoid(visibility)) in image pixels, in BlazePose order (0 nose,
    11/12 shoulders, 27/28 ankles); the person score is the pose-presence probability. On a whole image the
    box is the extent of the landmarks with visibility at least ``BLAZEPOSE_KEYPOINT_CONF``, reported when the
    person score is at least ``conf`` (MediaPipe's pose-presence threshold, 0.5).
    """

    task = "pose"
    name = "tflite-blazepose"
    OPTIONS = {"conf": 0.5, "imgsz": None}  # imgsz: only the file's own input size

    def __init__(self, entry: ModelEntry, weights: Path, device: Device, options: dict[str, Any]):
        super().__init__(entry, weights, device, options)
        from ultralytics.data.augment import LetterBox

        self.size = self.input_hw[0]
        self.letterbox = LetterBox(self.size, auto=False, padding_value=0)
        self.landmarks_shape = (1, BLAZEPOSE_OUTPUT_LANDMARKS * BLAZEPOSE_VALUES)
        self.class_names = entry.class_names or ["person"]

    @staticmethod
    def _fits(input_shape: tuple[int, ...], output_shapes: tuple[tuple[int, ...], ...]) -> bool:
        square = len(input_shape) == 4 and input_shape[1] == input_shape[2] and input_shape[3] == 3
        return square and {(1, 1), (1, BLAZEPOSE_OUTPUT_LANDMARKS * BLAZEPOSE_VALUES)} <= set(output_shapes)

    def _inputs(self, image: np.ndarray, regions: np.ndarray) -> list[np.ndarray]:
        return [self._to_input(self.letterbox(image=padded_crop(image, region))) for region in regions]

    def preprocess(self, images: list[np.ndarray]) -> tuple[list[np.ndarray], list[np.ndarray]]:
        regions = [np.array([[0, 0, im.shape[1], im.shape[0]]]) for im in images]
        return [self._inputs(im, r)[0] for im, r in zip(images, regions, strict=True)], regions

    def forward(self, batch: tuple[list[np.ndarray], Any]) -> tuple[np.ndarray, np.ndarray]:
        """(n, 33, 5) landmarks in input pixels and (n,) pose-presence probabilities, one row per model input."""
        rows = [self._invoke(x, self.landmarks_shape, (1, 1)) for x in batch[0]]
        landmarks = np.array([r[0].reshape(-1, BLAZEPOSE_VALUES)[:BLAZEPOSE_KEYPOINTS] for r in rows], np.float32)
        return landmarks.reshape(-1, BLAZEPOSE_KEYPOINTS, BLAZEPOSE_VALUES), np.array([r[1].item() for r in rows])

    def postprocess(self, raw: tuple[np.ndarray, np.ndarray], batch: tuple[list[np.ndarray], list[np.ndarray]],
                    images: list[np.ndarray]) -> list[Detections]:
        out = []
        for landmarks, presence, regions in zip(*raw, batch[1], strict=True):
            kpts = self._to_source(landmarks[None], regions)[0]
            found = kpts[:, 2] >= BLAZEPOSE_KEYPOINT_CONF
            score = float(presence)
            if not found.any() or score < self.options["conf"]:
                out.append(Detections.empty(keypoints=np.zeros((0, BLAZEPOSE_KEYPOINTS, 3), np.float32)))
                continue
            box = np.concatenate([kpts[found, :2].min(0), kpts[found, :2].max(0)])[None]
            out.append(Detections.from_arrays(box, [score], [0], self.class_names, keypoints=kpts[None]))
        return out

    def predict_in_boxes(self, image: np.ndarray, xyxy: np.ndarray) -> Detections:
        """One pose per person box of a BGR image (e.g. a detector's boxes), as ``OnnxMoveNet.predict_in_boxes``:
        the given boxes come back row for row, with ``keypoints`` (n, 33, 3) and score = pose presence."""
        xyxy = as_boxes(xyxy)
        t0 = time.perf_counter()
        # Not clipped to the image: a person at the border stays centred in the crop, the outside zero-padded as
        # MediaPipe's ImageToTensorCalculator does (a clipped crop would shift a neighbour into the middle).
        regions = crop_regions(xyxy, image.shape[:2], clip=False)
        inputs = self._inputs(image, regions)
        t1 = time.perf_counter()
        landmarks, presence = self.forward((inputs, regions))
        t2 = time.perf_counter()
        kpts = self._to_source(landmarks, regions)
        speed = Speed((t1 - t0) * 1e3, (t2 - t1) * 1e3, (time.perf_counter() - t2) * 1e3)
        return Detections.from_arrays(xyxy, presence, np.zeros(len(xyxy)), self.class_names,
                                      keypoints=kpts, image_shape=image.shape[:2], speed=speed)

    def _to_source(self, landmarks: np.ndarray, regions: np.ndarray) -> np.ndarray:
        """(n, 33, 5) landmarks on each letterboxed region -> (n, 33, [x, y, visibility]) in image pixels, undone
        with ultralytics' ``scale_coords`` (the inverse of its ``LetterBox``, clipped to the region)."""
        import torch
        from ultralytics.utils.ops import scale_coords

        kpts = torch.from_numpy(np.ascontiguousarray(landmarks[..., [0, 1, 3]], np.float32))
        kpts[..., 2] = kpts[..., 2].sigmoid()  # visibility is a logit, unlike the presence flag
        for k, (x0, y0, x1, y1) in zip(kpts, regions, strict=True):
            k[:] = scale_coords((self.size, self.size), k, (int(y1 - y0), int(x1 - x0)))
            k[:, 0] += float(x0)
            k[:, 1] += float(y0)
        return kpts.numpy()


@cache
def ssd_anchor_centres(size: int, strides: tuple[int, ...] = POSE_DETECTOR_STRIDES,
                       per_layer: int = POSE_DETECTOR_ANCHORS_PER_LAYER) -> np.ndarray:
    """(n, 2) anchor centres (x, y) in 0..1 as MediaPipe's ``SsdAnchorsCalculator`` orders them (fixed anchor
    size: only the centres matter): consecutive layers of the same stride share one grid, cell by cell."""
    centres = []
    i = 0
    while i < len(strides):
        same = sum(1 for s in strides[i:] if s == strides[i])
        cells = -(-size // strides[i])
        ys, xs = np.mgrid[:cells, :cells]
        grid = np.stack([(xs + 0.5) / cells, (ys + 0.5) / cells], -1).reshape(-1, 1, 2)
        centres.append(np.repeat(grid, same * per_layer, axis=1).reshape(-1, 2))
        i += same
    return np.concatenate(centres).astype(np.float32)


def weighted_nms(boxes: np.ndarray, scores: np.ndarray, iou: float) -> list[np.ndarray]:
    """MediaPipe's WEIGHTED non-maximum suppression: index groups, best first, each the boxes overlapping the best
    remaining one by more than ``iou`` (the caller averages each group's values by score)."""
    order = list(np.argsort(-scores))
    groups = []
    while order:
        best, rest = order[0], np.array(order[1:], int)
        if len(rest):
            lo = np.maximum(boxes[best, :2], boxes[rest, :2])
            hi = np.minimum(boxes[best, 2:], boxes[rest, 2:])
            inter = np.prod(np.clip(hi - lo, 0, None), axis=1)
            area = np.prod(boxes[:, 2:] - boxes[:, :2], axis=1)
            overlap = inter / np.maximum(area[best] + area[rest] - inter, 1e-9)
            member = rest[overlap > iou]
        else:
            member = rest
        groups.append(np.concatenate([[best], member]))
        dropped = set(member.tolist())
        order = [i for i in order[1:] if i not in dropped]
    return groups


class TFLitePoseDetector(_TFLiteBackend):
    """MediaPipe Pose's person detector (stage 1, ``pose_detection.tflite``): [1, 224, 224, 3] in -1..1, one box and
    4 keypoints per anchor out.

    As ``pose_detection_cpu.pbtxt``: the image letterboxed to the input (aspect kept, zero border), anchors decoded
    (``ssd_anchor_centres``), scores = sigmoid of the clipped logits kept at ``conf`` (0.5), weighted NMS at IoU 0.3.
    Keypoint 0 is the hip centre and keypoint 1 gives the body's scale, so each person's box is MediaPipe's
    ``AlignmentPointsRectsCalculator`` square: centred on the hips, side twice their distance (the landmark model's
    crop then grows it by 1.25, as MediaPipe's ``RectTransformationCalculator``; the rotation is not applied).
    ``keypoints`` holds the 4 detector keypoints.
    """

    task = "detect"
    name = "tflite-pose-detector"
    OPTIONS = {"conf": 0.5, "max_det": 20}
    EVAL_OPTIONS = {"conf": 0.1}

    def __init__(self, entry: ModelEntry, weights: Path, device: Device, options: dict[str, Any]):
        super().__init__(entry, weights, device, options)
        from ultralytics.data.augment import LetterBox

        self.size = self.input_hw[0]
        self.anchors = ssd_anchor_centres(self.size)
        self.raw_shapes = ((1, len(self.anchors), 4 + 2 * POSE_DETECTOR_KEYPOINTS), (1, len(self.anchors), 1))
        self.letterbox = LetterBox(self.size, auto=False, padding_value=0)
        self.class_names = entry.class_names or ["person"]

    @staticmethod
    def _fits(input_shape: tuple[int, ...], output_shapes: tuple[tuple[int, ...], ...]) -> bool:
        if len(input_shape) != 4 or input_shape[1] != input_shape[2] or len(output_shapes) != 2:
            return False
        n = len(ssd_anchor_centres(int(input_shape[1])))
        return set(output_shapes) == {(1, n, 4 + 2 * POSE_DETECTOR_KEYPOINTS), (1, n, 1)}

    def preprocess(self, images: list[np.ndarray]) -> list[np.ndarray]:
        return [self._to_input(self.letterbox(image=im)) * 2 - 1 for im in images]  # MediaPipe's -1..1 range

    def forward(self, batch: list[np.ndarray]) -> list[list[np.ndarray]]:
        return [self._invoke(x, *self.raw_shapes) for x in batch]

    def postprocess(self, raw: list[list[np.ndarray]], batch: Any, images: list[np.ndarray]) -> list[Detections]:
        return [self._people(values[0], logits[0, :, 0], im.shape[:2]) for (values, logits), im in zip(raw, images)]

    def _people(self, values: np.ndarray, logits: np.ndarray, image_hw: tuple[int, int]) -> Detections:
        logits = np.clip(logits.astype(np.float64), -POSE_DETECTOR_SCORE_CLIP, POSE_DETECTOR_SCORE_CLIP)
        scores = 1 / (1 + np.exp(-logits))
        keep = np.flatnonzero(scores >= self.options["conf"])
        scores = scores[keep]
        pairs = values[keep].reshape(len(keep), 2 + POSE_DETECTOR_KEYPOINTS, 2) / self.size  # centre, size, points
        centres, sizes = pairs[:, 0] + self.anchors[keep], pairs[:, 1]
        points = pairs[:, 2:] + self.anchors[keep, None]
        boxes = np.concatenate([centres - sizes / 2, centres + sizes / 2], 1)
        people = []
        for group in weighted_nms(boxes, scores, POSE_DETECTOR_NMS_IOU)[:self.options["max_det"]]:
            w = scores[group]
            people.append((scores[group[0]], (points[group] * w[:, None, None]).sum(0) / w.sum()))
        kpts = self._to_source(np.array([p for _, p in people], np.float32).reshape(-1, POSE_DETECTOR_KEYPOINTS, 2),
                               image_hw)
        centre, side = kpts[:, 0], 2 * np.linalg.norm(kpts[:, 1] - kpts[:, 0], axis=1, keepdims=True)
        xyxy = np.concatenate([centre - side / 2, centre + side / 2], 1)
        conf = np.ones((*kpts.shape[:2], 1), np.float32)
        return Detections.from_arrays(xyxy, [s for s, _ in people], np.zeros(len(people)), self.class_names,
                                      keypoints=np.concatenate([kpts, conf], -1))

    def _to_source(self, points: np.ndarray, image_hw: tuple[int, int]) -> np.ndarray:
        """(n, k, 2) points in 0..1 of the letterboxed input -> image pixels (the inverse of the letterbox)."""
        h, w = image_hw
        gain = min(self.size / h, self.size / w)
        pad = (np.array([self.size - w * gain, self.size - h * gain], np.float32)) / 2
        return (points * self.size - pad) / gain
