"""Typed, backend-independent results. They hold numbers only: no frames, paths or writers.

``Detections`` follows supervision's shape: one dataclass of parallel numpy arrays, validated on creation,
filtered with boolean masks (``d[d.scores > 0.5]``), convertible to and from ``supervision.Detections``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar, TypeVar

import numpy as np

from .errors import ResultFormatError

T = TypeVar("T")

# Class names that mean "no class" in the segmentation models' lists (torchvision VOC, MediaPipe Selfie): left out
# when drawing or converting a class map.
BACKGROUND_CLASSES = ("__background__", "background")


@dataclass
class Speed:
    """Milliseconds per image for each predictor stage (a batch's stage time divided by its size)."""

    preprocess: float = 0.0
    inference: float = 0.0
    postprocess: float = 0.0

    @property
    def total(self) -> float:
        return self.preprocess + self.inference + self.postprocess

    def to_dict(self) -> dict[str, float]:
        return {"preprocess": round(self.preprocess, 3), "inference": round(self.inference, 3),
                "postprocess": round(self.postprocess, 3)}


@dataclass(kw_only=True)
class Result:
    """What every task's result shares: where it came from in the stream, image size and stage timings."""

    kind: ClassVar[str] = "result"
    frame_index: int = 0
    image_shape: tuple[int, int] = (0, 0)  # (height, width) of the source image
    speed: Speed = field(default_factory=Speed)
    metadata: dict[str, Any] = field(default_factory=dict)

    def _payload(self) -> dict[str, Any]:
        raise NotImplementedError

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict: plain lists and numbers, boxes in source-image pixels."""
        out = {"type": self.kind, "frame_index": self.frame_index, "image_shape": list(self.image_shape),
               "speed": self.speed.to_dict()}
        out.update(self._payload())
        if self.metadata:
            out["metadata"] = self.metadata
        return out

    def to_json(self, **kwargs: Any) -> str:
        return json.dumps(self.to_dict(), **kwargs)

    def to_pandas(self) -> Any:
        """A pandas DataFrame with one row per object (a detection, or a top-k class), the columns of the CLI's
        ``--csv`` output (``visionkit.batch.schema.TABLE``); ``visionkit.results_to_frame`` does many results."""
        from .batch.schema import results_to_frame

        return results_to_frame([self])

    def plot(self, image: np.ndarray, **style: Any) -> np.ndarray:
        """An annotated copy of ``image`` (BGR); the input is left untouched."""
        from .draw import annotate

        return annotate(image.copy(), self, **style)


def _check(name: str, arr: np.ndarray | None, n: int, ndim: int = 1, last: int | None = None) -> None:
    """Validate a per-detection array: n rows first, ``ndim`` dimensions, optional fixed last axis."""
    if arr is None:
        return
    if not isinstance(arr, np.ndarray):
        raise TypeError(f"{name} must be a numpy array, but got {type(arr).__name__}")
    if arr.ndim != ndim or arr.shape[0] != n or (last is not None and arr.shape[-1] != last):
        want = ", ".join(["n", *["_"] * (ndim - 1 - (last is not None)), *([str(last)] if last is not None else [])])
        raise ValueError(f"{name} must have shape ({want}) with n={n}, but got shape {arr.shape}")


@dataclass(kw_only=True)
class Detections(Result):
    """Boxes with scores and classes, plus optional per-box track ids, instance masks and keypoints.

    ``xyxy`` is (n, 4) float32 in source-image pixels; ``masks`` is (n, H, W) bool at source size;
    ``keypoints`` is (n, K, 3) float32 holding x, y, confidence.
    """

    kind: ClassVar[str] = "detections"
    xyxy: np.ndarray
    scores: np.ndarray
    class_ids: np.ndarray
    class_names: np.ndarray
    track_ids: np.ndarray | None = None
    masks: np.ndarray | None = None
    keypoints: np.ndarray | None = None

    _ARRAYS: ClassVar[tuple[str, ...]] = ("xyxy", "scores", "class_ids", "class_names", "track_ids", "masks",
                                          "keypoints")

    def __post_init__(self) -> None:
        xyxy = np.asarray(self.xyxy, dtype=np.float32)
        if xyxy.size == 0:
            xyxy = xyxy.reshape(0, 4)
        if xyxy.ndim != 2 or xyxy.shape[1] != 4:  # reshape(-1, 4) would silently regroup e.g. (4, 5) into 5 boxes
            raise ValueError(f"xyxy must have shape (n, 4), but got shape {xyxy.shape}")
        self.xyxy = xyxy
        n = len(self.xyxy)
        self.scores = np.asarray(self.scores, dtype=np.float32).reshape(-1)
        self.class_ids = np.asarray(self.class_ids, dtype=np.int64).reshape(-1)
        self.class_names = np.asarray(self.class_names, dtype=object).reshape(-1)
        if self.track_ids is not None:
            self.track_ids = np.asarray(self.track_ids, dtype=np.int64).reshape(-1)
        _check("scores", self.scores, n)
        _check("class_ids", self.class_ids, n)
        _check("class_names", self.class_names, n)
        _check("track_ids", self.track_ids, n)
        _check("masks", self.masks, n, ndim=3)
        _check("keypoints", self.keypoints, n, ndim=3, last=3)

    @classmethod
    def from_arrays(cls, xyxy: np.ndarray, scores: np.ndarray, class_ids: np.ndarray, names: list[str],
                    **kwargs: Any) -> Detections:
        """Build from raw arrays, looking class names up in the model's class list."""
        class_ids = np.asarray(class_ids, dtype=np.int64).reshape(-1)
        class_names = np.array([names[i] if 0 <= i < len(names) else str(i) for i in class_ids], dtype=object)
        return cls(xyxy=xyxy, scores=scores, class_ids=class_ids, class_names=class_names, **kwargs)

    @classmethod
    def empty(cls, **kwargs: Any) -> Detections:
        return cls(xyxy=np.zeros((0, 4), np.float32), scores=np.zeros(0, np.float32),
                   class_ids=np.zeros(0, np.int64), class_names=np.zeros(0, object), **kwargs)

    def __len__(self) -> int:
        return len(self.xyxy)

    def __getitem__(self, index: int | slice | np.ndarray | list[int]) -> Detections:
        """Select detections by int, slice, index list or boolean mask; frame facts ride along."""
        if isinstance(index, (int, np.integer)):
            index = [int(index)]
        arrays = {name: (None if (a := getattr(self, name)) is None else a[index]) for name in self._ARRAYS}
        return replace(self, **arrays, metadata=dict(self.metadata))

    def with_(self, **changes: Any) -> Detections:
        """A copy with some fields replaced (e.g. ``track_ids``); the caller's object is never changed."""
        return replace(self, **{"metadata": dict(self.metadata), **changes})

    @property
    def areas(self) -> np.ndarray:
        return (self.xyxy[:, 2] - self.xyxy[:, 0]) * (self.xyxy[:, 3] - self.xyxy[:, 1])

    def _payload(self) -> dict[str, Any]:
        items = []
        for i in range(len(self)):
            item: dict[str, Any] = {
                "box": [round(float(v), 2) for v in self.xyxy[i]],
                "score": round(float(self.scores[i]), 5),
                "class_id": int(self.class_ids[i]),
                "class_name": str(self.class_names[i]),
            }
            if self.track_ids is not None:
                item["track_id"] = int(self.track_ids[i])
            if self.keypoints is not None:
                item["keypoints"] = np.round(self.keypoints[i].astype(float), 3).tolist()
            if self.masks is not None:
                item["mask"] = encode_rle(self.masks[i])
            items.append(item)
        return {"detections": items}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Detections:
        """Inverse of ``to_dict`` (masks are decoded from RLE); keys it does not know (e.g. a JSONL line's
        ``source``) are ignored. A record that is not one raises ``ResultFormatError`` naming the field."""
        if not isinstance(data, dict):
            raise ResultFormatError(f"a detections record must be a dict, got {type(data).__name__}")
        items = data.get("detections", [])
        if not isinstance(items, list) or not all(isinstance(d, dict) for d in items):
            raise ResultFormatError("detections record: 'detections' must be a list of dicts")
        meta = {"frame_index": _read("frame_index", _integer, data.get("frame_index", 0)),
                "image_shape": _read("image_shape", _image_shape, data.get("image_shape", (0, 0))),
                "speed": _read("speed", lambda s: Speed(**{k: _number(v) for k, v in _mapping(s).items()}),
                               data.get("speed", {})),
                "metadata": _read("metadata", _mapping, data.get("metadata", {}))}
        if not items:
            return cls.empty(**meta)
        first = items[0]

        def column(key: str, convert: Callable[[Any], Any]) -> list[Any]:
            return [_read(f"detections[{i}].{key}", convert, d.get(key, _MISSING)) for i, d in enumerate(items)]

        return _read("detections", lambda _: cls(
            xyxy=np.array(column("box", lambda b: _finite(b, (4,))), np.float32),
            scores=np.array(column("score", lambda s: _finite(s, ())), np.float32),
            class_ids=np.array(column("class_id", _integer), np.int64),
            class_names=np.array(column("class_name", _text), object),
            track_ids=np.array(column("track_id", _integer), np.int64) if "track_id" in first else None,
            keypoints=np.stack(column("keypoints", lambda k: _finite(k, (-1, 3)))) if "keypoints" in first else None,
            masks=np.stack(column("mask", _decode_rle)) if "mask" in first else None,
            **meta), None)

    def to_supervision(self) -> Any:
        """A ``supervision.Detections`` with the same boxes (requires ``pip install supervision``)."""
        sv = _import_supervision()
        return sv.Detections(xyxy=self.xyxy.copy(), confidence=self.scores.copy(), class_id=self.class_ids.copy(),
                             tracker_id=None if self.track_ids is None else self.track_ids.copy(),
                             mask=None if self.masks is None else self.masks.copy(),
                             data={"class_name": self.class_names.astype(str)})

    @classmethod
    def from_supervision(cls, detections: Any, names: list[str] | None = None, **kwargs: Any) -> Detections:
        """From a ``supervision.Detections``; names come from its ``class_name`` data or from ``names``."""
        n = len(detections)
        class_ids = detections.class_id if detections.class_id is not None else np.zeros(n, np.int64)
        if "class_name" in detections.data:
            class_names = np.asarray(detections.data["class_name"], dtype=object)
        else:
            class_names = np.array([names[i] if names else str(i) for i in class_ids], dtype=object)
        scores = detections.confidence if detections.confidence is not None else np.ones(n, np.float32)
        return cls(xyxy=detections.xyxy, scores=scores, class_ids=class_ids, class_names=class_names,
                   track_ids=detections.tracker_id, masks=detections.mask, **kwargs)


    def to_supervision_keypoints(self) -> Any:
        """A ``supervision.KeyPoints`` of the poses (for its Vertex/Edge annotators): ``xy`` (n, K, 2),
        ``keypoint_confidence`` (n, K), ``detection_confidence`` = the person scores, ``class_id`` and
        ``data["class_name"]``; ``.to_supervision()`` gives the matching boxes (supervision >= 0.29)."""
        if self.keypoints is None:
            raise ValueError("these detections have no keypoints: supervision KeyPoints come from a pose model")
        sv = _import_supervision()
        return sv.KeyPoints(xy=self.keypoints[..., :2].copy(), class_id=self.class_ids.copy(),
                            keypoint_confidence=self.keypoints[..., 2].copy(),
                            detection_confidence=self.scores.copy(), data={"class_name": self.class_names.astype(str)})

    @classmethod
    def from_supervision_keypoints(cls, keypoints: Any, names: list[str] | None = None,
                                   **kwargs: Any) -> Detections:
        """From a ``supervision.KeyPoints`` (e.g. ``sv.KeyPoints.from_ultralytics``); each box is the extent of the
        person's keypoints that have a confidence (all of them when there is none)."""
        xy = np.asarray(keypoints.xy, np.float32)
        n, k = xy.shape[:2]
        conf = keypoints.keypoint_confidence
        conf = np.ones((n, k), np.float32) if conf is None else np.asarray(conf, np.float32)
        some = np.where((conf > 0).any(1, keepdims=True), conf > 0, True)[..., None]
        lo, hi = np.where(some, xy, np.inf).min(1), np.where(some, xy, -np.inf).max(1)
        boxes = np.concatenate([lo, hi], 1) if n else np.zeros((0, 4), np.float32)
        class_ids = keypoints.class_id if keypoints.class_id is not None else np.zeros(n, np.int64)
        if "class_name" in keypoints.data:
            class_names = np.asarray(keypoints.data["class_name"], dtype=object)
        else:
            class_names = np.array([names[i] if names else str(i) for i in class_ids], dtype=object)
        scores = keypoints.detection_confidence
        return cls(xyxy=boxes, scores=np.ones(n, np.float32) if scores is None else scores, class_ids=class_ids,
                   class_names=class_names, keypoints=np.concatenate([xy, conf[..., None]], -1), **kwargs)


def _import_supervision() -> Any:
    try:
        import supervision
    except ImportError:
        raise ImportError("conversion to supervision needs it installed: pip install supervision") from None
    return supervision


def _mask_box(mask: np.ndarray) -> list[float]:
    """x1, y1, x2, y2 around a boolean mask's pixels (pixel edges, as box coordinates are)."""
    ys, xs = np.nonzero(mask)
    return [float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1)]


