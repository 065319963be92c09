"""Segmentation: parity with torchvision and ultralytics, DeepLab accuracy on CamVid and COCO->VOC, CLI, bad inputs.

Parity uses seeded random weights made image-dependent (BatchNorm calibrated on real photos, see
test_parity_detect.py), because no official torchvision or YOLO-seg weights exist offline:

* torchvision: visionkit's class map equals the argmax of ``model(weights_enum.transforms()(image))["out"]``.
  On an image whose shorter side is already 520 (the transforms leave it as is) that compares at the model's
  output resolution; on bus.jpg (810x1080) the reference logits are upsampled to the source with
  ``F.interpolate(mode="bilinear")``, the step visionkit performs in strips.
* ultralytics: boxes, scores, classes and masks equal ``YOLO(pt).predict()``'s, the masks scaled to the source
  the way ultralytics draws them.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from random_models import build_yolo, calibrate_bn
from test_cli import jsonl, run
from test_parity_detect import assert_same_as_ultralytics

import visionkit
from visionkit import catalog
from visionkit.eval.segmentation import (
    IGNORE_INDEX,
    ConfusionMatrix,
    coco_voc_target,
    evaluate_camvid,
    evaluate_coco_voc,
)
from visionkit.results import Detections, SemanticMask

TV_ARCHS = ("lraspp_mobilenet_v3_large", "deeplabv3_mobilenet_v3_large")
SEG_CONF, SEG_IOU = 0.1, 0.6
CAMVID_TOLERANCE = 0.02
# Measured here by visionkit (no upstream figure exists for this 40-image subset): a regression guard.
COCO_VOC_MIOU_257 = 0.287


def _rgb_tensor(image_bgr: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(image_bgr[..., ::-1])).permute(2, 0, 1)


def _deeplab(model: str = "deeplabv3_mnv2_257", **options: Any) -> visionkit.Predictor:
    return visionkit.load("segment", model, device="cpu", **options)


# ------------------------------------------------------------------------------------------------ fixtures
@pytest.fixture(scope="module")
def bus(assets: Path) -> np.ndarray:
    return cv2.imread(str(assets / "bus.jpg"))


@pytest.fixture(scope="module")
def predictor_257(shared_weights: Path) -> visionkit.Predictor:
    return _deeplab()


@pytest.fixture(scope="module", params=TV_ARCHS)
def tv_model(request: pytest.FixtureRequest, bus: np.ndarray,
             tmp_path_factory: pytest.TempPathFactory) -> tuple[str, torch.nn.Module, Path]:
    """(arch, reference model, its state dict file) with random weights calibrated on bus.jpg. The DeepLab state
    dict keeps the auxiliary head, as torchvision's official file does."""
    import torchvision

    arch = request.param
    entry = catalog.get_entry(arch)
    torch.manual_seed(0)
    aux = {"aux_loss": True} if entry.extra.get("aux_loss") else {}
    model = torchvision.models.get_model(arch, weights=None, weights_backbone=None, num_classes=21, **aux)
    x = torchvision.models.get_weight(entry.extra["weights_enum"]).transforms()(_rgb_tensor(bus))
    calibrate_bn(model, lambda: model(torch.stack([x, x.flip(2)])))  # ASPP pooling needs a batch of 2 in train
    path = tmp_path_factory.mktemp("tv-seg") / f"{arch}-random.pth"
    torch.save(model.state_dict(), path)
    return arch, model, path


