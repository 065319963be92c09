"""Per-image outputs in ultralytics' predict layout: YOLO label files (``save_txt``) and object crops (``save_crop``).

Both write into a run folder, one file per image or video frame, named after the input: ``labels/<stem>.txt`` for
a still, ``labels/<stem>_<frame>.txt`` for a video frame (``frame``: the source's 0-based frame index, as in the
JSONL, so a ``vid_stride`` run names the frames it read), and ``crops/<class name>/<stem>[_<frame>].jpg``. Like
every sink, they claim each file from the run's ``OutputGuard``: a name already taken gets ``_1``, ``_2``...

Label lines follow ultralytics' ``Results.save_txt`` (coordinates normalised to 0..1 by the image size, ``%g``):
  boxes       ``class x_centre y_centre width height [conf] [track_id]``
  masks       ``class x1 y1 x2 y2 ... [conf] [track_id]`` (the mask's outline; one under 3 points is left out)
  keypoints   ``class x_centre y_centre width height kx1 ky1 kconf1 ... [conf] [track_id]``
  top-k       ``score class_name``, one line per class
  class map   ``class x1 y1 x2 y2 ... [conf]``: one line per region of each class (its outer outline, holes not
              kept; background classes left out; ``conf``: the class's mean probability), the YOLO-seg layout, so a
              semantic model's output can seed instance labels (ultralytics writes nothing for semantic models)
An image with nothing found gets no file, as in ultralytics. Crops are the box grown as ultralytics'
``save_one_box`` grows it (x1.02 + 10 pixels, clipped to the image).
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from ..errors import SinkError
from ..results import BACKGROUND_CLASSES, Classification, Detections, Result, SemanticMask
from .sinks import OutputGuard, Sink, ensure_dir, output_stem, write_image, write_text
from .sources import Frame

CROP_GAIN, CROP_PAD = 1.02, 10  # ultralytics' save_one_box defaults: a little context around each object
CROP_JPEG = (cv2.IMWRITE_JPEG_QUALITY, 95, cv2.IMWRITE_JPEG_SAMPLING_FACTOR, cv2.IMWRITE_JPEG_SAMPLING_FACTOR_444)


class _PerFrameFiles(Sink):
    """A folder of files named after each frame's input; each video keeps one base name for all its frames
    (``clip``, or ``clip-2`` for a second video of that name), so its files sort in frame order."""

    def __init__(self, directory: str | Path, guard: OutputGuard | None = None):
        self.directory = self.location = ensure_dir(Path(directory))
        self.guard = guard or OutputGuard()
        self._bases: dict[str, str] = {}  # video source -> its base name

    def base_name(self, frame: Frame) -> str:
        if not frame.is_video:
            return output_stem(frame.source)
        base = self._bases.get(frame.source)
        if base is None:
            stem = base = output_stem(frame.source)
            n = 1
            while base in self._bases.values():
                n += 1
                base = f"{stem}-{n}"
            self._bases[frame.source] = base
        return f"{base}_{frame.index}"


class LabelSink(_PerFrameFiles):
    """YOLO-format label files, one per image or frame with something in it (see the module docstring)."""

    def __init__(self, directory: str | Path, guard: OutputGuard | None = None, save_conf: bool = False):
        super().__init__(directory, guard)
        self.save_conf = save_conf

    def write(self, frame: Frame, result: Result, annotated: np.ndarray | None = None) -> None:
        lines = label_lines(result, frame.image.shape[:2], self.save_conf)
        if lines:
            write_text(self.guard.unique(self.directory / f"{self.base_name(frame)}.txt"), "".join(lines))


def label_lines(result: Result, shape: tuple[int, int], save_conf: bool = False) -> list[str]:
    """The lines of ``result``'s YOLO label file (module docstring) for an image of ``shape`` (h, w), each ending in
    a newline."""
    if isinstance(result, Classification):
        return [f"{score:.2f} {name}\n" for name, score in zip(result.class_names, result.scores)]
    scale = np.array(shape[::-1], np.float32)  # (w, h); float32 throughout, as ultralytics computes its lines
    if isinstance(result, SemanticMask):
        return _region_lines(result, scale, save_conf)
    if not isinstance(result, Detections):
        raise SinkError(f"YOLO label files hold boxes, masks, keypoints, classes or class maps, not a {result.kind}")
    if not len(result):
        return []
    xyxy = result.xyxy.astype(np.float32)
    centres = (xyxy[:, :2] + xyxy[:, 2:]) / 2 / scale
    sizes = (xyxy[:, 2:] - xyxy[:, :2]) / scale
    outlines = _outlines(result.masks) if result.masks is not None else None
    lines = []
    for i in range(len(result)):
        if outlines is not None:
            if len(outlines[i]) < 3:  # not a polygon: no loader takes such a row
                continue
            coords = list((outlines[i] / scale).reshape(-1))
        else:
            coords = [*centres[i], *sizes[i]]
        if result.keypoints is not None:
            points = result.keypoints[i].astype(np.float32)
            coords += list(np.column_stack([points[:, :2] / scale, points[:, 2]]).reshape(-1))
        row = [int(result.class_ids[i]), *coords]
        if save_conf:
            row.append(float(np.float32(result.scores[i])))
        if result.track_ids is not None:
            row.append(int(result.track_ids[i]))
        lines.append(_row(row))
    return lines


def _row(values: list[float]) -> str:
    return " ".join(f"{v:g}" for v in values) + "\n"


def _region_lines(result: SemanticMask, scale: np.ndarray, save_conf: bool) -> list[str]:
    lines = []
    for name in result.pixel_share():
        if name in BACKGROUND_CLASSES:
            continue
        cid = result.class_names.index(name)
        region = result.class_map == cid
        conf = [float(result.confidence[region].mean())] if save_conf and result.confidence is not None else []
        contours = cv2.findContours(region.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)[0]
        lines += [_row([cid, *(c.reshape(-1, 2) / scale).reshape(-1), *conf]) for c in contours if len(c) >= 3]
    return lines


def _outlines(masks: np.ndarray) -> list[np.ndarray]:
    """Each mask's outline in pixels, as ultralytics writes it (``ops.masks2segments``: all outer contours,
    joined into one polygon)."""
    from ultralytics.utils.ops import masks2segments

    return [np.asarray(s, np.float32) for s in masks2segments(masks.astype(np.uint8))]


class CropSink(_PerFrameFiles):
    """Every detected object cut out of the frame as ``<class name>/<stem>[_<frame>].jpg`` (module docstring)."""

    def write(self, frame: Frame, result: Result, annotated: np.ndarray | None = None) -> None:
        if not isinstance(result, Detections):
            raise SinkError(f"crops are cut from boxes; a {result.kind} has none")
        base = self.base_name(frame)
        for (x1, y1, x2, y2), name, cid in zip(crop_boxes(result.xyxy, frame.image.shape[:2]), result.class_names,
                                               result.class_ids):
            if x2 > x1 and y2 > y1:
                folder = ensure_dir(self.directory / folder_name(str(name), int(cid)))
                write_image(self.guard.unique(folder / f"{base}.jpg"), frame.image[y1:y2, x1:x2], CROP_JPEG)


def crop_boxes(xyxy: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Integer crop boxes: each box's width and height x ``CROP_GAIN`` + ``CROP_PAD`` about its centre, clipped
    to an image of ``shape`` (h, w)."""
    centre = (xyxy[:, :2] + xyxy[:, 2:]) / 2
    half = ((xyxy[:, 2:] - xyxy[:, :2]) * CROP_GAIN + CROP_PAD) / 2
    boxes = np.concatenate([centre - half, centre + half], axis=1).astype(np.int64)  # truncated, as .long() does
    h, w = shape
    return np.clip(boxes, 0, [w, h, w, h])


def folder_name(class_name: str, class_id: int) -> str:
    """A class name usable as one folder name (path separators replaced); the id when nothing usable is left."""
    name = class_name.replace("/", "_").replace("\\", "_").replace("\0", "").strip()
    return name if name and name not in (".", "..") else str(class_id)
