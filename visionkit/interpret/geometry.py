"""Where each pixel of the model's input came from in the user's image.

Every preprocessing of the catalog is an axis-aligned scale plus a shift (resize, centre crop, letterbox pad):
``input = scale * image + offset`` per axis, in pixel-centre coordinates. Knowing that map lets heat maps made on
the model input be shown on the image the user gave, and boxes in image pixels be found among the model's raw
candidates. Backends whose geometry is not registered here are taken to stretch the whole image onto the input
(a plain resize, as SSD and small custom models do).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from ..tasks.classify import TF_CENTRAL_FRACTION

GeometryFn = Callable[[Any, tuple[int, int]], "Geometry"]
_GEOMETRIES: dict[tuple[str, str], GeometryFn] = {}


@dataclass(frozen=True)
class Geometry:
    """``input_x = sx * image_x + tx`` (and the same for y) in continuous pixel coordinates (the image spans
    [0, w], as box corners do); ``input_hw`` is the input's (height, width)."""

    sx: float
    sy: float
    tx: float
    ty: float
    input_hw: tuple[int, int]

    @classmethod
    def from_crop(cls, crop: tuple[int, int, int, int], input_hw: tuple[int, int]) -> Geometry:
        """The image region ``crop`` = (left, top, width, height) resized to fill ``input_hw``."""
        left, top, cw, ch = crop
        h_in, w_in = input_hw
        return cls(w_in / cw, h_in / ch, -left * w_in / cw, -top * h_in / ch, input_hw)

    @property
    def matrix(self) -> np.ndarray:
        """The 2x3 affine image -> input on pixel indices (cv2's convention: pixel i is centred at i, which is
        i + 0.5 in continuous coordinates)."""
        return np.array([[self.sx, 0, self.tx + 0.5 * (self.sx - 1)], [0, self.sy, self.ty + 0.5 * (self.sy - 1)]],
                        np.float64)

    def boxes_to_input(self, xyxy: np.ndarray) -> np.ndarray:
        """(n, 4) boxes in image pixels -> the model input's pixels."""
        s = np.array([self.sx, self.sy, self.sx, self.sy], np.float32)
        t = np.array([self.tx, self.ty, self.tx, self.ty], np.float32)
        return np.asarray(xyxy, np.float32) * s + t

    def maps_to_image(self, maps: np.ndarray, image_hw: tuple[int, int]) -> np.ndarray:
        """(n, h, w) maps on the model input (any h, w: they are first stretched to ``input_hw``) -> (n, H, W) on
        the image; image pixels the model never saw (cropped away) get 0."""
        h, w = image_hw
        h_in, w_in = self.input_hw
        out = []
        for m in maps:
            m = cv2.resize(np.asarray(m, np.float32), (w_in, h_in), interpolation=cv2.INTER_LINEAR)
            out.append(cv2.warpAffine(m, self.matrix, (w, h), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                                      borderMode=cv2.BORDER_CONSTANT, borderValue=0))
        return np.stack(out) if out else np.zeros((0, h, w), np.float32)


def register_geometry(task: str, backend_name: str) -> Callable[[GeometryFn], GeometryFn]:
    """Declare how backend ``backend_name`` of ``task`` maps images onto its input (a function of the backend
    and the image's (h, w))."""
    def add(fn: GeometryFn) -> GeometryFn:
        _GEOMETRIES[(task, backend_name)] = fn
        return fn
    return add


def input_geometry(backend: Any, image_hw: tuple[int, int], input_hw: tuple[int, int]) -> Geometry:
    """The registered geometry of ``backend`` for an image of ``image_hw``; else a stretch onto ``input_hw``."""
    fn = _GEOMETRIES.get((backend.task, backend.name))
    if fn is not None:
        return fn(backend, image_hw)
    h, w = image_hw
    return Geometry.from_crop((0, 0, w, h), input_hw)


def letterbox_geometry(backend: Any, image_hw: tuple[int, int]) -> Geometry:
    """ultralytics' LetterBox as the backend runs it: its output size comes from the backend's own preprocess of a
    blank image of that size (so rect/stride/fixed-size rules stay the backend's), the rest from LetterBox's rule:
    scale to fit, round, centre with ``round(pad - 0.1)`` on the leading sides."""
    h, w = image_hw
    input_hw = backend.preprocess([np.zeros((h, w, 3), np.uint8)]).shape[2:4]
    return fit_geometry(image_hw, (int(input_hw[0]), int(input_hw[1])))


def fit_geometry(image_hw: tuple[int, int], input_hw: tuple[int, int]) -> Geometry:
    """ultralytics' LetterBox (``auto=False``, centred) of an image onto ``input_hw``: scale to fit, round, centre
    with ``round(pad - 0.1)`` on the leading sides."""
    (h, w), (h_in, w_in) = image_hw, input_hw
    r = min(h_in / h, w_in / w)
    nw, nh = round(w * r), round(h * r)
    left, top = round((w_in - nw) / 2 - 0.1), round((h_in - nh) / 2 - 0.1)
    return Geometry(nw / w, nh / h, float(left), float(top), (h_in, w_in))


for _task, _name in (("detect", "ultralytics"), ("detect", "onnx-yolo"), ("pose", "ultralytics"),
                     ("segment", "ultralytics")):
    register_geometry(_task, _name)(letterbox_geometry)


@register_geometry("classify", "onnx-classify")
def _tf_central_crop(backend: Any, image_hw: tuple[int, int]) -> Geometry:
    """TensorFlow's central crop (offsets truncated) then a resize to the input size."""
    h, w = image_hw
    top, left = int((h - h * TF_CENTRAL_FRACTION) / 2), int((w - w * TF_CENTRAL_FRACTION) / 2)
    return Geometry.from_crop((left, top, w - 2 * left, h - 2 * top), backend.input_hw)


@register_geometry("classify", "torchvision")
def _torchvision_resize_crop(backend: Any, image_hw: tuple[int, int]) -> Geometry:
    """torchvision's preset: shorter side to ``resize_size``, then a centre crop of ``crop_size``."""
    h, w = image_hw
    resize, crop = backend.transforms.resize_size[0], backend.transforms.crop_size[0]
    rh, rw = (resize, int(resize * w / h)) if h <= w else (int(resize * h / w), resize)
    top, left = int(round((rh - crop) / 2.0)), int(round((rw - crop) / 2.0))
    return Geometry(rw / w, rh / h, -float(left), -float(top), (crop, crop))
