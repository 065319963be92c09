"""Action recognition over a stream: a sliding window of frames classified by a clip model (``tasks/action.py``).

``ActionPredictor`` (what ``visionkit.load("action")`` returns) owns the window:
  - it keeps the last ``window`` frames (default: the model's clip length) and classifies them every ``stride`` frames
    (default ``window // 2``), so ``n >= window`` frames give ``1 + (n - window) // stride`` model runs;
  - every frame is labelled with the most recent window that ended at or before it. The frames before the first full
    window are held back and labelled with that first window, so every frame of an annotated video carries a label;
  - a sequence shorter than the window is classified once, on all its frames, repeated evenly up to the window's
    length (the rule below), so a 5-frame clip still gets a prediction;
  - the model input is the window's frames sampled at evenly spaced positions (nearest frame of
    ``linspace(0, n - 1, T)``): ``T`` is the window itself, except that MViT takes exactly 16 frames (its positional
    encoding is built for that) and S3D at least 14 (meta ``min_temporal_size``).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

from ..errors import OptionError
from ..io.sources import ErrorHandler, Frame, open_source
from ..io.threads import BackgroundIterator
from ..predictor import Predictor
from ..results import ActionPrediction, Speed
from ..timing import StageTimer

# (frame index, preprocessed frame (C, 1, h, w)): what a window holds per frame.
_Item = tuple[int, Any]
# A frame, the window prediction labelling it, and whether that window was classified on this frame's arrival.
_Labelled = tuple[Frame, ActionPrediction, bool]


class ActionPredictor:
    """The Predictor surface over clips: ``stream(source)`` labels every frame with the latest window's top-k,
    ``predictor(video_or_frames)`` returns the prediction of every window (one per model run), in order.

    ``result.speed`` of a window holds its stage times in ms: preprocessing of the frames that arrived since the
    previous window plus clip assembly, the forward pass, the softmax/top-k. In ``stream`` only the frame that completed
    a window carries them (others carry zeros), so speeds summed over frames are the true cost of the run.
    """

    def __init__(self, model: str | Path | None = None, *, weights: str | Path | None = None, device: str = "auto",
                 window: int | None = None, stride: int | None = None, top_k: int | None = None,
                 batch_size: int = 1, **options: Any):
        """
        Args:
            model: a catalog name (``visionkit models --task action``); None = the default model.
            weights: a state dict file for the catalog architecture (overrides the catalog's file).
            window: frames per clip; None = the model's clip length (catalog ``defaults.window``).
            stride: frames between the starts of two clips; None = ``window // 2`` (at least 1).
            top_k: how many actions each prediction reports (default 5).
            batch_size: must be 1: windows are classified one at a time, as soon as each is complete.
        """
        if batch_size != 1:
            raise OptionError(f"action recognition classifies one clip per forward pass: batch size must be 1, "
                              f"got {batch_size}")
        self.clips = Predictor("action", model, weights=weights, device=device, window=window, stride=stride,
                               top_k=top_k, **options)
        self.window = int(self.options["window"])  # the caller's values are checked by Predictor (OPTION_TYPES)
        self.stride = int(self.options["stride"] or max(self.window // 2, 1))
        self.options.update(window=self.window, stride=self.stride)

    task = "action"

    @property
    def entry(self) -> Any:
        return self.clips.entry

    @property
    def options(self) -> dict[str, Any]:
        return self.clips.options

    @property
    def class_names(self) -> list[str]:
        return self.clips.class_names

    @property
    def backend(self) -> Any:
        return self.clips.backend

    @property
    def trust_weights(self) -> bool:
        return self.clips.trust_weights

    @property
    def reconnect(self) -> int:
        return self.clips.reconnect

    def warmup(self) -> ActionPredictor:
        self.clips.warmup()
        return self

    def exclusive(self) -> Any:
        return self.clips.exclusive()

    def __repr__(self) -> str:
        return f"ActionPredictor(window={self.window}, stride={self.stride}, clips={self.clips!r})"

    def __call__(self, inputs: Any) -> list[ActionPrediction]:
        """Window predictions of a video, folder, glob, list of frames (arrays, PIL images, paths) or one image
        (a one-frame clip); each video of a multi-input source is its own sequence."""
        return [prediction for _, prediction, ran in self._labelled(open_source(inputs)) if ran]

    def predict(self, images: list[Any]) -> list[ActionPrediction]:
        """Window predictions of a list of frames, in order (same as calling the predictor on the list)."""
        return self(list(images))

    def stream(self, source: Any, on_error: ErrorHandler | None = None, prefetch: int = 4,
               reconnect: int | None = None) -> Iterator[tuple[Frame, ActionPrediction]]:
        """``(frame, prediction)`` for every frame: the top-k of the latest window that ended at or before it (the
        first window's for the frames before it), with ``frame_index`` set to the frame and ``start_frame`` /
        ``end_frame`` to the window. Decoding runs ``prefetch`` frames ahead; live sources keep the newest frame.
        A camera or stream that drops is reopened as ``Predictor.stream`` does (``reconnect`` overrides the
        predictor's)."""
        src = open_source(source, on_error, self.reconnect if reconnect is None else reconnect)
        frames: Iterator[Frame] = iter(src)
        if prefetch > 0 and (src.live or len(src) > 1):
            frames = iter(BackgroundIterator(frames, maxsize=prefetch, latest_only=src.live, name="decode"))
        for frame, prediction, ran in self._labelled(frames):
            yield frame, replace(prediction, frame_index=frame.index, image_shape=frame.image.shape[:2],
                                 speed=prediction.speed if ran else Speed(), metadata=dict(prediction.metadata))

    def _labelled(self, frames: Iterable[Frame]) -> Iterator[_Labelled]:
        """Every frame with its label. Each video starts a new window; stills (a folder, a list) form one sequence."""
        window: _SlidingWindow | None = None
        current = None
        for frame in frames:
            sequence = frame.source if frame.is_video else "<images>"
            if window is None or sequence != current:
                if window is not None:
                    yield from window.close()
                window, current = _SlidingWindow(self), sequence
            yield from window.push(frame)
        if window is not None:
            yield from window.close()

    def _classify(self, items: list[_Item], preprocess_ms: float, image_shape: tuple[int, int]) -> ActionPrediction:
        """One window -> its prediction, timed by stage like ``Predictor._run``."""
        import torch

        backend = self.backend
        timer = StageTimer(backend.synchronize)
        timer.ms["preprocess"] = preprocess_ms  # the window's frames, preprocessed as they arrived
        with self.exclusive():
            with timer.stage("preprocess"):
                clip = backend.clip([tensor for _, tensor in items], self.window)
            with timer.stage("inference"), torch.inference_mode():
                raw = backend.forward(clip)
            with timer.stage("postprocess"):
                prediction = backend.postprocess(raw, clip, [])[0]
        prediction.start_frame, prediction.end_frame = items[0][0], items[-1][0]
        prediction.frame_index, prediction.image_shape = items[-1][0], image_shape
        prediction.speed = timer.speed()
        return prediction


class _SlidingWindow:
    """The state of one sequence: its last ``window`` preprocessed frames, the latest prediction, and the frames held
    back until the first window has been classified. A new one per sequence, so streams never share state."""

    def __init__(self, predictor: ActionPredictor):
        self.predictor = predictor
        self.items: deque[_Item] = deque(maxlen=predictor.window)
        self.held: list[Frame] = []
        self.latest: ActionPrediction | None = None
        self.since_run = 0
        self.preprocess_ms = 0.0

    def push(self, frame: Frame) -> list[_Labelled]:
        backend = self.predictor.backend
        timer = StageTimer()
        with self.predictor.exclusive(), timer.stage("preprocess"):
            self.items.append((frame.index, backend.preprocess([frame.image])))
        self.preprocess_ms += timer.ms["preprocess"]
        if self.latest is None:
            self.held.append(frame)
            return self._release() if len(self.items) == self.predictor.window else []
        self.since_run += 1
        if self.since_run < self.predictor.stride:
            return [(frame, self.latest, False)]
        self._run(frame)
        return [(frame, self.latest, True)]

    def close(self) -> list[_Labelled]:
        """End of the sequence: a sequence shorter than the window is classified now, on what it has."""
        return self._release() if self.held else []

    def _release(self) -> list[_Labelled]:
        held, self.held = self.held, []
        latest = self._run(held[-1])
        return [(frame, latest, frame is held[-1]) for frame in held]

    def _run(self, last: Frame) -> ActionPrediction:
        self.latest = self.predictor._classify(list(self.items), self.preprocess_ms, last.image.shape[:2])
        self.preprocess_ms, self.since_run = 0.0, 0
        return self.latest
