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


def _onnx_with_bad_input_name(source: Path, target: Path) -> Path:
    """``source`` with the first byte of its input's name made invalid UTF-8: a file ONNX Runtime fails on with a
    ValueError, the kind its InferenceSession "falls back" on, printing a banner on stdout unless told not to."""
    import onnx

    data = bytearray(source.read_bytes())
    name = onnx.load_from_string(bytes(data)).graph.input[0].name.encode()
    data[data.index(name)] = 0xFF
    target.write_bytes(bytes(data))
    return target


@pytest.mark.parametrize("task, says", [("detect", "not a loadable ONNX model ('utf-8' codec can't decode"),
                                        ("classify", "'utf-8' codec can't decode")])
def test_corrupt_onnx_prints_nothing_on_stdout(task: str, says: str, shared_weights: Path, assets: Path,
                                               tmp_path: Path) -> None:
    """Nothing from ONNX Runtime on stdout (where results go), one line on stderr."""
    bad = _onnx_with_bad_input_name(shared_weights / "ssd_mobilenet_v1_coco_quant.onnx", tmp_path / "bad.onnx")
    outcome = check_fault(Fault(id=task, argv=[task, assets / "bus.jpg", "-m", bad], code=1, says=says,
                                inputs=[bad]), cwd=tmp_path)
    assert outcome.stdout == "", outcome.stdout


WRONG_FAMILY = [  # (task, a real model of another family, what the one line must say)
    ("classify", "ssd_mobilenet_v1_coco_quant.onnx", "not a TFLite-style classifier (uint8 [1, H, W, 3] RGB -> one "
     "[1, C] class scores output); the file has uint8 [1, 300, 300, 3] -> float [1, 10, 4], float [1, 10]"),
    ("classify", "deeplabv3_mnv2_257.onnx", "the file has float [1, 257, 257, 3] -> float [1, 257, 257, 21]"),
    ("detect", "mobilenet_v2_1.0_224_quant.onnx", "not a YOLO detector (float [B, 3, H, W] -> "),
    ("track", "movenet_singlepose_lightning_int8.onnx", "not a YOLO detector"),
    ("pose", "yolov5n.onnx", "not a MoveNet pose model (uint8 [1, S, S, 3] -> [1, 1, 17, 3]); the file has float "
     "[1, 3, 640, 640] -> float [1, 25200, 85]"),
    ("segment", "mobilenet_v2_1.0_224_quant.onnx", "not a DeepLab segmenter (no float logits output with 21 "
     "classes, NHWC or NCHW); the file has uint8 [1, 224, 224, 3] -> uint8 [1, 1001]"),
]


@pytest.mark.parametrize("task, file, says", WRONG_FAMILY, ids=[f"{t} {f}" for t, f, _ in WRONG_FAMILY])
def test_onnx_of_another_family_is_refused_at_load(task: str, file: str, says: str, shared_weights: Path,
                                                  assets: Path, tmp_path: Path) -> None:
    """A model given by path is checked against what the backend runs before any image: one line saying what was
    expected and what the file has (a detector's boxes once passed for 40 class scores)."""
    model = shared_weights / file
    outcome = check_fault(Fault(id=file, argv=[task, assets / "bus.jpg", "-m", model, "--json", tmp_path / "r.jsonl"],
                                code=1, says=says, inputs=[model]), cwd=tmp_path)
    assert f"visionkit: error: {model}: not a " in outcome.stderr, outcome.stderr
    assert not (tmp_path / "r.jsonl").exists() or (tmp_path / "r.jsonl").read_text() == "", "an image was run"


def test_training_never_unpickles_a_hostile_checkpoint(tmp_path: Path, assets: Path) -> None:
    """`train detect --model evil.pt` (fine-tune) and `--resume` of a run whose last.pt is hostile: ultralytics would
    unpickle them in full, so they are checked by the safe loader first: one line, exit 1, the payload never runs."""
    marker = tmp_path / "MARKER"
    evil = malicious_checkpoint(tmp_path / "evil.pt", marker, "os.system")
    run = tmp_path / "run"
    (run / "weights").mkdir(parents=True)
    (run / "weights" / "last.pt").write_bytes(evil.read_bytes())
    for argv in (["train", "detect", "--data", tmp_path, "--model", evil, "--out", tmp_path / "new"],
                 ["train", "detect", "--out", run, "--resume"]):
        check_fault(Fault(id="train", argv=argv, code=1, says="refusing to load", inputs=[evil]), cwd=tmp_path)
        assert not marker.exists(), "the payload ran"
