"""Annotated video files that browsers play and that survive the process being killed.

``VideoWriter`` encodes H.264 (``libx264``, yuv420p) through PyAV into a *fragmented* MP4
(``movflags=frag_keyframe+empty_moov+default_base_moof``): the header goes first and each keyframe starts a
self-contained fragment that is flushed and fsync'ed as soon as it is complete. A run killed by SIGKILL or a
power cut therefore leaves a file that plays up to its last keyframe (one keyframe a second of video), and
finished and killed files alike play in a browser's ``<video>`` (tested in Chromium). OpenCV's own ``mp4v``
writer has neither property (its ``moov`` index is written on release, and browsers do not decode MPEG-4
Part 2), so it is only the fallback for a PyAV whose FFmpeg lacks the encoder; that is said once, in a warning.

``VISIONKIT_VIDEO_ENCODER`` names another FFmpeg encoder for PyAV (e.g. ``libopenh264``); a name this
FFmpeg does not have selects the OpenCV fallback, which is how the fallback is tested.
"""

from __future__ import annotations

import functools
import logging
import os
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import cv2
import numpy as np

from ..errors import SinkError

log = logging.getLogger("visionkit")

ENCODER_ENV = "VISIONKIT_VIDEO_ENCODER"
DEFAULT_ENCODER = "libx264"
# Empty header first, a fragment per keyframe, data offsets relative to each fragment (as browsers' players want);
# flush_packets: each finished fragment leaves FFmpeg's buffer at once.
FRAGMENTED_MP4 = {"movflags": "frag_keyframe+empty_moov+default_base_moof", "flush_packets": "1"}
X264_OPTIONS = {"preset": "veryfast"}  # ~2.4 ms CPU per 480x360 frame (bench_track.py --encoders-only): live-capable
KEYFRAME_SECONDS = 1.0  # what a SIGKILL can lose at most (plus the frames still in the encoder)
FALLBACK_FOURCC = "mp4v"  # encodable by every opencv-python wheel


@functools.cache
def _missing_encoder(name: str) -> str | None:
    """Why PyAV cannot encode with ``name`` (None: it can); cached, so the fallback warning is logged once."""
    try:
        codec = av.Codec(name, "w")
    except ValueError:  # av's UnknownCodecError
        reason = f"PyAV's FFmpeg has no {name!r} encoder"
    else:
        if codec.type == "video":
            return None
        reason = f"{name!r} is not a video encoder"
    log.warning("%s: writing %s video with OpenCV instead, which browsers do not play and a killed run leaves "
                "unreadable (set %s to an available H.264 encoder)", reason, FALLBACK_FOURCC, ENCODER_ENV)
    return reason


def _rate(fps: float) -> Fraction:
    """The frame rate as the exact fraction containers store (OpenCV's 29.97003 for NTSC -> 30000/1001)."""
    return Fraction(fps).limit_denominator(1001)


