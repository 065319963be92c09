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
                  "--json", tmp_path / "score.json")
    assert out.code == 0, out.stderr
    settings = [line for line in out.stdout.splitlines() if "scoring with" in line]
    assert len(settings) == 1 and "conf 0.001" in settings[0] and "iou 0.6" in settings[0], out.stdout
    assert "catalog's eval settings for yolov5n" in settings[0]
    assert json.loads((tmp_path / "score.json").read_text())["map"] == pytest.approx(0.345, abs=0.002)


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
