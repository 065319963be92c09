"""What a user of Ultralytics or supervision expects on day one (issue #15): multi-person pose from any pose
model, honest first-call timings, supervision interop for every result, per-class eval reports, and eval
settings that do not depend on how the model was named."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from fault_harness import run_cli

import visionkit

COCO = "coco_val2017"


# ---------------------------------------------------------------- 12: eval settings for a model given by path
def test_eval_detect_scores_a_catalog_file_given_by_path_with_the_eval_settings(shared_weights: Path,
                                                                                 shared_data: Path,
                                                                                 tmp_path: Path) -> None:
    """The catalog's yolov5n.onnx under another name (same sha256) scores the catalog's mAP, not the
    interactive-settings one (0.298), and the settings line says which settings were used."""
    renamed = shutil.copy(shared_weights / "yolov5n.onnx", tmp_path / "my-detector.onnx")
    out = run_cli("eval", "detect", "--model", renamed, "--images", shared_data / COCO / "images",
                  "--annotations", shared_data / COCO / "annotations" / "instances_val2017.json",
                  "--json", tmp_path / "score.json", "--plots", tmp_path / "plots")
    assert out.code == 0, out.stderr
    settings = [line for line in out.stdout.splitlines() if "scoring with" in line]
    assert len(settings) == 1 and "conf 0.001" in settings[0] and "iou 0.6" in settings[0], out.stdout
    assert "catalog's eval settings for yolov5n" in settings[0]
    assert json.loads((tmp_path / "score.json").read_text())["map"] == pytest.approx(0.345, abs=0.002)
    # 11: the per-class table (person: 44 labelled in these 40 images) and the plots
    person = next(line.split() for line in out.stdout.splitlines() if line.startswith("person "))
    assert person[1] == "44" and 0 < float(person[2]) < float(person[3]) <= 1 and 0 < float(person[4]) <= 1
    _assert_plots(tmp_path / "plots", "pr_curve.png", "confusion_matrix.png")


def _assert_plots(folder: Path, *names: str) -> None:
    """Each PNG is there, decodes, and is not blank."""
    import cv2

    for name in names:
        image = cv2.imread(str(folder / name))
        assert image is not None and min(image.shape[:2]) > 300 and image.std() > 10, name


def test_a_catalog_file_by_name_and_a_foreign_file_get_eval_settings(shared_weights: Path, tmp_path: Path,
                                                                      assets: Path) -> None:
    from random_models import build_yolo

    from visionkit.io.images import read_image

    by_path = visionkit.Predictor("detect", shared_weights / "yolov5n.onnx", evaluate=True)
    assert by_path.entry.name == "yolov5n" and by_path.options["conf"] == 0.001 and by_path.options["iou"] == 0.6
    assert visionkit.Predictor("detect", shared_weights / "yolov5n.onnx").options["conf"] == 0.25
    custom = build_yolo("yolov8n.yaml", tmp_path / "custom.pt", [read_image(assets / "bus.jpg")])
    foreign = visionkit.Predictor("detect", custom, evaluate=True, iou=0.5)
    assert foreign.entry.name == "custom"
    assert (foreign.options["conf"], foreign.options["iou"], foreign.options["multi_label"]) == (0.001, 0.5, True)
    assert visionkit.Predictor("detect", custom).options["conf"] == 0.25


# ---------------------------------------------------------------- 3: first-call timings
FIRST_CALLS = """
import json, sys, visionkit
predictor = visionkit.load("detect", "yolov5n", device="cpu")
speeds = [predictor(sys.argv[1]).speed.to_dict() for _ in range(2)]
print(json.dumps(speeds))
"""


def test_first_call_speed_excludes_imports_and_warmup(shared_weights: Path, assets: Path) -> None:
    """A fresh process: the first result's stage times are of the order of the second's (the lazy import of
    torch/ultralytics used to land in the first postprocess: seconds)."""
    proc = subprocess.run([sys.executable, "-c", FIRST_CALLS, str(assets / "bus.jpg")], capture_output=True,
                          text=True, timeout=300, env={**os.environ, "VISIONKIT_WEIGHTS": str(shared_weights)})
    assert proc.returncode == 0, proc.stderr
    first, second = json.loads(proc.stdout.strip().splitlines()[-1])
    for stage in ("preprocess", "inference", "postprocess"):
        assert first[stage] < 5 * second[stage] + 30, (stage, first, second)


# ---------------------------------------------------------------- 2: multi-person pose from single-person models
def _skeletons_inside(people: visionkit.Detections, margin: float = 0.25) -> int:
    """How many people have a skeleton (confident keypoints), asserting that each lies in its own person box
    (grown by ``margin``, the pose crop's extra context)."""
    drawn = 0
    for box, kpts in zip(people.xyxy, people.keypoints):
        pad = (box[2:] - box[:2]) * margin / 2
        xy = kpts[kpts[:, 2] >= 0.3, :2]
        assert ((xy >= box[:2] - pad) & (xy <= box[2:] + pad)).all(), (box, xy)
        drawn += len(xy) > 0
    return drawn


@pytest.mark.parametrize("model, points", [("movenet_lightning", 17), ("blazepose_full", 33)])
def test_load_pose_runs_a_single_person_model_on_every_detected_person(shared_weights: Path, assets: Path,
                                                                       model: str, points: int) -> None:
    pose = visionkit.load("pose", model)
    assert isinstance(pose, visionkit.PersonPose) and pose.persons.entry.name == "yolov5n"  # the best local one
    people = pose(assets / "bus.jpg")
    persons = visionkit.load("detect", "yolov5n")(assets / "bus.jpg")
    assert len(people) == int((persons.class_names == "person").sum()) >= 3
    assert people.keypoints.shape == (len(people), points, 3) and _skeletons_inside(people) == len(people)
    whole = visionkit.load("pose", model, detector="none")
    assert isinstance(whole, visionkit.Predictor) and len(whole(assets / "bus.jpg")) == 1


def test_single_person_pose_on_coco_photos_of_several_people(shared_weights: Path, shared_data: Path) -> None:
    """COCO val photos with two labelled people each: a skeleton per person, each inside its box."""
    pose = visionkit.load("pose", "movenet_lightning")
    for image_id in (192699, 214753, 34417):
        people = pose(shared_data / COCO / "images" / f"{image_id:012d}.jpg")
        assert _skeletons_inside(people) >= 2, image_id


def test_pose_takes_a_tracker_as_its_detector(shared_weights: Path, assets: Path) -> None:
    """detector= may be a predictor: a tracker gives every pose a track id; PersonPose reuses load()'s pose model."""
    pose = visionkit.load("pose", "movenet_lightning", detector=visionkit.load("track", "yolov5n"))
    tracked = pose(assets / "bus.jpg")
    assert tracked.track_ids is not None and len(tracked) == len(set(tracked.track_ids)) >= 3
    again = visionkit.PersonPose(visionkit.load("detect", "yolov5n"), visionkit.load("pose", "movenet_lightning"))
    assert again.pose.entry.name == "movenet_lightning" and len(again(assets / "bus.jpg")) == len(tracked)


def test_pose_detector_option_is_for_single_person_models_only() -> None:
    with pytest.raises(visionkit.OptionError, match="finds the people itself"):
        visionkit.load("pose", "yolo11n-pose", detector="yolov5n")
    assert isinstance(visionkit.load("pose", "yolo11n-pose"), visionkit.Predictor)


def test_mediapipe_pose_detector_is_blazepose_own_first_stage(shared_weights: Path, assets: Path) -> None:
    """MediaPipe's detector finds bus.jpg's left person (hips inside yolov5n's box), and BlazePose on its ROI puts
    the nose where MediaPipe Pose does (143, 446; shared/weights/MANIFEST.md)."""
    roi = visionkit.load("detect", "mediapipe_pose_detector")
    found = roi(assets / "bus.jpg")
    assert len(found) == 1 and found.keypoints.shape == (1, 4, 3)
    hips = found.keypoints[0, 0, :2]
    assert (np.array([50, 399]) <= hips).all() and (hips <= np.array([206, 898])).all()
    people = visionkit.load("pose", "blazepose_full", detector="mediapipe_pose_detector")(assets / "bus.jpg")
    assert np.linalg.norm(people.keypoints[0, 0, :2] - [143, 446]) < 10


def test_blazepose_is_drawn_with_mediapipe_limbs(assets: Path) -> None:
    from visionkit.draw import BLAZEPOSE_SKELETON, KeypointAnnotator

    kpts = np.zeros((1, 33, 3), np.float32)
    kpts[0, :, 0], kpts[0, :, 1], kpts[0, :, 2] = np.linspace(50, 550, 33), np.linspace(50, 550, 33) % 97 * 5, 1
    people = visionkit.Detections.from_arrays(np.array([[0, 0, 600, 600]]), [1.0], [0], ["person"], keypoints=kpts)
    limbs = KeypointAnnotator().annotate(np.zeros((600, 600, 3), np.uint8), people)
    dots = KeypointAnnotator(skeleton=()).annotate(np.zeros((600, 600, 3), np.uint8), people)
    assert len(BLAZEPOSE_SKELETON) == 35 and (limbs != dots).any(axis=2).sum() > 2 * (dots != 0).any(axis=2).sum()


def test_cli_pose_is_multi_person_by_default(shared_weights: Path, assets: Path, tmp_path: Path) -> None:
    counts = {}
    for detector in (None, "none"):
        out = tmp_path / f"{detector}.jsonl"
        extra = ["--detector", detector] if detector else []
        run = run_cli("pose", assets / "bus.jpg", "--model", "movenet_lightning", "--json", out, "-q", *extra)
        assert run.code == 0, run.stderr
        counts[detector] = len(json.loads(out.read_text().splitlines()[0])["detections"])
    assert counts == {None: 3, "none": 1}


# ---------------------------------------------------------------- 7: supervision interop for every result type
def test_supervision_annotators_draw_every_visionkit_result(shared_weights: Path, assets: Path) -> None:
    """The README recipe: convert, then any supervision annotator (boxes, labels, pose edges and vertices,
    semantic masks) draws visionkit's results."""
    sv = pytest.importorskip("supervision")
    from visionkit.io.images import read_image

    image = read_image(assets / "bus.jpg")
    people = visionkit.load("pose", "movenet_lightning")(image)
    boxes, poses = people.to_supervision(), people.to_supervision_keypoints()
    assert poses.xy.shape == (len(people), 17, 2) and poses.keypoint_confidence.shape == (len(people), 17)
    scene = sv.BoxAnnotator().annotate(image.copy(), boxes)
    scene = sv.LabelAnnotator().annotate(scene, boxes, labels=list(boxes.data["class_name"]))
    scene = sv.EdgeAnnotator().annotate(scene, poses)
    scene = sv.VertexAnnotator().annotate(scene, poses)
    assert (scene != image).any(axis=2).mean() > 0.01

    back = visionkit.Detections.from_supervision_keypoints(poses)
    np.testing.assert_allclose(back.keypoints, people.keypoints)
    assert list(back.class_names) == list(people.class_names) and _skeletons_inside(back, margin=0) == len(people)

    labels = visionkit.load("segment", "deeplabv3_mnv2_257")(image)
    regions = labels.to_supervision()
    assert set(regions.data["class_name"]) == set(labels.pixel_share()) - {"__background__"}
    for row, name in enumerate(regions.data["class_name"]):
        np.testing.assert_array_equal(regions.mask[row], labels.mask(name))
    masked = sv.MaskAnnotator().annotate(image.copy(), regions)
    assert (masked != image).any(axis=2).mean() > 0.05

    top = visionkit.load("classify", "mobilenet_v2_quant")(image).to_supervision()
    assert isinstance(top, sv.Classifications) and len(top.class_id) == 5


# ---------------------------------------------------------------- 11: per-class eval reports and plots
def test_eval_classify_prints_per_class_accuracy_and_confusions(shared_weights: Path, shared_data: Path,
                                                                 tmp_path: Path) -> None:
    data = shared_data / "imagenet_sample"
    out = run_cli("eval", "classify", "--model", "mobilenet_v2_quant", "--images", data / "images", "--labels",
                  data / "labels.csv", "--plots", tmp_path)
    assert out.code == 0, out.stderr
    assert "top-1 0.860 (86/100)" in out.stdout and "(86 of 100 classes all correct)" in out.stdout
    assert "most confused (true -> predicted):" in out.stdout and "night snake" in out.stdout
    _assert_plots(tmp_path, "confusion_matrix.png")


def test_eval_segment_prints_iou_per_class_and_plots_the_confusion(shared_weights: Path, shared_data: Path,
                                                                   tmp_path: Path) -> None:
    out = run_cli("eval", "segment", "--model", "deeplabv3_mnv2_257", "--camvid", shared_data / "camvid",
                  "--plots", tmp_path)
    assert out.code == 0, out.stderr
    rows = {line.split()[0]: line.split()[1:] for line in out.stdout.splitlines() if line.startswith(("car", "person"))}
    assert rows["car"][0] == "0.619" and rows["person"][0] == "0.084" and rows["car"][1].endswith("%")
    _assert_plots(tmp_path, "confusion_matrix.png")


def test_classification_tables_count_misses_and_confusions() -> None:
    from visionkit.eval.report import classification_tables

    text = classification_tables([(0, 0), (0, 1), (0, 1), (1, 1), (2, 2)], ["cat", "dog", "owl"])
    lines = text.splitlines()
    assert lines[1].split() == ["cat", "3", "1", "0.333"] and "(2 of 3 classes all correct)" in text
    assert lines[-1].split() == ["cat", "dog", "2"]