@pytest.fixture(scope="module", params=["yolov8n-seg.yaml", "yolo11n-seg.yaml"], ids=["yolov8n-seg", "yolo11n-seg"])
def seg_checkpoint(request: pytest.FixtureRequest, assets: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    calib = [cv2.imread(str(assets / n)) for n in ("bus.jpg", "zidane.jpg")]
    return build_yolo(request.param, tmp_path_factory.mktemp("seg-yolo") / request.param.replace(".yaml", ".pt"),
                      calib)


# ------------------------------------------------------------------------------------------------ catalog
def test_catalog_rows_are_the_torchvision_weights() -> None:
    """URL, classes, input size and published metrics of each torchvision row come from its weights enum."""
    import torchvision

    rows = [e for e in catalog.list_models("segment") if e.backend == "torchvision"]
    assert {e.name for e in rows} == {*TV_ARCHS, "deeplabv3_resnet50", "fcn_resnet50"}
    for entry in rows:
        weights = torchvision.models.get_weight(entry.extra["weights_enum"])
        assert entry.url == weights.url
        assert entry.class_names == weights.meta["categories"]
        assert entry.input_size == weights.transforms().resize_size[0]
        assert entry.metrics["COCO-val2017-VOC-labels"] == weights.meta["_metrics"]["COCO-val2017-VOC-labels"]
    assert catalog.default_model("segment").name == "lraspp_mobilenet_v3_large"


# ------------------------------------------------------------------------------------- torchvision parity
def _assert_same_class_map(got: SemanticMask, logits: torch.Tensor) -> None:
    """``got`` is the argmax / softmax max of ``logits`` (C, H, W); a differing pixel must be a float near-tie."""
    ref = logits.argmax(0).numpy()
    assert got.class_map.shape == ref.shape
    differ = got.class_map != ref
    top2 = logits.topk(2, dim=0).values.numpy()
    assert (top2[0] - top2[1])[differ].max(initial=0) < 1e-4, "pixels differ beyond float rounding"
    assert differ.mean() < 1e-4
    np.testing.assert_allclose(got.confidence, logits.softmax(0).amax(0).numpy(), atol=1e-4)
    assert len(np.unique(ref)) >= 3, "the random model must give a varied class map for the test to mean much"


@pytest.mark.parametrize("size", ["model-input", "source"])
def test_torchvision_matches_model_on_its_transforms(tv_model: tuple[str, torch.nn.Module, Path],
                                                     bus: np.ndarray, size: str) -> None:
    """model-input: a 520x693 image, which the transforms (shorter side -> 520) leave unchanged, so the source is
    the model's output resolution. source: bus.jpg at imgsz 260 (checks the option too), logits upsampled 3x."""
    import torchvision

    arch, model, weights = tv_model
    image, imgsz = (cv2.resize(bus, (520, 693), interpolation=cv2.INTER_AREA), 520) if size == "model-input" \
        else (bus, 260)
    enum = torchvision.models.get_weight(catalog.get_entry(arch).extra["weights_enum"])
    with torch.no_grad():
        logits = model(enum.transforms(resize_size=imgsz)(_rgb_tensor(image))[None])["out"]
    if logits.shape[2:] != image.shape[:2]:
        logits = F.interpolate(logits, image.shape[:2], mode="bilinear")
    got = visionkit.load("segment", arch, weights=weights, device="cpu", imgsz=imgsz)(image)
    assert isinstance(got, SemanticMask) and got.class_names == catalog.load_class_names("voc21")
    _assert_same_class_map(got, logits[0])


def test_torchvision_batches_match_single_images(tv_model: tuple[str, torch.nn.Module, Path],
                                                 bus: np.ndarray) -> None:
    arch, _, weights = tv_model
    small, smaller = cv2.resize(bus, (150, 200)), cv2.resize(bus, (90, 120))
    single = visionkit.load("segment", arch, weights=weights, device="cpu", imgsz=128)
    batched = visionkit.load("segment", arch, weights=weights, device="cpu", imgsz=128, batch_size=2)
    for images in ([small, small[:, ::-1]], [small, smaller]):  # same shape: one stacked pass; mixed: one by one
        for got, image in zip(batched(images), images, strict=True):
            want = single(image)
            assert (got.class_map != want.class_map).mean() < 1e-3  # conv kernels may round batches differently
            np.testing.assert_allclose(got.confidence, want.confidence, atol=1e-4)


# ------------------------------------------------------------------------------------- ultralytics parity
def test_ultralytics_seg_matches_yolo_predict(seg_checkpoint: Path, assets: Path) -> None:
    from ultralytics import YOLO
    from ultralytics.utils.ops import scale_masks

    image = cv2.imread(str(assets / "bus.jpg"))
    ref = YOLO(str(seg_checkpoint)).predict(image, conf=SEG_CONF, iou=SEG_IOU, device="cpu", verbose=False)[0]
    got = visionkit.load("segment", str(seg_checkpoint), conf=SEG_CONF, iou=SEG_IOU, device="cpu")(image)
    assert isinstance(got, Detections)
    assert_same_as_ultralytics(got, ref)
    # ultralytics keeps masks at the letterboxed input size by default and scales them this way to draw them.
    ref_masks = (scale_masks(ref.masks.data[None].float(), image.shape[:2])[0] > 0.5).numpy()
    assert got.masks.shape == (len(got), *image.shape[:2]) and got.masks.dtype == bool
    assert np.array_equal(got.masks, ref_masks)
    assert got.masks.any(axis=(1, 2)).mean() > 0.9
    margin = 1 + max(image.shape[:2]) / max(ref.masks.data.shape[1:])  # cropped on the input grid, then upscaled
    for mask, (x1, y1, x2, y2) in zip(got.masks, got.xyxy, strict=True):  # masks stay within their boxes
        ys, xs = np.nonzero(mask)
        if len(xs):
            assert xs.min() >= x1 - margin and xs.max() <= x2 + margin
            assert ys.min() >= y1 - margin and ys.max() <= y2 + margin


def test_ultralytics_seg_on_odd_images(seg_checkpoint: Path) -> None:
    predictor = visionkit.load("segment", str(seg_checkpoint), conf=SEG_CONF, device="cpu")
    for image in (np.full((8, 8, 3), 128, np.uint8), np.full((90, 120), 200, np.uint8)):
        got = predictor(image)
        assert got.masks is not None and got.masks.shape == (len(got), *image.shape[:2])


# ------------------------------------------------------------------------------------------ DeepLab (real)
@pytest.mark.parametrize("model", ["deeplabv3_mnv2_257", "deeplabv3_mnv2_513_quant"])
def test_deeplab_at_input_size_matches_the_graph(model: str, bus: np.ndarray, shared_weights: Path) -> None:
    """On a source of exactly the input size (no resize either way) the class map is the graph's own: the argmax
    of the 257 model's logits, and (within its int8 resize) the 513 model's ArgMax output."""
    import onnxruntime as ort

    entry = catalog.get_entry(model)
    size = entry.input_size
    image = cv2.resize(bus, (size, size), interpolation=cv2.INTER_AREA)
    session = ort.InferenceSession(str(shared_weights / entry.file))
    rgb = image[..., ::-1][None]
    got = _deeplab(model)(image)
    if model == "deeplabv3_mnv2_257":
        logits = session.run(None, {session.get_inputs()[0].name: (rgb.astype(np.float32) - 127.5) / 127.5})[0]
        _assert_same_class_map(got, torch.from_numpy(logits[0]).permute(2, 0, 1))
    else:
        argmax = session.run(["ArgMax"], {session.get_inputs()[0].name: np.ascontiguousarray(rgb)})[0][0]
        assert (got.class_map == argmax).mean() > 0.995


def test_deeplab_camvid_iou_matches_reference(predictor_257: visionkit.Predictor, shared_data: Path) -> None:
    reference = catalog.get_entry("deeplabv3_mnv2_257").metrics["reference"]
    score = evaluate_camvid(predictor_257, shared_data / "camvid")
    assert score.images == 30
    assert score.iou["car"] == pytest.approx(reference["camvid_car_iou"], abs=CAMVID_TOLERANCE)
    assert score.iou["person"] == pytest.approx(reference["camvid_person_iou"], abs=CAMVID_TOLERANCE)
    assert score.miou == pytest.approx((score.iou["car"] + score.iou["person"]) / 2)


def test_deeplab_coco_voc_miou(predictor_257: visionkit.Predictor, shared_data: Path) -> None:
    root = shared_data / "coco_val2017"
    score = evaluate_coco_voc(predictor_257, root / "images", root / "annotations" / "instances_val2017.json")
    assert score.images == 40  # val keeps every image, as torchvision's get_coco does
    assert score.miou == pytest.approx(COCO_VOC_MIOU_257, abs=0.01)
    assert score.iou["__background__"] > 0.7 and score.iou["person"] > 0.3
    assert 0.7 < score.pixel_acc < 1


def test_keep_aspect_pads_instead_of_stretching(bus: np.ndarray, shared_weights: Path) -> None:
    plain, kept = _deeplab()(bus), _deeplab(keep_aspect=True)(bus)
    assert kept.class_map.shape == bus.shape[:2]
    assert kept.pixel_share()["bus"] == pytest.approx(0.29, abs=0.02)  # the same picture, differently sampled
    assert (kept.class_map != plain.class_map).mean() > 0.01


# ------------------------------------------------------------------------------------------ COCO -> VOC
def test_coco_voc_targets_follow_torchvision(tmp_path: Path) -> None:
    """torchvision's coco_utils rules on a hand-made image: VOC categories remapped (person 1 -> 15, car 3 -> 7),
    other categories dropped, crowd RLE kept, pixels under two annotations -> 255."""
    from pycocotools.coco import COCO

    h, w = 20, 30
    crowd = np.zeros((h, w), np.uint8)
    crowd[15:20, 0:5] = 1
    counts = _rle_counts(crowd)
    anns = [
        {"id": 1, "image_id": 1, "category_id": 1, "iscrowd": 0, "segmentation": [[2, 2, 12, 2, 12, 12, 2, 12]]},
        {"id": 2, "image_id": 1, "category_id": 3, "iscrowd": 0, "segmentation": [[8, 8, 20, 8, 20, 14, 8, 14]]},
        {"id": 3, "image_id": 1, "category_id": 10, "iscrowd": 0, "segmentation": [[22, 0, 29, 0, 29, 6, 22, 6]]},
        {"id": 4, "image_id": 1, "category_id": 1, "iscrowd": 1, "segmentation": {"size": [h, w], "counts": counts}},
    ]
    for a in anns:
        a["area"], a["bbox"] = 1.0, [0, 0, 1, 1]
    data = {"images": [{"id": 1, "file_name": "x.jpg", "height": h, "width": w}], "annotations": anns,
            "categories": [{"id": i, "name": str(i)} for i in (1, 3, 10)]}
    path = tmp_path / "instances.json"
    path.write_text(json.dumps(data))
    target = coco_voc_target(COCO(str(path)), 1)
    assert target.shape == (h, w) and target.dtype == np.uint8
    assert target[5, 5] == 15 and target[12, 18] == 7 and target[17, 2] == 15
    assert target[10, 10] == IGNORE_INDEX  # person and car overlap
    assert target[3, 25] == 0  # traffic light is no VOC class


def _rle_counts(mask: np.ndarray) -> list[int]:
    """Uncompressed COCO RLE counts (column-major runs starting with zeros), as crowd annotations store them."""
    flat = mask.flatten(order="F")
    changes = np.flatnonzero(np.diff(flat)) + 1
    bounds = np.concatenate([[0], changes, [len(flat)]])
    runs = [int(r) for r in np.diff(bounds)]
    return runs if flat[0] == 0 else [0, *runs]


def test_confusion_matrix_ignores_255_and_reports_nan_for_unseen() -> None:
    m = ConfusionMatrix(3)
    m.update(np.array([[0, 1], [1, 255]], np.uint8), np.array([[0, 1], [0, 2]], np.uint8))
    iou = m.iou()
    assert iou[0] == pytest.approx(0.5) and iou[1] == pytest.approx(0.5) and np.isnan(iou[2])
    assert m.pixel_accuracy() == pytest.approx(2 / 3)


# ---------------------------------------------------------------------------------------------- CLI
def test_cli_segment_save_and_json(capsys: pytest.CaptureFixture[str], assets: Path, tmp_path: Path,
                                   shared_weights: Path) -> None:
    code, out, err = run(capsys, "segment", assets / "bus.jpg", "--model", "deeplabv3_mnv2_257",
                         "--save", tmp_path / "out", "--json", tmp_path / "out.jsonl")
    assert code == 0, err
    (row,) = jsonl(tmp_path / "out.jsonl")
    shares = {c["class_name"]: c for c in row["classes"]}
    assert row["type"] == "semantic_mask" and row["image_shape"] == [1080, 810]
    assert shares["bus"]["pixel_share"] == pytest.approx(0.30, abs=0.02)  # manifest: 30 % bus, 13 % person
    assert shares["person"]["pixel_share"] == pytest.approx(0.13, abs=0.02)
    assert 0.5 < shares["bus"]["mean_confidence"] <= 1 and shares["bus"]["mask"]["size"] == [1080, 810]
    saved = cv2.imread(str(tmp_path / "out" / "bus.jpg"))
    original = cv2.imread(str(assets / "bus.jpg"))
    assert saved.shape == original.shape
    assert np.abs(saved.astype(int) - original).mean() > 5  # bus and persons tinted, legend drawn
    assert "bus 30%" in out and "person 13%" in out


def test_cli_segment_rejects_detection_options_for_semantic_models(capsys: pytest.CaptureFixture[str],
                                                                    assets: Path, shared_weights: Path) -> None:
    code, _, err = run(capsys, "segment", assets / "bus.jpg", "--model", "deeplabv3_mnv2_257", "--conf", "0.5")
    assert code == 2 and "unknown option(s) conf" in err and "keep_aspect" in err


def test_onnx_file_that_is_no_deeplab_is_refused(capsys: pytest.CaptureFixture[str], assets: Path,
                                                 shared_weights: Path) -> None:
    code, _, err = run(capsys, "segment", assets / "bus.jpg", "--model", shared_weights / "yolov5n.onnx")
    assert code == 1 and ("yolov5n.onnx: not a DeepLab segmenter (NHWC RGB input [1, H, W, 3]); the file has float "
                          "[1, 3, 640, 640] -> float [1, 25200, 85]") in err


# ----------------------------------------------------------------------------------------- bad inputs
@pytest.mark.parametrize("image", [
    np.full((8, 8, 3), 90, np.uint8), np.full((120, 90), 200, np.uint8), np.zeros((64, 64, 4), np.uint8),
    np.full((64, 48, 3), 40000, np.uint16)], ids=["tiny", "gray", "rgba", "16-bit"])
def test_deeplab_odd_images(predictor_257: visionkit.Predictor, image: np.ndarray) -> None:
    got = predictor_257(image)
    assert got.class_map.shape == image.shape[:2]
    assert np.all((got.confidence > 0) & (got.confidence <= 1 + 1e-6))


def test_huge_image_stays_within_memory(assets: Path, shared_weights: Path) -> None:
    """8000x6000: upsampled logits would be 21 x 48 M floats (4 GB) at once; strips keep the whole run (predict,
    draw, JSON) under 2.5 GB, measured in a fresh process (VmHWM: ru_maxrss would count the forked parent)."""
    code = f"""
import re, cv2, visionkit
image = cv2.resize(cv2.imread({str(assets / 'bus.jpg')!r}), (8000, 6000))
result = visionkit.load("segment", "deeplabv3_mnv2_257", device="cpu")(image)
result.plot(image); result.to_json()
peak_kb = int(re.search(r"VmHWM:\\s+(\\d+)", open("/proc/self/status").read()).group(1))
print(result.class_map.shape, round(result.pixel_share()["bus"], 3), peak_kb // 1024)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    shape, bus_share, peak_mb = out.stdout.strip().rsplit(" ", 2)
    assert shape == "(6000, 8000)"
    assert float(bus_share) == pytest.approx(0.30, abs=0.02)
    assert int(peak_mb) < 2500, f"peak memory {peak_mb} MB"
