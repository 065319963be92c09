"""Explanations and attacks of pose and semantic segmentation models, on the real official files: MoveNet (int8
QDQ ONNX) and the TFLite DeepLab v3 (float ONNX) made differentiable, on the shared COCO keypoints and CamVid."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

import visionkit
from visionkit.cli import main
from visionkit.eval.keypoints import evaluate_keypoints
from visionkit.eval.segmentation import evaluate_camvid
from visionkit.interpret import attack_report, explain
from visionkit.interpret.differentiable import converted_onnx, differentiable

pytestmark = pytest.mark.needs_shared


def test_qdq_movenet_converts_and_matches_onnx_runtime(shared_weights: Path, assets: Path) -> None:
    """onnx2torch with visionkit's QuantizeLinear/DequantizeLinear converters runs the int8 graph's arithmetic:
    within the spread of TFLite's own two kernel sets (mean 0.067) of ONNX Runtime, and differentiable."""
    import onnxruntime as ort

    path = shared_weights / "movenet_singlepose_lightning_int8.onnx"
    image = cv2.resize(cv2.imread(str(assets / "zidane.jpg"))[:, 100:800], (192, 192))[..., ::-1].copy()
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    ref = session.run(None, {session.get_inputs()[0].name: image[None]})[0].reshape(17, 3)
    x = torch.from_numpy(image[None]).float().requires_grad_(True)
    ours = converted_onnx(path)(x).reshape(17, 3)
    diff = np.abs(ours.detach().numpy() - ref)
    assert diff.mean() < 0.067, diff.mean()
    found = ref[:, 2] > 0.3
    assert found.sum() >= 5 and np.median(diff[found, :2]) * 192 < 3  # pixels of the 192 input
    (grad,) = torch.autograd.grad(ours[:, 2].sum(), x)
    assert float(grad.abs().sum()) > 0


def test_movenet_cam_of_each_person_sits_on_that_person(shared_weights: Path, assets: Path) -> None:
    """Top-down MoveNet (yolov5n's people, MoveNet per crop), the pose default HiResCAM: each person's map lies in
    its box, far above the box's share of the image."""
    pose = visionkit.load("pose", "movenet_lightning", device="cpu")
    image = cv2.imread(str(assets / "bus.jpg"))
    ex = explain(pose, image, max_targets=2)
    assert ex.method == "hirescam" and len(ex) == 2 and ex.targets[0].keypoints.shape == (17, 3)
    for i, t in enumerate(ex.targets):
        x1, y1, x2, y2 = t.box
        share = (x2 - x1) * (y2 - y1) / (image.shape[0] * image.shape[1])
        assert ex.mass_inside(t.box, i) >= 0.8 and ex.mass_inside(t.box, i) / share >= 4, (i, share)
    assert np.abs(ex.maps[0] - ex.maps[1]).max() > 0.5  # two people, two different maps


def test_deeplab_gradcam_of_a_class_concentrates_on_its_pixels(shared_weights: Path, assets: Path) -> None:
    seg = visionkit.Predictor("segment", "deeplabv3_mnv2_257", device="cpu")
    image = cv2.resize(cv2.imread(str(assets / "bus.jpg")), (405, 540), interpolation=cv2.INTER_AREA)
    ex = explain(seg, image, target="bus")
    assert ex.method == "gradcam" and ex.targets[0].class_name == "bus"
    bus = ex.prediction.mask("bus")
    assert 0.2 < bus.mean() < 0.5
    assert ex.maps[0][bus].sum() / ex.maps[0].sum() >= 1.4 * bus.mean()


def test_deeplab_torch_view_matches_the_backend(shared_weights: Path) -> None:
    """The attacked function is the scored model: the torch DeepLab's argmax equals ONNX Runtime's on a CamVid
    image (up to cv2's fixed-point resize rounding)."""
    seg = visionkit.Predictor("segment", "deeplabv3_mnv2_257", device="cpu")
    image = cv2.imread(str(next((seg_data := Path(seg.backend.weights).parents[1] / "data" / "camvid" / "images")
                                .glob("*.png"))))
    assert seg_data.is_dir()
    d = differentiable(seg)
    with torch.no_grad():
        ours = d(d.image_tensor([image]))[0].argmax(0).numpy()
    theirs = np.asarray(seg.backend.forward(seg.backend.preprocess([image]))[0]).argmax(-1)
    assert (ours == theirs).mean() > 0.99


def _subset_coco(src: Path, dst: Path, n: int) -> Path:
    """The first n images of the shared COCO keypoints split, with their annotations, as a COCO folder."""
    data = json.loads((src / "annotations" / "person_keypoints_val2017.json").read_text())
    keep = sorted(i["id"] for i in data["images"])[:n]
    data["images"] = [i for i in data["images"] if i["id"] in keep]
    data["annotations"] = [a for a in data["annotations"] if a["image_id"] in keep]
    (dst / "annotations").mkdir(parents=True)
    (dst / "annotations" / "person_keypoints_val2017.json").write_text(json.dumps(data))
    (dst / "images").mkdir()
    for info in data["images"]:
        shutil.copy(src / "images" / info["file_name"], dst / "images")
    return dst


def test_pose_pgd_lowers_oks_map_and_eps0_is_the_clean_figure(shared_data: Path, shared_weights: Path,
                                                            tmp_path: Path) -> None:
    data = _subset_coco(shared_data / "coco_val2017", tmp_path / "coco", 3)
    pose = visionkit.Predictor("pose", "movenet_lightning", device="cpu", evaluate=True)
    persons = visionkit.Predictor("detect", "yolov5n", device="cpu", evaluate=True, classes=[0], max_det=20)
    system = visionkit.PersonPose(persons, pose)
    report = attack_report(system, data, "pgd", [8 / 255], steps=3, save=tmp_path / "out", triptychs=1)
    clean = evaluate_keypoints(system, data / "images", data / "annotations" / "person_keypoints_val2017.json")
    assert report.metric == "oks-map50-95" and report.clean == clean.map > 0.2
    assert report.scores["none"][1] < report.clean / 2, report.scores
    assert len(report.triptychs) == 1 and cv2.imread(report.triptychs[0]).shape[1] > 600


def test_segment_pgd_lowers_camvid_miou_and_eps0_is_the_clean_figure(shared_data: Path, shared_weights: Path,
                                                                   tmp_path: Path,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    src = shared_data / "camvid"
    names = sorted(p.name for p in (src / "images").glob("*.png"))[:2]
    for sub in ("images", "labels"):
        (tmp_path / "camvid" / sub).mkdir(parents=True)
        for n in names:
            shutil.copy(src / sub / n, tmp_path / "camvid" / sub)
    code = main(["attack", "segment", str(tmp_path / "camvid"), "--model", "deeplabv3_mnv2_257", "--device", "cpu",
                 "--method", "fgsm", "--eps", "4/255", "--triptychs", "1", "--save", str(tmp_path / "out")])
    assert code == 0 and "eps (x/255)" in capsys.readouterr().out
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    clean = evaluate_camvid(visionkit.Predictor("segment", "deeplabv3_mnv2_257", device="cpu"), tmp_path / "camvid")
    assert report["metric"] == "miou" and report["clean"] == round(clean.miou, 4) and clean.miou > 0.2
    assert report["scores"]["none"][1] < clean.miou - 0.1, report["scores"]
    assert (tmp_path / "out" / "curve.png").is_file() and len(report["triptychs"]) == 1
