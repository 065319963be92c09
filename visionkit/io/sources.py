"""Where frames come from. Every source yields ``Frame`` objects; nothing here knows about models.

Accepted specs (also the CLI's SOURCE help):
  image file            photo.jpg            (any OpenCV-readable image)
  directory             images/              (images and videos inside, sorted by name, not recursive)
  glob                  'data/*.png'         (quoted so the shell leaves it alone)
  video file            clip.mp4             (any FFmpeg-readable container)
  webcam index          0                    (OpenCV camera index)
  stream URL            rtsp://… rtmp://… http(s)://…  (network video, opened with timeouts)
  list of the above     in the Python API
  numpy array / PIL     in the Python API: one in-memory image
"""

from __future__ import annotations

import glob
import logging
import os
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from ..errors import SourceError
from .images import IMAGE_SUFFIXES, VIDEO_SUFFIXES, read_image, to_bgr

log = logging.getLogger("visionkit")
os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")  # FFmpeg quiet: stream failures become one SourceError line

OPEN_TIMEOUT_MS = 10_000  # network streams: give up opening / reading after this long instead of hanging
READ_TIMEOUT_MS = 10_000
URL_SCHEMES = ("rtsp://", "rtsps://", "rtmp://", "http://", "https://", "udp://", "tcp://")

ErrorHandler = Callable[[SourceError], None]


@dataclass
class Frame:
    """One image from a source. ``index`` counts frames within ``source`` (0 for a still image)."""

    image: np.ndarray
    source: str
    index: int = 0
    timestamp: float | None = None  # seconds: position in a video file, or monotonic capture time when live
    fps: float | None = None  # frame rate of the video it came from, when known
    is_video: bool = False

    @property
    def name(self) -> str:
        return Path(self.source).name if not self.source.startswith(URL_SCHEMES) else self.source


class Source(Iterable[Frame]):
    """Base: iterate for frames; ``len()`` is the frame count when known (for progress bars), else 0."""

    name: str = ""
    live: bool = False

    def __iter__(self) -> Iterator[Frame]:
        raise NotImplementedError

    def __len__(self) -> int:
        return 0

    def files(self) -> Iterator[Path]:
        """The files this source reads (none for cameras, streams and arrays), listed without opening them, so
        that outputs can be kept off them."""
        return iter(())


class ArraySource(Source):
    def __init__(self, image: Any, name: str = "array"):
        self.name = name
        self.image = to_bgr(image, name)

    def __iter__(self) -> Iterator[Frame]:
        yield Frame(self.image, self.name)

    def __len__(self) -> int:
        return 1


class ImageSource(Source):
    def __init__(self, path: str | Path):
        self.name = str(path)

    def __iter__(self) -> Iterator[Frame]:
        yield Frame(read_image(self.name), self.name)

    def __len__(self) -> int:
        return 1

    def files(self) -> Iterator[Path]:
        yield Path(self.name)


class VideoSource(Source):
    """Frames of a video file, a camera or a network stream, decoded by OpenCV (FFmpeg)."""

    def __init__(self, target: str | int, live: bool = False):
        self.target = target
        self.live = live
        self.name = f"camera {target}" if isinstance(target, int) else str(target)
        self._cap = self._open()
        self.fps = self._cap.get(cv2.CAP_PROP_FPS) or None
        self.frame_count = 0 if live else max(int(self._cap.get(cv2.CAP_PROP_FRAME_COUNT)), 0)
        self.size = (int(self._cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(self._cap.get(cv2.CAP_PROP_FRAME_HEIGHT)))

    def _open(self) -> cv2.VideoCapture:
        if isinstance(self.target, int):
            cap = _quietly(lambda: cv2.VideoCapture(self.target))
            what = "not available (no camera at that index, or it is in use)"
        elif str(self.target).startswith(URL_SCHEMES):
            cap = _quietly(lambda: cv2.VideoCapture(self.target, cv2.CAP_FFMPEG, [
                cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, OPEN_TIMEOUT_MS, cv2.CAP_PROP_READ_TIMEOUT_MSEC, READ_TIMEOUT_MS]))
            what = "cannot be opened (unreachable, not a video stream, or timed out)"
        else:
            path = Path(self.target)
            if not path.is_file():
                raise SourceError(f"{path}: no such file")
            if path.stat().st_size == 0:
                raise SourceError(f"{path}: empty file (0 bytes)")
            cap = cv2.VideoCapture(str(path))
            what = "cannot be opened as a video (corrupt or unsupported format)"
        if not cap.isOpened():
            cap.release()
            raise SourceError(f"{self.name}: {what}")
        return cap

    def __len__(self) -> int:
        return self.frame_count

    def files(self) -> Iterator[Path]:
        if not self.live:
            yield Path(self.target)

    def __iter__(self) -> Iterator[Frame]:
        cap, index, start = self._cap, 0, time.monotonic()
        try:
            while True:
                ok, image = cap.read()
                if not ok or image is None:
                    break
                stamp = time.monotonic() - start if self.live else cap.get(cv2.CAP_PROP_POS_MSEC) / 1000.0
                yield Frame(image, self.name, index, stamp, self.fps, is_video=True)
                index += 1
        finally:
            cap.release()
        if index == 0:
            raise SourceError(f"{self.name}: no frame could be decoded")
        if self.live:
            log.warning("%s: stream ended after %d frames", self.name, index)
        elif self.frame_count and index < self.frame_count - 1:
            log.warning("%s: video ended early at frame %d of %d (truncated or unreadable frames)",
                        self.name, index, self.frame_count)


def _quietly(open_capture: Callable[[], cv2.VideoCapture]) -> cv2.VideoCapture:
    """Open a capture with OpenCV's own logging off: a failure is reported as one SourceError line instead."""
    level = cv2.utils.logging.getLogLevel()
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)
    try:
        return open_capture()
    finally:
        cv2.utils.logging.setLogLevel(level)


