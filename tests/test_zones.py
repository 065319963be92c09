"""Lines and zones (visionkit.zones): crossings on PETS09-S2L1 checked against counts computed here from the
ground-truth trajectories, hysteresis, the segment's extent, zones' occupancy, dwell and events, the CLI options.

Data: ../shared/data/tracking (PETS09-S2L1 gt, 300 frames; the demo video vtest.avi).
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from fault_harness import assert_jsonl_valid
from test_track import PETS, _gt, _shape

from visionkit.cli import main
from visionkit.draw import ZoneAnnotator
from visionkit.errors import OptionError
from visionkit.results import Detections
from visionkit.zones import Analytics, LineCounter, Shape, ZoneCounter, parse_shape


def _tracked(xyxy: list | np.ndarray, ids: list[int], names: list[str] | None = None,
             shape: tuple[int, int] = (576, 768)) -> Detections:
    xyxy = np.asarray(xyxy, np.float64).reshape(-1, 4)
    n = len(xyxy)
    return Detections(xyxy=xyxy, scores=np.ones(n), class_ids=np.zeros(n, np.int64),
                      class_names=np.array(names or ["person"] * n, object), image_shape=shape,
                      track_ids=np.array(ids, np.int64))


def _independent_crossings(gt: np.ndarray, y_line: float, x_range: tuple[float, float]) -> tuple[int, int]:
    """Crossings of the horizontal segment y = y_line, x in x_range, by the boxes' bottom centres: per gt id, in
    frame order, a change of the sign of (y - y_line), counted where the point after the change lies in x_range
    (down the image = in)."""
    down = up = 0
    for tid in np.unique(gt[:, 1]):
        rows = gt[gt[:, 1] == tid]
        rows = rows[np.argsort(rows[:, 0])]
        x = rows[:, 2] + rows[:, 4] / 2
        side = np.sign(rows[:, 3] + rows[:, 5] - y_line)
        keep = side != 0
        x, side = x[keep], side[keep]
        changed = np.flatnonzero(side[1:] != side[:-1]) + 1
        inside = (x[changed] >= x_range[0]) & (x[changed] <= x_range[1])
        down += int(np.sum(inside & (side[changed] > 0)))
        up += int(np.sum(inside & (side[changed] < 0)))
    return down, up


@pytest.mark.parametrize("y_line, x_range", [(300.0, (0.0, 768.0)), (250.0, (200.0, 500.0)), (350.0, (0.0, 768.0))])
def test_line_counts_ground_truth_crossings(shared_data: Path, y_line: float, x_range: tuple[float, float]) -> None:
    """PETS09-S2L1, the ground-truth ids as tracks: the counter (margin 0) counts exactly the crossings found
    from the trajectories above; a line drawn right to left swaps in and out."""
    seq = shared_data / "tracking" / PETS
    gt, shape = _gt(seq, 300), _shape(seq)
    expected = _independent_crossings(gt, y_line, x_range)
    assert sum(expected) >= 3  # the sequence has people walking across each line
    forward = LineCounter(Shape("l", ((x_range[0], y_line), (x_range[1], y_line))), margin=0)
    backward = LineCounter(Shape("l", ((x_range[1], y_line), (x_range[0], y_line))), margin=0)
    for frame in range(1, 301):
        rows = gt[gt[:, 0] == frame]
        boxes = np.column_stack([rows[:, 2], rows[:, 3], rows[:, 2] + rows[:, 4], rows[:, 3] + rows[:, 5]])
        tracks = _tracked(boxes, rows[:, 1].astype(int).tolist(), shape=shape)
        forward.update(tracks, shape)
        backward.update(tracks, shape)
    assert (forward.counts_in.total, forward.counts_out.total) == expected
    assert (backward.counts_out.total, backward.counts_in.total) == expected
    assert forward.to_dict()["in"] == ({"person": expected[0]} if expected[0] else {})


def _walk(ys: list[float], x: float = 100.0) -> list[Detections]:
    """One track (id 7) whose box bottom is at each y in turn."""
    return [_tracked([[x - 10, y - 50, x + 10, y]], [7]) for y in ys]


def test_flicker_on_the_line_is_counted_once() -> None:
    """A walker that jitters +-1 px around the line while crossing: one crossing with the 2 px margin, many
    without it."""
    path = [90, 95, 99, 101, 99, 101, 99.5, 100.5, 103, 110, 120]
    counts = {}
    for margin in (0.0, 2.0):
        counter = LineCounter(Shape("l", ((0, 100), (200, 100))), margin=margin)
        events = [e for d in _walk(path) for e in counter.update(d, (576, 768))]
        counts[margin] = (counter.counts_in.total, counter.counts_out.total, len(events))
    assert counts[2.0] == (1, 0, 1)
    assert counts[0.0] == (3, 2, 5)


def test_line_segment_extent_and_new_tracks() -> None:
    """A crossing beside the segment's end is not counted; a track first seen past the line is not a crossing."""
    counter = LineCounter(Shape("l", ((0, 100), (200, 100))))
    for d in _walk([80, 120], x=300) + _walk([80, 120], x=150):
        counter.update(d, (576, 768))
    assert counter.counts_in.total == 1  # the walk at x=300 passed beside the segment
    other = _tracked([[0, 70, 20, 120]], [8])  # born below the line
    assert counter.update(other, (576, 768)) == []


