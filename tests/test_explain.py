"""visionkit's explanations: Grad-CAM parity with pytorch-grad-cam, real yolov5n heat maps on COCO objects,
gradient-free methods on the quantized ONNX classifier, and the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from digits_model import digit_images, gray, train

import visionkit
from visionkit.cli import main
from visionkit.eval.coco import load_coco
from visionkit.interpret.explain import explain
from visionkit.interpret.targets import iou


@pytest.fixture(scope="module")
def digits(tmp_path_factory: pytest.TempPathFactory) -> visionkit.Predictor:
    images, labels = digit_images()
    weights = train(tmp_path_factory.mktemp("digits") / "tiny.digits", images[:600], labels[:600], epochs=3)
    return visionkit.Predictor("classify", weights, device="cpu")


def test_gradcam_equals_pytorch_grad_cam_on_the_same_model_layer_and_input(digits: visionkit.Predictor) -> None:
    from pytorch_grad_cam import GradCAM
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    image = digit_images()[0][1700]
    ex = explain(digits, image, "gradcam")
    model = digits.backend.model
    x = gray(torch.from_numpy(image[..., ::-1].transpose(2, 0, 1).astype(np.float32)[None] / 255))
    with GradCAM(model=model, target_layers=[model.features[-1]]) as cam:
        direct = cam(input_tensor=x, targets=[ClassifierOutputTarget(ex.targets[0].class_id)])
    assert ex.layers == ["features.4"] and ex.maps.shape == (1, *image.shape[:2])
    assert float(direct.max()) > 0
    np.testing.assert_allclose(ex.maps, direct, atol=1e-6)


@pytest.mark.parametrize("method", ["gradcam++", "hirescam", "layercam", "scorecam", "eigencam", "saliency",
                                    "occlusion", "rise"])
def test_every_method_explains_the_top_class_on_the_image(digits: visionkit.Predictor, method: str) -> None:
    image = digit_images()[0][1700]
    options = {"rise": {"samples": 64}, "occlusion": {"window": 4, "stride": 4}}.get(method, {})
    ex = visionkit.explain(digits, image, method, **options)
    assert ex.method == method and ex.targets[0].class_id == ex.prediction.top1[0]
    m = ex.maps[0]
    assert m.shape == image.shape[:2] and np.isfinite(m).all() and 0 <= m.min() < m.max() <= 1 + 1e-6
    assert ex.to_dict()["explanations"][0]["target"]["class_name"] == ex.targets[0].class_name


def test_gradcam_on_a_torchvision_classifier_equals_pytorch_grad_cam_on_its_crop(tmp_path: Path,
                                                                                assets: Path) -> None:
    """Random-weight resnet18 through the real torchvision backend: the default layer is layer4, and the map is
    pytorch-grad-cam's on the 224 crop, put back where the crop came from (resize 256, centre crop 224)."""
    import torchvision
    from pytorch_grad_cam import GradCAM
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    torch.manual_seed(0)
    torch.save(torchvision.models.resnet18().state_dict(), tmp_path / "r18.pth")
    clf = visionkit.Predictor("classify", "resnet18", weights=tmp_path / "r18.pth", device="cpu")
    image = cv2.resize(cv2.imread(str(assets / "zidane.jpg")), (320, 240), interpolation=cv2.INTER_AREA)
    ex = explain(clf, image, "gradcam")
    model = clf.backend.model
    x = clf.backend.transforms(torch.from_numpy(image[..., ::-1].transpose(2, 0, 1).copy()).float() / 255)[None]
    with GradCAM(model=model, target_layers=[model.layer4]) as cam:
        direct = cam(input_tensor=x, targets=[ClassifierOutputTarget(ex.targets[0].class_id)])[0]
    assert ex.layers == ["layer4"]
    # 240x320 -> 256x341, crop 224 at (left 58, top 16): the image region x 54.4..264.4, y 15..225
    m = ex.maps[0]
    assert m[:, :53].max() == 0 and m[:, 266:].max() == 0 and m[:14].max() == 0 and m[227:].max() == 0
    expected = cv2.resize(direct, (210, 210), interpolation=cv2.INTER_LINEAR)
    assert np.corrcoef(m[15:225, 55:265].ravel(), expected.ravel())[0, 1] > 0.99


@pytest.mark.needs_shared
def test_torch_letterbox_matches_the_backends_preprocess(shared_weights: Path, assets: Path) -> None:
    """Gradients flow through a torch letterbox; it must be the input the backend itself builds (up to cv2's
    fixed-point resize rounding), or the attacked and the scored model would see different images."""
    from visionkit.interpret.differentiable import differentiable

    det = visionkit.Predictor("detect", "yolov5n", device="cpu")
    image = cv2.imread(str(assets / "zidane.jpg"))
    d = differentiable(det)
    ours = d.preprocess(d.image_tensor([image])).numpy()
    theirs = det.backend.preprocess([image])
    assert ours.shape == theirs.shape == (1, 3, 640, 640)
    diff = np.abs(ours - theirs)
    assert diff.mean() < 0.5 / 255 and diff.max() < 3 / 255


