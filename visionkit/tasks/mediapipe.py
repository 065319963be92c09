"""MediaPipe's own TensorFlow Lite models run by a TFLite interpreter (``ai-edge-litert``), no mediapipe package.

Backends:
  tflite-selfie     (segment) MediaPipe Selfie Segmentation: person vs background, a ``SemanticMask`` over
                    ["background", "person"]
  tflite-blazepose  (pose) BlazePose GHUM landmark model (stage 2 of MediaPipe Pose): 33 body landmarks for ONE person
                    per image, or one per given box with ``predict_in_boxes`` (``visionkit.pipeline.PersonPose``)

The files are the ones the ``mediapipe==0.10.14`` wheel bundles for ``mp.solutions``; their graphs are reproduced
here: inputs are float32 RGB NHWC in 0..1, outputs are read by shape (the tensor names are generic ``Identity_k``).
MediaPipe Pose's first stage (``pose_detection.tflite``, an SSD with its own anchors and a rotated ROI) is not
run: a person detector's boxes stand in for it, as for MoveNet.
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
from .pose import _crop_regions, as_boxes

SELFIE_CLASSES = ["background", "person"]
# BlazePose's 33 landmarks; the model outputs 39, the last 6 being auxiliary ROI points MediaPipe tracks with.
BLAZEPOSE_KEYPOINTS = 33
BLAZEPOSE_OUTPUT_LANDMARKS = 39
# Each landmark row of the model: x, y, z (input pixels), visibility and presence logits.
BLAZEPOSE_VALUES = 5
# A landmark whose visibility is at least this counts as found: it shapes the person box on whole images.
BLAZEPOSE_KEYPOINT_CONF = 0.5


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
        return [self._to_input(self.letterbox(image=image[y0:y1, x0:x1])) for x0, y0, x1, y1 in regions]

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
        regions = _crop_regions(xyxy, image.shape[:2])
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
