"""The predict options users know from ``yolo predict`` (issue #15 item 4), run as a user runs them: the console
script on real images and clips from the shared data, outputs read back and checked against the run's JSONL.

--save-txt / --save-conf / --save-crop into the run folder, --vid-stride, --line-width / --hide-labels /
--hide-conf (the same pixels as the API's ``plot`` with those options), --classes by name, --tracker FILE.yaml.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import cv2
import numpy as np
import pytest
from clip_helpers import count_frames, make_clip
from fault_harness import assert_jsonl_valid, run_cli

import visionkit
from visionkit.composites.track import TrackingPredictor, tracker_settings
from visionkit.io.labels import crop_boxes

SSD = "ssd_mobilenet_v1_coco"  # the fastest real detector


@pytest.fixture(autouse=True)
def _weights(shared_weights: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VISIONKIT_WEIGHTS", str(shared_weights))


@pytest.fixture(scope="module")
def room(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A COCO photo with people, chairs and a TV, as a PNG (lossless: annotated pixels compare exactly)."""
    path = tmp_path_factory.mktemp("room") / "room.png"
    cv2.imwrite(str(path), cv2.imread(str(shared_data / "coco_val2017/images/000000000139.jpg")))
    return path


@pytest.fixture(scope="module")
def clip(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_clip(shared_data / "action/v_Basketball_g01_c01.avi", tmp_path_factory.mktemp("clip") / "ball.avi",
                     13)


def _ok(*argv: str | Path, cwd: Path) -> str:
    outcome = run_cli(*argv, cwd=cwd)
    assert outcome.code == 0, outcome.stderr
    return outcome.stderr


def _rows(path: Path) -> list[list[float]]:
    return [[float(v) for v in line.split()] for line in path.read_text().splitlines()]


def test_save_txt_and_crops_land_in_a_numbered_run_folder(room: Path, tmp_path: Path) -> None:
    err = _ok("detect", room, "-m", SSD, "--save-txt", "--save-conf", "--save-crop", "--json", "out.jsonl",
              cwd=tmp_path)
    run = tmp_path / "runs/detect/predict"
    assert f"saved to out.jsonl, {run.relative_to(tmp_path)}/labels, {run.relative_to(tmp_path)}/crops" in err
    assert not (run / "room.png").exists()  # no --save: labels and crops only
    objects = assert_jsonl_valid(tmp_path / "out.jsonl")[0]["detections"]
    assert len(objects) >= 5
    h, w = cv2.imread(str(room)).shape[:2]
    rows = _rows(run / "labels/room.txt")
    assert len(rows) == len(objects)
    for row, obj in zip(rows, objects):
        x1, y1, x2, y2 = obj["box"]
        assert row[0] == obj["class_id"] and row[5] == pytest.approx(obj["score"], abs=1e-4)
        assert row[1:5] == pytest.approx([(x1 + x2) / 2 / w, (y1 + y2) / 2 / h, (x2 - x1) / w, (y2 - y1) / h],
                                         abs=1e-4)
    crops = Counter(p.parent.name for p in (run / "crops").rglob("*.jpg"))
    assert crops == Counter(o["class_name"] for o in objects)
    first = objects[0]
    x1, y1, x2, y2 = crop_boxes(np.array([first["box"]], np.float32), (h, w))[0]
    assert cv2.imread(str(run / "crops" / first["class_name"] / "room.jpg")).shape == (y2 - y1, x2 - x1, 3)
    _ok("detect", room, "-m", SSD, "--save-txt", cwd=tmp_path)  # a second run: a new folder, nothing replaced
    assert (tmp_path / "runs/detect/predict2/labels/room.txt").read_text().splitlines() == \
        [" ".join(line.split()[:5]) for line in (run / "labels/room.txt").read_text().splitlines()]


def test_drawing_flags_draw_what_the_api_draws(room: Path, tmp_path: Path) -> None:
    _ok("detect", room, "-m", SSD, "--save", "styled", "--hide-labels", "--line-width", "4", cwd=tmp_path)
    _ok("detect", room, "-m", SSD, "--save", "noconf", "--hide-conf", cwd=tmp_path)
    result = visionkit.load("detect", SSD)(str(room))
    image = cv2.imread(str(room))
    styled = cv2.imread(str(tmp_path / "styled/room.png"))
    assert np.array_equal(styled, result.plot(image, line_width=4, labels=False))
    assert np.array_equal(cv2.imread(str(tmp_path / "noconf/room.png")), result.plot(image, conf=False))
    assert not np.array_equal(styled, result.plot(image))


def test_classes_by_name_are_the_classes_by_id(room: Path, tmp_path: Path) -> None:
    _ok("detect", room, "-m", SSD, "--classes", "TV,chair", "--json", "names.jsonl", cwd=tmp_path)  # any case
    by_name = assert_jsonl_valid(tmp_path / "names.jsonl")[0]["detections"]
    assert {d["class_name"] for d in by_name} == {"tv", "chair"}
    ids = ",".join(str(i) for i in sorted({d["class_id"] for d in by_name}))  # SSD's ids: COCO's 91, not YOLO's 80
    _ok("detect", room, "-m", SSD, "--classes", ids, "--json", "ids.jsonl", cwd=tmp_path)
    assert assert_jsonl_valid(tmp_path / "ids.jsonl")[0]["detections"] == by_name


def test_vid_stride_keeps_source_frame_numbers_and_timestamps(clip: Path, tmp_path: Path) -> None:
    _ok("detect", clip, "-m", SSD, "--json", "all.jsonl", cwd=tmp_path)
    _ok("detect", clip, "-m", SSD, "--vid-stride", "4", "--json", "strided.jsonl", "--save", "out", "--save-txt",
        cwd=tmp_path)
    every = {r["frame_index"]: r for r in assert_jsonl_valid(tmp_path / "all.jsonl")}
    strided = assert_jsonl_valid(tmp_path / "strided.jsonl")
    assert [r["frame_index"] for r in strided] == [0, 4, 8, 12]
    for r in strided:  # the same frame of the source: same time, same detections
        same = every[r["frame_index"]]
        assert r["timestamp"] == same["timestamp"] and r["detections"] == same["detections"]
    labels = sorted(p.name for p in (tmp_path / "out/labels").iterdir())
    assert set(labels) <= {f"ball_{i}.txt" for i in (0, 4, 8, 12)} and labels
    frames, _, _ = count_frames(tmp_path / "out/ball.mp4")
    assert frames == 4
    fps = cv2.VideoCapture(str(tmp_path / "out/ball.mp4")).get(cv2.CAP_PROP_FPS)
    assert fps == pytest.approx(cv2.VideoCapture(str(clip)).get(cv2.CAP_PROP_FPS) / 4, rel=0.02)  # real time


def test_tracker_yaml_settings_reach_the_tracker(clip: Path, tmp_path: Path) -> None:
    import ultralytics

    yaml_text = (Path(ultralytics.__file__).parent / "cfg/trackers/bytetrack.yaml").read_text()
    mine = tmp_path / "my_tracker.yaml"
    mine.write_text(yaml_text.replace("track_buffer: 30", "track_buffer: 90")
                    .replace("new_track_thresh: 0.25", "new_track_thresh: 0.6"))
    _ok("track", clip, "-m", SSD, "--tracker", mine, "--save-state", "state.json", "--save-txt", "--vid-stride", "3",
        cwd=tmp_path)
    settings = json.loads((tmp_path / "state.json").read_text())["settings"]
    assert settings == {**tracker_settings("bytetrack"), "track_buffer": 90, "new_track_thresh": 0.6}
    predictor = TrackingPredictor(SSD, tracker=mine, tracker_params={"track_buffer": 10})  # the API takes it too
    assert predictor.new_tracker().settings["track_buffer"] == 10
    assert predictor.new_tracker().settings["new_track_thresh"] == 0.6
    rows = [row for p in (tmp_path / "runs/track/predict/labels").iterdir() for row in _rows(p)]
    assert rows and all(len(row) == 6 and row[5] >= 1 for row in rows)  # class, box, track id


def test_classify_labels_are_the_top_classes(shared_data: Path, tmp_path: Path) -> None:
    image = sorted((shared_data / "imagenet_sample/images").iterdir())[0]
    _ok("classify", image, "-m", "mobilenet_v2_quant", "--save-txt", "--json", "top.jsonl", cwd=tmp_path)
    top = assert_jsonl_valid(tmp_path / "top.jsonl")[0]["top"]
    lines = (tmp_path / f"runs/classify/predict/labels/{image.stem}.txt").read_text().splitlines()
    assert lines == [f"{c['score']:.2f} {c['class_name']}" for c in top]


def test_pose_labels_carry_keypoints(room: Path, tmp_path: Path) -> None:
    _ok("pose", room, "-m", "movenet_lightning", "--detector", "yolov5n", "--save-txt", "--save-crop", cwd=tmp_path)
    rows = _rows(tmp_path / "runs/pose/predict/labels/room.txt")
    assert rows and all(len(row) == 1 + 4 + 17 * 3 for row in rows)
    assert len(list((tmp_path / "runs/pose/predict/crops/person").iterdir())) == len(rows)


def test_semantic_labels_are_region_outlines(room: Path, tmp_path: Path) -> None:
    _ok("segment", room, "-m", "deeplabv3_mnv2_257", "--save-txt", "--save", "--hide-labels", cwd=tmp_path)
    rows = _rows(tmp_path / "runs/segment/predict/labels/room.txt")
    assert rows and all(len(row) % 2 == 1 and len(row) >= 7 and 0 <= min(row[1:]) <= max(row[1:]) <= 1
                        for row in rows)
