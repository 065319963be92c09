"""visionkit's attacks: parity with torchattacks, accuracy falling with eps (eps 0 = the clean score exactly), a
targeted attack reaching its target, the detector vanishing attack on the real yolov5n, and the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from digits_model import digit_images, gray, train, write_folder

import visionkit
from visionkit.cli import main
from visionkit.eval.classify import evaluate_classifier
from visionkit.interpret.attack import attack_report, classifier_attack, parse_eps
from visionkit.interpret.differentiable import differentiable


@pytest.fixture(scope="module")
def digits(tmp_path_factory: pytest.TempPathFactory) -> tuple[visionkit.Predictor, Path]:
    root = tmp_path_factory.mktemp("digits")
    images, labels = digit_images()
    weights = train(root / "tiny.digits", images[:1000], labels[:1000], epochs=4)
    return visionkit.Predictor("classify", weights, device="cpu"), write_folder(root / "data", images[1500:1530],
                                                                                labels[1500:1530])


def test_fgsm_equals_torchattacks_on_the_same_input(digits: tuple[visionkit.Predictor, Path]) -> None:
    import torchattacks

    predictor, data = digits
    image, label = digit_images()[0][1600], int(digit_images()[1][1600])
    ours = classifier_attack(differentiable(predictor), image, label, "fgsm", 16 / 255, steps=1)
    net = torch.nn.Sequential(torch.nn.Module(), predictor.backend.model)
    net[0].forward = gray  # the backend's preprocessing, written independently of visionkit's Differentiable
    x = torch.from_numpy(image[..., ::-1].transpose(2, 0, 1).astype(np.float32)[None] / 255)
    direct = torchattacks.FGSM(net, eps=16 / 255)(x, torch.tensor([label]))
    direct_bgr = (direct[0].numpy() * 255).round().astype(np.uint8).transpose(1, 2, 0)[..., ::-1]
    assert not np.array_equal(ours, image)
    np.testing.assert_array_equal(ours, direct_bgr)


def test_fgsm_curve_falls_and_eps0_is_the_clean_score(digits: tuple[visionkit.Predictor, Path],
                                                      tmp_path: Path) -> None:
    predictor, data = digits
    report = attack_report(predictor, data, "fgsm", [16 / 255, 48 / 255], transforms=["jpeg:75"], save=tmp_path,
                           triptychs=1)
    clean = evaluate_classifier(predictor, data / "images", data / "labels.csv")
    assert report.eps == [0.0, 16 / 255, 48 / 255]
    assert report.clean == clean.top1_rate >= 0.8
    top1 = report.scores["none"]
    assert top1[0] > top1[1] > top1[2] and top1[2] <= top1[0] - 0.4
    assert set(report.scores) == {"none", "jpeg:75"}
    saved = json.loads((tmp_path / "report.json").read_text())
    assert saved["clean"] == round(clean.top1_rate, 4) and saved["metric"] == "top1"
    assert (tmp_path / "curve.png").stat().st_size > 10_000 and len(report.triptychs) == 1
    assert Path(report.triptychs[0]).is_file()


def test_targeted_pgd_reaches_its_target_on_most_images(digits: tuple[visionkit.Predictor, Path]) -> None:
    predictor, data = digits
    report = attack_report(predictor, data, "pgd", [64 / 255], steps=8, targeted="3", limit=15)
    assert report.target_rates is not None
    clean, attacked = report.target_rates  # clean: the images already called 3 (mostly the true 3s)
    assert attacked >= 0.6 and attacked >= clean + 0.3, report.target_rates


def test_eps_parsing_adds_zero_and_rejects_garbage() -> None:
    assert parse_eps("2/255,1/255") == [0.0, 1 / 255, 2 / 255]
    with pytest.raises(visionkit.OptionError, match="2/255"):
        parse_eps("two")


@pytest.mark.needs_shared
def test_vanishing_pgd_lowers_yolov5n_map_on_coco(shared_data: Path, shared_weights: Path, tmp_path: Path) -> None:
    predictor = visionkit.Predictor("detect", "yolov5n", device="cpu", evaluate=True)
    report = attack_report(predictor, shared_data / "coco_val2017", "pgd", [8 / 255], steps=2, limit=2,
                           save=tmp_path, triptychs=1)
    assert report.metric == "map50-95"
    assert report.scores["none"][0] > 0.2
    assert report.scores["none"][1] < report.scores["none"][0] / 2


def test_attack_cli_writes_table_report_and_curve(digits: tuple[visionkit.Predictor, Path], tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    predictor, data = digits
    code = main(["attack", "classify", str(data), "--model", str(predictor.weights_arg), "--device", "cpu",
                 "--eps", "32/255", "--limit", "8", "--triptychs", "1", "--save", str(tmp_path)])
    out = capsys.readouterr().out
    assert code == 0
    assert "eps (x/255)" in out and "32.00" in out
    assert json.loads((tmp_path / "report.json").read_text())["images"] == 8
    assert (tmp_path / "curve.png").is_file()


def test_attack_cli_refuses_a_quantized_model_in_one_line(shared_data: Path, shared_weights: Path,
                                                          capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code = main(["attack", "classify", str(shared_data / "imagenet_sample"), "--model", "mobilenet_v2_quant",
                 "--device", "cpu", "--limit", "1", "--save", str(tmp_path)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1
    assert "gradient-free" in err[0] and "mobilenet_v2_quant" in err[0]
