"""`visionkit train detect` through ultralytics' own trainer on the shared COCO images (converted to YOLO labels by
ultralytics' convert_coco): the run folder detects and scores through visionkit, an interrupted run continues where
it stopped, and a finished run is not resumed."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from fault_harness import assert_one_line, interrupt_at_line, run_cli


def test_yolov8n_yaml_trains_on_coco_and_its_run_detects(shared_data: Path, tmp_path: Path) -> None:
    coco = shared_data / "coco_val2017"
    run = tmp_path / "yolo"
    out = run_cli("train", "detect", "--data", coco, "--model", "yolov8n.yaml", "--epochs", "2", "--imgsz", "160",
                  "--batch", "8", "--out", run, timeout=900)
    assert out.code == 0, out.stderr
    assert (run / "weights" / "best.pt").is_file() and (run / "weights" / "last.pt").is_file()
    with open(run / "results.csv", newline="") as f:
        assert len(list(csv.DictReader(f))) == 2
    card = json.loads((run / "card.json").read_text())
    assert card["task"] == "detect" and card["classes"][0] == "person" and card["metrics"]["epochs_done"] == 2
    assert len(list((run / "dataset" / "labels" / "train").glob("*.txt"))) == 40

    image = coco / "images" / "000000000139.jpg"
    detect = run_cli("detect", image, "--model", run, "--conf", "0.001", "--json", tmp_path / "d.jsonl")
    assert detect.code == 0, detect.stderr
    assert json.loads((tmp_path / "d.jsonl").read_text())["model"] == "yolo"
    scored = run_cli("eval", "detect", "--model", run / "weights" / "best.pt", "--images", coco / "images",
                     "--annotations", coco / "annotations" / "instances_val2017.json", "--json", tmp_path / "s.json")
    assert scored.code == 0, scored.stderr
    assert json.loads((tmp_path / "s.json").read_text())["images"] == 40

    again = run_cli("train", "detect", "--out", run, "--resume")
    assert_one_line(again, 2, "finished its 2 epoch(s); nothing to resume")


def test_ctrl_c_keeps_the_saved_epoch_and_resume_continues_after_it(coco_subset: Path, tmp_path: Path) -> None:
    run = tmp_path / "yolo"
    stopped = interrupt_at_line("train", "detect", "--data", coco_subset, "--model", "yolov8n.yaml", "--epochs", "3",
                                "--imgsz", "64", "--batch", "8", "--out", run, prefix="epoch 1/3")  # during epoch 2
    assert stopped.code == 130, stopped.stderr
    assert "Traceback" not in stopped.stderr, stopped.stderr
    assert stopped.stderr.strip().splitlines() == [
        f"visionkit: interrupted: {run / 'weights' / 'last.pt'} holds the last finished epoch: continue with "
        f"`visionkit train detect --out {run} --resume`"]
    assert (run / "weights" / "last.pt").is_file()
    with open(run / "results.csv", newline="") as f:
        assert [int(float(row["epoch"])) for row in csv.DictReader(f)] == [1]

    resumed = run_cli("train", "detect", "--out", run, "--resume")
    assert resumed.code == 0, resumed.stderr
    assert [line.split(":")[0] for line in resumed.stderr.splitlines()] == ["epoch 2/3", "epoch 3/3"]
    with open(run / "results.csv", newline="") as f:
        assert [int(float(row["epoch"])) for row in csv.DictReader(f)] == [1, 2, 3]
    assert json.loads((run / "card.json").read_text())["metrics"]["epochs_done"] == 3

    detect = run_cli("detect", coco_subset / "images", "--model", run / "weights" / "best.pt", "--conf", "0.001",
                     "--json", tmp_path / "d.jsonl")
    assert detect.code == 0, detect.stderr
    assert len((tmp_path / "d.jsonl").read_text().splitlines()) == 8
