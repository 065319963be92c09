"""Fault matrix of `visionkit train`: bad data and bad resumes are one line, the documented exit code, and nothing
already written (data, an existing run) is changed. A corrupt image inside the training set is skipped and counted."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from fault_harness import Fault, check_fault, run_cli

from visionkit.training.data import export_digits

CLASSES = ("0", "1", "2")


@pytest.fixture(scope="module")
def mini(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 3-class ImageFolder cut from the digits: 8 train and 3 val images per class."""
    digits = export_digits(tmp_path_factory.mktemp("digits") / "digits")
    root = tmp_path_factory.mktemp("mini") / "data"
    for split, count in (("train", 8), ("val", 3)):
        for name in CLASSES:
            (root / split / name).mkdir(parents=True)
            for image in sorted((digits / split / name).iterdir())[:count]:
                shutil.copy(image, root / split / name / image.name)
    return root


@pytest.fixture(scope="module")
def run(mini: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("run") / "mlp"
    result = run_cli("train", "classify", "--data", mini, "--model", "mlp", "--epochs", "1", "--out", out)
    assert result.code == 0, result.stderr
    return out


def _copy(mini: Path, tmp: Path) -> Path:
    return Path(shutil.copytree(mini, tmp / "data"))


def empty_class_folder(mini: Path, run: Path, tmp: Path) -> Fault:
    data = _copy(mini, tmp)
    (data / "train" / "3").mkdir()
    return Fault("empty-class-folder", ["train", "classify", "--data", data, "--model", "mlp", "--out", tmp / "o"],
                 1, "empty class folder", inputs=[data])


def label_outside_class_list(mini: Path, run: Path, tmp: Path) -> Fault:
    data = _copy(mini, tmp)
    (data / "classes.txt").write_text("\n".join(CLASSES) + "\n")
    rows = [f"train/{c}/{f.name},{c}" for c in CLASSES for f in sorted((data / "train" / c).iterdir())]
    rows[4] = rows[4].rsplit(",", 1)[0] + ",7"
    (data / "labels.csv").write_text("file,class_index\n" + "\n".join(rows) + "\n")
    return Fault("label-outside-class-list", ["train", "classify", "--data", data / "labels.csv", "--model", "mlp",
                                              "--out", tmp / "o"], 1, "labels.csv:6: class_index 7 is outside",
                 inputs=[data])


def resume_other_architecture(mini: Path, run: Path, tmp: Path) -> Fault:
    return Fault("resume-other-architecture", ["train", "classify", "--data", mini, "--model", "lenet5", "--out", run,
                                               "--resume"], 2, "was trained with architecture 'mlp', not 'lenet5'",
                 inputs=[mini, run])


def resume_nothing(mini: Path, run: Path, tmp: Path) -> Fault:
    (tmp / "empty").mkdir()
    return Fault("resume-nothing", ["train", "classify", "--out", tmp / "empty", "--resume"], 2,
                 "holds no run to continue", inputs=[mini])


def out_holds_a_run(mini: Path, run: Path, tmp: Path) -> Fault:
    return Fault("out-holds-a-run", ["train", "classify", "--data", mini, "--model", "mlp", "--out", run], 2,
                 "already holds files", inputs=[mini, run])


def no_val_split(mini: Path, run: Path, tmp: Path) -> Fault:
    data = _copy(mini, tmp)
    shutil.rmtree(data / "val")
    return Fault("no-val-split", ["train", "classify", "--data", data, "--model", "mlp", "--out", tmp / "o"], 1,
                 "expected train/ and val/", inputs=[data])


def unknown_architecture(mini: Path, run: Path, tmp: Path) -> Fault:
    return Fault("unknown-architecture", ["train", "classify", "--data", mini, "--model", "lenet6", "--out",
                                          tmp / "o"], 2, "unknown classification architecture 'lenet6'",
                 inputs=[mini])


CASES: list[Callable[[Path, Path, Path], Fault]] = [
    empty_class_folder, label_outside_class_list, resume_other_architecture, resume_nothing, out_holds_a_run,
    no_val_split, unknown_architecture]


@pytest.mark.parametrize("case", CASES, ids=[c.__name__ for c in CASES])
def test_fault(case: Callable[[Path, Path, Path], Fault], mini: Path, run: Path, tmp_path: Path) -> None:
    fault = case(mini, run, tmp_path)
    check_fault(fault)
    assert not (tmp_path / "o").exists(), "a refused run must not leave a run folder behind"


def test_a_corrupt_training_image_is_skipped_and_counted(mini: Path, tmp_path: Path) -> None:
    data = _copy(mini, tmp_path)
    bad = data / "train" / "1" / "corrupt.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n not really a png")
    out = run_cli("train", "classify", "--data", data, "--model", "mlp", "--epochs", "1", "--out", tmp_path / "run")
    assert out.code == 0 and "Traceback" not in out.stderr, out.stderr
    warnings = [line for line in out.stderr_lines if line.startswith("visionkit: warning")]
    assert warnings == [f"visionkit: warning: skipped 1 unreadable image(s) (e.g. {bad})"]
    card = json.loads((tmp_path / "run" / "card.json").read_text())
    assert card["data"]["skipped"] == [str(bad)] and card["data"]["train"] == 24