def encode_rle(mask: np.ndarray) -> dict[str, Any]:
    from pycocotools import mask as mask_utils

    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {"size": [int(s) for s in rle["size"]], "counts": rle["counts"].decode("ascii")}


def _decode_rle(rle: Any) -> np.ndarray:
    from pycocotools import mask as mask_utils

    if not isinstance(rle, dict) or not isinstance(rle.get("counts"), str):
        raise TypeError("expected a COCO RLE dict with 'size' and 'counts'")
    h, w = _image_shape(rle.get("size"))
    return mask_utils.decode({"size": [h, w], "counts": rle["counts"].encode("ascii")}).astype(bool)


# -- reading result records (``from_dict``): each check raises TypeError/ValueError, which ``_read`` names ------
_MISSING = object()


def _read(what: str, convert: Callable[[Any], T], value: Any) -> T:
    """``convert(value)``, or ResultFormatError naming the field ``what`` and why it is not one."""
    try:
        if value is _MISSING:
            raise KeyError("missing")
        return convert(value)
    except ResultFormatError:  # a field inside ``value`` already named itself
        raise
    except (TypeError, ValueError, KeyError, IndexError, OverflowError, UnicodeError) as e:
        reason = str(e).strip().strip("'").splitlines()[0] if str(e).strip() else type(e).__name__
        raise ResultFormatError(f"detections record: bad {what}: {reason}") from None