@pytest.mark.needs_shared
def test_yolov5n_cam_concentrates_on_the_ground_truth_object(shared_data: Path, shared_weights: Path) -> None:
    """The real yolov5n (ONNX, made differentiable): the share of CAM mass (the detector default, HiResCAM) inside
    the matched ground-truth box is >= 2x the box's share of the image, on most correct detections."""
    coco = shared_data / "coco_val2017"
    gt = load_coco(coco / "annotations" / "instances_val2017.json")
    names = {c["id"]: c["name"] for c in gt.loadCats(gt.getCatIds())}
    det = visionkit.Predictor("detect", "yolov5n", device="cpu", conf=0.5)
    ratios = []
    for image_id in sorted(gt.getImgIds())[:6]:
        info = gt.loadImgs(image_id)[0]
        anns = [a for a in gt.loadAnns(gt.getAnnIds(imgIds=image_id, iscrowd=False))]
        boxes = np.array([[a["bbox"][0], a["bbox"][1], a["bbox"][0] + a["bbox"][2], a["bbox"][1] + a["bbox"][3]]
                          for a in anns], np.float32)
        ex = explain(det, str(coco / "images" / info["file_name"]), max_targets=1)
        assert ex.method == "hirescam"
        if not ex.targets:
            continue
        t = ex.targets[0]
        overlaps = iou(np.array(t.box), boxes)
        j = int(np.argmax(overlaps))
        if overlaps[j] < 0.5 or names[anns[j]["category_id"]] != t.class_name:
            continue  # not a correct detection
        area_share = float(anns[j]["bbox"][2] * anns[j]["bbox"][3]) / (info["width"] * info["height"])
        if area_share > 0.4:
            continue  # a box filling the image leaves no room to concentrate
        ratios.append(ex.mass_inside(boxes[j]) / area_share)
        if len(ratios) == 3:
            break
    assert len(ratios) == 3, ratios
    assert sum(r >= 2 for r in ratios) >= 2, ratios


@pytest.mark.needs_shared
@pytest.mark.parametrize("method, options", [("occlusion", {"window": 150, "stride": 100}),
                                             ("rise", {"samples": 48, "cells": 4}), ("eigencam", {})])
def test_gradient_free_methods_run_on_the_quantized_onnx_classifier(shared_data: Path, shared_weights: Path,
                                                                    method: str, options: dict) -> None:
    clf = visionkit.Predictor("classify", "mobilenet_v2_quant", device="cpu")
    path = shared_data / "imagenet_sample" / "images" / "n01440764_tench.JPEG"
    image = cv2.imread(str(path))
    ex = explain(clf, image, method, **options)
    m = ex.maps[0]
    assert m.shape == image.shape[:2] and 0 <= m.min() < m.max() <= 1
    if method != "eigencam":  # faithfulness: greying what the map marks costs more than greying what it does not
        probs = []
        for keep_top in (True, False):
            region = m >= np.quantile(m, 0.75) if keep_top else m <= np.quantile(m, 0.25)
            grey = image.copy()
            grey[region] = 127
            probs.append(float(clf(grey).probs[ex.targets[0].class_id]))
        assert probs[0] < probs[1], probs


@pytest.mark.needs_shared
def test_occlusion_explains_a_segmentation_class_where_the_model_labels_it(shared_weights: Path,
                                                                          assets: Path) -> None:
    """Semantic segmentation (DeepLabV3 ONNX): the map of 'bus' (score: share of pixels still labelled bus) puts
    well over its area's share of mass on the pixels labelled bus."""
    seg = visionkit.Predictor("segment", "deeplabv3_mnv2_257", device="cpu")
    image = cv2.resize(cv2.imread(str(assets / "bus.jpg")), (270, 360), interpolation=cv2.INTER_AREA)
    ex = visionkit.explain(seg, image, "occlusion", target="bus", window=120, stride=60)
    bus = ex.prediction.mask("bus")
    assert ex.targets[0].class_name == "bus" and 0.1 < bus.mean() < 0.5
    assert ex.maps[0][bus].sum() / ex.maps[0].sum() >= 1.5 * bus.mean()


@pytest.mark.needs_shared
def test_gradient_methods_on_a_quantized_graph_say_what_works(shared_weights: Path, assets: Path) -> None:
    clf = visionkit.Predictor("classify", "mobilenet_v2_quant", device="cpu")
    with pytest.raises(visionkit.OptionError, match="gradient-free method"):
        explain(clf, str(assets / "bus.jpg"), "gradcam")


@pytest.mark.needs_shared
def test_explain_cli_saves_overlays_and_json(shared_weights: Path, assets: Path, tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["explain", "classify", str(assets / "bus.jpg"), "--model", "mobilenet_v2_quant", "--method",
                 "eigencam", "--device", "cpu", "--save", str(tmp_path), "--json", str(tmp_path / "ex.json")])
    assert code == 0
    pngs = list(tmp_path.glob("bus_eigencam_0_*.png"))
    assert len(pngs) == 1 and cv2.imread(str(pngs[0])).shape == (1080, 810, 3)
    data = json.loads((tmp_path / "ex.json").read_text())
    assert data["type"] == "explanation" and data["method"] == "eigencam"
    assert np.array(data["explanations"][0]["map"]).shape == (64, 48)
    assert str(pngs[0]) in capsys.readouterr().out


def test_explain_cli_unknown_class_is_one_line(digits: visionkit.Predictor, tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    cv2.imwrite(str(tmp_path / "d.png"), digit_images()[0][0])
    code = main(["explain", "classify", str(tmp_path / "d.png"), "--model", str(digits.weights_arg),
                 "--target", "eleven", "--save", str(tmp_path)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "unknown class 'eleven'" in err[0]
