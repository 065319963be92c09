"""One annotator per result element. Style lives in ``__init__``; ``annotate(scene, result)`` draws in place
and returns the scene. Text is drawn with OpenCV's Hershey fonts so drawing never fetches a font file.

``annotate(scene, result, **style)`` (what ``Result.plot`` and the CLI draw with) takes ultralytics' predict
style options under their names: ``line_width`` (pixels; text scales with it; None = from the image size),
``labels`` (False = no label tabs and no segmentation legend: ``--hide-labels``) and ``conf`` (False = labels
without scores: ``--hide-conf``).
"""

from __future__ import annotations

from collections import deque
from typing import Any

import cv2
import numpy as np

from .results import BACKGROUND_CLASSES, ActionPrediction, Classification, Detections, Result, SemanticMask

# Ultralytics' palette, as BGR: distinct, readable on photos, stable across runs.
_HEX = ("FF3838 FF9D97 FF701F FFB21D CFD231 48F90A 92CC17 3DDB86 1A9334 00D4BB "
        "2C99A8 00C2FF 344593 6473FF 0018EC 8438FF 520085 CB38FF FF95C8 FF37C7").split()
PALETTE: tuple[tuple[int, int, int], ...] = tuple((int(h[4:6], 16), int(h[2:4], 16), int(h[0:2], 16)) for h in _HEX)

# COCO person keypoint skeleton (0-based keypoint indices), as drawn by COCO's own tools.
COCO_SKELETON = ((15, 13), (13, 11), (16, 14), (14, 12), (11, 12), (5, 11), (6, 12), (5, 6), (5, 7), (6, 8),
                 (7, 9), (8, 10), (1, 2), (0, 1), (0, 2), (1, 3), (2, 4), (3, 5), (4, 6))

# MediaPipe's POSE_CONNECTIONS (mediapipe/python/solutions/pose_connections.py): BlazePose's 33 landmarks.
BLAZEPOSE_SKELETON = ((0, 1), (1, 2), (2, 3), (3, 7), (0, 4), (4, 5), (5, 6), (6, 8), (9, 10), (11, 12), (11, 13),
                      (13, 15), (15, 17), (15, 19), (15, 21), (17, 19), (12, 14), (14, 16), (16, 18), (16, 20),
                      (16, 22), (18, 20), (11, 23), (12, 24), (23, 24), (23, 25), (24, 26), (25, 27), (26, 28),
                      (27, 29), (28, 30), (29, 31), (30, 32), (27, 31), (28, 32))
# The skeleton drawn for a pose, by its number of keypoints.
SKELETONS: dict[int, tuple[tuple[int, int], ...]] = {17: COCO_SKELETON, 33: BLAZEPOSE_SKELETON}


def color(index: int) -> tuple[int, int, int]:
    return PALETTE[int(index) % len(PALETTE)]


def _line_width(scene: np.ndarray) -> int:
    return max(1, round(sum(scene.shape[:2]) / 2 * 0.003))


def _color_keys(detections: Detections) -> np.ndarray:
    """Colour by track id when tracking (stable per object), else by class."""
    return detections.track_ids if detections.track_ids is not None else detections.class_ids


class BoxAnnotator:
    def __init__(self, thickness: int | None = None):
        self.thickness = thickness

    def annotate(self, scene: np.ndarray, detections: Detections) -> np.ndarray:
        t = self.thickness or _line_width(scene)
        for box, key in zip(detections.xyxy.round().astype(int), _color_keys(detections)):
            cv2.rectangle(scene, (box[0], box[1]), (box[2], box[3]), color(key), t, cv2.LINE_AA)
        return scene


