"""Many streams through one model: frames of N sources gathered in steps (one frame per stream), run in batched
forward passes, results routed back to each stream's own tracker.

    streams = visionkit.MultiStream({"door": "rtsp://cam1/live", "hall": "hall.mp4"}, tracking)
    for item in streams:                      # StreamResult(stream, frame, result), in step order
        ...
    streams.add("cam3", "rtsp://cam3/live")   # while running, from any thread
    streams.remove("hall")

Built on the Predictor's public surface only: ``predict(list of images)`` (which batches by its ``batch_size``)
for detect/pose/segment predictors, and for a ``TrackingPredictor`` its ``detector.predict`` plus one
``new_tracker()`` per stream. So a stream's tracks depend on its own frames alone: ids and boxes are those of
running that stream by itself, whatever the other streams and the batch composition (the detector's result for
an image must not depend on the batch it is in; tested with SSD MobileNet at batch 1, 2, 4).

A step's frames go through the model in forward passes of the predictor's ``batch_size``: ``batch_size`` >= the
number of streams is one batched pass per step (what a GPU wants: one fp16 pass for N streams), 1 is one pass per
frame. The passes are pipelined as ``Predictor.stream`` pipelines batches: they run in ``workers`` threads (the
predictor's ``workers``; on a CPU each with cores / workers threads of PyTorch or ONNX Runtime), while this thread
gathers the next step's frames and runs the trackers of the passes before, in order (a tracker sees its stream's
frames in order, so the ids do not change). Without that overlap a batch of N costs about N single
passes on a few CPU cores and the trackers wait for it: N separate processes were faster.

Each source is read in its own thread (``BackgroundIterator``). A step takes the next frame of every file source
(every frame is processed) and the newest frame of every live source that has one (older ones are dropped, so a
live stream never falls behind); a live source with no new frame yet, or reconnecting, is skipped for that step
rather than waited for. A source that ends or fails leaves the set; its error goes to ``on_error`` (with the
stream name) and the others go on.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import OptionError, VisionkitError
from ..io.sources import Frame, open_source
from ..io.threads import BackgroundIterator, ordered_map
from ..results import Result

StreamErrorHandler = Callable[[str, VisionkitError], None]


@dataclass
class StreamResult:
    """One frame of one stream and its result (tracked detections for a tracking predictor)."""

    stream: str
    frame: Frame
    result: Result


def stream_name(source: Any) -> str:
    """A short name for a source, usable as a file stem: a file's stem, ``camera0``, or a URL's host and path
    with every other character as ``_``."""
    text = str(source)
    if text.isdigit():
        return f"camera{text}"
    if "://" in text:
        rest = text.split("://", 1)[1].split("@")[-1]
        return "".join(c if c.isalnum() or c in "-_" else "_" for c in rest).strip("_") or "stream"
    return Path(text).stem or "stream"


class _Stream:
    def __init__(self, name: str, spec: Any, live: bool, frames: BackgroundIterator[Frame], tracker: Any):
        self.name, self.spec, self.live, self.frames, self.tracker = name, spec, live, frames, tracker
        self.removed = False  # set by ``remove``: results of its frames still in flight are not yielded


class MultiStream:
    """N sources, one predictor: iterate for ``StreamResult`` items; ``add``/``remove`` streams at any time."""

    def __init__(self, sources: dict[str, Any] | list[Any], predictor: Any, *,
                 on_error: StreamErrorHandler | None = None, prefetch: int = 4, reconnect: int | None = None,
                 vid_stride: int = 1, idle_wait: float = 0.005):
        """
        Args:
            sources: ``{name: source}``, or a list of sources named by ``stream_name`` (made unique with -2, -3).
            predictor: a ``Predictor`` (any task whose ``predict`` takes a list of images) or a
                ``TrackingPredictor`` (each stream then gets its own tracker).
            on_error: ``on_error(stream_name, error)`` for a stream that fails (it is dropped; a failure while
                decoding is reported from that stream's reader thread); every error is also kept in ``errors``,
                and the other streams go on either way.
            prefetch: frames decoded ahead per file source.
            reconnect: attempts to reopen a live source that drops (see ``open_source``).
            vid_stride: every N-th frame of each video or stream (see ``open_source``).
            idle_wait: seconds to wait for a live frame when no stream has one ready.
        """
        self.predictor = predictor
        self._detector = getattr(predictor, "detector", predictor)
        self._tracking = hasattr(predictor, "new_tracker")
        self.on_error = on_error
        self.errors: list[tuple[str, VisionkitError]] = []
        self.prefetch, self.reconnect, self.vid_stride, self.idle_wait = prefetch, reconnect, vid_stride, idle_wait
        self._streams: dict[str, _Stream] = {}
        self._lock = threading.Lock()
        items = sources.items() if isinstance(sources, dict) else ((None, s) for s in sources)
        try:
            for name, spec in items:
                self.add(spec, name)
        except BaseException:
            self.close()  # the readers already started must not outlive a failed start
            raise

    @property
    def names(self) -> list[str]:
        """The streams still running, in the order they were added."""
        with self._lock:
            return list(self._streams)

    def add(self, source: Any, name: str | None = None) -> str:
        """Start reading ``source`` as stream ``name`` (default: ``stream_name(source)``, made unique); it joins
        the next step. A source that cannot be opened raises here (``SourceError``)."""
        with self._lock:
            if name is None:
                base = name = stream_name(source)
                n = 1
                while name in self._streams:
                    n += 1
                    name = f"{base}-{n}"
            elif name in self._streams:
                raise OptionError(f"a stream named {name!r} is already running")
            handler = self._handler(name)
            src = open_source(source, handler, self.reconnect, self.vid_stride)
            frames = BackgroundIterator(iter(src), maxsize=self.prefetch, latest_only=src.live,
                                        name=f"decode-{name}")
            tracker = self.predictor.new_tracker() if self._tracking else None
            self._streams[name] = _Stream(name, source, src.live, frames, tracker)
        return name

    def remove(self, name: str) -> None:
        """Stop stream ``name``: its reader stops and it takes no part in later steps."""
        with self._lock:
            stream = self._streams.pop(name, None)
        if stream is None:
            raise OptionError(f"no stream named {name!r} is running")
        stream.removed = True
        stream.frames.close()

    def tracker(self, name: str) -> Any:
        """Stream ``name``'s tracker (tracking predictors), e.g. to save its ``state_dict()``."""
        with self._lock:
            return self._streams[name].tracker

    def _handler(self, name: str) -> Callable[[VisionkitError], None]:
        def report(error: VisionkitError) -> None:
            self.errors.append((name, error))
            if self.on_error is not None:
                self.on_error(name, error)
        return report

    def _next_frames(self) -> list[tuple[_Stream, Frame]]:
        """One frame from every stream that has one now: files wait for theirs, live sources do not."""
        with self._lock:
            streams = list(self._streams.values())
        ready = []
        for stream in streams:
            try:
                got, frame = stream.frames.poll(timeout=0.0 if stream.live else 5.0)
                while not got and not stream.live:  # a file's next frame is always coming
                    got, frame = stream.frames.poll(timeout=5.0)
            except StopIteration:
                self._drop(stream)
                continue
            except (VisionkitError, OSError) as e:
                self._drop(stream)
                self._handler(stream.name)(e if isinstance(e, VisionkitError) else _as_error(stream.name, e))
                continue
            if got and frame is not None:
                ready.append((stream, frame))
        return ready

    def _drop(self, stream: _Stream) -> None:
        with self._lock:
            if self._streams.get(stream.name) is stream:
                del self._streams[stream.name]

    def _passes(self) -> Iterator[tuple[bool, list[tuple[_Stream, Frame]]]]:
        """Each step's frames cut into forward passes of at most ``batch_size``, until no stream is left; the
        flag marks a step's last pass."""
        size = max(int(getattr(self._detector, "batch_size", 1)), 1)
        while True:
            with self._lock:
                if not self._streams:
                    return
            ready = self._next_frames()
            if not ready:
                time.sleep(self.idle_wait)
            for start in range(0, len(ready), size):
                yield start + size >= len(ready), ready[start:start + size]

    def _forward(self, unit: tuple[bool, list[tuple[_Stream, Frame]]]) -> list[Result]:
        return self._detector.predict([frame.image for _, frame in unit[1]])

    def steps(self) -> Iterator[list[StreamResult]]:
        """One list per step: the results of that step's frames, one per stream that had a frame.

        Up to ``workers`` + 1 forward passes are in flight: a live source's frame is the newest when its step is
        gathered, which is at most that many passes before its results."""
        warmup = getattr(self._detector, "warmup", None)
        if warmup is not None:
            warmup()  # built before the workers start: building may lower ``workers`` (a GPU runs one batch)
        workers = max(int(getattr(self._detector, "workers", 1)), 1)
        out: list[StreamResult] = []
        for (last, unit), results in ordered_map(self._forward, self._passes(), workers, name="multistream"):
            for (stream, frame), result in zip(unit, results):
                if stream.removed:
                    continue
                if stream.tracker is not None:
                    speed = result.speed
                    result = stream.tracker.update(result, frame.image)
                    result.speed = speed
                result.frame_index = frame.index
                out.append(StreamResult(stream.name, frame, result))
            if last and out:
                yield out
                out = []

    def __iter__(self) -> Iterator[StreamResult]:
        for step in self.steps():
            yield from step

    def close(self) -> None:
        """Stop every stream's reader."""
        for name in self.names:
            self.remove(name)

    def __enter__(self) -> MultiStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _as_error(name: str, error: OSError) -> VisionkitError:
    from ..errors import SourceError

    return SourceError(f"stream {name}: {error.strerror or error}")
