"""Multi-object tracking: detections linked across frames by ultralytics' BYTETrack or BoT-SORT.

The trackers are used as ultralytics ships them (its ``trackers`` package, default YAML settings); this
module only adapts ``Detections`` in and out, keeps one tracker state per stream and maps each track back to
the detection it came from, so masks and keypoints ride along with the id.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import OptionError
from ..io.sources import ErrorHandler, Frame
from ..predictor import Predictor
from ..results import Detections
from ..tasks._runtime import ultralytics_offline
from . import track_state

TRACKERS = ("bytetrack", "botsort")  # the first is the default
TRACKER_HELP = {"bytetrack": "ultralytics' BYTETracker: motion only, two-stage matching keeps low-score boxes",
                "botsort": "ultralytics' BOT-SORT: BYTETrack plus camera-motion compensation (sparse optical flow)"}


def tracker_catalog() -> list[dict[str, Any]]:
    """The trackers ``track --tracker`` takes, as ``visionkit models --task track`` lists them beside the detectors:
    name, whether it is the default, what it is, and ultralytics' shipped settings (``Tracker``'s parameters)."""
    return [{"name": kind, "task": "track", "backend": "ultralytics-trackers", "default": kind == TRACKERS[0],
             "description": TRACKER_HELP[kind], "settings": tracker_settings(kind)} for kind in TRACKERS]


def tracker_settings(kind: str) -> dict[str, Any]:
    """ultralytics' shipped defaults for ``kind`` (its ``cfg/trackers/<kind>.yaml``)."""
    if kind not in TRACKERS:
        raise OptionError(f"unknown tracker {kind!r}: expected one of {', '.join(TRACKERS)} or a tracker YAML file "
                          f"(.yaml)")
    ultralytics_offline()
    import ultralytics
    from ultralytics.utils import YAML

    return dict(YAML.load(Path(ultralytics.__file__).parent / "cfg" / "trackers" / f"{kind}.yaml"))


TRACKER_YAML_SUFFIXES = (".yaml", ".yml")


def is_tracker_yaml(tracker: Any) -> bool:
    """Whether ``tracker`` names a settings file (ultralytics-style YAML) rather than a tracker type."""
    return isinstance(tracker, (str, Path)) and Path(tracker).suffix.lower() in TRACKER_YAML_SUFFIXES


def read_tracker_yaml(path: str | Path) -> tuple[str, dict[str, Any]]:
    """``(tracker type, settings)`` of an ultralytics-style tracker YAML (e.g. a copy of its ``bytetrack.yaml``
    with other thresholds): ``tracker_type`` picks the tracker, the other keys are its settings, checked as
    ``Tracker`` checks them; settings the file leaves out keep ultralytics' defaults. The file is data: read with
    ``yaml.safe_load``, so no tag in it can build an object. Every problem is one ``OptionError`` naming the file.
    """
    import yaml

    try:
        text = Path(path).expanduser().read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        reason = e.strerror if isinstance(e, OSError) else "not UTF-8 text"
        raise OptionError(f"{path}: cannot read the tracker settings ({reason})") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise OptionError(f"{path}: not valid YAML{where} ({getattr(e, 'problem', None) or e})") from None
    if not isinstance(data, dict):
        raise OptionError(f"{path}: tracker settings must be a mapping of names to values, as in ultralytics' "
                          f"bytetrack.yaml; got {type(data).__name__}")
    params = {str(k): v for k, v in data.items()}
    kind = params.pop("tracker_type", None)
    if kind not in TRACKERS:
        got = "has no tracker_type" if kind is None else f"tracker_type {kind!r} is not a tracker visionkit runs"
        raise OptionError(f"{path}: {got}; set tracker_type to {' or '.join(TRACKERS)}")
    try:
        _check_params(kind, tracker_settings(kind), params)
    except OptionError as e:
        raise OptionError(f"{path}: {e}") from None
    return kind, params


