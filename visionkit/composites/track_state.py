"""Snapshot and restore of an ultralytics BYTETracker / BOTSORT, so a restarted process continues the same ids.

What the trackers keep between frames: the frame counter, three pools of ``STrack``/``BOTrack`` objects (Kalman
mean and covariance, box, score, class, counters), the per-tracker id iterator and, for BoT-SORT, the previous
frame of its camera-motion compensation (GMC). Everything is turned into plain data (numbers, strings, lists,
dicts) and numpy arrays: nothing is pickled, so a state file cannot run code when it is loaded.

``to_json_data`` / ``parse_state`` turn that into JSON and back exactly: arrays keep their dtype and shape,
and float32/float64 values survive the decimal round trip bit for bit (``repr`` of a float is exact).
"""

from __future__ import annotations

import json
import operator
import sys
from collections import deque
from typing import Any

import cv2
import numpy as np

from ..errors import OptionError

FORMAT = "visionkit.tracker-state"
VERSION = 1
POOLS = ("tracked_stracks", "lost_stracks", "removed_stracks")
# attributes a track gets from its tracker, restored from the new tracker rather than saved
_BOUND = ("kalman_filter", "next_id")
_GMC_STATE = ("prevFrame", "prevKeyPoints", "prevDescriptors", "initializedFirstFrame")
_KEYPOINT = ("x", "y", "size", "angle", "response", "octave", "class_id")


def _plain(value: Any) -> Any:
    """``value`` as data a JSON encoder (arrays aside) can write, the types tagged where Python would lose them."""
    if isinstance(value, np.ndarray):
        return value.copy()
    if isinstance(value, np.generic):
        return {"scalar": value.dtype.str, "value": value.item()}
    if isinstance(value, (bool, int, float, str)) or value is None:
        return value
    if isinstance(value, deque):
        return {"deque": [_plain(v) for v in value], "maxlen": value.maxlen}
    if isinstance(value, (list, tuple)) and value and all(isinstance(v, cv2.KeyPoint) for v in value):
        return {"keypoints": np.array([[k.pt[0], k.pt[1], k.size, k.angle, k.response, k.octave, k.class_id]
                                        for k in value], np.float64)}
    if isinstance(value, (list, tuple)):
        return {"list" if isinstance(value, list) else "tuple": [_plain(v) for v in value]}
    raise TypeError(f"tracker state holds a {type(value).__name__}, which has no plain-data form")


def _live(value: Any) -> Any:
    """Inverse of ``_plain``."""
    if isinstance(value, np.ndarray):
        return value.copy()
    if not isinstance(value, dict):
        return value
    if "scalar" in value:
        return np.dtype(value["scalar"]).type(value["value"])
    if "deque" in value:
        return deque((_live(v) for v in value["deque"]), maxlen=value["maxlen"])
    if "keypoints" in value:
        return [cv2.KeyPoint(x, y, size, angle, response, int(octave), int(class_id))
                for x, y, size, angle, response, octave, class_id in value["keypoints"]]
    if "list" in value:
        return [_live(v) for v in value["list"]]
    return tuple(_live(v) for v in value["tuple"])


def _next_id(impl: Any) -> int:
    """The id the tracker hands out next: its ``range`` iterator's position (``length_hint`` is what is left)."""
    return sys.maxsize - operator.length_hint(impl._ids)


def snapshot(impl: Any, kind: str, settings: dict[str, Any]) -> dict[str, Any]:
    """The state of ``impl`` (an ultralytics tracker) as plain data and numpy arrays."""
    tracks: list[Any] = []
    index: dict[int, int] = {}  # one entry per track object, even when it sits in two pools

    def ref(track: Any) -> int:
        if id(track) not in index:
            index[id(track)] = len(tracks)
            tracks.append(track)
        return index[id(track)]

    pools = {name: [ref(t) for t in getattr(impl, name)] for name in POOLS}
    pools["removed_stracks_frame"] = [ref(t) for t in getattr(impl, "removed_stracks_frame", [])]
    state: dict[str, Any] = {
        "format": FORMAT, "version": VERSION, "tracker": kind,
        "settings": {k: _plain(v) for k, v in settings.items()},
        "frame_id": int(impl.frame_id), "next_id": _next_id(impl), "pools": pools,
        "tracks": [{k: _plain(v) for k, v in vars(t).items() if k not in _BOUND} for t in tracks],
    }
    gmc = getattr(impl, "gmc", None)
    if gmc is not None:
        state["gmc"] = {k: _plain(getattr(gmc, k)) for k in _GMC_STATE}
    return state


def check(state: Any, kind: str) -> None:
    """Refuse, in one line, a state that is not a tracker state of this format version and tracker type."""
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise OptionError(f"not a visionkit tracker state (expected format {FORMAT!r})")
    if state.get("version") != VERSION:
        raise OptionError(f"tracker state version {state.get('version')!r} is not supported (this visionkit reads "
                          f"version {VERSION})")
    if state.get("tracker") != kind:
        raise OptionError(f"tracker state is from a {state.get('tracker')!r} tracker, this tracker is {kind!r}")


def restore(impl: Any, state: dict[str, Any]) -> None:
    """Put ``state`` (from ``snapshot``, checked) into ``impl``, a fresh tracker of the same type and settings."""
    impl.reset()
    impl.frame_id = state["frame_id"]
    impl._ids = iter(range(state["next_id"], sys.maxsize))
    from ultralytics.trackers.bot_sort import BOTSORT, BOTrack
    from ultralytics.trackers.byte_tracker import STrack

    track_class = BOTrack if isinstance(impl, BOTSORT) else STrack  # what each tracker's init_track makes
    tracks = []
    for saved in state["tracks"]:
        track = track_class.__new__(track_class)  # attributes set below, as __init__ and updates left them
        vars(track).update({k: _live(v) for k, v in saved.items()})
        track.kalman_filter = impl.kalman_filter
        track.next_id = impl._ids.__next__
        tracks.append(track)
    for name, refs in state["pools"].items():
        setattr(impl, name, [tracks[i] for i in refs])
    gmc = getattr(impl, "gmc", None)
    if gmc is not None and "gmc" in state:
        for k, v in state["gmc"].items():
            setattr(gmc, k, _live(v))


def to_json_data(value: Any) -> Any:
    """``value`` (a state) with every array as dtype, shape and a flat list of values: ready for ``json``."""
    if isinstance(value, np.ndarray):
        return {"array": value.dtype.str, "shape": list(value.shape), "data": value.ravel().tolist()}
    if isinstance(value, dict):
        return {k: to_json_data(v) for k, v in value.items()}
    if isinstance(value, list):
        return [to_json_data(v) for v in value]
    return value


def _decode(value: Any) -> Any:
    if isinstance(value, dict):
        if "array" in value and "shape" in value:
            return np.array(value["data"], dtype=np.dtype(value["array"])).reshape(value["shape"])
        return {k: _decode(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_decode(v) for v in value]
    return value


def parse_state(text: str | bytes, source: str) -> dict[str, Any]:
    """Inverse of ``dump_state``; ``source`` names the file in the error for text that is not JSON."""
    try:
        return _decode(json.loads(text))
    except (json.JSONDecodeError, UnicodeDecodeError, TypeError, ValueError) as e:
        raise OptionError(f"{source}: not a visionkit tracker state file ({e})") from None