class LabelAnnotator:
    """``#track class score`` on a filled tab above each box (inside it when the box touches the top). The text
    scales with ``thickness`` (the boxes' line width), as ultralytics' labels do with ``line_width``."""

    def __init__(self, text_scale: float | None = None, show_score: bool = True, thickness: int | None = None):
        self.text_scale = text_scale
        self.show_score = show_score
        self.thickness = thickness

    def annotate(self, scene: np.ndarray, detections: Detections) -> np.ndarray:
        lw = self.thickness or _line_width(scene)
        scale = self.text_scale or lw / 3
        thick = max(lw - 1, 1)
        for i, box in enumerate(detections.xyxy.round().astype(int)):
            text = str(detections.class_names[i])
            if detections.track_ids is not None:
                text = f"#{detections.track_ids[i]} {text}"
            if self.show_score:
                text += f" {detections.scores[i]:.2f}"
            (w, h), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, thick)
            x, y = min(max(int(box[0]), 0), max(scene.shape[1] - w, 0)), int(box[1])  # keep the tab in frame
            outside = y - h - base >= 0
            y1, y2 = (y - h - base, y) if outside else (y, y + h + base)
            bg = color(_color_keys(detections)[i])
            cv2.rectangle(scene, (x, y1), (x + w, y2), bg, -1, cv2.LINE_AA)
            fg = (0, 0, 0) if sum(bg) > 382 else (255, 255, 255)
            cv2.putText(scene, text, (x, y2 - base), cv2.FONT_HERSHEY_SIMPLEX, scale, fg, thick, cv2.LINE_AA)
        return scene


class MaskAnnotator:
    def __init__(self, opacity: float = 0.45):
        self.opacity = opacity

    def annotate(self, scene: np.ndarray, detections: Detections) -> np.ndarray:
        if detections.masks is None or not len(detections):
            return scene
        overlay = scene.copy()
        for mask, key in zip(detections.masks, _color_keys(detections)):
            overlay[mask] = color(key)
        cv2.addWeighted(overlay, self.opacity, scene, 1 - self.opacity, 0, dst=scene)
        return scene


class KeypointAnnotator:
    """Keypoints above ``min_conf`` and the limbs joining them: ``skeleton`` pairs of keypoint indices; None = the
    standard skeleton for the pose's point count (``SKELETONS``: COCO's 17, MediaPipe's 33), () = points only."""

    def __init__(self, skeleton: tuple[tuple[int, int], ...] | None = None, min_conf: float = 0.3,
                 radius: int | None = None, thickness: int | None = None):
        self.skeleton = skeleton
        self.min_conf = min_conf
        self.radius = radius
        self.thickness = thickness

    def annotate(self, scene: np.ndarray, detections: Detections) -> np.ndarray:
        if detections.keypoints is None:
            return scene
        lw = self.thickness or _line_width(scene)
        r = self.radius or max(lw + 1, 2)
        for person, key in zip(detections.keypoints, _color_keys(detections)):
            visible = person[:, 2] >= self.min_conf
            pts = person[:, :2].round().astype(int)
            skeleton = SKELETONS.get(len(person), ()) if self.skeleton is None else self.skeleton
            for a, b in skeleton:
                if a < len(person) and b < len(person) and visible[a] and visible[b]:
                    cv2.line(scene, tuple(pts[a]), tuple(pts[b]), color(key), lw, cv2.LINE_AA)
            for k in np.flatnonzero(visible):
                cv2.circle(scene, tuple(pts[k]), r, color(k), -1, cv2.LINE_AA)
        return scene


class TraceAnnotator:
    """Trails of the last ``length`` box centres per track id. Holds history across frames: use one per
    stream and ``reset()`` between streams."""

    def __init__(self, length: int = 30, thickness: int | None = None):
        self.length = length
        self.thickness = thickness
        self._trails: dict[int, deque[tuple[int, int]]] = {}
        self._last_seen: dict[int, int] = {}
        self._frame = 0

    def annotate(self, scene: np.ndarray, detections: Detections) -> np.ndarray:
        if detections.track_ids is None:
            raise ValueError("trails need track ids: run the track task (visionkit.load('track', ...)) first")
        centres = ((detections.xyxy[:, :2] + detections.xyxy[:, 2:]) / 2).round().astype(int)
        t = self.thickness or _line_width(scene)
        for tid, centre in zip(detections.track_ids.tolist(), centres):
            trail = self._trails.setdefault(tid, deque(maxlen=self.length))
            trail.append((int(centre[0]), int(centre[1])))
            if len(trail) > 1:
                cv2.polylines(scene, [np.array(trail, np.int32)], False, color(tid), t, cv2.LINE_AA)
        self._frame += 1
        self._last_seen.update(dict.fromkeys(detections.track_ids.tolist(), self._frame))
        for tid in [k for k, seen in self._last_seen.items() if self._frame - seen > self.length]:
            del self._trails[tid], self._last_seen[tid]  # gone long enough: bounded memory on long videos
        return scene

    def reset(self) -> None:
        self._trails.clear()
        self._last_seen.clear()
        self._frame = 0