class MultiSource(Source):
    """Several inputs in a row. One bad input is reported through ``on_error`` and the rest go on."""

    def __init__(self, specs: list[Any], on_error: ErrorHandler | None, name: str = ""):
        self.specs = specs
        self.on_error = on_error
        self.name = name or f"{len(specs)} inputs"
        self._sources: list[Source | None] = [None] * len(specs)
        for i, spec in enumerate(specs):
            if _is_video_spec(spec):  # open videos now so len() can count their frames
                self._sources[i] = self._try(lambda s=spec: _single(s))

    def _try(self, fn: Callable[[], Any]) -> Any:
        try:
            return fn()
        except SourceError as e:
            if self.on_error is None:
                raise
            self.on_error(e)
            return None

    def __len__(self) -> int:
        return sum(len(s) if s is not None else 1 for s in self._sources)

    def files(self) -> Iterator[Path]:
        for spec in self.specs:
            if isinstance(spec, Source):
                yield from spec.files()
            elif isinstance(spec, (str, Path)) and not is_live(spec):
                yield Path(spec).expanduser()

    def __iter__(self) -> Iterator[Frame]:
        for i, spec in enumerate(self.specs):
            source = self._sources[i] or (None if _is_video_spec(spec) else self._try(lambda s=spec: _single(s)))
            if source is None:
                continue
            frames = iter(source)
            while True:
                frame = self._try(lambda frames=frames: next(frames, None))
                if frame is None:
                    break
                if not frame.is_video:
                    frame.index = i  # stills of a folder or glob form one sequence, numbered in sorted order
                yield frame


def _is_video_spec(spec: Any) -> bool:
    return isinstance(spec, (str, Path)) and Path(str(spec)).suffix.lower() in VIDEO_SUFFIXES


def is_live(spec: Any) -> bool:
    """Whether ``spec`` names a camera (an index) or a stream URL: frames that will not wait for us."""
    return (isinstance(spec, int) or (isinstance(spec, str) and spec.isdigit())
            or (isinstance(spec, (str, Path)) and str(spec).startswith(URL_SCHEMES)))


def _single(spec: Any) -> Source:
    if isinstance(spec, Source):
        return spec
    if not isinstance(spec, (str, Path, int)):
        return ArraySource(spec)
    if is_live(spec):
        return VideoSource(int(spec) if str(spec).isdigit() else str(spec), live=True)
    text = str(spec)
    path = Path(text).expanduser()
    if path.suffix.lower() in VIDEO_SUFFIXES:
        return VideoSource(str(path))
    if not path.exists():
        raise SourceError(f"{path}: no such file or directory")
    if path.suffix.lower() not in IMAGE_SUFFIXES and path.is_file():
        # Unknown suffix: try it as an image first (cheap), then as a video.
        try:
            read_image(path)
        except SourceError:
            try:
                return VideoSource(str(path))
            except SourceError:
                raise SourceError(f"{path}: neither an image nor a video OpenCV can decode") from None
    return ImageSource(path)


def _expand(spec: str | Path) -> list[Path] | None:
    """Files of a directory or a glob pattern; None when ``spec`` is neither."""
    text = str(spec)
    path = Path(text).expanduser()
    if path.is_dir():
        files = [p for p in sorted(path.iterdir()) if p.suffix.lower() in IMAGE_SUFFIXES | VIDEO_SUFFIXES]
        if not files:
            raise SourceError(f"{path}: directory holds no image or video files")
        return files
    if any(c in text for c in "*?[") and not path.exists():
        files = [Path(p) for p in sorted(glob.glob(str(path), recursive=True)) if Path(p).is_file()]
        if not files:
            raise SourceError(f"{text}: glob pattern matches no files")
        return files
    return None


def open_source(spec: Any, on_error: ErrorHandler | None = None) -> Source:
    """Open any accepted input (see the module docstring).

    With ``on_error`` set, a bad item of a multi-item source (directory, glob, list) is passed to it and the
    run goes on; without it, the first bad item raises ``SourceError``.
    """
    if isinstance(spec, Source):
        return spec
    if isinstance(spec, (list, tuple)):
        return MultiSource(list(spec), on_error)
    if isinstance(spec, np.ndarray) or not isinstance(spec, (str, Path, int)):
        return ArraySource(spec)
    if isinstance(spec, (str, Path)):
        files = _expand(spec)
        if files is not None:
            return MultiSource(files, on_error, name=str(spec))
    return _single(spec)
