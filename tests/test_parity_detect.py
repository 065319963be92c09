"""Parity: visionkit's detection backends give what the reference library's own pipeline gives.

Official YOLOv8/YOLO11 and torchvision weights are not available offline, so the real architectures are built
with seeded random weights. Random weights alone make a useless test (every score ~1e-5, boxes that do not
depend on the picture), so each model is first made *image-dependent*:

* BatchNorm running statistics are calibrated on two real photos (one forward pass in train mode), so the
  activations keep unit scale through the network instead of vanishing;
* the YOLO class bias is raised (SSDLite's class logits are scaled up) so that a few dozen to a few hundred
  boxes per image clear the confidence threshold, with distinct scores and many classes.

A colour swap, a wrong letterbox, a wrong normalisation or a class offset in visionkit then changes the
boxes, which is what these tests compare, box for box, against the reference pipeline.
The conf threshold (0.1, not 0.001) keeps the candidate count low enough that ultralytics' NMS never hits
its 2 s time limit on a slow CPU, which would silently drop boxes from the reference side only.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
import torch
from random_models import build_yolo, calibrate_bn

import visionkit

CONF, IOU = 0.1, 0.6
COCO_IMAGES = ("000000000139.jpg", "000000011813.jpg")  # 640x426 landscape, 333x500 portrait
IMAGES = [
    pytest.param("bus.jpg", id="bus"),
    pytest.param("zidane.jpg", id="zidane"),
    *(pytest.param(f"coco/{n}", id=f"coco-{n[:-4].lstrip('0')}", marks=pytest.mark.needs_shared)
      for n in COCO_IMAGES),
]
MIN_BOXES = 5  # every comparison must cover at least this many boxes, or it proves little


def _read(name: str, request: pytest.FixtureRequest) -> np.ndarray:
    if name.startswith("coco/"):
        path = request.getfixturevalue("shared_data") / "coco_val2017" / "images" / name[5:]
    else:
        path = request.getfixturevalue("assets") / name
    image = cv2.imread(str(path))
    assert image is not None, path
    return image


# -------------------------------------------------------------------------------------------- model builders
SSD_SETTINGS = {  # per architecture: thresholds and how much to sharpen the random class logits
    "ssdlite320_mobilenet_v3_large": {"conf": 0.2, "iou": 0.55, "max_det": 300, "logit_scale": 3.0},
    "ssd300_vgg16": {"conf": 0.5, "iou": 0.45, "max_det": 200, "logit_scale": 1.0},
}


def _ssd_weights_enum(arch: str) -> Any:
    from torchvision.models import detection

    return {"ssdlite320_mobilenet_v3_large": detection.SSDLite320_MobileNet_V3_Large_Weights,
            "ssd300_vgg16": detection.SSD300_VGG16_Weights}[arch].COCO_V1


def _tv_input(image_bgr: np.ndarray, arch: str) -> torch.Tensor:
    """torchvision's documented pipeline: ``weights.transforms()`` on the RGB image tensor (uint8 CHW)."""
    rgb = torch.from_numpy(np.ascontiguousarray(image_bgr[..., ::-1])).permute(2, 0, 1)
    return _ssd_weights_enum(arch).transforms()(rgb)


def build_ssd(arch: str, calib: list[np.ndarray]) -> torch.nn.Module:
    import torchvision

    s = SSD_SETTINGS[arch]
    torch.manual_seed(0)
    model = torchvision.models.get_model(arch, weights=None, weights_backbone=None, num_classes=91,
                                         score_thresh=s["conf"], nms_thresh=s["iou"],
                                         detections_per_img=s["max_det"]).eval()
    if any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in model.modules()):  # not in ssd300_vgg16
        images, _ = model.transform([_tv_input(im, arch) for im in calib])
        calibrate_bn(model, lambda: model.head(list(model.backbone(images.tensors).values())))
    with torch.no_grad():
        for layer in model.head.classification_head.module_list:
            last = layer[-1] if isinstance(layer, torch.nn.Sequential) else layer
            last.weight.mul_(s["logit_scale"])
            last.bias.mul_(s["logit_scale"])
    return model.eval()