def test_counts_per_class_and_unconfirmed_refused() -> None:
    counter = LineCounter(Shape("l", ((0, 100), (400, 100))))
    frames = [_tracked([[0, 0, 20, 80], [100, 0, 120, 80]], [1, 2], ["person", "car"]),
              _tracked([[0, 0, 20, 130], [100, 0, 120, 130]], [1, 2], ["person", "car"])]
    events = [e for d in frames for e in counter.update(d, (576, 768))]
    assert counter.to_dict() == {"name": "l", "kind": "line", "in": {"person": 1, "car": 1}, "out": {}}
    assert [(e["track_id"], e["class_name"], e["direction"]) for e in events] == [(1, "person", "in"),
                                                                                  (2, "car", "in")]
    untracked = Detections(xyxy=np.zeros((1, 4)), scores=np.ones(1), class_ids=np.zeros(1, np.int64),
                           class_names=np.array(["person"], object), image_shape=(576, 768))
    with pytest.raises(OptionError, match="need track ids"):
        counter.update(untracked, (576, 768))


def test_zone_occupancy_dwell_and_events() -> None:
    """A walker enters a square, is hidden for 3 frames (not reported), comes back, then leaves; another one
    stays outside; events carry the frame and timestamp, 'left' the dwell time."""
    zones = Analytics(zones=[Shape("door", ((0.25, 0.25), (0.75, 0.25), (0.75, 0.75), (0.25, 0.75)),
                                   normalised=True)], lost_after=5)
    ys = [100, 200, 250, 280, None, None, None, 290, 340, 360]
    events = []
    occupancy = []
    for frame, y in enumerate(ys):
        boxes, ids = [[10, 10, 30, 60]], [2]  # track 2: outside the whole time
        if y is not None:
            boxes.append([380, y - 60, 400, y])
            ids.append(1)
        events += zones.update(_tracked(boxes, ids, shape=(400, 800)), frame, timestamp=frame / 10)
        occupancy.append(sum(zones.counters[0].occupancy.values()))
    assert [(e["event"], e["track_id"], e["frame_index"]) for e in events] == [("entered", 1, 1), ("left", 1, 8)]
    assert events[1]["dwell_frames"] == 7 and events[1]["dwell_s"] == pytest.approx(0.6)
    assert events[0]["zone"] == "door" and events[0]["timestamp"] == 0.1
    assert occupancy == [0, 1, 1, 1, 1, 1, 1, 1, 0, 0]


