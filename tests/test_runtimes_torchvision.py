"""torchvision segmenters and video classifiers on every runtime: the same network (seeded random weights made
input-dependent, tests/random_models.py) through visionkit on PyTorch, and its torch.onnx export on ONNX Runtime and
OpenVINO (fp32 forced), on real photos and a real clip. The classifiers' counterpart is in test_runtimes.py."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
import torchvision
from random_models import build_torchvision, random_video_classifier

import visionkit
from visionkit import catalog
from visionkit.cli import main
from visionkit.errors import OptionError
from visionkit.runtimes.openvino import OpenVinoRuntime

SEGMENTERS = ["lraspp_mobilenet_v3_large", "deeplabv3_mobilenet_v3_large", "deeplabv3_resnet50", "fcn_resnet50"]
IMGSZ = 160  # the shorter side: small, for the test time; the photos' aspects still give two input shapes
CLIP = "action/v_Basketball_g01_c01.avi"


@pytest.fixture(scope="module")
def photos(assets: Path) -> list[np.ndarray]:
    return [cv2.imread(str(assets / name)) for name in ("bus.jpg", "zidane.jpg")]


def _segmenter_weights(arch: str, path: Path, photos: list[np.ndarray]) -> Path:
    """Seeded random weights for a segmenter, BatchNorm calibrated on both photos through its own transforms
    (squared to one batch: the ASPP pooling branch's BatchNorm needs more than one value per channel)."""
    entry = catalog.get_entry(arch)
    transforms = torchvision.models.get_weight(entry.extra["weights_enum"]).transforms(resize_size=IMGSZ)
    squares = [cv2.resize(im, (IMGSZ, IMGSZ))[..., ::-1].transpose(2, 0, 1) for im in photos]
    calib = torch.stack([transforms(torch.from_numpy(np.ascontiguousarray(s))) for s in squares])
    aux = {"aux_loss": True} if entry.extra.get("aux_loss") else {}
    return build_torchvision(arch, path, calib, num_classes=21, weights_backbone=None, **aux)


@pytest.mark.parametrize("arch", SEGMENTERS)
def test_a_torchvision_segmenter_runs_on_every_runtime_as_on_pytorch(arch: str, photos: list[np.ndarray],
                                                                     tmp_path: Path) -> None:
    weights = _segmenter_weights(arch, tmp_path / f"{arch}.pth", photos)
    predictors = {rt: visionkit.load("segment", arch, weights=weights, device="cpu", runtime=rt, imgsz=IMGSZ)
                  for rt in ("torch", "onnx", "openvino")}
    refs = predictors["torch"](photos)  # one call: two input shapes, each run on its own
    for runtime in ("onnx", "openvino"):
        other = predictors[runtime]
        assert other.backend.session.runtime == runtime and other.backend.session.precision == "fp32"
        for image, ref in zip(photos, refs, strict=True):
            got = other(image)
            assert got.class_map.shape == image.shape[:2] and got.class_names == ref.class_names
            assert len(np.unique(ref.class_map)) >= 5, "too few classes for the comparison to prove anything"
            # argmax near-ties may flip a pixel on float noise; the probabilities themselves agree to 1e-3
            assert (got.class_map == ref.class_map).mean() >= 0.999, runtime
            np.testing.assert_allclose(got.confidence, ref.confidence, atol=1e-3)


def test_openvino_runs_a_torchvision_segmenter_in_bf16_only_when_asked(photos: list[np.ndarray],
                                                                        tmp_path: Path) -> None:
    arch = SEGMENTERS[0]
    weights = _segmenter_weights(arch, tmp_path / f"{arch}.pth", photos)
    fp32 = visionkit.load("segment", arch, weights=weights, device="cpu", runtime="openvino", imgsz=IMGSZ)
    assert fp32.backend.describe() == "OpenVINO CPU fp32"
    if "bf16" not in OpenVinoRuntime.precisions(fp32.device):
        pytest.skip("this CPU has no bf16 (OpenVINO reports no BF16 capability)")
    bf16 = visionkit.load("segment", arch, weights=weights, device="cpu", runtime="openvino", imgsz=IMGSZ,
                          precision="bf16")
    assert bf16.backend.describe() == "OpenVINO CPU bf16"
    ref, got = fp32(photos[0]), bf16(photos[0])
    # bf16 keeps 8 mantissa bits: most pixels keep their class, not all (a measure, not float noise)
    assert 0.9 < (got.class_map == ref.class_map).mean() < 1.0


def test_the_cli_segments_on_openvino_and_saves_the_overlay(photos: list[np.ndarray], assets: Path,
                                                            tmp_path: Path) -> None:
    arch = SEGMENTERS[0]
    weights = _segmenter_weights(arch, tmp_path / f"{arch}.pth", photos)
    out = tmp_path / "out"
    assert main(["segment", str(assets / "bus.jpg"), "--model", arch, "--weights", str(weights), "--runtime",
                 "openvino", "--imgsz", str(IMGSZ), "--save", str(out)]) == 0
    overlay = cv2.imread(str(out / "bus.jpg"))  # the source's name and format, as ultralytics saves
    assert overlay.shape == photos[0].shape and not np.array_equal(overlay, photos[0])


@pytest.fixture(scope="module")
def frames(shared_data: Path) -> list[np.ndarray]:
    """The first 16 frames of the real UCF101 clip, BGR."""
    cap = cv2.VideoCapture(str(shared_data / CLIP))
    out = [cap.read()[1] for _ in range(16)]
    cap.release()
    assert all(f is not None for f in out)
    return out


@pytest.mark.parametrize("arch", ["r3d_18", "r2plus1d_18", "mc3_18", "s3d"])
def test_a_torchvision_video_classifier_runs_on_every_runtime_as_on_pytorch(arch: str, frames: list[np.ndarray],
                                                                            tmp_path: Path) -> None:
    weights = random_video_classifier(arch, tmp_path / f"{arch}.pth")
    predictors = {rt: visionkit.load("action", arch, weights=weights, device="cpu", runtime=rt, window=16)
                  for rt in ("torch", "onnx", "openvino")}
    [ref] = predictors["torch"](frames)
    assert np.all(np.diff(ref.scores) < -1e-6), "top-5 scores must be apart for the ids to be compared"
    [single] = predictors["torch"](frames[0])  # one image: a clip of min_frames, another clip length (free T axis)
    for runtime in ("onnx", "openvino"):
        other = predictors[runtime]
        assert other.backend.session.runtime == runtime and other.backend.session.precision == "fp32"
        [got] = other(frames)
        np.testing.assert_array_equal(got.class_ids, ref.class_ids)
        np.testing.assert_allclose(got.scores, ref.scores, atol=1e-3)
        [one] = other(frames[0])
        np.testing.assert_array_equal(one.class_ids, single.class_ids)


def test_mvit_refuses_openvino_in_one_line(tmp_path: Path) -> None:
    """MViT's export holds ONNX sequence ops that OpenVINO cannot convert: said before anything is exported."""
    weights = tmp_path / "mvit_v2_s.pth"
    torch.save(torchvision.models.get_model("mvit_v2_s", weights=None).state_dict(), weights)
    with pytest.raises(OptionError, match=r"^runtime openvino: mvit_v2_s's ONNX export .* use runtime torch or onnx$"):
        visionkit.load("action", "mvit_v2_s", weights=weights, device="cpu", runtime="openvino").warmup()


def test_runtime_auto_times_a_torchvision_classifier_with_its_catalog_entry(photos: list[np.ndarray],
                                                                            tmp_path: Path) -> None:
    """auto builds every candidate with the model's own catalog entry (its architecture and transforms), not one
    made up from the weights file's name (a file named m.pth once read as an architecture called "m")."""
    torch.manual_seed(0)
    weights = tmp_path / "m.pth"
    torch.save(torchvision.models.get_model("mobilenet_v3_small", weights=None).state_dict(), weights)
    auto = visionkit.load("classify", "mobilenet_v3_small", weights=weights, device="cpu", runtime="auto")
    chosen = auto(photos[0])
    assert auto.runtime in ("torch", "onnx", "openvino")
    same = visionkit.load("classify", "mobilenet_v3_small", weights=weights, device="cpu", runtime=auto.runtime)
    assert chosen.class_ids.tolist() == same(photos[0]).class_ids.tolist()
