"""`visionkit models --info`: parameter counts and GFLOPs agree with what torchvision publishes in its weights enums,
and training runs, ultralytics checkpoints and ONNX files are summarised too."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torchvision
from fault_harness import run_cli

from visionkit.summary import summarize


@pytest.mark.parametrize("name", ["resnet18", "mobilenet_v3_large"])
def test_counts_match_torchvision_published_meta(name: str) -> None:
    meta = torchvision.models.get_model_weights(name).DEFAULT.meta
    summary = summarize(name)
    assert summary.params == meta["num_params"] and summary.trainable == meta["num_params"]
    assert round(summary.gmacs, 3) == meta["_ops"]  # torchvision's "GFLOPS" (3 decimals in its meta)
    assert summary.input_shape == (1, 3, 224, 224) and summary.output == "(1, 1000)"


def test_imgsz_scales_the_flops_not_the_parameters() -> None:
    small, large = summarize("resnet18"), summarize("resnet18", imgsz=448)
    assert small.params == large.params and large.gmacs == pytest.approx(4 * small.gmacs, rel=0.01)
    assert large.input_shape == (1, 3, 448, 448)


def test_cli_prints_the_layer_table_and_totals() -> None:
    out = run_cli("models", "--info", "lenet5")
    assert out.code == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].split() == ["LAYER", "TYPE", "OUTPUT", "SHAPE", "PARAMS"]
    assert any(line.split()[:2] == ["features.0", "Conv2d"] and line.endswith("156") for line in lines)
    assert "parameters: 61,706 total, 61,706 trainable" in out.stdout and "input: (1, 1, 32, 32)" in out.stdout


def test_ultralytics_yaml_matches_ultralytics_own_count() -> None:
    summary = summarize("yolov8n")  # no weights here: built from yolov8n.yaml
    assert summary.params == 3_157_200
    assert round(2 * summary.gmacs, 1) == 8.7  # ultralytics' published 8.7 GFLOPs (it counts 2 per MAC)


def test_a_weights_file_reports_size_and_hash(shared_weights: Path) -> None:
    from visionkit.weights import sha256_of

    path = shared_weights / "mobilenet_v2_1.0_224_quant.onnx"
    summary = summarize(str(path))
    assert summary.file_size == path.stat().st_size and summary.sha256 == sha256_of(path)
    assert summary.params > 3_000_000 and summary.gmacs is None and summary.input_shape[1:] == (224, 224, 3)


def test_a_training_run_is_summarised_from_its_card(tmp_path: Path) -> None:
    from visionkit.training.architectures import build, input_spec
    from visionkit.training.card import ModelCard

    spec = input_spec("mlp")
    torch.save(build("mlp", 3, spec).state_dict(), tmp_path / "best.pth")
    ModelCard("classify", "mlp", ["a", "b", "c"], {"size": 8, "channels": 1, "mean": [0.5], "std": [0.5]}).save(
        tmp_path)
    summary = summarize(str(tmp_path))
    assert summary.output == "(1, 3)" and summary.file == tmp_path / "best.pth"
    assert summary.params == 64 * 128 + 128 + 128 * 128 + 128 + 128 * 3 + 3


def test_unknown_model_is_one_line() -> None:
    out = run_cli("models", "--info", "resnet181")
    assert out.code == 2 and out.stderr.startswith("visionkit: error: unknown model 'resnet181'"), out.stderr