# ------------------------------------------------------------------------------------------------ fixtures
@pytest.fixture(scope="module")
def calib_images(assets: Path) -> list[np.ndarray]:
    return [cv2.imread(str(assets / n)) for n in ("bus.jpg", "zidane.jpg")]


@pytest.fixture(scope="module")
def yolo_checkpoint(tmp_path_factory: pytest.TempPathFactory, calib_images: list[np.ndarray]) -> Any:
    """yaml name -> saved .pt, each built once per module."""
    cache: dict[str, Path] = {}
    folder = tmp_path_factory.mktemp("parity-yolo")

    def get(yaml: str) -> Path:
        if yaml not in cache:
            cache[yaml] = build_yolo(yaml, folder / yaml.replace(".yaml", "-random.pt"), calib_images)
        return cache[yaml]

    return get


class YoloPair:
    """The reference ``YOLO`` model and visionkit predictors on the same checkpoint."""

    def __init__(self, pt: Path):
        from ultralytics import YOLO

        self.pt = pt
        self.reference = YOLO(str(pt))
        self.visionkit = visionkit.load("detect", str(pt), conf=CONF, iou=IOU, device="cpu")
        self.visionkit_b2 = visionkit.load("detect", str(pt), conf=CONF, iou=IOU, device="cpu", batch_size=2)

    def predict(self, images: Any) -> Any:
        return self.reference.predict(images, conf=CONF, iou=IOU, device="cpu", verbose=False)


@pytest.fixture(scope="module", params=["yolov8n.yaml", "yolo11n.yaml", "yolo26n.yaml"],
                ids=["yolov8n", "yolo11n", "yolo26n"])
def yolo(request: pytest.FixtureRequest, yolo_checkpoint: Any) -> YoloPair:
    return YoloPair(yolo_checkpoint(request.param))


# -------------------------------------------------------------------------------------------- comparisons
def assert_same_as_ultralytics(got: visionkit.Detections, ref: Any, atol: float = 1e-3,
                               min_boxes: int = MIN_BOXES) -> None:
    """visionkit Detections == an ultralytics ``Results``: same boxes, scores, classes and names, in order."""
    boxes = ref.boxes
    assert len(boxes) >= min_boxes, f"reference gave only {len(boxes)} boxes: the comparison would prove little"
    assert len(got) == len(boxes)
    assert got.image_shape == tuple(ref.orig_shape)
    np.testing.assert_allclose(got.xyxy, boxes.xyxy.numpy(), rtol=0, atol=atol)
    np.testing.assert_allclose(got.scores, boxes.conf.numpy(), rtol=0, atol=1e-5)
    ids = boxes.cls.numpy().astype(np.int64)
    np.testing.assert_array_equal(got.class_ids, ids)
    assert list(got.class_names) == [ref.names[i] for i in ids]


@pytest.mark.parametrize("image_name", IMAGES)
def test_ultralytics_backend_matches_yolo_predict(yolo: YoloPair, image_name: str,
                                                  request: pytest.FixtureRequest) -> None:
    image = _read(image_name, request)
    ref = yolo.predict(image)[0]
    got = yolo.visionkit(image)
    assert_same_as_ultralytics(got, ref)
    assert len(np.unique(got.class_ids)) > 1


