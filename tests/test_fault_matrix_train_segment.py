"""Fault matrix of `visionkit train segment` (semantic, torchvision architectures): bad pairs and bad resumes are
one line naming the file or run, the documented exit code, no run folder left behind, the data untouched."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import cv2
import pytest
from fault_harness import Fault, check_fault, run_cli
from segment_pairs import camvid_pairs

ARCH = "lraspp_mobilenet_v3_large"


@pytest.fixture(scope="module")
def pairs(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return camvid_pairs(shared_data, tmp_path_factory.mktemp("camvid") / "pairs", count=5)


@pytest.fixture(scope="module")
def run(pairs: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("run") / "lraspp"
    result = run_cli("train", "segment", "--data", pairs, "--model", ARCH, "--epochs", "1", "--batch", "4",
                     "--imgsz", "64", "--out", out)
    assert result.code == 0, result.stderr
    return out


def _copy(pairs: Path, tmp: Path) -> Path:
    return Path(shutil.copytree(pairs, tmp / "data"))


def _train(data: Path, tmp: Path, *extra: str) -> list[str | Path]:
    return ["train", "segment", "--data", data, "--model", ARCH, "--epochs", "1", "--imgsz", "64", "--out",
            tmp / "o", *extra]


def mismatched_mask_size(pairs: Path, run: Path, tmp: Path) -> Fault:
    data = _copy(pairs, tmp)
    mask = sorted((data / "labels").iterdir())[2]
    cv2.imwrite(str(mask), cv2.resize(cv2.imread(str(mask), cv2.IMREAD_UNCHANGED), (64, 48),
                                      interpolation=cv2.INTER_NEAREST))
    return Fault("mismatched-mask-size", _train(data, tmp), 1, f"{data / 'images' / mask.name} is 128x96 but its "
                 f"mask {mask} is 64x48", inputs=[data])


def label_outside_class_list(pairs: Path, run: Path, tmp: Path) -> Fault:
    data = _copy(pairs, tmp)
    mask = sorted((data / "labels").iterdir())[1]
    labels = cv2.imread(str(mask), cv2.IMREAD_UNCHANGED)
    labels[:4, :4] = 40
    cv2.imwrite(str(mask), labels)
    return Fault("label-outside-class-list", _train(data, tmp), 1, f"{mask}: label id(s) 40 are outside the class "
                 "list (11 classes", inputs=[data])


def image_without_mask(pairs: Path, run: Path, tmp: Path) -> Fault:
    data = _copy(pairs, tmp)
    mask = sorted((data / "labels").iterdir())[0]
    mask.unlink()
    return Fault("image-without-mask", _train(data, tmp), 1, f"{data / 'images' / mask.name}: no mask for it",
                 inputs=[data])


def too_few_pairs(pairs: Path, run: Path, tmp: Path) -> Fault:
    data = _copy(pairs, tmp)
    for image in sorted((data / "images").iterdir())[:2]:
        image.unlink()
    return Fault("too-few-pairs", _train(data, tmp), 1, "no readable image/mask pairs for the val split",
                 inputs=[data])


def unknown_architecture(pairs: Path, run: Path, tmp: Path) -> Fault:
    return Fault("unknown-architecture", ["train", "segment", "--data", pairs, "--model", "lraspp_resnet9",
                                          "--out", tmp / "o"], 2,
                 "unknown semantic segmentation architecture 'lraspp_resnet9'", inputs=[pairs])


def resume_other_architecture(pairs: Path, run: Path, tmp: Path) -> Fault:
    return Fault("resume-other-architecture", ["train", "segment", "--data", pairs, "--model",
                                               "deeplabv3_mobilenet_v3_large", "--out", run, "--resume"], 2,
                 "was trained with architecture 'lraspp_mobilenet_v3_large', not 'deeplabv3_mobilenet_v3_large'",
                 inputs=[pairs, run])


def resume_as_classify(pairs: Path, run: Path, tmp: Path) -> Fault:
    return Fault("resume-as-classify", ["train", "classify", "--out", run, "--resume"], 2,
                 f"{run} is a segment run, not classify", inputs=[pairs, run])


CASES: list[Callable[[Path, Path, Path], Fault]] = [
    mismatched_mask_size, label_outside_class_list, image_without_mask, too_few_pairs, unknown_architecture,
    resume_other_architecture, resume_as_classify]


@pytest.mark.parametrize("case", CASES, ids=[c.__name__ for c in CASES])
def test_fault(case: Callable[[Path, Path, Path], Fault], pairs: Path, run: Path, tmp_path: Path) -> None:
    check_fault(case(pairs, run, tmp_path))
    assert not (tmp_path / "o").exists(), "a refused run must not leave a run folder behind"


def test_a_yolo_model_still_trains_instances_through_ultralytics(pairs: Path, tmp_path: Path) -> None:
    """A .yaml model routes `train segment` to ultralytics' trainer, which wants a data YAML or COCO folder."""
    check_fault(Fault("yolo-model-on-mask-pairs", ["train", "segment", "--data", pairs, "--model", "yolov8n-seg.yaml",
                                                   "--out", tmp_path / "o"], 1,
                      "expected an ultralytics data .yaml, or a COCO folder", inputs=[pairs]))
