"""`visionkit eval pose --json` writes its scores (the per-class tables' module once shadowed the report dict, so
the file write was an internal error); benchmarks/accuracy.py reads this file for the README's pose rows."""

from __future__ import annotations

import json
from pathlib import Path

from fault_harness import run_cli


def _three(coco: Path, tmp_path: Path) -> Path:
    """The keypoint annotations of three shared COCO images that have labelled people."""
    data = json.loads((coco / "annotations/person_keypoints_val2017.json").read_text())
    keep = sorted({a["image_id"] for a in data["annotations"] if a["num_keypoints"] > 0})[:3]
    data["images"] = [i for i in data["images"] if i["id"] in keep]
    data["annotations"] = [a for a in data["annotations"] if a["image_id"] in keep]
    annotations = tmp_path / "three.json"
    annotations.write_text(json.dumps(data))
    return annotations


def test_eval_pose_json_holds_the_scores(shared_data: Path, shared_weights: Path, tmp_path: Path) -> None:
    coco = shared_data / "coco_val2017"
    annotations = _three(coco, tmp_path)
    out = run_cli("eval", "pose", "--model", "movenet_lightning", "--detector", "yolov5n", "--images", coco / "images",
                  "--annotations", annotations, "--json", tmp_path / "score.json",
                  env={"VISIONKIT_WEIGHTS": str(shared_weights)})
    assert out.code == 0, out.stderr
    score = json.loads((tmp_path / "score.json").read_text())
    assert score["model"] == "movenet_lightning" and score["detector"] == "yolov5n" and score["images"] == 3
    assert 0 < score["map50"] <= 1 and 0 < score["pck"]["pck@0.2"] <= 1


def test_eval_pose_detector_none_scores_one_pose_per_whole_image(shared_data: Path, shared_weights: Path,
                                                                tmp_path: Path) -> None:
    """``--detector none`` means what it does for ``visionkit pose``: no person detector, the single-person model on
    the whole image (it once read as a model named "none")."""
    coco = shared_data / "coco_val2017"
    out = run_cli("eval", "pose", "--model", "movenet_lightning", "--detector", "none", "--images", coco / "images",
                  "--annotations", _three(coco, tmp_path), "--json", tmp_path / "score.json",
                  env={"VISIONKIT_WEIGHTS": str(shared_weights)})
    assert out.code == 0, out.stderr
    score = json.loads((tmp_path / "score.json").read_text())
    assert "detector" not in score and "pck" not in score and score["images"] == 3 and 0 <= score["map50"] <= 1
