"""Fault matrix of `visionkit explain` and `visionkit attack`: bad values, models gradients cannot cross, missing
or unlabelled data, unwritable outputs. Each case: the documented exit code, one stderr line, inputs untouched."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from fault_harness import Fault, check_fault

Case = Callable[[Path, Path, Path], Fault]  # (tmp_path, shared data, bus.jpg) -> Fault

CASES: list[tuple[str, Case]] = [
    ("attack-eps-not-a-number", lambda t, d, bus: Fault(
        "eps", ["attack", "classify", d / "imagenet_sample", "--model", "mobilenet_v2_quant", "--eps", "big"], 2,
        "--eps takes comma-separated numbers", inputs=[d / "imagenet_sample" / "labels.csv"])),
    ("attack-quantized-model", lambda t, d, bus: Fault(
        "quant", ["attack", "classify", d / "imagenet_sample", "--model", "mobilenet_v2_quant", "--limit", "1",
                  "--save", t / "out"], 2, "use a gradient-free method",
        inputs=[d / "imagenet_sample" / "labels.csv"])),
    ("attack-unlabelled-folder", lambda t, d, bus: Fault(
        "nolabels", ["attack", "classify", d / "coco_val2017" / "images", "--model", "mobilenet_v2_quant"], 1,
        "labels.csv: no such labels file")),
    ("attack-targeted-unknown-class", lambda t, d, bus: Fault(
        "targeted", ["attack", "detect", d / "coco_val2017", "--model", "yolov5n", "--targeted", "birdie"], 2,
        "unknown class 'birdie'")),
    ("attack-targeted-pose", lambda t, d, bus: Fault(
        "posetargeted", ["attack", "pose", d / "coco_val2017", "--model", "movenet_lightning", "--targeted",
                         "person"], 2, "a pose attack is untargeted")),
    ("attack-unknown-transform", lambda t, d, bus: Fault(
        "transform", ["attack", "detect", d / "coco_val2017", "--model", "yolov5n", "--transforms", "sharpen"], 2,
        "unknown input transform 'sharpen'")),
    ("attack-targeted-segmenter-class-id", lambda t, d, bus: Fault(
        "segtargeted", ["attack", "segment", d / "camvid", "--model", "deeplabv3_mnv2_257", "--targeted", "21"], 2,
        "class id 21 is out of range: the model has 21 classes")),
    ("attack-segment-without-labels", lambda t, d, bus: Fault(
        "seglabels", ["attack", "segment", d / "coco_val2017", "--model", "deeplabv3_mnv2_257"], 1,
        "no labels/ folder")),
    ("attack-pose-without-keypoints", lambda t, d, bus: Fault(
        "posegt", ["attack", "pose", d / "camvid", "--model", "movenet_lightning", "--detector", "none"], 1,
        "no annotations/person_keypoints*.json")),
    ("explain-missing-image", lambda t, d, bus: Fault(
        "missing", ["explain", "classify", t / "nope.jpg", "--model", "mobilenet_v2_quant"], 1, "nope.jpg")),
    ("explain-save-is-a-file", lambda t, d, bus: Fault(
        "savefile", ["explain", "classify", bus, "--model", "mobilenet_v2_quant", "--method", "eigencam",
                     "--save", _file(t / "taken")], 1, "taken", inputs=[bus])),
    ("explain-empty-box", lambda t, d, bus: Fault(
        "box", ["explain", "detect", bus, "--model", "yolov5n", "--method", "occlusion", "--target", "50,50,10,10"],
        2, "is empty", inputs=[bus])),
]


def _file(path: Path) -> Path:
    path.write_text("not a folder")
    return path


@pytest.mark.needs_shared
@pytest.mark.parametrize("make", [c for _, c in CASES], ids=[i for i, _ in CASES])
def test_interpret_fault(make: Case, tmp_path: Path, shared_data: Path, shared_weights: Path, assets: Path) -> None:
    fault = make(tmp_path, shared_data, assets / "bus.jpg")
    fault.env = {"VISIONKIT_WEIGHTS": str(shared_weights)}
    check_fault(fault, cwd=tmp_path)
