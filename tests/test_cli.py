"""The ``visionkit`` command: real runs with the SSD model (in-process and through the console script), help
text, the model listing, and one clear ``visionkit: error:`` line with the right exit code for every bad input.
"""

from __future__ import annotations

import io
import json
import logging
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from clip_helpers import count_frames, make_clip, truncated_copy

from visionkit.cli import build_parser, console_log_handler, main

MODEL = "ssd_mobilenet_v1_coco"  # the fastest real model (~10 ms/image on a CPU)
ROOT = Path(__file__).resolve().parents[1]
CONSOLE_SCRIPT = Path(sys.executable).with_name("visionkit")


@pytest.fixture(autouse=True)
def _shared_weights_env(shared_weights: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VISIONKIT_WEIGHTS", str(shared_weights))
    monkeypatch.setenv("COLUMNS", "200")  # argparse: one option per help line


@pytest.fixture(scope="module")
def coco_dir(shared_data: Path) -> Path:
    return shared_data / "coco_val2017"


@pytest.fixture(scope="module")
def three_coco(coco_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("coco3")
    for src in sorted((coco_dir / "images").glob("*.jpg"))[:3]:
        (folder / src.name).write_bytes(src.read_bytes())
    return folder


@pytest.fixture(scope="module")
def clip(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_clip(shared_data / "tracking/demo/vtest.avi", tmp_path_factory.mktemp("clip") / "walk.avi", 20)


def run(capsys: pytest.CaptureFixture, *argv: str) -> tuple[int, str, str]:
    """``visionkit argv...`` in this process: (exit code, stdout, stderr)."""
    try:
        code = main([str(a) for a in argv])
    except SystemExit as e:  # argparse: --help, bad values
        code = e.code if isinstance(e.code, int) else 1
    out, err = capsys.readouterr()
    return code, out, err


def jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def error_lines(err: str, prefix: str = "visionkit: error:") -> list[str]:
    return [line for line in err.splitlines() if line.startswith(prefix)]


# -- real runs --------------------------------------------------------------------------------------------
def test_detect_builtin_sample(capsys, tmp_path: Path, assets: Path) -> None:
    code, out, err = run(capsys, "detect", "--model", MODEL, "--save", tmp_path / "out", "--json",
                         tmp_path / "r.jsonl")
    assert code == 0, err
    assert "no SOURCE given" in err and "bus.jpg" in err
    assert re.search(r"bus\.jpg: 810x1080 .*person", out)  # per-image lines go to stdout
    assert "detect: 1 frame(s)" in err and "0 error(s)" in err
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["bus.jpg"]
    original = cv2.imread(str(assets / "bus.jpg"))
    annotated = cv2.imread(str(tmp_path / "out" / "bus.jpg"))
    assert annotated.shape == original.shape
    assert (np.abs(annotated.astype(int) - original.astype(int)).max(axis=2) > 80).sum() > 2000  # boxes drawn
    (record,) = jsonl(tmp_path / "r.jsonl")
    assert record["model"] == MODEL and record["task"] == "detect" and record["image_shape"] == [1080, 810]
    assert Path(record["source"]).name == "bus.jpg"
    people = [d for d in record["detections"] if d["class_name"] == "person"]
    assert len(people) >= 2 and all(d["score"] >= 0.5 for d in record["detections"])
    for d in record["detections"]:
        x1, y1, x2, y2 = d["box"]
        assert 0 <= x1 < x2 <= 810 and 0 <= y1 < y2 <= 1080


def _iou(a: list[float], b: list[float]) -> float:
    ax, ay, aw, ah = a
    bx, by, bw, bh = b
    iw = max(0.0, min(ax + aw, bx + bw) - max(ax, bx))
    ih = max(0.0, min(ay + ah, by + bh) - max(ay, by))
    inter = iw * ih
    return inter / (aw * ah + bw * bh - inter)


def test_detect_folder_of_coco_images(capsys, tmp_path: Path, three_coco: Path, coco_dir: Path) -> None:
    from pycocotools.coco import COCO

    out, results, coco = tmp_path / "out", tmp_path / "r.jsonl", tmp_path / "coco.json"
    code, _, err = run(capsys, "detect", three_coco, "-m", MODEL, "--save", out, "--json", results, "--coco", coco)
    assert code == 0, err
    names = sorted(p.name for p in three_coco.iterdir())
    assert sorted(p.name for p in out.iterdir()) == names
    for name in names:
        assert cv2.imread(str(out / name)).shape == cv2.imread(str(three_coco / name)).shape
    records = jsonl(results)
    assert [Path(r["source"]).name for r in records] == names
    assert [r["frame_index"] for r in records] == [0, 1, 2]
    gt = COCO(str(coco_dir / "annotations/instances_val2017.json"))
    dt = gt.loadRes(str(coco))
    rows = dt.loadAnns(dt.getAnnIds())
    assert len(rows) == sum(len(r["detections"]) for r in records) > 0
    assert {r["image_id"] for r in rows} <= {int(Path(n).stem) for n in names}
    # the boxes are real: many overlap a ground-truth box of the same category (random boxes: none would)
    hits = 0
    for row in rows:
        truth = gt.loadAnns(gt.getAnnIds(imgIds=row["image_id"], catIds=row["category_id"]))
        hits += any(_iou(row["bbox"], t["bbox"]) > 0.5 for t in truth)
    assert hits >= len(rows) / 3, f"only {hits} of {len(rows)} boxes match the ground truth"
    for row in rows:  # and every detected class is one the image really contains
        img_cats = {a["category_id"] for a in gt.loadAnns(gt.getAnnIds(imgIds=row["image_id"]))}
        assert row["category_id"] in img_cats or row["score"] < 0.6, row


def test_detect_video_clip(capsys, tmp_path: Path, clip: Path) -> None:
    out, results = tmp_path / "out", tmp_path / "r.jsonl"
    code, _, err = run(capsys, "detect", clip, "-m", MODEL, "--save", out, "--json", results, "-q")
    assert code == 0, err
    assert "detect: 20 frame(s)" in err
    assert [p.name for p in out.iterdir()] == ["walk.mp4"]
    assert count_frames(out / "walk.mp4") == (20, 480, 360)
    records = jsonl(results)
    assert [r["frame_index"] for r in records] == list(range(20))
    np.testing.assert_allclose([r["timestamp"] for r in records], np.arange(20) / 10, atol=1e-3)
    assert sum(d["class_name"] == "person" for r in records for d in r["detections"]) >= 20  # a crowd walks by


def test_multi_input_with_one_bad_file(capsys, tmp_path: Path, three_coco: Path) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    good = sorted(three_coco.iterdir())[:2]
    for src in good:
        (folder / src.name).write_bytes(src.read_bytes())
    (folder / "000000000001.jpg").write_bytes(b"")  # sorts first: the run must go on after it
    out, results = tmp_path / "out", tmp_path / "r.jsonl"
    code, _, err = run(capsys, "detect", folder, "-m", MODEL, "--save", out, "--json", results)
    assert code == 1
    (line,) = error_lines(err)
    assert "000000000001.jpg" in line and "empty file" in line
    assert "Traceback" not in err
    assert "2 frame(s)" in err and "1 error(s)" in err
    assert sorted(p.name for p in out.iterdir()) == [p.name for p in good]
    assert [Path(r["source"]).name for r in jsonl(results)] == [p.name for p in good]


def test_odd_images_run(capsys, tmp_path: Path) -> None:
    """8x8 grey, 16-bit colour and RGBA inputs all run and are saved under their own names."""
    folder = tmp_path / "odd"
    folder.mkdir()
    cv2.imwrite(str(folder / "a_tiny_gray.png"), np.full((8, 8), 100, np.uint8))
    cv2.imwrite(str(folder / "b_deep.png"), np.full((30, 40, 3), 40000, np.uint16))
    cv2.imwrite(str(folder / "c_rgba.png"), np.full((20, 10, 4), 255, np.uint8))
    code, out, err = run(capsys, "detect", folder, "-m", MODEL, "--save", tmp_path / "out", "--json",
                         tmp_path / "r.jsonl")
    assert code == 0, err
    assert "a_tiny_gray.png: 8x8" in out and "b_deep.png: 40x30" in out and "c_rgba.png: 10x20" in out
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a_tiny_gray.png", "b_deep.png", "c_rgba.png"]
    assert [r["image_shape"] for r in jsonl(tmp_path / "r.jsonl")] == [[8, 8], [30, 40], [20, 10]]


def test_class_filter_and_threshold(capsys, tmp_path: Path, assets: Path) -> None:
    code, _, err = run(capsys, "detect", assets / "bus.jpg", "-m", MODEL, "--classes", "1", "--conf", "0.3",
                       "--json", tmp_path / "r.jsonl", "-q")
    assert code == 0, err
    (record,) = jsonl(tmp_path / "r.jsonl")
    assert record["detections"] and {d["class_name"] for d in record["detections"]} == {"person"}
    assert all(d["score"] >= 0.3 for d in record["detections"])


# -- help and listing -------------------------------------------------------------------------------------
def _options(parser) -> set[str]:
    return {s for a in parser._actions for s in a.option_strings}


def _subparser(parser, *path: str):
    for name in path:
        action = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
        parser = action.choices[name]
    return parser


@pytest.mark.parametrize(
    ("command", "must_mention"),
    [
        (("detect",), {"--model", "--weights", "--device", "--batch", "--conf", "--iou", "--imgsz", "--max-det",
                       "--classes", "--save", "--json", "--coco", "--show", "--quiet", "SOURCE", "--save-txt",
                       "--save-conf", "--save-crop", "--vid-stride", "--line-width", "--hide-labels", "--hide-conf"}),
        (("track",), {"--tracker", "--vid-stride", "--save-txt", "--save-crop", "--classes"}),
        (("classify",), {"--save-txt", "--save-conf", "--hide-conf", "--vid-stride"}),
        (("segment",), {"--save-txt", "--save-crop", "--classes", "--hide-labels"}),
        (("models",), {"--task", "--json"}),
        (("batch",), {"--out", "--model", "--engine", "--address", "--format", "--batch-size", "--concurrency",
                      "--num-cpus-per-worker", "--num-gpus-per-worker"}),
        (("eval",), {"detect", "track"}),
        (("eval", "detect"), {"--images", "--annotations", "--model", "--conf", "--json"}),
    ],
)
def test_help_mentions_every_option(capsys, command, must_mention) -> None:
    code, out, err = run(capsys, *command, "--help")
    assert code == 0 and err == ""
    options = _options(_subparser(build_parser(), *command))
    assert must_mention - {"SOURCE", "detect", "track"} <= options
    for option in options | must_mention:
        assert re.search(rf"(?<![\w-]){re.escape(option)}(?![\w-])", out), f"{option} missing from help"


def test_detect_help_describes_sources(capsys) -> None:
    _, out, _ = run(capsys, "detect", "--help")
    for kind in ("image file", "directory", "glob", "video file", "webcam index", "rtsp://"):
        assert kind in out
    assert "Python API" not in out


def test_models_lists_local_weights(capsys) -> None:
    code, out, err = run(capsys, "models")
    assert code == 0, err
    rows = {line.split()[0]: line.split() for line in out.splitlines() if line and not line.startswith(("NAME", "*"))}
    assert rows["yolov5n"][1:4] == ["detect", "onnx-yolo", "640"] and rows["yolov5n"][4] == "local"
    assert rows[MODEL][4] == "local"
    assert out.splitlines()[0].split() == ["NAME", "TASK", "BACKEND", "INPUT", "WEIGHTS", "PUBLISHED", "METRIC"]


def test_models_json_and_task_filter(capsys) -> None:
    code, out, _ = run(capsys, "models", "--task", "detect", "--json")
    assert code == 0
    entries = json.loads(out)
    assert {"yolov5n", MODEL} <= {e["name"] for e in entries}
    assert all(e["task"] == "detect" for e in entries)
    code, out, err = run(capsys, "models", "--task", "nope")
    assert code == 2 and error_lines(err) == ["visionkit: error: no models for task 'nope'"]


def test_models_without_weights_folder(capsys, monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setenv("VISIONKIT_WEIGHTS", str(tmp_path))
    _, out, _ = run(capsys, "models")
    row = next(line.split() for line in out.splitlines() if line.startswith("yolov5n "))
    assert row[4] == "missing"  # no URL and not found


# -- bad input matrix -------------------------------------------------------------------------------------
def _prepare(case: str, tmp: Path, three_coco: Path, clip: Path, monkeypatch) -> tuple[list, str]:
    """Arguments for one bad-input case, and a part the error line must contain."""
    good = sorted(three_coco.iterdir())[0]
    blocker = tmp / "a-file"
    blocker.write_text("x")
    if case == "missing file":
        return [tmp / "missing.jpg"], "missing.jpg: no such file"
    if case == "zero-byte image":
        (tmp / "zero.jpg").write_bytes(b"")
        return [tmp / "zero.jpg"], "zero.jpg: empty file (0 bytes)"
    if case == "truncated image":
        truncated_copy(good, tmp / "cut.jpg", 0.5)
        return [tmp / "cut.jpg"], "cut.jpg: not a decodable image"
    if case == "text file named .jpg":
        (tmp / "notes.jpg").write_text("just text\n")
        return [tmp / "notes.jpg"], "notes.jpg: not a decodable image"
    if case == "text file":
        (tmp / "notes.txt").write_text("just text\n")
        return [tmp / "notes.txt"], "notes.txt: neither an image nor a video"
    if case == "zero-byte video":
        (tmp / "zero.mp4").write_bytes(b"")
        return [tmp / "zero.mp4"], "zero.mp4: empty file (0 bytes)"
    if case == "unreadable video":
        truncated_copy(clip, tmp / "broken.avi", 0.002)
        return [tmp / "broken.avi"], "broken.avi: cannot be opened as a video"
    if case == "unknown model":
        return [good, "-m", "yolov5"], "unknown model 'yolov5'"
    if case == "missing model file":
        return [good, "-m", tmp / "nope.onnx"], "model file not found"
    if case == "garbage onnx file":
        (tmp / "garbage.onnx").write_bytes(b"this is not a protobuf" * 10)
        return [good, "-m", tmp / "garbage.onnx"], "garbage.onnx: not a loadable ONNX model"
    if case == "garbage weights under catalog name":
        bad = tmp / "weights"
        bad.mkdir()
        (bad / "ssd_mobilenet_v1_coco_quant.onnx").write_bytes(b"\x00" * 1000)
        monkeypatch.setenv("VISIONKIT_WEIGHTS", str(bad))
        return [good], "is not the official ssd_mobilenet_v1_coco weights: sha256"
    if case == "missing --weights file":
        return [good, "--weights", tmp / "nope.onnx"], "weights file not found"
    if case == "--save under a file":
        return [good, "--save", blocker / "out"], "cannot create output directory"
    if case == "--json under a file":
        return [good, "--json", blocker / "out" / "r.jsonl"], "cannot create output directory"
    if case == "--coco under a file":
        return [good, "--coco", blocker / "coco.json"], "cannot create output directory"
    if case == "--conf 2":
        return [good, "--conf", "2"], "argument --conf: must be a number between 0 and 1, got 2"
    if case == "--batch 0":
        return [good, "--batch", "0"], "argument --batch: must be a positive integer, got 0"
    if case == "--device cuda":
        return [good, "--device", "cuda"], "CUDA is not available"
    if case == "--device tpu":
        return [good, "--device", "tpu"], "unknown device 'tpu'"
    if case == "--runtime onnx, torchvision model":
        return ([good, "-m", "ssdlite320_mobilenet_v3_large", "--runtime", "onnx"],
                "runtime onnx: ssdlite320_mobilenet_v3_large runs on PyTorch only, not ONNX Runtime")
    if case == "--runtime torch, ONNX model":
        return [good, "--runtime", "torch"], ("runtime torch: ssd_mobilenet_v1_coco runs on ONNX Runtime, OpenVINO or "
                                              "OpenCV DNN only")
    if case == "--runtime onnx, corrupt .pt":
        (tmp / "garbage.pt").write_bytes(b"\x80not a checkpoint" * 50)
        return [good, "-m", tmp / "garbage.pt", "--runtime", "onnx"], f"cannot export {tmp / 'garbage.pt'} to ONNX"
    if case == "--runtime tensorrt":
        return [good, "--runtime", "tensorrt"], "argument --runtime: invalid choice: 'tensorrt'"
    raise AssertionError(case)


@pytest.mark.parametrize(
    ("case", "expected_code", "prefix"),
    [
        ("missing file", 1, "visionkit: error:"),
        ("zero-byte image", 1, "visionkit: error:"),
        ("truncated image", 1, "visionkit: error:"),
        ("text file named .jpg", 1, "visionkit: error:"),
        ("text file", 1, "visionkit: error:"),
        ("zero-byte video", 1, "visionkit: error:"),
        ("unreadable video", 1, "visionkit: error:"),
        ("unknown model", 2, "visionkit: error:"),
        ("missing model file", 1, "visionkit: error:"),
        ("garbage onnx file", 1, "visionkit: error:"),
        ("garbage weights under catalog name", 1, "visionkit: error:"),
        ("missing --weights file", 1, "visionkit: error:"),
        ("--save under a file", 1, "visionkit: error:"),
        ("--json under a file", 1, "visionkit: error:"),
        ("--coco under a file", 1, "visionkit: error:"),
        ("--conf 2", 2, "visionkit: error:"),
        ("--batch 0", 2, "visionkit: error:"),
        ("--device cuda", 2, "visionkit: error:"),
        ("--device tpu", 2, "visionkit: error:"),
        ("--runtime onnx, torchvision model", 2, "visionkit: error:"),
        ("--runtime torch, ONNX model", 2, "visionkit: error:"),
        ("--runtime onnx, corrupt .pt", 1, "visionkit: error:"),
        ("--runtime tensorrt", 2, "visionkit: error:"),
    ],
)
def test_bad_input(capsys, monkeypatch, tmp_path: Path, three_coco: Path, clip: Path, case: str,
                   expected_code: int, prefix: str) -> None:
    if case == "--device cuda":
        import torch

        if torch.cuda.is_available():
            pytest.skip("this machine has CUDA")
    args, part = _prepare(case, tmp_path, three_coco, clip, monkeypatch)
    outputs = [a for a in args if isinstance(a, Path) and a.name in ("out", "r.jsonl")]
    json_out = tmp_path / "results.jsonl"
    extra = [] if "--json" in args else ["--json", json_out]
    code, out, err = run(capsys, "detect", *args, *([] if "-m" in args else ["-m", MODEL]), *extra)
    assert code == expected_code, err
    lines = error_lines(err, prefix)
    assert len(lines) == 1, err
    assert part in lines[0], lines[0]
    assert len(err.strip().splitlines()) == 1, f"expected exactly one stderr line:\n{err}"
    assert len([line for line in err.splitlines() if "error" in line.lower()]) == 1, err
    assert "Traceback" not in err + out and "internal error" not in err
    if expected_code == 2 or "model" in case or "weights" in case:
        assert not json_out.exists(), "a bad command line or model must not leave output files"
    assert not any(p.exists() for p in outputs)


# -- the console script, as a user runs it ---------------------------------------------------------------
def _console(*argv: str | Path, timeout: float = 60, **kwargs) -> subprocess.CompletedProcess:
    env = {**os.environ, "VISIONKIT_OFFLINE": "1"}
    return subprocess.run([str(CONSOLE_SCRIPT), *map(str, argv)], capture_output=True, text=True, timeout=timeout,
                          env=env, cwd=kwargs.get("cwd"))


def test_console_script_runs_detection(tmp_path: Path, three_coco: Path) -> None:
    assert CONSOLE_SCRIPT.is_file(), f"{CONSOLE_SCRIPT} is not installed (pip install -e .)"
    image = sorted(three_coco.iterdir())[0]
    done = _console("detect", image, "-m", MODEL, "--json", tmp_path / "r.jsonl", "--save", tmp_path / "out")
    assert done.returncode == 0, done.stderr
    assert f"{image.name}: 640x426" in done.stdout
    assert (tmp_path / "out" / image.name).is_file()
    (record,) = jsonl(tmp_path / "r.jsonl")
    assert record["detections"]


def test_console_script_error_and_version(tmp_path: Path) -> None:
    done = _console("detect", tmp_path / "missing.jpg", "-m", MODEL)
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [f"visionkit: error: {tmp_path / 'missing.jpg'}: no such file or "
                                                "directory"]
    assert "Traceback" not in done.stderr
    version = _console("--version")
    assert version.returncode == 0 and version.stdout.startswith("visionkit ")


def test_module_entry_point(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "visionkit", "models", "--task", "detect", "--json"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "yolov5n" in {e["name"] for e in json.loads(done.stdout)}


def test_interrupted_video_run_keeps_playable_outputs(tmp_path: Path, shared_data: Path) -> None:
    """Ctrl-C in the middle of a long video: exit 130, the .mp4 plays, and holds every frame of the JSONL."""
    video = shared_data / "tracking/demo/vtest.avi"
    results, out = tmp_path / "r.jsonl", tmp_path / "out"
    proc = subprocess.Popen([str(CONSOLE_SCRIPT), "detect", str(video), "-m", MODEL, "--save", str(out), "--json",
                             str(results), "-q"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "VISIONKIT_OFFLINE": "1"})
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and proc.poll() is None:
            if results.is_file() and len(results.read_text().splitlines()) >= 30:
                break
            time.sleep(0.1)
        assert proc.poll() is None, "the run ended before it could be interrupted"
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    lines = jsonl(results)
    assert 30 <= len(lines) < 795
    assert [r["frame_index"] for r in lines] == list(range(len(lines)))
    frames, w, h = count_frames(out / "vtest.mp4")
    assert (w, h) == (480, 360)
    assert frames == len(lines)


def test_log_lines_quote_odd_names_on_one_line() -> None:
    """A warning that names a file or stream with a line break (or an escape sequence) in it stays one line."""
    stream = io.StringIO()
    logger = logging.getLogger("visionkit.test-one-line")
    handler = console_log_handler(stream)
    logger.addHandler(handler)
    try:
        logger.warning("%s: stream ended after %d frames", "two\nlines\x1b[2J.mp4", 3)
    finally:
        logger.removeHandler(handler)
    assert stream.getvalue() == "visionkit: WARNING: two\\nlines\\x1b[2J.mp4: stream ended after 3 frames\n"
