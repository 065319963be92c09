"""Fault matrix: model files that would run code when loaded, through every command that loads a ``.pt``.

Each row runs the console script on a real malicious pickle (its loading would ``touch`` a marker file): exit 1,
one stderr line naming the global and the opt-in, no traceback, the marker never created, inputs unchanged. With
``--trust-weights`` the same file is unpickled in full: the marker appears (the opt-in is real) and the command still
fails in one line, since what is left is no model.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from fault_harness import Fault, check_fault, malicious_checkpoint

REFUSED = "refusing to load: it needs the global 'posix.system', which a model checkpoint does not need (pass " \
          "--trust-weights"

DEMO = ["demo", "--headless", "--max-frames", "1", "--source"]


@dataclass
class Row:
    id: str
    argv: Callable[[Path, Path, Path], list[str | Path]]  # (evil .pt, image, tmp folder) -> arguments
    says: str
    how: str = "os.system"
    trusted: bool = False  # --trust-weights: the payload must run
    needs_data: bool = False


ROWS = [
    Row("detect", lambda pt, im, tmp: ["detect", im, "-m", pt, "--json", tmp / "r.jsonl"], REFUSED),
    Row("detect --runtime onnx", lambda pt, im, tmp: ["detect", im, "-m", pt, "--runtime", "onnx"],
        f"to ONNX: {REFUSED}"),
    Row("export", lambda pt, im, tmp: ["export", pt, "-o", tmp / "out.onnx"], f"to ONNX: {REFUSED}"),
    Row("track", lambda pt, im, tmp: ["track", im, "-m", pt, "--mot", tmp / "mot.txt"], REFUSED),
    Row("classify", lambda pt, im, tmp: ["classify", im, "-m", pt], REFUSED),
    Row("pose", lambda pt, im, tmp: ["pose", im, "-m", pt], REFUSED),
    Row("segment", lambda pt, im, tmp: ["segment", im, "-m", pt], REFUSED),
    Row("eval detect", lambda pt, im, tmp: ["eval", "detect", "-m", pt, "--images", im.parent,
                                            "--annotations", im.parents[1] / "annotations" / "instances_val2017.json"],
        REFUSED, needs_data=True),
    Row("model class called with a crafted config", lambda pt, im, tmp: ["detect", im, "-m", pt],
        "refusing to load: it calls 'ultralytics.nn.tasks.DetectionModel' while loading", how="model constructor"),
    Row("eval", lambda pt, im, tmp: ["detect", im, "-m", pt],
        "refusing to load: it needs the global 'builtins.eval'", how="eval"),
    Row("os.system in a plain pickle", lambda pt, im, tmp: ["detect", im, "-m", pt], REFUSED, how="plain pickle"),
    Row("demo", lambda pt, im, tmp: [*DEMO, im, "--model", pt], REFUSED),
    Row("demo --trust-weights", lambda pt, im, tmp: [*DEMO, im, "--model", pt, "--trust-weights"],
        "cannot load evil from", trusted=True),
    Row("detect --trust-weights", lambda pt, im, tmp: ["detect", im, "-m", pt, "--trust-weights"],
        "cannot load evil from", trusted=True),
    Row("export --trust-weights", lambda pt, im, tmp: ["export", pt, "--trust-weights"], "cannot export",
        trusted=True),
]


@pytest.mark.parametrize("row", [pytest.param(r, id=r.id, marks=[pytest.mark.needs_shared] if r.needs_data else [])
                                 for r in ROWS])
def test_malicious_weights(row: Row, tmp_path: Path, assets: Path, request: pytest.FixtureRequest) -> None:
    marker = tmp_path / "MARKER"
    evil = malicious_checkpoint(tmp_path / "evil.pt", marker, row.how)
    image = (request.getfixturevalue("shared_data") / "coco_val2017" / "images" / "000000000139.jpg"
             if row.needs_data else assets / "bus.jpg")
    outputs = tmp_path / "out"
    outputs.mkdir()

    def marker_as_expected() -> None:
        assert marker.exists() == row.trusted, "the payload ran" if marker.exists() else "the payload did not run"
        assert not (outputs / "out.onnx").exists()

    check_fault(Fault(id=row.id, argv=row.argv(evil, image, outputs), code=1, says=row.says,
                      inputs=[evil, image], outputs_valid=marker_as_expected), cwd=tmp_path)


def test_original_yolov5_checkpoint(shared_weights: Path, assets: Path, tmp_path: Path) -> None:
    """yolov5n.pt uses the YOLOv5 repository's classes, which ultralytics cannot run: refused as what it is."""
    pt = shared_weights / "yolov5n.pt"
    check_fault(Fault(id="yolov5n.pt", argv=["detect", assets / "bus.jpg", "-m", pt], code=1,
                      says=f"{pt}: an original YOLOv5 checkpoint (github.com/ultralytics/yolov5 code, "
                           "'models.yolo.Model'), which the ultralytics package cannot run", inputs=[pt]), cwd=tmp_path)
