"""Lines and zones over tracked detections: in/out crossings per class, occupancy and dwell time per track, and
the events (crossed, entered, left) as they happen.

Rules, each for a reason:
- Only tracked detections count (``track_ids`` set). ``Tracker`` reports confirmed tracks only, so a box that
  never became a track (one-frame false positive) is never counted; supervision's ``LineZone`` counts whatever
  ids it is given (supervision #2578), here a detection without an id is refused loudly instead.
- Hysteresis: a track's side of a line (or inside/outside of a zone) changes only once its anchor point is more
  than ``margin`` pixels past the line (the zone's edge). A track jittering on the line changes side once, so it
  is counted once; with ``margin=0`` every sign change of the side counts.
- A crossing counts where the anchor passes within the segment's extent (its projection on the segment lies
  between the end points), not anywhere on the infinite line.
- A zone track that is no longer reported (occluded, lost) stays inside for ``lost_after`` frames, so an
  occlusion does not produce a left + entered pair; then it leaves, with its dwell time.

The anchor is the bottom centre of the box (where a person stands), as counting usually wants; ``anchor="center"``
takes the box centre. Coordinates are pixels, or fractions of the width and height when every value is in 0..1.

Why not supervision's ``LineZone``/``PolygonZone`` (0.31): LineZone's hysteresis is a frame count
(``minimum_crossing_threshold``) rather than a distance, so a slow walker standing on the line for longer than that
still flickers in and out; PolygonZone keeps no per-track state (no entered/left events, no dwell time), and
neither reports events with a frame and timestamp. The geometry needed is a signed distance to a segment and
OpenCV's ``pointPolygonTest``, so it is written here.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np

from .errors import OptionError
from .results import Detections

ANCHORS = ("bottom", "center")


@dataclass(frozen=True)
class Shape:
    """A named polyline: a line (2 points) or a zone's polygon (3 or more); ``normalised``: points are fractions
    of the image's width and height."""

    name: str
    points: tuple[tuple[float, float], ...]
    normalised: bool = False

    def pixels(self, image_shape: tuple[int, int]) -> np.ndarray:
        """The points in pixels of an image of ``image_shape`` (height, width)."""
        points = np.array(self.points, np.float64)
        if self.normalised:
            points = points * (image_shape[1], image_shape[0])
        return points


def parse_shape(text: str, kind: str, index: int) -> Shape:
    """``x1,y1,x2,y2[,...][:name]`` as given to --line (exactly 2 points) or --zone (3 or more)."""
    coords, _, name = text.partition(":")
    try:
        values = [float(v) for v in coords.split(",")]
    except ValueError:
        raise OptionError(f"--{kind} {text!r}: expected comma-separated numbers x1,y1,x2,y2...[:name]") from None
    if len(values) % 2 or (kind == "line" and len(values) != 4) or (kind == "zone" and len(values) < 6):
        wanted = "4 numbers (x1,y1,x2,y2)" if kind == "line" else "at least 3 points (6 numbers)"
        raise OptionError(f"--{kind} {text!r}: expected {wanted}, got {len(values)} number(s)")
    if any(not np.isfinite(v) or v < 0 for v in values):
        raise OptionError(f"--{kind} {text!r}: coordinates must be finite and not negative")
    points = tuple(zip(values[::2], values[1::2]))
    if kind == "line" and points[0] == points[1]:
        raise OptionError(f"--{kind} {text!r}: the two end points are the same")
    return Shape(name or f"{kind}{index}", points, normalised=all(v <= 1 for v in values))


def anchors(detections: Detections, anchor: str = "bottom") -> np.ndarray:
    """(n, 2) points of the boxes that count for position: bottom centre or centre."""
    xyxy = detections.xyxy
    x = (xyxy[:, 0] + xyxy[:, 2]) / 2
    y = xyxy[:, 3] if anchor == "bottom" else (xyxy[:, 1] + xyxy[:, 3]) / 2
    return np.column_stack([x, y])


def track_ids_of(detections: Detections) -> np.ndarray:
    """The detections' track ids; an ``OptionError`` for untracked ones (lines, zones and heat maps count tracks)."""
    if getattr(detections, "track_ids", None) is None:
        raise OptionError("lines, zones and heat maps count tracks: the detections need track ids (use the track "
                          "task)")
    return detections.track_ids


@dataclass
class _Counts:
    by_class: Counter[str] = field(default_factory=Counter)

    @property
    def total(self) -> int:
        return sum(self.by_class.values())


class LineCounter:
    """In/out crossings of one line segment. "in" is a crossing from the left of the direction (x1,y1)->(x2,y2) to
    its right as seen on the image (y grows downwards): for a line drawn left to right, walking down the image."""

    kind = "line"

    def __init__(self, line: Shape, margin: float = 2.0, anchor: str = "bottom"):
        if anchor not in ANCHORS:
            raise OptionError(f"unknown anchor {anchor!r}: expected one of {', '.join(ANCHORS)}")
        self.shape, self.margin, self.anchor = line, float(margin), anchor
        self.counts_in, self.counts_out = _Counts(), _Counts()
        self._side: dict[int, int] = {}  # track id -> +1 right / -1 left, once established

    def update(self, detections: Detections, image_shape: tuple[int, int]) -> list[dict[str, Any]]:
        """Events (``crossed``, direction in/out) of this frame's tracks."""
        ids = track_ids_of(detections)
        (ax, ay), (bx, by) = self.shape.pixels(image_shape)
        d = np.array([bx - ax, by - ay])
        length = float(np.hypot(*d))
        rel = anchors(detections, self.anchor) - (ax, ay)
        signed = (d[0] * rel[:, 1] - d[1] * rel[:, 0]) / length  # > 0: right of the direction on the image
        along = rel @ d / length ** 2  # 0..1: within the segment's extent
        events = []
        for tid, s, t, name in zip(ids.tolist(), signed.tolist(), along.tolist(), detections.class_names.tolist()):
            side = 1 if s > self.margin else -1 if s < -self.margin else 0
            if side == 0:
                continue  # on the line (within the margin): the side stays what it was
            before = self._side.get(tid)
            self._side[tid] = side
            if before is None or before == side or not 0 <= t <= 1:
                continue
            direction = "in" if side > 0 else "out"
            (self.counts_in if side > 0 else self.counts_out).by_class[str(name)] += 1
            events.append({"event": "crossed", "direction": direction, "track_id": tid, "class_name": str(name)})
        return events

    def summary(self) -> str:
        return f"{self.shape.name}: in {self.counts_in.total} out {self.counts_out.total}"

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.shape.name, "kind": self.kind, "in": dict(self.counts_in.by_class),
                "out": dict(self.counts_out.by_class)}


