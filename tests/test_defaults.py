"""Day-one defaults: the model that runs when none is named (the catalog default, or offline the best local model,
said in one line), what `track` and `action` run on without a SOURCE (a clip, not a still photo), and
`visionkit models --task track` (the detectors tracking runs, and the trackers)."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import cv2
import pytest
from fault_harness import assert_jsonl_valid, assert_one_line, run_cli

import visionkit
from visionkit.cli import main
from visionkit.composites.person_pose import default_person_detector
from visionkit.defaults import best_local, usable_default
from visionkit.io.samples import CLIP_FRAMES, CLIP_SIZE, sample_clip


@pytest.fixture
def shared_env(shared_weights: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("VISIONKIT_WEIGHTS", str(shared_weights))
    return shared_weights


# -- models --task track -----------------------------------------------------------------------------------
def test_models_task_track_lists_the_detectors_and_the_trackers(shared_env: Path, capsys) -> None:
    assert main(["models", "--task", "track"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert any(line.startswith("yolo11n *") and " detect " in line for line in lines)
    assert any(line.startswith("yolov5n ") and line.split()[4] == "local" for line in lines)
    assert any(line.startswith("bytetrack *") for line in lines) and any(line.startswith("botsort ") for line in lines)

    assert main(["models", "--task", "track", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    detectors = [e.name for e in visionkit.list_models("detect")]
    assert [e["name"] for e in listed] == [*detectors, "bytetrack", "botsort"]
    bytetrack = listed[-2]
    assert bytetrack["task"] == "track" and bytetrack["default"] is True and bytetrack["settings"]["track_buffer"] == 30


def _help(capsys, command: str) -> str:
    with pytest.raises(SystemExit):
        main([command, "--help"])
    return " ".join(capsys.readouterr().out.split())


def test_track_and_action_help_name_a_clip_as_their_default_source(capsys) -> None:
    for command in ("track", "action"):
        text = _help(capsys, command)
        assert "(default: a built-in 3 s clip panning across the sample photo bus.jpg" in text, text
        assert "default: the built-in sample photo" not in text
    assert "(default: the built-in sample photo bus.jpg)" in _help(capsys, "detect")


def test_the_sample_clip_is_made_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VISIONKIT_CACHE", str(tmp_path))
    clip = sample_clip()
    assert clip == tmp_path / "samples" / "bus_pan.avi"
    cap = cv2.VideoCapture(str(clip))
    frames = []
    while (read := cap.read())[0]:
        frames.append(read[1])
    cap.release()
    assert len(frames) == CLIP_FRAMES and frames[0].shape == (CLIP_SIZE[1], CLIP_SIZE[0], 3)
    assert cv2.absdiff(frames[0], frames[-1]).mean() > 20  # the camera moves: the first and last views differ
    made = clip.stat().st_mtime_ns
    assert sample_clip() == clip and clip.stat().st_mtime_ns == made
    assert [p.name for p in clip.parent.iterdir()] == ["bus_pan.avi"]  # no partial file left beside it


def test_track_without_source_tracks_the_clip(shared_env: Path, tmp_path: Path) -> None:
    out = tmp_path / "tracks.jsonl"
    run = run_cli("track", "--model", "ssd_mobilenet_v1_coco", "--json", out,
                  env={"VISIONKIT_CACHE": str(tmp_path / "cache")})
    assert run.code == 0, run.stderr
    assert f"no SOURCE given: running on the built-in sample {tmp_path / 'cache' / 'samples' / 'bus_pan.avi'}" \
        in run.stderr
    records = assert_jsonl_valid(out)
    assert len(records) == CLIP_FRAMES
    ids = {d["track_id"] for r in records for d in r["detections"]}
    assert ids and all(isinstance(i, int) for i in ids)


# -- the default model offline -----------------------------------------------------------------------------
@pytest.mark.parametrize(("task", "local"), [("detect", "yolov5n"), ("classify", "mobilenet_v2_quant"),
                                             ("pose", "movenet_lightning"), ("segment", "deeplabv3_mnv2_257")])
def test_offline_the_default_falls_back_to_the_best_local_model(shared_env: Path, caplog, task: str,
                                                                local: str) -> None:
    default = visionkit.catalog.default_model(task)
    with caplog.at_level(logging.WARNING, logger="visionkit"):
        predictor = visionkit.load(task)
    entry = getattr(predictor, "pose", predictor).entry  # pose: the single-person model runs on detector boxes
    assert entry.name == local
    assert [r.getMessage() for r in caplog.records] == [
        f"the default {task} model {default.name} cannot be had (offline: VISIONKIT_OFFLINE is set): using {local}, "
        f"the best {task} model whose weights are here"]


def test_best_local_ranks_by_the_defaults_published_figure(shared_env: Path) -> None:
    assert best_local("detect").name == "yolov5n"  # COCO box mAP 28.0, before SSD's 18.0 and the unscored ones
    assert best_local("detect", lambda e: e.classes == "coco91").name == "ssd_mobilenet_v1_coco"
    assert best_local("pose").name == "movenet_lightning"  # COCO keypoints, as the default's; BlazePose has 33
    assert default_person_detector() == "yolov5n"


def test_a_local_or_named_default_is_kept(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog,
                                          shared_weights: Path) -> None:
    """The default's own file here (its name is what is looked up; nothing is loaded): no fallback, no warning;
    a weights file given for the default architecture is not replaced either."""
    (tmp_path / visionkit.catalog.default_model("detect").file).touch()
    monkeypatch.setenv("VISIONKIT_WEIGHTS", f"{tmp_path}:{shared_weights}")
    with caplog.at_level(logging.WARNING, logger="visionkit"):
        assert usable_default("detect").name == "yolo11n"
    monkeypatch.setenv("VISIONKIT_WEIGHTS", str(shared_weights))
    with caplog.at_level(logging.WARNING, logger="visionkit"):
        named = visionkit.Predictor("detect", None, weights=tmp_path / "yolo11n.pt")
    assert named.entry.name == "yolo11n" and not caplog.records


def test_cli_offline_says_so_in_one_line_and_runs_the_local_model(shared_env: Path, assets: Path,
                                                                   tmp_path: Path) -> None:
    out = tmp_path / "d.jsonl"
    run = run_cli("detect", assets / "bus.jpg", "--json", out)
    assert run.code == 0, run.stderr
    warnings = [line for line in run.stderr_lines if line.startswith("visionkit: WARNING")]
    assert warnings == ["visionkit: WARNING: the default detect model yolo11n cannot be had (offline: "
                        "VISIONKIT_OFFLINE is set): using yolov5n, the best detect model whose weights are here"]
    record = assert_jsonl_valid(out)[0]
    assert record["model"] == "yolov5n" and "person" in {d["class_name"] for d in record["detections"]}


@pytest.mark.parametrize("task", ["detect", "classify"])
def test_cli_offline_with_no_local_model_names_the_file_and_the_folder(task: str, assets: Path,
                                                                       tmp_path: Path) -> None:
    empty = tmp_path / "weights"
    empty.mkdir()
    file = visionkit.catalog.default_model(task).file
    run = run_cli(task, assets / "bus.jpg", env={"VISIONKIT_WEIGHTS": str(empty)})
    assert_one_line(run, 1, f"{file} not found locally and VISIONKIT_OFFLINE is set: put {file} in a folder named "
                            f"by VISIONKIT_WEIGHTS (now: {empty})")
