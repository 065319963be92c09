"""Live capture in its own thread, keeping only the newest frame.

A queue that holds every frame is the classic reason live demos fall seconds behind: when inference is
slower than the camera, the backlog only grows. Here the capture thread overwrites the one waiting slot
(``BackgroundIterator(latest_only=True)``), so the consumer always gets the freshest frame and late frames
are counted as dropped instead of queued.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import visionkit
from visionkit.io.sources import camera_index, is_live
from visionkit.io.threads import BackgroundIterator


@dataclass
class Captured:
    frame: visionkit.Frame
    captured_at: float  # time.monotonic() when the frame left the camera/decoder: the start of its latency


def _is_file(spec: Any) -> bool:
    return not (is_live(spec) or "://" in str(spec))


class LiveCapture:
    """Frames of a camera index, stream URL, video or image file as a live feed.

    A file stands in for a camera: it is replayed at its own frame rate (or ``fps``) and, with
    ``loop``, restarted at its end. Opening happens in ``__init__`` so an absent camera fails at once.
    """

    def __init__(self, source: Any = 0, loop: bool = False, fps: float | None = None, keep_latest: bool = True):
        """``fps`` replays a file at that rate instead of its own (still images: 30);
        ``keep_latest=False`` queues every frame instead (for recording, or to show the lag it causes)."""
        index = camera_index(source)  # "0" is a camera; "\u00b3" is a file name, as visionkit reads sources
        self.spec = source if index is None else index
        self.loop = loop
        self.fps = fps
        self.keep_latest = keep_latest
        self.is_file = _is_file(self.spec)
        self._first = visionkit.open_source(self.spec)  # raises SourceError: absent camera, missing file
        self._reader: BackgroundIterator[Captured] | None = None

    @property
    def dropped(self) -> int:
        """Frames overwritten before anyone took them (the price of staying current)."""
        return self._reader.dropped if self._reader else 0

    def _paced(self) -> Iterator[Captured]:
        source = self._first
        while True:
            rate = self.fps or getattr(source, "fps", None) or 30.0
            next_due = time.monotonic()
            for frame in source:
                if self.is_file:  # replay at the file's rate, as a camera would deliver it
                    next_due += 1.0 / rate
                    time.sleep(max(0.0, next_due - time.monotonic()))
                yield Captured(frame, time.monotonic())
            if not (self.loop and self.is_file):
                return
            source = visionkit.open_source(self.spec)

    def __iter__(self) -> Iterator[Captured]:
        self._reader = BackgroundIterator(self._paced(), maxsize=1 if self.keep_latest else 1_000_000,
                                          latest_only=self.keep_latest, name="capture")
        return iter(self._reader)

    def close(self) -> None:
        if self._reader is not None:
            self._reader.close()

    @property
    def name(self) -> str:
        return Path(str(self.spec)).name if self.is_file else str(self.spec)