class Tracker:
    """Stateful tracker for ONE stream: feed it every frame's detections in order; ``reset()`` between streams.

    Parameters (ultralytics names; defaults from its YAML files):
      track_high_thresh  first-stage match score: higher = cleaner tracks, fewer recovered weak boxes
      track_low_thresh   second-stage score: lower = low-score boxes keep tracks alive through occlusion
      new_track_thresh   score to start a track: higher = fewer false tracks, late starts
      track_buffer       frames a lost track is kept: higher = ids survive longer occlusions, more id switches
      match_thresh       association cost threshold: higher = looser matching
      gmc_method         (botsort) camera-motion compensation: sparseOptFlow | orb | sift | ecc | none
    """

    def __init__(self, tracker: str = "bytetrack", **params: Any):
        settings = tracker_settings(tracker)
        _check_params(tracker, settings, params)
        settings.update(params)
        if settings.get("with_reid"):
            raise OptionError("ReID needs an extra appearance model that is not supported yet; set with_reid=False")
        from ultralytics.trackers.track import TRACKER_MAP
        from ultralytics.utils import IterableSimpleNamespace

        self.kind = tracker
        self.settings = settings
        self._impl = TRACKER_MAP[tracker](args=IterableSimpleNamespace(**settings))

    def update(self, detections: Detections, image: np.ndarray | None = None) -> Detections:
        """Tracked detections of this frame, with ``track_ids``; a new object, the input is not changed.

        Boxes and scores are the tracker's (Kalman-filtered), as in ultralytics' own ``track``; detections not
        (yet) part of a confirmed track are left out. BoT-SORT's motion compensation needs ``image``.
        """
        from ultralytics.engine.results import Boxes

        h, w = detections.image_shape if detections.image_shape != (0, 0) else (image.shape[:2] if image is not
                                                                                  None else (0, 0))
        data = np.column_stack([detections.xyxy, detections.scores, detections.class_ids]).astype(np.float32)
        tracks = self._impl.update(Boxes(data, (h, w)), image)
        if len(tracks) == 0:
            return detections[np.zeros(0, np.int64)].with_(track_ids=np.zeros(0, np.int64))
        index = tracks[:, -1].astype(np.int64)
        return detections[index].with_(xyxy=tracks[:, :4], track_ids=tracks[:, 4].astype(np.int64),
                                       scores=tracks[:, 5])

    def reset(self) -> None:
        """Forget all tracks and restart ids at 1."""
        self._impl.reset()

    def state_dict(self) -> dict[str, Any]:
        """Everything the next ``update`` depends on, as plain data and numpy arrays (versioned, never pickled):
        a new ``Tracker`` of the same type and settings that loads it continues exactly, the same ids included."""
        return track_state.snapshot(self._impl, self.kind, self.settings)

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue from ``state`` (``state_dict()`` of a tracker of this type and settings, maybe another process).

        Refuses, with an ``OptionError``, a state of another format version, tracker type or settings: the tracks
        would go on under rules they were not made with."""
        track_state.check(state, self.kind)
        changed = sorted(k for k in set(state["settings"]) | set(self.settings)
                         if state["settings"].get(k) != self.settings.get(k))
        if changed:
            raise OptionError(f"tracker state was saved with other {self.kind} settings ({', '.join(changed)}); "
                              f"use the settings it was saved with")
        track_state.restore(self._impl, state)

    def save_state(self, path: str | Path) -> None:
        """Write ``state_dict()`` to ``path`` as JSON, atomically (a crash mid-write leaves the old file whole)."""
        from ..io.sinks import write_json

        write_json(path, track_state.to_json_data(self.state_dict()))

    def load_state(self, path: str | Path) -> None:
        """``load_state_dict`` of a file written by ``save_state``."""
        try:
            text = Path(path).read_bytes()
        except OSError as e:
            raise OptionError(f"{path}: cannot read the tracker state ({e.strerror or e})") from None
        try:
            self.load_state_dict(track_state.parse_state(text, str(path)))
        except OptionError as e:
            raise OptionError(f"{path}: {e}" if not str(e).startswith(str(path)) else str(e)) from None


def _check_params(kind: str, settings: dict[str, Any], params: Mapping[Any, Any]) -> None:
    """Each of ``params`` one of ``kind``'s settings, with a value of its default's kind (True/False, a finite
    number >= 0, a string): ultralytics reads them unchecked, so a wrong one would fail on the first frame, deep in
    the tracker. ``tracker_type`` is not among them: the tracker is chosen by ``tracker``."""
    valid = sorted(k for k in settings if k != "tracker_type")
    unknown = sorted(k for k in params if k not in valid)
    if unknown:
        import difflib

        close = sorted({m for k in unknown for m in difflib.get_close_matches(k, valid, n=1)})
        hint = f"did you mean {', '.join(close)}? " if close else ""
        raise OptionError(f"unknown {kind} parameter(s) {', '.join(unknown)}; {hint}valid: {', '.join(valid)}")
    for name, value in params.items():
        default = settings[name]
        if isinstance(default, bool):
            ok, wanted = isinstance(value, bool), "True or False"
        elif isinstance(default, numbers.Real):
            ok = (isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)
                  and value >= 0)
            wanted = "a finite number >= 0"
            if name.endswith("_thresh"):  # scores, IoU and cosine similarities: fractions
                ok, wanted = ok and value <= 1, "a number between 0 and 1"
            elif isinstance(default, int):  # track_buffer: a number of frames
                ok, wanted = ok and float(value).is_integer(), "a whole number >= 0"
        else:
            ok, wanted = isinstance(value, str), "a string"
        if not ok:
            raise OptionError(f"{kind} parameter {name} must be {wanted}, got {value!r}")


class TrackingPredictor:
    """Detector + tracker behind the Predictor surface: ``stream(source)`` tracks each source from a fresh
    state; calling it frame by frame (``tracking(image)``) keeps one state until ``reset()``.

    Threads: ``stream()`` calls share only the (thread-safe) detector, so several threads may each stream their own
    source through one instance. Frame-by-frame calls feed the one live state, which is one stream's: call them
    from one thread (a tracker fed two threads' frames in no fixed order would link unrelated boxes)."""

    task = "track"

    def __init__(self, model: str | Path | None = None, *, tracker: str | Path = "bytetrack",
                 tracker_params: dict[str, Any] | None = None, **detector_options: Any):
        """``tracker``: bytetrack, botsort, or an ultralytics-style YAML file (``read_tracker_yaml``);
        ``tracker_params`` override single settings of either (e.g. ``{"track_buffer": 60}``)."""
        self.detector = Predictor("detect", model, **detector_options)
        if tracker_params is not None and (not isinstance(tracker_params, Mapping)
                                           or not all(isinstance(k, str) for k in tracker_params)):
            raise OptionError(f"tracker_params must map tracker setting names to values (e.g. "
                              f"{{'track_buffer': 60}}), got {tracker_params!r}")
        kind, from_file = read_tracker_yaml(tracker) if is_tracker_yaml(tracker) else (str(tracker), {})
        self.tracker_kind = kind
        self.tracker_params = {**from_file, **(tracker_params or {})}
        self._live = self.new_tracker()  # validates the tracker settings now, not on the first frame

    def new_tracker(self) -> Tracker:
        return Tracker(self.tracker_kind, **self.tracker_params)

    @property
    def entry(self) -> Any:
        return self.detector.entry

    @property
    def class_names(self) -> list[str]:
        return self.detector.class_names

    def warmup(self) -> TrackingPredictor:
        self.detector.warmup()
        return self

    def reset(self) -> None:
        self._live.reset()

    def __call__(self, image: Any) -> Detections:
        """Track one more frame of the caller's live stream."""
        detections = self.detector(image)
        from ..io.images import read_image, to_bgr

        frame = read_image(image) if isinstance(image, (str, Path)) else to_bgr(image)
        return self._live.update(detections, frame)

    def stream(self, source: Any, on_error: ErrorHandler | None = None, prefetch: int = 4,
               tracker: Tracker | None = None, vid_stride: int = 1) -> Iterator[tuple[Frame, Detections]]:
        """``(frame, tracked detections)`` per frame. Each video of a multi-input source starts a fresh
        tracker; a folder or glob of images is tracked as one sequence (e.g. MOTChallenge ``img1/``).

        ``tracker``: go on with this one (e.g. loaded with ``load_state`` to continue a run that was stopped)
        instead of a fresh one; it is updated in place, so its ``state_dict()`` afterwards is where the stream
        ended, ready to be saved for the next run. ``vid_stride``: see ``Predictor.stream``."""
        tracker = tracker if tracker is not None else self.new_tracker()
        current: str | None = None
        for frame, detections in self.detector.stream(source, on_error, prefetch, vid_stride=vid_stride):
            sequence = frame.source if frame.is_video else "<images>"
            if current is not None and sequence != current:
                tracker.reset()
            current = sequence
            yield frame, tracker.update(detections, frame.image)

    def __repr__(self) -> str:
        return f"TrackingPredictor(tracker={self.tracker_kind!r}, detector={self.detector!r})"