def test_zone_track_lost_leaves_after_lost_after() -> None:
    zone = ZoneCounter(Shape("z", ((0, 0), (200, 0), (200, 200), (0, 200))), lost_after=3)
    assert [e["event"] for e in zone.update(_tracked([[90, 50, 110, 100]], [5]), (576, 768), 0, None)] == ["entered"]
    assert zone.dwell(5) == {"dwell_frames": 1}
    gone = [e for f in range(1, 6) for e in zone.update(_tracked(np.zeros((0, 4)), []), (576, 768), f, None)]
    assert gone == [{"event": "left", "track_id": 5, "class_name": "person", "dwell_frames": 1}]
    assert zone.dwell(5) is None


@pytest.mark.parametrize("text, kind, says", [
    ("1,2,3", "line", "expected 4 numbers"),
    ("1,2,3,4,5,6", "line", "expected 4 numbers"),
    ("1,2,3,4", "zone", "at least 3 points"),
    ("a,b,c,d", "line", "comma-separated numbers"),
    ("1,1,1,1", "line", "end points are the same"),
    ("-1,0,5,5", "line", "not negative"),
])
def test_parse_errors(text: str, kind: str, says: str) -> None:
    with pytest.raises(OptionError, match=says):
        parse_shape(text, kind, 1)


def test_parse_normalised_and_names() -> None:
    assert parse_shape("0,0.5,1,0.5:gate", "line", 1) == Shape("gate", ((0, 0.5), (1, 0.5)), normalised=True)
    assert parse_shape("0,300,768,300", "line", 2).name == "line2"
    assert Shape("z", ((0.5, 0.5),), normalised=True).pixels((100, 200)).tolist() == [[100.0, 50.0]]


def test_annotator_draws_counts() -> None:
    counter = LineCounter(Shape("gate", ((0, 100), (200, 100))))
    scene = np.zeros((200, 300, 3), np.uint8)
    ZoneAnnotator().annotate(scene, [counter])
    assert scene[100, 10].any() and scene[100:130, 100:200].any()  # the line, and the panel at its middle


# -- CLI -------------------------------------------------------------------------------------------------------
def test_cli_lines_zones_events(shared_data: Path, tmp_path: Path) -> None:
    """`visionkit track --line --zone --events --save`: events JSONL with the documented fields, written as they
    happen; the line and its counts drawn on the saved video (it differs from a run without them)."""
    clip = tmp_path / "clip.avi"
    cap = cv2.VideoCapture(str(shared_data / "tracking" / "demo" / "vtest.avi"))
    writer = cv2.VideoWriter(str(clip), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (480, 360))
    for _ in range(60):
        writer.write(cap.read()[1])
    writer.release()
    events = tmp_path / "events.jsonl"
    run = ["track", str(clip), "-m", "ssd_mobilenet_v1_coco", "--classes", "1", "--quiet", "--workers", "1"]
    assert main([*run, "--save", str(tmp_path / "plain")]) == 0
    assert main([*run, "--save", str(tmp_path / "zoned"), "--line", "0,0.5,1,0.5:middle",
                 "--zone", "0,0,240,0,240,360,0,360:left", "--events", str(events)]) == 0
    records = assert_jsonl_valid(events)
    assert records, "60 frames of people walking: some events"
    assert {r["event"] for r in records} <= {"crossed", "entered", "left"}
    for r in records:
        assert r["source"] == str(clip) and isinstance(r["track_id"], int) and r["class_name"] == "person"
        assert isinstance(r["frame_index"], int) and "timestamp" in r and ("line" in r or "zone" in r)
    assert any(r["event"] == "entered" and r["zone"] == "left" for r in records)
    plain = cv2.VideoCapture(str(tmp_path / "plain" / "clip.mp4")).read()[1]
    zoned = cv2.VideoCapture(str(tmp_path / "zoned" / "clip.mp4")).read()[1]
    assert np.abs(plain.astype(int) - zoned.astype(int))[175:185].mean() > 20  # the line across the middle