class ZoneCounter:
    """Who is inside one polygon: occupancy per class now, entries per class, and each track's dwell time
    (frames, and seconds where frames have timestamps)."""

    kind = "zone"

    def __init__(self, zone: Shape, margin: float = 2.0, anchor: str = "bottom", lost_after: int = 30):
        if anchor not in ANCHORS:
            raise OptionError(f"unknown anchor {anchor!r}: expected one of {', '.join(ANCHORS)}")
        self.shape, self.margin, self.anchor, self.lost_after = zone, float(margin), anchor, lost_after
        self.entries = _Counts()
        self._inside: dict[int, dict[str, Any]] = {}  # track id -> class, first/last frame and time inside

    @property
    def occupancy(self) -> Counter[str]:
        return Counter(t["class_name"] for t in self._inside.values())

    def dwell(self, track_id: int) -> dict[str, Any] | None:
        """Frames (and seconds) ``track_id`` has been inside so far, None when it is not inside."""
        t = self._inside.get(track_id)
        return None if t is None else _dwell(t)

    def update(self, detections: Detections, image_shape: tuple[int, int], frame: int,
               timestamp: float | None) -> list[dict[str, Any]]:
        """Events (``entered``, ``left`` with the dwell time) of this frame's tracks."""
        ids = track_ids_of(detections)
        polygon = self.shape.pixels(image_shape).astype(np.float32).reshape(-1, 1, 2)
        events = []
        for tid, (x, y), name in zip(ids.tolist(), anchors(detections, self.anchor).tolist(),
                                     detections.class_names.tolist()):
            inside_by = cv2.pointPolygonTest(polygon, (float(x), float(y)), True)  # > 0 inside, pixels
            track = self._inside.get(tid)
            if track is not None:
                if inside_by < -self.margin:
                    events.append(self._leave(tid))
                else:
                    track.update(last_frame=frame, last_time=timestamp)
            elif inside_by > self.margin:  # entered, or first seen inside
                self._inside[tid] = {"class_name": str(name), "first_frame": frame, "last_frame": frame,
                                     "first_time": timestamp, "last_time": timestamp}
                self.entries.by_class[str(name)] += 1
                events.append({"event": "entered", "track_id": tid, "class_name": str(name)})
        for tid in [t for t, v in self._inside.items() if frame - v["last_frame"] > self.lost_after]:
            events.append(self._leave(tid))  # not seen for lost_after frames: gone
        return events

    def _leave(self, tid: int) -> dict[str, Any]:
        track = self._inside.pop(tid)
        return {"event": "left", "track_id": tid, "class_name": track["class_name"], **_dwell(track)}

    def summary(self) -> str:
        return f"{self.shape.name}: {sum(self.occupancy.values())} inside, {self.entries.total} entered"

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.shape.name, "kind": self.kind, "occupancy": dict(self.occupancy),
                "entered": dict(self.entries.by_class)}


def _dwell(track: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"dwell_frames": track["last_frame"] - track["first_frame"] + 1}
    if track["first_time"] is not None and track["last_time"] is not None:
        out["dwell_s"] = round(track["last_time"] - track["first_time"], 4)
    return out


class Analytics:
    """Every line and zone of one stream, fed frame by frame: ``update`` returns the frame's events, each with
    the line/zone name, frame index and timestamp; ``counters`` hold the counts for drawing and reports."""

    def __init__(self, lines: Sequence[Shape] = (), zones: Sequence[Shape] = (), margin: float = 2.0,
                 anchor: str = "bottom", lost_after: int = 30):
        self.counters: list[LineCounter | ZoneCounter] = [LineCounter(s, margin, anchor) for s in lines]
        self.counters += [ZoneCounter(s, margin, anchor, lost_after) for s in zones]

    def __bool__(self) -> bool:
        return bool(self.counters)

    def update(self, detections: Detections, frame: int, timestamp: float | None = None,
               image_shape: tuple[int, int] | None = None) -> list[dict[str, Any]]:
        shape = image_shape or detections.image_shape
        events = []
        for counter in self.counters:
            found = (counter.update(detections, shape) if isinstance(counter, LineCounter)
                     else counter.update(detections, shape, frame, timestamp))
            for e in found:
                e.update({counter.kind: counter.shape.name, "frame_index": frame})  # the JSONL outputs' name
                if timestamp is not None:
                    e["timestamp"] = round(timestamp, 4)
            events += found
        return events

    def to_dict(self) -> list[dict[str, Any]]:
        return [c.to_dict() for c in self.counters]