class _PyAVEncoder:
    """H.264 in fragmented MP4; the file object is ours, so completed fragments can be fsync'ed."""

    def __init__(self, path: Path, fps: float, size: tuple[int, int], encoder: str):
        self.path = path
        try:
            self._file = open(path, "wb")  # closed in close(), after the container
        except OSError as e:
            raise SinkError(f"cannot write {path}: {e.strerror}") from None
        try:
            self._container = av.open(self._file, "w", format="mp4", container_options=FRAGMENTED_MP4)
            self._stream = self._container.add_stream(encoder, rate=_rate(fps))
            self._stream.width, self._stream.height = size
            self._stream.pix_fmt = "yuv420p"  # the only chroma layout every browser decodes
            self._stream.codec_context.gop_size = max(1, round(fps * KEYFRAME_SECONDS))
            if encoder == DEFAULT_ENCODER:
                self._stream.options = X264_OPTIONS
            self._stream.codec_context.open()
        except av.FFmpegError as e:
            self._file.close()
            raise SinkError(f"cannot encode {path} with {encoder}: {e.strerror or e}") from None
        self._pts = 0

    def write(self, bgr: np.ndarray) -> None:
        frame = av.VideoFrame.from_ndarray(bgr, format="bgr24")  # converted to yuv420p by the encoder (swscale)
        frame.pts = self._pts
        self._mux(self._stream.encode(frame))
        self._pts += 1

    def _mux(self, packets: list[Any]) -> None:
        try:
            # One call for all of a frame's packets (PyAV loops in C): a Ctrl-C in the caller's thread cannot
            # land between two of them and leave a gap in the stream.
            self._container.mux(packets)
            if any(packet.is_keyframe for packet in packets):  # the muxer has just written the previous fragment
                self._sync()
        except (av.FFmpegError, OSError) as e:
            raise SinkError(f"cannot write {self.path}: {getattr(e, 'strerror', None) or e}") from None

    def _sync(self) -> None:
        self._file.flush()
        os.fsync(self._file.fileno())

    def close(self) -> None:
        try:
            self._mux(self._stream.encode())  # the frames still in the encoder's lookahead
            self._container.close()
            self._sync()
        finally:
            self._file.close()


class _OpenCVEncoder:
    def __init__(self, path: Path, fps: float, size: tuple[int, int]):
        self._writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*FALLBACK_FOURCC), fps, size)
        if not self._writer.isOpened():
            raise SinkError(f"cannot open video writer for {path}")

    def write(self, bgr: np.ndarray) -> None:
        self._writer.write(bgr)

    def close(self) -> None:
        self._writer.release()


class VideoWriter:
    """Write BGR frames to an MP4 file at ``fps``: ``with VideoWriter(path, fps, (w, h)) as video: video.write(bgr)``.

    H.264 needs even dimensions, so an odd width or height is **padded** by one pixel (the last column/row
    repeated) rather than cropped: nothing drawn near the edge is lost, and the file is at most one pixel larger
    than ``size``. A frame of another size than the first (a stream that changes resolution) is resized to it.
    ``encoder``: the FFmpeg encoder PyAV uses (default ``$VISIONKIT_VIDEO_ENCODER`` or ``libx264``); see the
    module docstring for the OpenCV fallback. Errors opening or writing the file are ``SinkError``.
    """

    def __init__(self, path: str | Path, fps: float, size: tuple[int, int], encoder: str | None = None):
        self.path = Path(path)
        self.size = size
        self.frames = 0
        encoder = encoder or os.environ.get(ENCODER_ENV) or DEFAULT_ENCODER
        self._encoder: _PyAVEncoder | _OpenCVEncoder
        if _missing_encoder(encoder) is None:
            w, h = size
            self.encoded_size = (w + w % 2, h + h % 2)
            self.codec = encoder
            self._encoder = _PyAVEncoder(self.path, fps, self.encoded_size, encoder)
        else:
            self.encoded_size, self.codec = size, FALLBACK_FOURCC
            self._encoder = _OpenCVEncoder(self.path, fps, size)
        self._closed = False

    def write(self, bgr: np.ndarray) -> None:
        """Encode one BGR frame (uint8, H x W x 3); the caller's array is not modified."""
        if (bgr.shape[1], bgr.shape[0]) != self.size:
            bgr = cv2.resize(bgr, self.size, interpolation=cv2.INTER_AREA)
        w, h = self.size
        ew, eh = self.encoded_size
        if (ew, eh) != (w, h):
            bgr = cv2.copyMakeBorder(bgr, 0, eh - h, 0, ew - w, cv2.BORDER_REPLICATE)
        self._encoder.write(np.ascontiguousarray(bgr))
        self.frames += 1

    def close(self) -> None:
        """Flush the encoder and finish the file; safe to call twice."""
        if not self._closed:
            self._closed = True
            self._encoder.close()

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