def test_ultralytics_backend_batch_of_two_shapes(yolo: YoloPair, assets: Path) -> None:
    """Two images of different shapes in one batch: both sides letterbox them to a common 640x640 square."""
    a, b = cv2.imread(str(assets / "bus.jpg")), cv2.imread(str(assets / "zidane.jpg"))
    assert a.shape != b.shape
    refs = yolo.predict([a, b])
    got = yolo.visionkit_b2([a, b])
    assert isinstance(got, list) and len(got) == 2
    for g, r in zip(got, refs, strict=True):
        assert_same_as_ultralytics(g, r)
    # batch_size=1 runs them one by one (rectangular letterbox each), as ultralytics does for single images
    singles = yolo.visionkit([a, b])
    for g, im in zip(singles, (a, b), strict=True):
        assert_same_as_ultralytics(g, yolo.predict(im)[0])


def test_ultralytics_checkpoint_is_a_real_one(yolo: YoloPair) -> None:
    """The saved file is what ultralytics itself writes and reads: a dict with the model under "model"."""
    from ultralytics.nn.tasks import torch_safe_load

    ckpt, _ = torch_safe_load(str(yolo.pt))
    assert isinstance(ckpt["model"], torch.nn.Module) and ckpt["model"].task == "detect"
    assert yolo.visionkit.backend.name == "ultralytics"
    assert yolo.visionkit.class_names[0] == "person" and len(yolo.visionkit.class_names) == 80


# -------------------------------------------------------------------------------------------- torchvision SSD
@pytest.fixture(scope="module", params=list(SSD_SETTINGS))
def ssd(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
        calib_images: list[np.ndarray]) -> tuple[str, torch.nn.Module, visionkit.Predictor]:
    arch = request.param
    model = build_ssd(arch, calib_images)
    pth = tmp_path_factory.mktemp("parity-ssd") / f"{arch}-random.pth"
    torch.save(model.state_dict(), pth)
    s = SSD_SETTINGS[arch]
    predictor = visionkit.load("detect", arch, weights=pth, device="cpu", conf=s["conf"], iou=s["iou"],
                               max_det=s["max_det"])
    return arch, model, predictor


@pytest.mark.parametrize("image_name", IMAGES)
def test_torchvision_backend_matches_torchvision(ssd: tuple[str, torch.nn.Module, visionkit.Predictor],
                                                 image_name: str, request: pytest.FixtureRequest) -> None:
    arch, model, predictor = ssd
    image = _read(image_name, request)
    with torch.no_grad():
        ref = model([_tv_input(image, arch)])[0]
    got = predictor(image)
    categories = _ssd_weights_enum(arch).meta["categories"]
    assert len(ref["boxes"]) >= MIN_BOXES
    assert len(got) == len(ref["boxes"])
    np.testing.assert_allclose(got.xyxy, ref["boxes"].numpy(), rtol=0, atol=1e-3)
    np.testing.assert_allclose(got.scores, ref["scores"].numpy(), rtol=0, atol=1e-5)
    labels = ref["labels"].numpy()
    np.testing.assert_array_equal(got.class_ids, labels)
    assert list(got.class_names) == [categories[i] for i in labels]
    assert len(np.unique(labels)) > 1


def test_torchvision_class_names_are_torchvision_categories(ssd: Any) -> None:
    arch, _, predictor = ssd
    assert predictor.class_names == list(_ssd_weights_enum(arch).meta["categories"])


# ---------------------------------------------------------------------------------------- ONNX YOLO (v8 layout)
@pytest.fixture(scope="module")
def yolo_onnx(yolo_checkpoint: Any) -> tuple[Path, Path]:
    """The random yolov8n exported to ONNX: [1, 3, 640, 640] -> [1, 84, 8400], with ultralytics' metadata."""
    import onnx
    from ultralytics.nn.tasks import load_checkpoint

    pt = yolo_checkpoint("yolov8n.yaml")
    model, _ = load_checkpoint(pt)
    model = model.fuse(verbose=False).float().eval()

    class Head(torch.nn.Module):  # the eval model returns (predictions, feature maps): export the first only
        def __init__(self, m: torch.nn.Module):
            super().__init__()
            self.m = m

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.m(x)[0]

    path = pt.with_suffix(".onnx")
    with warnings.catch_warnings():  # the TorchScript exporter is deprecated, and ultralytics' exporter uses it too
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(Head(model), torch.zeros(1, 3, 640, 640), str(path), dynamo=False, opset_version=17,
                          input_names=["images"], output_names=["output0"])
    proto = onnx.load(str(path))
    meta = {"stride": int(model.stride.max()), "task": "detect", "batch": 1, "imgsz": [640, 640],
            "names": dict(model.names)}
    for key, value in meta.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, str(value)
    onnx.save(proto, str(path))
    return pt, path


