"""Fault matrix, outputs and exit codes (issue #9 items 3, 6, 7): an output never overwrites an input, every
output format stays valid for multi-input runs, a failing output is one line that names the file, eval names a
bad dataset file, and Ctrl-C at any moment is "visionkit: interrupted", exit 130.

Each faulty command runs as a user runs it (the console script, in a fresh process) through
``fault_harness.check_fault``: exit code, one stderr line, no traceback, outputs valid, inputs byte-identical.
Commands that must succeed are checked on what they write.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
from clip_helpers import make_clip
from fault_harness import (
    CONSOLE_SCRIPT,
    Fault,
    Outcome,
    assert_coco_valid,
    assert_jsonl_valid,
    assert_mot_valid,
    assert_one_line,
    assert_unchanged,
    check_fault,
    limit_file_size,
    run_cli,
    snapshot,
)

from visionkit.errors import SinkError, raise_if_interrupted
from visionkit.io.threads import BackgroundWorker

MODEL = "yolov5n"  # ONNX: starts in about a second, no torch import
SEGMENTER = "deeplabv3_mnv2_257"


@dataclass
class Media:
    """Small real inputs: two COCO photos in a folder, two clips in another, and the COCO annotations."""

    images: Path
    videos: Path
    annotations: Path
    coco_images: Path
    data: Path

    @property
    def first_image(self) -> Path:
        return sorted(self.images.iterdir())[0]


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory, shared_data: Path) -> Media:
    root = tmp_path_factory.mktemp("media")
    coco = shared_data / "coco_val2017"
    images = root / "images"
    images.mkdir()
    for photo in sorted((coco / "images").iterdir())[:2]:
        shutil.copy(photo, images)
    videos = root / "videos"
    videos.mkdir()
    walk = shared_data / "tracking/demo/vtest.avi"
    make_clip(walk, videos / "walk.mp4", frames=12, fourcc="mp4v")
    make_clip(walk, videos / "street.avi", frames=12, start=100)
    return Media(images, videos, coco / "annotations/instances_val2017.json", coco / "images", shared_data)


def _detect(source: Path | str, *options: str | Path) -> list[str | Path]:
    return ["detect", source, "-m", MODEL, "-q", *options]


def _records(path: Path, count: int) -> Callable[[], None]:
    """outputs_valid: ``path`` is JSONL holding ``count`` records."""
    def check() -> None:
        assert len(assert_jsonl_valid(path)) == count

    return check


def _files(folder: Path, count: int) -> Callable[[], None]:
    def check() -> None:
        assert len(list(folder.iterdir())) == count, sorted(folder.iterdir())

    return check


def _absent(*paths: Path) -> Callable[[], None]:
    def check() -> None:
        assert not [p for p in paths if p.exists()]

    return check


def _all(*checks: Callable[[], None]) -> Callable[[], None]:
    def check() -> None:
        for one in checks:
            one()

    return check


# -- the table: id -> Fault(media, a fresh output folder) -------------------------------------------------
def _hard_link(m: Media, out: Path) -> Path:
    link = out / "results.jsonl"
    os.link(m.first_image, link)  # another name for the same bytes
    return link


def _symlink(m: Media, out: Path) -> Path:
    link = out / "coco.json"
    link.symlink_to(m.first_image)
    return link


def _existing(out: Path, name: str) -> Path:
    path = out / name
    path.write_text('{"kept": true}\n')
    return path


def _corrupt_json(out: Path) -> Path:
    (out / "bad.json").write_text('{"images": [{"id": 1, "file_name": ')
    return out / "bad.json"


def _camvid_with_bad_label(m: Media, out: Path) -> Path:
    root = out / "camvid"
    (root / "images").mkdir(parents=True)
    (root / "labels").mkdir()
    image = sorted((m.data / "camvid/images").iterdir())[0]
    shutil.copy(image, root / "images")
    (root / "labels" / image.name).write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 40)  # a PNG header, then nothing
    return root


def _sequence_with_bad_gt(m: Media, out: Path) -> Path:
    seq = out / "SEQ"
    (seq / "img1").mkdir(parents=True)
    (seq / "gt").mkdir()
    for frame in sorted((m.data / "tracking/PETS09-S2L1/img1").iterdir())[:2]:
        shutil.copy(frame, seq / "img1")
    (seq / "gt/gt.txt").write_text("1,1,10,10,20,40,1,-1,-1,-1\n2,1,12,10,20,40,1,1,1\n")  # 10 then 9 columns
    return seq


FAULTS: dict[str, Callable[[Media, Path], Fault]] = {
    # item 3: an output never overwrites an input
    "save into the input folder": lambda m, out: Fault(
        "", _detect(m.images, "--save", m.images), 2, "is an input of this run", inputs=[m.images]),
    "save into a video's folder": lambda m, out: Fault(
        "", _detect(m.videos / "walk.mp4", "--save", m.videos), 2, "walk.mp4 is an input of this run",
        inputs=[m.videos]),
    "save into the input folder, --exist-ok": lambda m, out: Fault(
        "", _detect(m.images, "--save", m.images, "--exist-ok"), 2, "is an input of this run", inputs=[m.images]),
    "--json hard link to an input": lambda m, out: Fault(
        "", _detect(m.images, "--json", _hard_link(m, out), "--exist-ok"), 2, "results.jsonl is an input",
        inputs=[m.images]),
    "--coco symlink to an input": lambda m, out: Fault(
        "", _detect(m.images, "--coco", _symlink(m, out), "--exist-ok"), 2, "coco.json is an input",
        inputs=[m.images]),
    "--json over the input image": lambda m, out: Fault(
        "", _detect(m.first_image, "--json", m.first_image, "--exist-ok"), 2, "is an input of this run",
        inputs=[m.images]),
    "--json exists": lambda m, out: Fault(
        "", _detect(m.images, "--json", _existing(out, "r.jsonl")), 2, "r.jsonl already exists (--exist-ok",
        inputs=[m.images, out / "r.jsonl"]),
    "--coco exists": lambda m, out: Fault(
        "", _detect(m.images, "--coco", _existing(out, "c.json")), 2, "c.json already exists",
        inputs=[out / "c.json"]),
    "--mot exists": lambda m, out: Fault(
        "", ["track", m.videos / "walk.mp4", "-m", MODEL, "-q", "--mot", _existing(out, "walk.txt")], 2,
        "walk.txt already exists", inputs=[out / "walk.txt"]),
    "export -o exists": lambda m, out: Fault(
        "", ["export", "yolo11n", "-o", _existing(out, "model.onnx")], 2, "model.onnx already exists",
        inputs=[out / "model.onnx"]),
    "export -o over its own model": lambda m, out: Fault(
        "", ["export", _existing(out, "my.pt"), "-o", out / "my.pt", "--exist-ok"], 2, "my.pt is an input",
        inputs=[out / "my.pt"]),
    "eval --json over the annotations": lambda m, out: Fault(
        "", ["eval", "detect", "-m", MODEL, "--images", m.coco_images, "--annotations", m.annotations,
             "--json", m.annotations, "--exist-ok"], 2, "instances_val2017.json is an input", inputs=[m.annotations]),
    "eval --json exists": lambda m, out: Fault(
        "", ["eval", "classify", "-m", "mobilenet_v2_quant", "--images", m.data / "imagenet_sample/images",
             "--labels", m.data / "imagenet_sample/labels.csv", "--json", _existing(out, "scores.json")], 2,
        "scores.json already exists", inputs=[out / "scores.json"]),
    # item 6: formats that hold one sequence
    "--mot FILE for two videos": lambda m, out: Fault(
        "", ["track", m.videos, "-m", MODEL, "-q", "--mot", out / "all.txt"], 2,
        "a MOT results file holds one sequence, but this run reads 2", inputs=[m.videos],
        outputs_valid=_absent(out / "all.txt")),
    # item 7: a failing output is one line naming the file; the others go on
    "--json /dev/full": lambda m, out: Fault(
        "", _detect(m.images, "--json", "/dev/full", "--coco", out / "c.json", "--save", out / "saved"), 1,
        "cannot write /dev/full: No space left on device", inputs=[m.images],
        outputs_valid=_all(lambda: assert_coco_valid(out / "c.json", m.annotations), _files(out / "saved", 2))),
    "--save on a full disk": lambda m, out: Fault(
        "", _detect(m.images, "--save", out / "saved", "--json", out / "r.jsonl"), 1, "cannot write "
        f"{out / 'saved'}/", inputs=[m.images], preexec=limit_file_size(40_000),
        outputs_valid=_records(out / "r.jsonl", 2)),
    # 700 B: the error and summary lines (written to a file by the harness) fit, the results do not
    "--coco on a full disk": lambda m, out: Fault(
        "", _detect(m.images, "--coco", out / "c.json"), 1, f"cannot write {out / 'c.json'}: File too large",
        inputs=[m.images], preexec=limit_file_size(700), outputs_valid=_absent(out / "c.json", out / "c.json.tmp")),
    "--save under a file": lambda m, out: Fault(
        "", _detect(m.images, "--save", _existing(out, "f") / "saved"), 1,
        f"cannot create output directory {out / 'f' / 'saved'}", inputs=[m.images]),
    "--coco under a file": lambda m, out: Fault(
        "", _detect(m.images, "--coco", _existing(out, "f") / "c.json"), 1, f"for {out / 'f' / 'c.json'}",
        inputs=[m.images]),
    # item 7: eval names the dataset file that cannot be used
    "eval detect, missing annotations": lambda m, out: Fault(
        "", ["eval", "detect", "-m", MODEL, "--images", m.coco_images, "--annotations", out / "none.json"], 1,
        f"{out / 'none.json'}: no such annotation file"),
    "eval detect, truncated annotations": lambda m, out: Fault(
        "", ["eval", "detect", "-m", MODEL, "--images", m.coco_images, "--annotations", _corrupt_json(out)], 1,
        f"{out / 'bad.json'}: not a JSON file"),
    "eval pose, annotations not COCO": lambda m, out: Fault(
        "", ["eval", "pose", "-m", "movenet_lightning", "--images", m.coco_images, "--annotations",
             _write(out / "list.json", [1, 2, 3])], 1, f"{out / 'list.json'}: not a COCO annotation file"),
    "eval segment, COCO image entry without id": lambda m, out: Fault(
        "", ["eval", "segment", "-m", SEGMENTER, "--images", m.coco_images, "--annotations",
             _write(out / "noid.json", {"images": [{"file_name": "x.jpg"}], "annotations": [{"image_id": 1}],
                                        "categories": []})], 1, f"{out / 'noid.json'}: not a COCO annotation file"),
    "eval classify, binary labels": lambda m, out: Fault(
        "", ["eval", "classify", "-m", "mobilenet_v2_quant", "--images", m.data / "imagenet_sample/images",
             "--labels", _bytes(out / "labels.csv", b"\xff\xfe\x00garbage\x00" * 20)], 1,
        f"{out / 'labels.csv'}: not a UTF-8 CSV file"),
    "eval classify, bad class index": lambda m, out: Fault(
        "", ["eval", "classify", "-m", "mobilenet_v2_quant", "--images", m.data / "imagenet_sample/images",
             "--labels", _bytes(out / "labels.csv", b"file,class_index\na.jpg,0\nb.jpg,cat\n")], 1,
        f"{out / 'labels.csv'}, line 3: class_index must be an integer, got 'cat'"),
    "eval segment, corrupt CamVid label": lambda m, out: Fault(
        "", ["eval", "segment", "-m", SEGMENTER, "--camvid", _camvid_with_bad_label(m, out)], 1,
        "not a readable label image"),
    "eval track, gt with mixed columns": lambda m, out: Fault(
        "", ["eval", "track", "-m", MODEL, "--classes", "0", "--gt", _sequence_with_bad_gt(m, out)], 1,
        f"{out / 'SEQ' / 'gt' / 'gt.txt'}: gt rows have different column counts"),
}


def _write(path: Path, data: object) -> Path:
    path.write_text(json.dumps(data))
    return path


def _bytes(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("case", list(FAULTS))
def test_output_fault(case: str, media: Media, tmp_path: Path) -> None:
    check_fault(replace(FAULTS[case](media, tmp_path), id=case), cwd=tmp_path)


# -- what succeeds: run folders, names kept, one MOT file per sequence, COCO ids -----------------------------
def _summary(outcome: Outcome) -> str:
    assert outcome.code == 0, outcome.stderr
    (line,) = [line for line in outcome.stderr_lines if " frame(s)" in line]
    return line


def test_save_without_dir_makes_a_new_numbered_run_folder(media: Media, tmp_path: Path) -> None:
    before = snapshot([media.images])
    first = _summary(run_cli(*_detect(media.images, "--save"), cwd=tmp_path))
    second = _summary(run_cli(*_detect(media.first_image, "--save"), cwd=tmp_path))
    assert first.endswith("saved to runs/detect/predict") and second.endswith("saved to runs/detect/predict2")
    assert sorted(p.name for p in (tmp_path / "runs/detect/predict").iterdir()) == sorted(
        p.name for p in media.images.iterdir())
    assert [p.name for p in (tmp_path / "runs/detect/predict2").iterdir()] == [media.first_image.name]
    assert_unchanged(before)


def test_explicit_save_dir_keeps_what_is_there_unless_exist_ok(media: Media, tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    kept = _existing(out, media.first_image.name)
    before = snapshot([kept])
    _summary(run_cli(*_detect(media.first_image, "--save", out)))
    assert_unchanged(before)
    assert sorted(p.name for p in out.iterdir()) == sorted([kept.name, f"{kept.stem}_1{kept.suffix}"])
    _summary(run_cli(*_detect(media.first_image, "--save", out, "--exist-ok")))
    assert kept.read_bytes()[:2] == b"\xff\xd8", "--exist-ok replaces the file with the annotated JPEG"
    assert len(list(out.iterdir())) == 2


def test_mot_folder_holds_one_valid_file_per_video(media: Media, tmp_path: Path) -> None:
    before = snapshot([media.videos])
    line = _summary(run_cli("track", media.videos, "-m", MODEL, "-q", "--classes", "0", "--mot", tmp_path / "mot"))
    assert line.endswith(f"saved to {tmp_path / 'mot'}")
    files = sorted((tmp_path / "mot").iterdir())
    assert [p.name for p in files] == ["street.txt", "walk.txt"]
    for path in files:
        assert assert_mot_valid(path) > 0
        assert {int(row.split(",")[0]) for row in path.read_text().splitlines()} <= set(range(1, 13))
    assert_unchanged(before)
    _summary(run_cli("track", media.videos / "walk.mp4", "-m", MODEL, "-q", "--classes", "0", "--mot",
                     tmp_path / "walk.txt"))  # a single video may still go to one named file
    assert (tmp_path / "walk.txt").read_text() == (tmp_path / "mot/walk.txt").read_text()


def test_coco_ids_stay_unique_across_folders_with_equal_names(media: Media, tmp_path: Path) -> None:
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        shutil.copy(media.first_image, tmp_path / folder)
    _summary(run_cli(*_detect(f"{tmp_path}/*/*.jpg", "--coco", tmp_path / "c.json", "--json", tmp_path / "r.jsonl")))
    rows = json.loads((tmp_path / "c.json").read_text())
    ids = {row["image_id"] for row in rows}
    assert len(ids) == 2 and int(media.first_image.stem) not in ids, "two images, two ids, neither claims the stem"
    per_source = [record["source"] for record in assert_jsonl_valid(tmp_path / "r.jsonl")]
    assert len(set(per_source)) == 2


def test_failed_sink_is_counted_in_the_summary(media: Media) -> None:
    outcome = run_cli(*_detect(media.images, "--json", "/dev/full"))
    assert_one_line(outcome, 1, "cannot write /dev/full")
    (summary,) = [line for line in outcome.stderr_lines if " frame(s)" in line]
    assert "2 frame(s)" in summary and "1 error(s)" in summary and "/dev/full" not in summary


# -- Ctrl-C at any moment -----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def torch_model(tmp_path_factory: pytest.TempPathFactory, assets: Path) -> Path:
    """A random-weight YOLOv8n checkpoint: loading it imports torch and ultralytics, the slow part of a start."""
    import cv2
    from random_models import build_yolo

    return build_yolo("yolov8n.yaml", tmp_path_factory.mktemp("yolo") / "y8n.pt", [cv2.imread(str(assets / "bus.jpg"))])


@pytest.mark.parametrize("delay", [0.15, 0.3, 0.45, 0.6, 0.8, 1.0, 1.5, 2.0, 4.0])
def test_ctrl_c_at_any_moment_is_interrupted(delay: float, torch_model: Path, shared_data: Path,
                                             tmp_path: Path) -> None:
    """SIGINT while modules import (torch's and numpy's C start-up abort or fail on an exception raised inside them:
    a stop is held back there), while torch and ultralytics load the model, and during inference."""
    video = shared_data / "tracking/demo/vtest.avi"  # 795 frames: still running at the last delay
    proc = subprocess.Popen([str(CONSOLE_SCRIPT), "detect", str(video), "-m", str(torch_model), "--device", "cpu",
                             "-q", "--json", str(tmp_path / "r.jsonl")], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL)
    time.sleep(delay)
    assert proc.poll() is None, "the run ended before the signal"
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=120)
    outcome = Outcome(proc.returncode, stdout, stderr)
    assert_one_line(outcome, 130, "visionkit: interrupted")
    if (tmp_path / "r.jsonl").exists():
        assert_jsonl_valid(tmp_path / "r.jsonl")


# -- API level: the mechanisms behind the rows above ----------------------------------------------------------
def test_writer_thread_error_is_raised_as_it_was_until_closed() -> None:
    """A sink's error in the writer thread reaches the CLI as that error (a SinkError stays one), at every later
    submit and at close, and no later call runs after it."""
    calls: list[int] = []

    def write(i: int) -> None:
        calls.append(i)
        if i == 1:
            raise SinkError("cannot write out.jsonl: No space left on device")

    worker = BackgroundWorker(write)
    worker.submit(0)
    worker.submit(1)
    deadline = time.monotonic() + 10
    while len(calls) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    for step in (lambda: worker.submit(2), worker.close):
        with pytest.raises(SinkError, match="No space left"):
            step()
    assert calls == [0, 1]


def test_an_error_that_replaced_ctrl_c_is_ctrl_c() -> None:
    """What Predictor._build and the loaders check before calling a library's failure "bad weights"."""
    try:
        try:
            raise KeyboardInterrupt
        finally:
            raise RuntimeError("partially initialized module 'torch' has no attribute 'nn'")  # noqa: B012
    except RuntimeError as error:
        with pytest.raises(KeyboardInterrupt):
            raise_if_interrupted(error)
    raise_if_interrupted(ValueError("a real failure"))  # nothing to re-raise