def _text_panel(scene: np.ndarray, lines: list[tuple[str, tuple[int, int, int]]], origin: tuple[int, int],
                scale: float, swatch: bool = False) -> None:
    """Lines of text on a dark translucent panel; with ``swatch``, each line starts with a colour square."""
    thick = max(round(scale * 2), 1)
    sizes = [cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, thick)[0] for text, _ in lines]
    line_h = max(h for _, h in sizes) + 8
    box = line_h if swatch else 0
    x0, y0 = origin
    x1 = min(x0 + box + max(w for w, _ in sizes) + 12, scene.shape[1])
    y1 = min(y0 + line_h * len(lines) + 6, scene.shape[0])
    region = scene[y0:y1, x0:x1]
    region[:] = (region * 0.4).astype(scene.dtype)
    for i, (text, rgb) in enumerate(lines):
        y = y0 + line_h * (i + 1)
        if swatch:
            cv2.rectangle(scene, (x0 + 4, y - line_h + 6), (x0 + box - 2, y - 2), rgb, -1)
            rgb = (255, 255, 255)
        cv2.putText(scene, text, (x0 + box + 6, y - 4), cv2.FONT_HERSHEY_SIMPLEX, scale, rgb, thick, cv2.LINE_AA)


class ZoneAnnotator:
    """Lines and zones (``visionkit.zones`` counters) with their names and counts: a line's in/out totals at its
    midpoint, a zone's occupancy and entries at its first corner, all in one colour per line/zone."""

    def __init__(self, thickness: int | None = None, text_scale: float | None = None):
        self.thickness = thickness
        self.text_scale = text_scale

    def annotate(self, scene: np.ndarray, counters: Any) -> np.ndarray:
        t = self.thickness or _line_width(scene)
        scale = self.text_scale or max(0.4, sum(scene.shape[:2]) / 2 / 1000)
        for i, counter in enumerate(counters):
            points = counter.shape.pixels(scene.shape[:2]).round().astype(np.int32)
            rgb = color(len(PALETTE) - 1 - i)  # from the palette's far end: apart from the first track colours
            closed = counter.kind == "zone"
            cv2.polylines(scene, [points], closed, rgb, t + 1, cv2.LINE_AA)
            corner = points.mean(0) if not closed else points.min(0)
            x = int(min(max(corner[0], 0), max(scene.shape[1] - 1, 0)))
            y = int(min(max(corner[1], 0), max(scene.shape[0] - 1, 0)))
            _text_panel(scene, [(counter.summary(), rgb)], (x, y), scale)
        return scene


class ClassificationAnnotator:
    """Top-k ``name score`` lines (names only without ``show_score``) in the top-left corner (action results add
    their frame range); the text scales with ``thickness`` when given."""

    def __init__(self, text_scale: float | None = None, show_score: bool = True, thickness: int | None = None):
        self.text_scale = text_scale
        self.show_score = show_score
        self.thickness = thickness

    def annotate(self, scene: np.ndarray, result: Classification) -> np.ndarray:
        lines = [(f"{name} {score:.2f}" if self.show_score else str(name), (255, 255, 255))
                 for name, score in zip(result.class_names, result.scores)]
        if isinstance(result, ActionPrediction):
            lines.insert(0, (f"frames {result.start_frame}-{result.end_frame}", (180, 220, 255)))
        if lines:
            _text_panel(scene, lines, (0, 0), self.text_scale or (self.thickness or _line_width(scene)) / 3)
        return scene