@pytest.fixture(scope="module")
def onnx_predictor(yolo_onnx: tuple[Path, Path]) -> visionkit.Predictor:
    return visionkit.load("detect", str(yolo_onnx[1]), conf=CONF, iou=IOU, device="cpu")


@pytest.mark.parametrize("image_name", IMAGES)
def test_onnx_yolo_backend_matches_ultralytics_onnx(yolo_onnx: tuple[Path, Path], onnx_predictor: Any,
                                                    image_name: str, request: pytest.FixtureRequest) -> None:
    from ultralytics import YOLO

    image = _read(image_name, request)
    ref = YOLO(str(yolo_onnx[1]), task="detect").predict(image, conf=CONF, iou=IOU, imgsz=640, device="cpu",
                                                         verbose=False)[0]
    got = onnx_predictor(image)
    assert onnx_predictor.backend.name == "onnx-yolo"
    assert_same_as_ultralytics(got, ref)


@pytest.mark.parametrize("image_name", IMAGES)
def test_onnx_yolo_backend_matches_torch_checkpoint(yolo_onnx: tuple[Path, Path], onnx_predictor: Any,
                                                    image_name: str, request: pytest.FixtureRequest) -> None:
    """The exported graph through visionkit == the .pt through visionkit with the same square 640 letterbox."""
    image = _read(image_name, request)
    torch_side = visionkit.load("detect", str(yolo_onnx[0]), conf=CONF, iou=IOU, device="cpu", rect=False)
    ref, got = torch_side(image), onnx_predictor(image)
    assert len(ref) >= MIN_BOXES
    _assert_close_sets(got, ref, atol=0.05)


