"""`visionkit train segment` with a torchvision architecture: visionkit's own loop on CamVid image/mask pairs, mIoU
per epoch on the held-back pairs, and the run folder loading as a semantic segmentation model."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from fault_harness import interrupt_at_line, run_cli
from segment_pairs import SIZE, camvid_pairs

import visionkit
from visionkit.eval.segmentation import CAMVID_CLASSES
from visionkit.results import SemanticMask
from visionkit.training import train
from visionkit.training.segdata import load_segment_data

ARCH = "lraspp_mobilenet_v3_large"


@pytest.fixture(scope="module")
def pairs(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return camvid_pairs(shared_data, tmp_path_factory.mktemp("camvid") / "pairs")


@pytest.fixture(scope="module")
def seg_run(pairs: Path, tmp_path_factory: pytest.TempPathFactory) -> visionkit.training.TrainResult:
    out = tmp_path_factory.mktemp("runs") / "lraspp"
    return train("segment", pairs, ARCH, epochs=2, batch=3, imgsz=128, out=out, progress=False)


def test_every_fifth_pair_is_held_back_and_unlabelled_is_ignored(pairs: Path) -> None:
    data = load_segment_data(pairs)
    assert data.classes == list(CAMVID_CLASSES)
    assert (len(data.splits["train"]), len(data.splits["val"])) == (6, 1)
    assert data.splits["val"][0][0].name == sorted(p.name for p in (pairs / "images").iterdir())[4]
    assert data.summary()["ignored_ids"] == [11, 255]


def test_loss_falls_and_miou_is_in_metrics_and_card(seg_run: visionkit.training.TrainResult) -> None:
    run = seg_run.run_dir
    with open(run / "metrics.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["epoch"]) for r in rows] == [1, 2]
    assert float(rows[1]["train_loss"]) < float(rows[0]["train_loss"])
    assert all(0 <= float(r["val_miou"]) <= 1 and 0 <= float(r["train_pixel_acc"]) <= 1 for r in rows)
    card = json.loads((run / "card.json").read_text())
    assert card["task"] == "segment" and card["architecture"] == ARCH and card["classes"] == list(CAMVID_CLASSES)
    metrics = card["metrics"]
    assert metrics["val_miou"] == round(max(float(r["val_miou"]) for r in rows), 4)
    assert metrics["val_miou"] > 0  # the eval-mode network predicts more than one class (BatchNorm recalibrated)
    assert metrics["scored_split"] == "val" and metrics["val_images"] == 1
    assert set(metrics["val_iou"]) <= set(CAMVID_CLASSES)
    assert card["hyperparameters"]["loss"] == "CrossEntropyLoss(ignore_index=255)"
    best = torch.load(run / "best.pth", weights_only=True)
    assert all(isinstance(v, torch.Tensor) for v in best.values())
    assert torch.load(run / "last.pth", weights_only=True)["epoch"] == 2
    matrix = np.array(json.loads((run / "confusion_matrix.json").read_text())["matrix"])
    assert matrix.shape == (11, 11) and matrix.sum() > 0.5 * SIZE[0] * SIZE[1]  # labelled pixels of the val pair
    for picture in ("curves.png", "confusion_matrix.png"):
        assert cv2.imread(str(run / picture)) is not None


def test_the_run_loads_as_a_semantic_segmenter(seg_run: visionkit.training.TrainResult, shared_data: Path) -> None:
    image = sorted((shared_data / "camvid" / "images").iterdir())[0]
    result = visionkit.load("segment", seg_run.run_dir)(image)
    assert isinstance(result, SemanticMask)
    assert result.class_map.shape == (360, 480)  # source size, not the 128x128 input
    assert result.class_names == list(CAMVID_CLASSES) and int(result.class_map.max()) < 11


def test_cli_trains_semantic_and_names_the_miou(pairs: Path, tmp_path: Path) -> None:
    out = run_cli("train", "segment", "--data", pairs, "--model", ARCH, "--epochs", "1", "--batch", "6",
                  "--imgsz", "96", "--out", tmp_path / "run")
    assert out.code == 0, out.stderr
    assert f"{ARCH}: val mIoU " in out.stdout and "(use it as --model" in out.stdout
    assert json.loads((tmp_path / "run" / "card.json").read_text())["input"]["size"] == 96


def test_ctrl_c_saves_last_and_resume_continues_exactly(pairs: Path, tmp_path: Path) -> None:
    """The shared loop's exact resume holds for segmentation too: its flips come from the saved RNG state."""
    common = ["train", "segment", "--data", pairs, "--model", ARCH, "--epochs", "2", "--batch", "1", "--imgsz", "64"]
    straight = run_cli(*common, "--out", tmp_path / "straight")
    assert straight.code == 0, straight.stderr

    interrupted = tmp_path / "interrupted"
    stopped_run = interrupt_at_line(*common, "--out", interrupted, prefix="epoch 1/2")  # in the second epoch
    rest = stopped_run.stderr
    assert stopped_run.code == 130, rest
    assert "visionkit train segment --data" in rest and "Traceback" not in rest, rest
    assert 1 <= torch.load(interrupted / "last.pth", weights_only=True)["epoch"] < 2

    resumed = run_cli(*common, "--out", interrupted, "--resume")
    assert resumed.code == 0, resumed.stderr
    a = torch.load(tmp_path / "straight" / "last.pth", weights_only=True)["model"]
    b = torch.load(interrupted / "last.pth", weights_only=True)["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)