def _integer(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"expected an integer, got {type(value).__name__}")
    return value


def _number(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"expected a number, got {type(value).__name__}")
    return float(value)


def _text(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError(f"expected a string, got {type(value).__name__}")
    return value


def _mapping(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise TypeError(f"expected a dict, got {type(value).__name__}")
    return value


def _image_shape(value: Any) -> tuple[int, int]:
    if not isinstance(value, (list, tuple)) or len(value) != 2 or min(_integer(v) for v in value) < 0:
        raise ValueError("expected [height, width], two integers >= 0")
    return int(value[0]), int(value[1])


def _finite(value: Any, shape: tuple[int, ...]) -> np.ndarray:
    """``value`` as finite float64 numbers of ``shape`` (-1: any length)."""
    if isinstance(value, bool) or not isinstance(value, (list, int, float)):
        raise TypeError(f"expected numbers, got {type(value).__name__}")
    array = np.array(value, np.float64)  # ValueError for strings, None, ragged lists
    if array.ndim != len(shape) or any(want not in (-1, got) for want, got in zip(shape, array.shape)):
        raise ValueError(f"expected shape {shape}, got {array.shape}")
    if not np.isfinite(array).all() or (array.size and np.abs(array).max() > np.finfo(np.float32).max):
        raise ValueError("expected finite numbers")
    return array


@dataclass(kw_only=True)
class Classification(Result):
    """Top-k classes of a whole image, best first; ``probs`` optionally holds the full distribution."""

    kind: ClassVar[str] = "classification"
    class_ids: np.ndarray
    class_names: np.ndarray
    scores: np.ndarray
    probs: np.ndarray | None = None

    def __post_init__(self) -> None:
        self.class_ids = np.asarray(self.class_ids, dtype=np.int64).reshape(-1)
        self.class_names = np.asarray(self.class_names, dtype=object).reshape(-1)
        self.scores = np.asarray(self.scores, dtype=np.float32).reshape(-1)
        _check("class_names", self.class_names, len(self.class_ids))
        _check("scores", self.scores, len(self.class_ids))

    @classmethod
    def from_probs(cls, probs: np.ndarray, names: list[str], top_k: int = 5, keep_probs: bool = False,
                   **kwargs: Any) -> Classification:
        """Top ``top_k`` of a probability vector over ``names``."""
        probs = np.asarray(probs, dtype=np.float32).reshape(-1)
        if len(probs) > len(names):
            raise ValueError(f"{len(probs)} class scores but {len(names)} class names")
        order = np.argsort(-probs, kind="stable")[:top_k]
        return cls(class_ids=order, class_names=np.array([names[i] for i in order], dtype=object),
                   scores=probs[order], probs=probs if keep_probs else None, **kwargs)

    def __len__(self) -> int:
        return len(self.class_ids)

    @property
    def top1(self) -> tuple[int, str, float]:
        return int(self.class_ids[0]), str(self.class_names[0]), float(self.scores[0])

    def to_supervision(self) -> Any:
        """A ``supervision.Classifications`` of the top-k classes (``class_id``, ``confidence``)."""
        return _import_supervision().Classifications(class_id=self.class_ids.copy(), confidence=self.scores.copy())

    def _payload(self) -> dict[str, Any]:
        return {"top": [{"class_id": int(i), "class_name": str(n), "score": round(float(s), 5)}
                        for i, n, s in zip(self.class_ids, self.class_names, self.scores)]}


@dataclass(kw_only=True)
class ActionPrediction(Classification):
    """Top-k actions for the clip of frames ``start_frame``..``end_frame`` (inclusive) of a video."""

    kind: ClassVar[str] = "action"
    start_frame: int = 0
    end_frame: int = 0

    def _payload(self) -> dict[str, Any]:
        return {"start_frame": self.start_frame, "end_frame": self.end_frame, **super()._payload()}


@dataclass(kw_only=True)
class SemanticMask(Result):
    """A class id per pixel at source resolution (``class_map`` (H, W)) over ``class_names``;
    ``confidence`` (H, W) optionally holds the winning class's probability."""

    kind: ClassVar[str] = "semantic_mask"
    class_map: np.ndarray
    class_names: list[str]
    confidence: np.ndarray | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.class_map, np.ndarray) or self.class_map.ndim != 2:
            raise ValueError(f"class_map must be a 2D numpy array (H, W), but got "
                             f"{getattr(self.class_map, 'shape', type(self.class_map).__name__)}")
        if self.confidence is not None and self.confidence.shape != self.class_map.shape:
            raise ValueError(f"confidence must have the class_map's shape {self.class_map.shape}, "
                             f"but got {self.confidence.shape}")

    def pixel_share(self) -> dict[str, float]:
        """Fraction of pixels per class present, largest first."""
        counts = np.bincount(self.class_map.ravel(), minlength=len(self.class_names))
        total = max(int(counts.sum()), 1)
        order = np.argsort(-counts, kind="stable")
        return {self.class_names[i]: float(counts[i]) / total for i in order if counts[i]}

    def mask(self, class_name: str) -> np.ndarray:
        """Boolean (H, W) mask of one class."""
        return self.class_map == self.class_names.index(class_name)

    def to_supervision(self, skip: tuple[str, ...] = BACKGROUND_CLASSES) -> Any:
        """A ``supervision.Detections`` with one row per class present (the classes in ``skip`` left out): its
        pixel ``mask``, the box around it, ``class_id``, ``data["class_name"]`` and, when the model gave
        probabilities, the class's mean ``confidence``; what supervision's MaskAnnotator and friends draw."""
        sv = _import_supervision()
        ids = [self.class_names.index(n) for n in self.pixel_share() if n not in skip]
        masks = np.stack([self.class_map == i for i in ids]) if ids else np.zeros((0, *self.class_map.shape), bool)
        xyxy = np.array([_mask_box(m) for m in masks], np.float32).reshape(-1, 4)
        conf = None if self.confidence is None else np.array([self.confidence[m].mean() for m in masks], np.float32)
        return sv.Detections(xyxy=xyxy, mask=masks, class_id=np.array(ids, np.int64), confidence=conf,
                             data={"class_name": np.array([self.class_names[i] for i in ids], dtype=str)})

    def _payload(self) -> dict[str, Any]:
        classes = []
        for name, share in self.pixel_share().items():
            cid = self.class_names.index(name)
            item: dict[str, Any] = {"class_id": cid, "class_name": name, "pixel_share": round(share, 5)}
            region = self.class_map == cid
            if self.confidence is not None:
                item["mean_confidence"] = round(float(self.confidence[region].mean()), 5)
            item["mask"] = encode_rle(region)
            classes.append(item)
        return {"classes": classes}
