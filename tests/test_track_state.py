"""Tracker.state_dict() / load_state_dict() and the CLI's --save-state / --resume-state: a tracker saved at frame k
and loaded into a new one (or a new process) continues exactly as an uninterrupted run, ids included.

Data: PETS09-S2L1 (300 frames) and MOT17-05-FRCNN (6 frames) from ../shared/data/tracking, ground-truth boxes as
detections (deterministic, see test_track.py), and the demo video vtest.avi for the CLI.
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from test_track import MOT17, PETS, _gt, _gt_detections, _shape, _signature

from visionkit.cli import main
from visionkit.composites.track import Tracker
from visionkit.errors import OptionError


@pytest.fixture(scope="module")
def tracking(shared_data: Path) -> Path:
    return shared_data / "tracking"


def _run(tracker: Tracker, gt: np.ndarray, shape: tuple[int, int], frames: range,
         images: list[np.ndarray] | None = None) -> list:
    return [_signature(tracker.update(_gt_detections(gt, f, shape), None if images is None else images[f - 1]))
            for f in frames]


@pytest.mark.parametrize("kind, params", [("bytetrack", {}), ("botsort", {"gmc_method": "none"}),
                                          ("bytetrack", {"track_buffer": 5})])
@pytest.mark.parametrize("k", [1, 75, 150])
def test_saved_state_continues_identically(tracking: Path, tmp_path: Path, kind: str, params: dict, k: int) -> None:
    """PETS09-S2L1, 300 frames: state saved (to a file) at frame k, loaded in a new tracker, the same tracks, ids
    and boxes as one uninterrupted run; ids issued later (lost and re-found, new people) too."""
    seq = tracking / PETS
    gt, shape = _gt(seq, 300), _shape(seq)
    full = _run(Tracker(kind, **params), gt, shape, range(1, 301))
    first = Tracker(kind, **params)
    head = _run(first, gt, shape, range(1, k + 1))
    first.save_state(tmp_path / "state.json")
    second = Tracker(kind, **params)
    second.load_state(tmp_path / "state.json")
    tail = _run(second, gt, shape, range(k + 1, 301))
    assert head + tail == full
    assert max(t for sig in tail for t, _ in sig) > max(t for sig in head for t, _ in sig)  # new ids continue
    # the in-memory round trip, twice: loading does not disturb the saved state
    state = first.state_dict()
    third = Tracker(kind, **params)
    third.load_state_dict(state)
    third.load_state_dict(state)
    assert _run(third, gt, shape, range(k + 1, 301)) == tail


def test_state_file_is_plain_json(tracking: Path, tmp_path: Path) -> None:
    """Versioned JSON, no pickle: arrays are dtype, shape and values; the Kalman state is there per track."""
    seq = tracking / PETS
    tracker = Tracker()
    _run(tracker, _gt(seq, 20), _shape(seq), range(1, 21))
    tracker.save_state(tmp_path / "s.json")
    saved = json.loads((tmp_path / "s.json").read_text())
    assert (saved["format"], saved["version"], saved["tracker"]) == ("visionkit.tracker-state", 1, "bytetrack")
    assert saved["frame_id"] == 20 and saved["next_id"] > 1
    mean = saved["tracks"][0]["mean"]
    assert mean["shape"] == [8] and len(mean["data"]) == 8
    assert not (tmp_path / "s.json.tmp").exists()


def test_botsort_motion_compensation_state(tracking: Path) -> None:
    """BoT-SORT with its default sparse optical flow on real frames: the previous frame and its key points are
    part of the state, so the compensation after a restart is the one an uninterrupted run computes."""
    seq = tracking / MOT17
    images = [cv2.imread(str(p)) for p in sorted((seq / "img1").iterdir())]
    gt, shape = _gt(seq, 6), _shape(seq)
    full = _run(Tracker("botsort"), gt, shape, range(1, 7), images)
    first = Tracker("botsort")
    head = _run(first, gt, shape, range(1, 4), images)
    second = Tracker("botsort")
    second.load_state_dict(first.state_dict())
    assert head + _run(second, gt, shape, range(4, 7), images) == full
    fresh = Tracker("botsort")  # the same tracks without the compensation state differ: the test can tell
    restored = first.state_dict()
    restored.pop("gmc")
    fresh.load_state_dict(restored)
    assert _run(fresh, gt, shape, range(4, 7), images) != full[3:]


@pytest.mark.parametrize("edit, loader, says", [
    (lambda s: s, lambda: Tracker("botsort"), "tracker state is from a 'bytetrack' tracker, this tracker is "
                                              "'botsort'"),
    (lambda s: {**s, "version": 99}, Tracker, "tracker state version 99 is not supported"),
    (lambda s: {**s, "format": "other"}, Tracker, "not a visionkit tracker state"),
    (lambda s: [1, 2], Tracker, "not a visionkit tracker state"),
    (lambda s: s, lambda: Tracker(track_buffer=60), "saved with other bytetrack settings (track_buffer)"),
])
def test_refuses_other_states(tracking: Path, edit, loader, says: str) -> None:
    tracker = Tracker()
    _run(tracker, _gt(tracking / PETS, 5), _shape(tracking / PETS), range(1, 6))
    with pytest.raises(OptionError) as e:
        loader().load_state_dict(edit(tracker.state_dict()))
    assert says in str(e.value) and "\n" not in str(e.value)


# -- CLI ---------------------------------------------------------------------------------------------------------
def _frames(video: Path, out: Path, start: int, stop: int) -> Path:
    """Frames start..stop-1 of ``video`` as a folder of PNGs (lossless: the same pixels in every cut)."""
    out.mkdir()
    cap = cv2.VideoCapture(str(video))
    for i in range(stop):
        ok, image = cap.read()
        assert ok
        if i >= start:
            cv2.imwrite(str(out / f"{i:06d}.png"), image)
    cap.release()
    return out


def _mot(path: Path, offset: int = 0) -> list[list[str]]:
    rows = [line.split(",") for line in path.read_text().splitlines()]
    return [[str(int(r[0]) + offset), *r[1:]] for r in rows]


def test_cli_resume_state_continues_ids(tracking: Path, tmp_path: Path) -> None:
    """`visionkit track` on 30 frames of the demo video, or on 0-14 with --save-state then 15-29 with
    --resume-state: the second half's MOT rows (frame numbers shifted) are the same, ids included."""
    video = tracking / "demo" / "vtest.avi"
    whole, a, b = (_frames(video, tmp_path / n, s, e) for n, s, e in (("all", 0, 30), ("a", 0, 15),
                                                                             ("b", 15, 30)))
    run = ["--model", "ssd_mobilenet_v1_coco", "--classes", "1", "--workers", "1", "--quiet"]
    state = tmp_path / "state.json"
    assert main(["track", str(whole), *run, "--mot", str(tmp_path / "all.txt")]) == 0
    assert main(["track", str(a), *run, "--mot", str(tmp_path / "a.txt"), "--save-state", str(state)]) == 0
    assert main(["track", str(b), *run, "--mot", str(tmp_path / "b.txt"), "--resume-state", str(state)]) == 0
    full = _mot(tmp_path / "all.txt")
    resumed = _mot(tmp_path / "a.txt") + _mot(tmp_path / "b.txt", offset=15)
    assert resumed == full and any(int(r[0]) > 15 for r in full)
