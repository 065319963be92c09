"""Where tracks spend their time: a heat map of track-centre occupancy, accumulated over one stream.

    heat = visionkit.heatmap_of(tracking.stream("hall.mp4"))    # any (frame, tracked detections) iterator
    heat.save("heat.png")                                        # over the stream's last frame
    heat.counts, heat.render(), heat.annotate(image)             # track-frames per cell; the colour map; blended

    heat = Heatmap()                                             # or frame by frame, e.g. next to the drawing
    heat.update(tracked, frame.image.shape[:2])

Every frame adds one to the cell under each track's box centre (or ``anchor="bottom"``: where a person stands), so
a cell's count is track-frames: a person standing still for 10 s at 25 fps adds 250 where one walking through adds
a few. Only tracked detections count (``track_ids`` set), as for lines and zones: one-frame false positives never
become tracks, so they leave no heat. Counts are kept on a grid of ``cell``-pixel cells (a 1080p stream costs
1 MB, not 16) and spread by a Gaussian of ``spread`` times the frame's longer side only when drawn, so the
counts stay exact and the look can change without rerunning.

``HeatmapSink`` is the CLI's ``--heatmap``: one heat map per sequence (video, camera, stream), each drawn onto that
sequence's annotated frames and written as a PNG over its last frame when the run ends.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from .errors import SinkError
from .io.images import IMAGE_SUFFIXES
from .io.sinks import OutputGuard, Sink, output_stem, sequence_key, write_image
from .io.sources import Frame
from .results import Detections, Result
from .zones import ANCHORS, anchors, track_ids_of


class Heatmap:
    """Track-frames per cell of one stream's frames; ``render``/``annotate`` draw them, hot where tracks stayed."""

    def __init__(self, cell: int = 4, spread: float = 0.015, anchor: str = "center", alpha: float = 0.5):
        """
        Args:
            cell: pixels per grid cell (1 = per pixel; larger = less memory, coarser).
            spread: the Gaussian's sigma as a fraction of the frame's longer side, when drawn (0 = raw cells).
            anchor: "center" (box centre) or "bottom" (bottom centre: where a person stands).
            alpha: opacity of the colour map over the frame in ``annotate`` (cold cells are left clear).
        """
        if anchor not in ANCHORS:
            raise ValueError(f"anchor must be one of {', '.join(ANCHORS)}, got {anchor!r}")
        if not (isinstance(cell, int) and cell >= 1):
            raise ValueError(f"cell must be an int >= 1, got {cell!r}")
        if not 0.0 <= spread < 1.0 or not 0.0 < alpha <= 1.0:
            raise ValueError(f"spread must be in [0, 1) and alpha in (0, 1], got {spread!r} and {alpha!r}")
        self.cell, self.spread, self.anchor, self.alpha = cell, spread, anchor, alpha
        self.image_shape: tuple[int, int] | None = None
        self.counts = np.zeros((0, 0), np.float64)
        self.frames = 0
        self.background: np.ndarray | None = None  # what ``save`` draws on: the last frame, where one was kept

    def update(self, detections: Detections, image_shape: tuple[int, int]) -> None:
        """Add this frame's tracks; ``image_shape`` (height, width) is the frame's, fixed for a stream."""
        track_ids_of(detections)  # refuses untracked detections, as lines and zones do
        shape = (int(image_shape[0]), int(image_shape[1]))
        if self.image_shape is None:
            self.image_shape = shape
            self.counts = np.zeros((-(-shape[0] // self.cell), -(-shape[1] // self.cell)), np.float64)
        elif shape != self.image_shape:
            raise ValueError(f"a heat map covers one stream: frame size {shape[1]}x{shape[0]} after "
                             f"{self.image_shape[1]}x{self.image_shape[0]}")
        self.frames += 1
        if len(detections) == 0:
            return
        points = anchors(detections, self.anchor) // self.cell
        rows = np.clip(points[:, 1].astype(np.int64), 0, self.counts.shape[0] - 1)
        cols = np.clip(points[:, 0].astype(np.int64), 0, self.counts.shape[1] - 1)
        np.add.at(self.counts, (rows, cols), 1.0)

    def density(self) -> np.ndarray:
        """The counts spread by the Gaussian and scaled to 0..1 (its hottest cell is 1), at frame size (float32)."""
        if self.image_shape is None:
            raise ValueError("the heat map has seen no frame yet")
        heat = self.counts.astype(np.float32)
        sigma = self.spread * max(self.image_shape) / self.cell
        if sigma > 0:
            heat = cv2.GaussianBlur(heat, (0, 0), sigma)
        h, w = self.image_shape
        heat = cv2.resize(heat, (w, h), interpolation=cv2.INTER_LINEAR)
        top = float(heat.max())
        return heat / top if top > 0 else heat

    def render(self) -> np.ndarray:
        """The heat map as a BGR image at frame size (OpenCV's JET colour map: blue cold, red hot)."""
        return cv2.applyColorMap((self.density() * 255).astype(np.uint8), cv2.COLORMAP_JET)

    def annotate(self, scene: np.ndarray) -> np.ndarray:
        """Blend the colour map onto ``scene`` (in place, also returned) where any heat is; the rest stays clear."""
        if self.image_shape is None or not self.counts.any():
            return scene
        density = self.density()
        colour = cv2.applyColorMap((density * 255).astype(np.uint8), cv2.COLORMAP_JET)
        weight = (np.minimum(density * 4, 1.0) * self.alpha)[..., None]  # faint tails fade in, not a blue wash
        scene[:] = (scene * (1 - weight) + colour * weight).astype(np.uint8)
        return scene


    def save(self, path: str | Path) -> Path:
        """Write the heat map over ``background`` (the colour map alone without one) as an image file, atomically."""
        image = self.annotate(self.background.copy()) if self.background is not None else self.render()
        return write_image(path, image)


def heatmap_of(stream: Iterable[tuple[Frame, Detections]], **options: Any) -> Heatmap:
    """The heat map of a whole stream of ``(frame, tracked detections)``, e.g. ``TrackingPredictor.stream(source)``,
    with its last frame as ``background``; ``options`` as for ``Heatmap``."""
    heat = Heatmap(**options)
    for frame, tracked in stream:
        heat.update(tracked, frame.image.shape[:2])
        heat.background = frame.image
    return heat


class HeatmapSink(Sink):
    """A heat map per sequence, drawn onto its annotated frames, each written at ``close`` as a PNG over the last
    frame. ``path``: an image file (``.png``; ``.jpg``... in that format) for a run over one sequence, or a folder
    that gets ``<stream>.png`` per sequence (as ``MotSink`` does with ``.txt``)."""

    def __init__(self, path: str | Path, guard: OutputGuard | None = None, **heatmap_options: Any):
        self.path = self.location = Path(path)
        self.guard = guard or OutputGuard()
        self.options = heatmap_options
        self.maps: dict[str, tuple[Heatmap, str]] = {}  # sequence key -> its heat map, the source it is named by
        self._single = self.path.suffix.lower() in IMAGE_SUFFIXES
        if self._single:
            self.guard.claim(self.path)  # a refused path fails before the run, not after it
            return
        try:
            self.path.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise SinkError(f"cannot create output directory {self.path}: {e.strerror}") from None

    def write(self, frame: Frame, result: Result, annotated: np.ndarray | None = None) -> None:
        key = sequence_key(frame)
        heat = self.maps[key][0] if key in self.maps else Heatmap(**self.options)
        if key not in self.maps and self._single and self.maps:
            raise SinkError(f"{self.path}: one heat map PNG is one sequence, but {frame.source} starts another; "
                            "give a folder to get one <name>.png per sequence")
        heat.update(result, frame.image.shape[:2])
        heat.background = frame.image
        self.maps[key] = (heat, frame.source)
        if annotated is not None:
            heat.annotate(annotated)

    def close(self) -> None:
        maps, self.maps = self.maps, {}
        for key, (heat, source) in maps.items():
            heat.save(self.path if self._single else self.guard.unique(
                self.path / f"{output_stem(source) if key else 'images'}.png"))