def _assert_close_sets(got: visionkit.Detections, ref: visionkit.Detections, atol: float) -> None:
    """Same detections up to float noise between runtimes (ONNX Runtime vs PyTorch kernels): boxes with equal
    scores may come out in another order, and a box right at the conf threshold or the max_det cut may be kept by
    one side only. So when the sorted lists differ, boxes are paired by class and position (1:1) and at most 2%
    (or 2) may go unpaired."""
    if len(got) == len(ref):
        order_g, order_r = np.argsort(-got.scores, kind="stable"), np.argsort(-ref.scores, kind="stable")
        if np.allclose(got.xyxy[order_g], ref.xyxy[order_r], rtol=0, atol=atol):
            np.testing.assert_allclose(got.scores[order_g], ref.scores[order_r], rtol=0, atol=5e-4)
            np.testing.assert_array_equal(got.class_ids[order_g], ref.class_ids[order_r])
            return
    unmatched = []
    used = np.zeros(len(ref), bool)
    for i in range(len(got)):
        d = np.abs(ref.xyxy - got.xyxy[i]).max(1)
        d[used | (ref.class_ids != got.class_ids[i])] = np.inf
        j = int(np.argmin(d)) if len(d) else -1
        if j >= 0 and d[j] <= atol:
            used[j] = True
            assert abs(got.scores[i] - ref.scores[j]) <= 5e-4
        else:
            unmatched.append(float(got.scores[i]))
    unmatched += [float(s) for s in ref.scores[~used]]
    assert len(unmatched) <= max(2, len(ref) // 50), f"{len(unmatched)} of {len(ref)} boxes differ: {unmatched}"


# ------------------------------------------------------------------------ .pt checkpoints on ONNX Runtime
@pytest.fixture(scope="module")
def yolo_on_onnxruntime(yolo: YoloPair) -> visionkit.Predictor:
    """The same checkpoint with ``runtime="onnx"``: exported by ultralytics' exporter on first use, then cached."""
    return visionkit.load("detect", str(yolo.pt), conf=CONF, iou=IOU, device="cpu", runtime="onnx")


@pytest.mark.parametrize("image_name", IMAGES)
def test_runtime_onnx_matches_the_checkpoint_on_torch(yolo: YoloPair, yolo_on_onnxruntime: visionkit.Predictor,
                                                      image_name: str, request: pytest.FixtureRequest) -> None:
    """Same boxes as the .pt on PyTorch (itself equal to ``YOLO(pt).predict``) up to kernel float noise, with the
    same rectangular letterbox; and exactly what ultralytics' own pipeline gives for that export."""
    from ultralytics import YOLO

    image = _read(image_name, request)
    got = yolo_on_onnxruntime(image)
    assert yolo_on_onnxruntime.backend.session.runtime == "onnx"  # the .pt's export, on ONNX Runtime
    ref = yolo.visionkit(image)
    assert len(ref) >= MIN_BOXES
    _assert_close_sets(got, ref, atol=0.05)
    exported = YOLO(str(yolo_on_onnxruntime.backend.weights), task="detect")
    assert_same_as_ultralytics(got, exported.predict(image, conf=CONF, iou=IOU, imgsz=640, device="cpu",
                                                     verbose=False)[0])


def test_runtime_onnx_export_is_cached_once(yolo: YoloPair, yolo_on_onnxruntime: visionkit.Predictor) -> None:
    yolo_on_onnxruntime.warmup()
    path = yolo_on_onnxruntime.backend.weights
    assert path.parent == Path(os.environ["VISIONKIT_CACHE"]) / "onnx"  # never written into a weights folder
    assert path.name.startswith(yolo.pt.stem) and path.suffix == ".onnx"
    stamp = path.stat().st_mtime_ns
    again = visionkit.load("detect", str(yolo.pt), device="cpu", runtime="onnx").warmup()
    assert again.backend.weights == path and path.stat().st_mtime_ns == stamp
    assert not list(path.parent.glob(".export-*")), "the export's scratch folder is left behind"
    assert yolo_on_onnxruntime.class_names == yolo.visionkit.class_names


def test_runtime_onnx_refuses_other_tasks_and_runtimes(tmp_path: Path) -> None:
    from ultralytics import YOLO

    from visionkit.errors import OptionError, WeightsError

    torch.manual_seed(0)
    cls_pt = tmp_path / "yolov8n-cls-random.pt"
    YOLO("yolov8n-cls.yaml").save(cls_pt)
    with pytest.raises(WeightsError, match="is an ultralytics classify model, not a detect model"):
        visionkit.load("detect", str(cls_pt), device="cpu", runtime="onnx").warmup()
    with pytest.raises(OptionError, match="unknown runtime 'tensorrt': expected torch, onnx, openvino"):
        visionkit.load("detect", str(cls_pt), runtime="tensorrt")


def test_cli_export(yolo_checkpoint: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                    caplog: pytest.LogCaptureFixture) -> None:
    from visionkit.cli import main

    pt = yolo_checkpoint("yolov8n.yaml")
    target = tmp_path / "deploy" / "detector.onnx"
    assert main(["export", str(pt), "--output", str(target)]) == 0
    assert capsys.readouterr().out.strip() == str(target)
    exported = visionkit.load("detect", str(target), device="cpu")
    assert exported.backend.name == "onnx-yolo" and exported.class_names[:2] == ["person", "bicycle"]
    assert main(["export", str(target)]) == 0  # already ONNX: a no-op, as runtime="onnx" is for it, and said so
    assert capsys.readouterr().out.strip() == str(target)
    assert f"{target} is already an ONNX model: nothing to export" in caplog.text
