"""Where frames come from. Every source yields ``Frame`` objects; nothing here knows about models.

Accepted specs (also the CLI's SOURCE help):
  image file            photo.jpg            (any OpenCV-readable image)
  directory             images/              (images and videos inside, sorted by name, not recursive)
  glob                  'data/*.png'         (quoted so the shell leaves it alone)
  video file            clip.mp4             (any FFmpeg-readable container)
  webcam index          0                    (OpenCV camera index)
  image URL             https://host/photo.jpg  (one image: an image suffix, or an image/* answer)
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

from ..errors import OptionError, SourceError
from ..paths import user_path
from .http import is_image_url, read_image_url, serves_image
from .images import IMAGE_SUFFIXES, VIDEO_SUFFIXES, read_image, to_bgr

log = logging.getLogger("visionkit")

OPEN_TIMEOUT_MS = 10_000  # network streams: give up opening / reading after this long instead of hanging
READ_TIMEOUT_MS = 10_000
URL_SCHEMES = ("rtsp://", "rtsps://", "rtmp://", "http://", "https://", "udp://", "tcp://")
RECONNECT_ATTEMPTS = 5  # live sources: reopen attempts after a drop (0 = off), waiting 0.5, 1, 2, 4, 8 s
RECONNECT_FIRST_DELAY_S = 0.5
RECONNECT_MAX_DELAY_S = 8.0

ErrorHandler = Callable[[SourceError], None]


def quiet_native_logs() -> None:
    """Turn OpenCV's and FFmpeg's own log lines off, unless the user set their levels.

    Every failure they log (a camera that is absent, a stream that times out, a truncated file) reaches the user
    as visionkit's one SourceError line; their own ``[ WARN:0@0.1] global cap_ffmpeg_impl.hpp ...`` and
    ``[h264 @ 0x...]`` lines would only repeat it in a form nobody can act on. OpenCV's level is process-wide
    (worker threads included); FFmpeg's is read when OpenCV first uses FFmpeg, so this runs at import, before
    any capture or writer opens.
    """
    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")  # AV_LOG_QUIET
    if "OPENCV_LOG_LEVEL" not in os.environ:
        cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)


quiet_native_logs()


@dataclass
class Frame:
    """One image from a source. ``index`` counts frames within ``source`` (0 for a still image)."""

    image: np.ndarray
    source: str
    index: int = 0
    timestamp: float | None = None  # seconds: position in a video file, or monotonic capture time when live
    fps: float | None = None  # frames per second the source yields, when known (the video's / vid_stride)
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


class UrlImageSource(Source):
    """One image at an http(s) URL (``visionkit.io.http``), downloaded when iterated."""

    def __init__(self, url: str):
        self.name = url

    def __iter__(self) -> Iterator[Frame]:
        yield Frame(read_image_url(self.name), self.name)

    def __len__(self) -> int:
        return 1


class VideoSource(Source):
    """Frames of a video file, a camera or a network stream, decoded by OpenCV (FFmpeg).

    The capture opens in ``__init__`` (a bad input fails at once) and is released as soon as its frames are
    done. A failure after the first frame - a file that ends early, a live source lost for good - goes to
    ``on_error`` (raised without one) once the frames before it have been yielded. A live source that drops is
    reopened up to ``reconnect`` times with exponential backoff; frames go on under the same name, with
    ``index`` still counting and timestamps still increasing, so per-stream state (a tracker) carries over.
    ``vid_stride`` N yields every N-th frame (0, N, 2N...); ``index`` and ``timestamp`` stay those of the source
    frame, so outputs line up with the video (a MOT file's frame numbers, a JSONL's timestamps).
    """

    def __init__(self, target: str | int, live: bool = False, on_error: ErrorHandler | None = None,
                 reconnect: int | None = None, vid_stride: int = 1):
        self.target = target
        self.live = live
        self.on_error = on_error
        self.vid_stride = check_vid_stride(vid_stride)
        attempts = reconnect_attempts(reconnect)
        self.reconnect = attempts if live else 0
        self.name = f"camera {target}" if isinstance(target, int) else str(target)
        self._cap: cv2.VideoCapture | None = self._open()
        self.fps = self._cap.get(cv2.CAP_PROP_FPS) or None
        self.frame_count = 0 if live else max(int(self._cap.get(cv2.CAP_PROP_FRAME_COUNT)), 0)
        self.size = (int(self._cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(self._cap.get(cv2.CAP_PROP_FRAME_HEIGHT)))

    def _open(self) -> cv2.VideoCapture:
        args: tuple[Any, ...] = (self.target,)
        if isinstance(self.target, int):
            what = "not available (no camera at that index, or it is in use)"
        elif str(self.target).startswith(URL_SCHEMES):
            args = (self.target, cv2.CAP_FFMPEG, [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, OPEN_TIMEOUT_MS,
                                                  cv2.CAP_PROP_READ_TIMEOUT_MSEC, READ_TIMEOUT_MS])
            what = "cannot be opened (unreachable, not a video stream, or timed out)"
        else:
            path = user_path(self.target, SourceError)
            if not path.is_file():
                raise SourceError(f"{path}: no such file")
            if path.stat().st_size == 0:
                raise SourceError(f"{path}: empty file (0 bytes)")
            args = (str(path),)
            what = "cannot be opened as a video (corrupt or unsupported format)"
        try:
            cap = cv2.VideoCapture(*args)
        except cv2.error:  # OpenCV refuses the argument itself (a camera index beyond a C int): nothing to open
            raise SourceError(f"{self.name}: {what}") from None
        if not cap.isOpened():
            cap.release()
            raise SourceError(f"{self.name}: {what}")
        return cap

    def __len__(self) -> int:
        """The frames this source yields (every ``vid_stride``-th of the video's); 0 when unknown."""
        return -(-self.frame_count // self.vid_stride)

    def files(self) -> Iterator[Path]:
        if not self.live:
            yield Path(self.target)

    def __iter__(self) -> Iterator[Frame]:
        cap, self._cap = (self._cap if self._cap is not None else self._open()), None  # a second pass reopens
        index, start = 0, time.monotonic()
        rate = self.fps / self.vid_stride if self.fps else None  # so a video of these frames plays in real time
        dropped: float | None = None  # when the drop being recovered from happened
        attempt = 0
        try:
            while cap is not None:
                skip = index % self.vid_stride != 0  # a frame between two strides: demuxed, never converted
                ok = cap.grab()
                image = None if skip or not ok else cap.retrieve()[1]
                if ok and skip:
                    index += 1
                    continue
                if ok and image is not None:
                    if dropped is not None:
                        log.warning("%s: reconnected after %.1f s (attempt %d of %d), going on from frame %d",
                                    self.name, time.monotonic() - dropped, attempt, self.reconnect, index)
                        dropped, attempt = None, 0
                    stamp = time.monotonic() - start if self.live else cap.get(cv2.CAP_PROP_POS_MSEC) / 1000.0
                    yield Frame(image, self.name, index, stamp, rate, is_video=True)
                    index += 1
                    continue
                cap.release()
                cap = None
                if index == 0 or attempt >= self.reconnect:
                    break
                if dropped is None:
                    dropped = time.monotonic()
                    log.warning("%s: stream dropped after %d frames (%.1f s); reconnecting, up to %d attempts",
                                self.name, index, dropped - start, self.reconnect)
                cap, attempt = self._reopen(attempt)
        finally:
            if cap is not None:
                cap.release()
        self._check_end(index, dropped)

    def _reopen(self, attempt: int) -> tuple[cv2.VideoCapture | None, int]:
        """The reopened capture and the attempt that opened it, after waiting 0.5 s, 1 s, 2 s... (8 s at most)
        before each try; no capture once ``reconnect`` attempts have failed."""
        while attempt < self.reconnect:
            time.sleep(min(RECONNECT_FIRST_DELAY_S * 2 ** attempt, RECONNECT_MAX_DELAY_S))
            attempt += 1
            try:
                return self._open(), attempt
            except SourceError:
                continue
        return None, attempt

    def _check_end(self, frames: int, dropped: float | None) -> None:
        """Report how the frames ended when that is a failure: none at all, a stream lost, a file cut short."""
        if frames == 0:
            self._report(SourceError(f"{self.name}: no frame could be decoded"))
        elif dropped is not None:
            self._report(SourceError(f"{self.name}: stream lost after {frames} frames; {self.reconnect} reconnect "
                                     f"attempt(s) over {time.monotonic() - dropped:.1f} s failed"))
        elif self.live:
            log.warning("%s: stream ended after %d frames", self.name, frames)
        elif self.frame_count and frames < self.frame_count - 1:  # a container's count can be one off
            self._report(SourceError(f"{self.name}: video ended early: {frames} of {self.frame_count} frames "
                                     "decoded (truncated or corrupt file)"))

    def _report(self, error: SourceError) -> None:
        if self.on_error is None:
            raise error
        self.on_error(error)


def reconnect_attempts(reconnect: int | None) -> int:
    """The number of reopen attempts ``reconnect`` asks for (None = the default, 5), or OptionError."""
    if reconnect is None:
        return RECONNECT_ATTEMPTS
    if isinstance(reconnect, bool) or not isinstance(reconnect, int) or reconnect < 0:
        raise OptionError(f"reconnect must be a number of attempts (0 = off), got {reconnect!r}")
    return reconnect


def check_vid_stride(vid_stride: Any) -> int:
    """``vid_stride`` as a positive int (1 = every frame), or OptionError."""
    if isinstance(vid_stride, bool) or not isinstance(vid_stride, (int, np.integer)) or vid_stride < 1:
        raise OptionError(f"vid_stride must be a positive integer (1 = every frame), got {vid_stride!r}")
    return int(vid_stride)


def probe_frame_count(path: str | Path) -> int:
    """The frame count a video's header gives (0 when unknown or unreadable), with the file open only meanwhile:
    progress bars over many videos need it, and keeping every capture open would exhaust file descriptors."""
    cap = cv2.VideoCapture(str(path))
    try:
        return max(int(cap.get(cv2.CAP_PROP_FRAME_COUNT)), 0) if cap.isOpened() else 0
    finally:
        cap.release()


class MultiSource(Source):
    """Several inputs in a row, opened one at a time when their turn comes and released when done (so ten
    thousand files need one descriptor at a time). A bad input goes to ``on_error`` and the rest go on."""

    def __init__(self, specs: list[Any], on_error: ErrorHandler | None, name: str = "",
                 reconnect: int | None = None, vid_stride: int = 1):
        self.specs = specs
        self.on_error = on_error
        self.reconnect = reconnect
        self.vid_stride = check_vid_stride(vid_stride)
        self.name = name or f"{len(specs)} inputs"
        self._length: int | None = None

    def _try(self, fn: Callable[[], Any]) -> Any:
        try:
            return fn()
        except SourceError as e:
            if self.on_error is None:
                raise
            self.on_error(e)
            return None

    def __len__(self) -> int:
        """Frames in all inputs (probed from video headers once, each file opened only for that); an unreadable
        video counts as one item."""
        if self._length is None:
            self._length = sum(_item_length(spec, self.vid_stride) for spec in self.specs)
        return self._length

    def files(self) -> Iterator[Path]:
        for spec in self.specs:
            if isinstance(spec, Source):
                yield from spec.files()
            elif isinstance(spec, (str, Path)) and not is_live(spec):
                yield Path(spec).expanduser()

    def __iter__(self) -> Iterator[Frame]:
        for i, spec in enumerate(self.specs):
            source = self._try(lambda s=spec: _single(s, self.on_error, self.reconnect, self.vid_stride))
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


def _item_length(spec: Any, vid_stride: int) -> int:
    if isinstance(spec, Source):
        return len(spec)
    return max(-(-probe_frame_count(spec) // vid_stride), 1) if _is_video_spec(spec) else 1


def _is_video_spec(spec: Any) -> bool:
    return isinstance(spec, (str, Path)) and Path(str(spec)).suffix.lower() in VIDEO_SUFFIXES


def camera_index(spec: Any) -> int | None:
    """The OpenCV camera index ``spec`` names (an int, or a string of ASCII digits such as ``"0"``), else None.
    Other Unicode digits (``"³"``, ``"٣"``) are file names: ``str.isdigit()`` takes them, ``int()`` does not."""
    if isinstance(spec, int) and not isinstance(spec, bool):
        return spec
    if isinstance(spec, str) and spec.isascii() and spec.isdecimal():
        return int(spec)
    return None


def is_live(spec: Any) -> bool:
    """Whether ``spec`` names a camera (an index) or a stream URL: frames that will not wait for us (a URL of an
    image file is one still)."""
    return camera_index(spec) is not None or (isinstance(spec, (str, Path)) and str(spec).startswith(URL_SCHEMES)
                                              and not is_image_url(str(spec)))


def _single(spec: Any, on_error: ErrorHandler | None = None, reconnect: int | None = None,
            vid_stride: int = 1) -> Source:
    if isinstance(spec, Source):
        return spec
    if not isinstance(spec, (str, Path, int)) or isinstance(spec, bool):
        return ArraySource(spec)
    if is_image_url(spec) or (isinstance(spec, str) and serves_image(spec)):
        return UrlImageSource(spec)
    if is_live(spec):
        index = camera_index(spec)
        return VideoSource(str(spec) if index is None else index, live=True, on_error=on_error, reconnect=reconnect,
                           vid_stride=vid_stride)
    path = user_path(spec, SourceError)
    if path.suffix.lower() in VIDEO_SUFFIXES:
        return VideoSource(str(path), on_error=on_error, vid_stride=vid_stride)
    if not path.exists():
        raise SourceError(f"{path}: no such file or directory")
    if path.suffix.lower() not in IMAGE_SUFFIXES and path.is_file():
        # Unknown suffix: try it as an image first (cheap), then as a video.
        try:
            read_image(path)
        except SourceError:
            try:
                return VideoSource(str(path), on_error=on_error, vid_stride=vid_stride)
            except SourceError:
                raise SourceError(f"{path}: neither an image nor a video OpenCV can decode") from None
    return ImageSource(path)


def _expand(spec: str | Path) -> list[Path] | None:
    """Files of a directory or a glob pattern; None when ``spec`` is neither."""
    text = str(spec)
    path = user_path(text, SourceError)
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


def open_source(spec: Any, on_error: ErrorHandler | None = None, reconnect: int | None = None,
                vid_stride: int = 1) -> Source:
    """Open any accepted input (see the module docstring).

    With ``on_error`` set, a bad item of a multi-item source (directory, glob, list) is passed to it and the
    run goes on, and so is a failure after the first frame (a video that ends early, a stream lost for good);
    without it, the first of these raises ``SourceError``. A single input that cannot be opened always raises.
    ``reconnect``: attempts to reopen a camera or stream that drops (None = 5, 0 = off); files ignore it.
    ``vid_stride``: videos, cameras and streams yield every N-th frame, each with its source index and timestamp
    (ultralytics' ``vid_stride``); still images ignore it. A ``Source`` given as ``spec`` keeps its own.
    """
    reconnect = reconnect_attempts(reconnect)
    vid_stride = check_vid_stride(vid_stride)
    if isinstance(spec, Source):
        return spec
    if isinstance(spec, (list, tuple)):
        return MultiSource(list(spec), on_error, reconnect=reconnect, vid_stride=vid_stride)
    if isinstance(spec, (np.ndarray, bool)) or not isinstance(spec, (str, Path, int)):
        return ArraySource(spec)
    if isinstance(spec, (str, Path)) and not str(spec).startswith(URL_SCHEMES):  # a URL's "?" starts its query
        files = _expand(spec)
        if files is not None:
            return MultiSource(files, on_error, name=str(spec), vid_stride=vid_stride)
    return _single(spec, on_error, reconnect, vid_stride)