def voc_palette(n: int = 256) -> np.ndarray:
    """The PASCAL VOC colour map (BGR), the convention for drawing semantic class maps."""
    palette = np.zeros((n, 3), np.uint8)
    for i in range(n):
        c, r, g, b = i, 0, 0, 0
        for j in range(8):
            r |= ((c >> 0) & 1) << (7 - j)
            g |= ((c >> 1) & 1) << (7 - j)
            b |= ((c >> 2) & 1) << (7 - j)
            c >>= 3
        palette[i] = (b, g, r)
    return palette


class SemanticMaskAnnotator:
    """Class colours blended over the image, plus a legend of the classes present with their pixel share."""

    def __init__(self, opacity: float = 0.5, legend: bool = True, skip: tuple[str, ...] = BACKGROUND_CLASSES):
        self.opacity = opacity
        self.legend = legend
        self.skip = skip
        self.palette = voc_palette()

    def annotate(self, scene: np.ndarray, result: SemanticMask) -> np.ndarray:
        ids = np.clip(result.class_map, 0, len(self.palette) - 1)
        shown = np.isin(ids, [i for i, n in enumerate(result.class_names) if n not in self.skip])
        blended = cv2.addWeighted(self.palette[ids], self.opacity, scene, 1 - self.opacity, 0)
        scene[shown] = blended[shown]
        if self.legend:
            lines = [(f"{name} {share:.0%}", tuple(int(v) for v in self.palette[result.class_names.index(name)]))
                     for name, share in result.pixel_share().items() if name not in self.skip]
            if lines:
                _text_panel(scene, lines[:12], (0, 0), _line_width(scene) / 3, swatch=True)
        return scene


STYLE_KEYS = ("line_width", "labels", "conf", "opacity", "min_conf", "text_scale", "legend")


def annotate(scene: np.ndarray, result: Result, *, line_width: int | None = None, labels: bool = True,
             conf: bool = True, **style: Any) -> np.ndarray:
    """Draw any result with its default annotators.

    ``line_width``, ``labels`` and ``conf`` are the predict-style options of the module docstring; ``style`` holds
    the annotators' own (``opacity``, ``min_conf``, ``text_scale``, ``legend``). An unknown name is a TypeError
    listing the valid ones, so a misspelt option never draws the default silently.
    """
    unknown = sorted(set(style) - set(STYLE_KEYS))
    if unknown:
        raise TypeError(f"unknown drawing option(s) {', '.join(unknown)}; valid: {', '.join(STYLE_KEYS)}")
    if line_width is not None and (isinstance(line_width, bool) or not isinstance(line_width, (int, np.integer))
                                   or line_width < 1):
        raise ValueError(f"line_width must be a positive number of pixels, got {line_width!r}")
    if isinstance(result, Detections):
        MaskAnnotator(**_pick(style, "opacity")).annotate(scene, result)
        BoxAnnotator(line_width).annotate(scene, result)
        KeypointAnnotator(**_pick(style, "min_conf"), thickness=line_width).annotate(scene, result)
        if not labels:
            return scene
        return LabelAnnotator(**_pick(style, "text_scale"), show_score=conf, thickness=line_width).annotate(
            scene, result)
    if isinstance(result, Classification):  # the top-k panel is the result itself: labels=False keeps it
        return ClassificationAnnotator(**_pick(style, "text_scale"), show_score=conf,
                                       thickness=line_width).annotate(scene, result)
    if isinstance(result, SemanticMask):
        legend = style.get("legend", True) and labels
        return SemanticMaskAnnotator(**_pick(style, "opacity"), legend=legend).annotate(scene, result)
    raise TypeError(f"no annotator for {type(result).__name__}")


def _pick(style: dict[str, Any], *keys: str) -> dict[str, Any]:
    return {k: style[k] for k in keys if k in style}
