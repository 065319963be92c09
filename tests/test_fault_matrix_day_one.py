"""Fault matrix: the day-one options (issue #15): ``--detector`` for pose and ``--plots`` for eval.

Each row runs the console script: the documented exit code, one stderr line naming the thing and why, no
traceback, inputs unchanged.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from fault_harness import Fault, check_fault


def _faults(image: Path, labels: Path, images: Path, tmp: Path) -> list[Fault]:
    blocker = tmp / "not-a-folder"
    blocker.write_text("a file where --plots wants a folder\n")
    return [
        Fault("detector for a multi-person model", ["pose", image, "-m", "yolo11n-pose", "--detector", "yolov5n"], 2,
              "pose model 'yolo11n-pose' finds the people itself", inputs=[image]),
        Fault("unknown detector", ["pose", image, "-m", "movenet_lightning", "--detector", "no_such_detector"], 2,
              "unknown model 'no_such_detector'", inputs=[image]),
        Fault("a pose model as the detector", ["pose", image, "-m", "movenet_lightning", "--detector",
                                               "blazepose_full"], 2, "is a pose model, not detect", inputs=[image]),
        Fault("plots under a file", ["eval", "classify", "-m", "mobilenet_v2_quant", "--images", images, "--labels",
                                     labels, "--plots", blocker / "plots"], 1,
              f"cannot write plot {blocker / 'plots' / 'confusion_matrix.png'}", inputs=[labels, blocker]),
    ]


IDS = ["detector for a multi-person model", "unknown detector", "a pose model as the detector", "plots under a file"]


@pytest.mark.parametrize("fault_id", IDS)
def test_day_one_fault(fault_id: str, shared_weights: Path, shared_data: Path, assets: Path, tmp_path: Path) -> None:
    sample = shared_data / "imagenet_sample"
    labels = tmp_path / "labels.csv"
    labels.write_text("".join((sample / "labels.csv").read_text().splitlines(keepends=True)[:3]))
    faults = {f.id: f for f in _faults(assets / "bus.jpg", labels, sample / "images", tmp_path)}
    check_fault(faults[fault_id])
