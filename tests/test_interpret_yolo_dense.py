"""The PyTorch path of pose and instance segmentation explanations and attacks: ultralytics YOLO-pose and YOLO-seg
architectures with seeded random weights made image-dependent (no official -pose/-seg weights are offline)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from random_models import build_yolo, build_yolo_pose

import visionkit
from visionkit.interpret import explain
from visionkit.interpret.attack import attack_kind, dense_attack
from visionkit.interpret.differentiable import differentiable

# Less than random_models' default: class scores stay off saturation, where an attack's gradient can move them (at
# the default shift hundreds of boxes score ~1 and image-sized "people" dominate).
BIAS_SHIFT = 3.0


@pytest.fixture(scope="module")
def bus(assets: Path) -> np.ndarray:
    return cv2.resize(cv2.imread(str(assets / "bus.jpg")), (324, 432), interpolation=cv2.INTER_AREA)


@pytest.fixture(scope="module")
def yolo_pose(tmp_path_factory: pytest.TempPathFactory, bus: np.ndarray) -> visionkit.Predictor:
    path = build_yolo_pose("yolo11n-pose.yaml", tmp_path_factory.mktemp("pose") / "pose-random.pt", [bus],
                           bias_shift=BIAS_SHIFT)
    return visionkit.Predictor("pose", path, device="cpu", conf=0.2, imgsz=320)


def test_yolo_pose_hirescam_gives_one_map_per_person_box(yolo_pose: visionkit.Predictor, bus: np.ndarray) -> None:
    ex = explain(yolo_pose, bus, max_targets=4)
    assert ex.method == "hirescam" and len(ex) >= 2 and ex.targets[0].keypoints.shape == (17, 3)
    inside = []
    for i, t in enumerate(ex.targets):
        m = ex.maps[i]
        assert m.shape == bus.shape[:2] and 0 <= m.min() < m.max() <= 1 + 1e-6
        x1, y1, x2, y2 = t.box
        share = (x2 - x1) * (y2 - y1) / (bus.shape[0] * bus.shape[1])
        if share < 0.5:  # random weights also find image-sized "people", whose box holds any map
            inside.append(ex.mass_inside(t.box, i) > share)
    assert all(inside)  # a box's evidence weighs more inside it than a flat map would (boxes under half the image)


def _attack_lowers_its_loss(predictor: visionkit.Predictor, image: np.ndarray) -> tuple[float, float]:
    """The adversarial loss (what the attack minimises) before and after an 8/255 PGD of 3 steps."""
    d = differentiable(predictor)
    with torch.no_grad():
        loss = d.adversarial_loss(d(d.image_tensor([image])))
        before = float(loss(d(d.image_tensor([image]))))
    adv = dense_attack(d, predictor, image, 8 / 255, steps=3)
    assert np.abs(adv.astype(int) - image).max() <= 8 and not np.array_equal(adv, image)
    with torch.no_grad():
        return before, float(loss(d(d.image_tensor([adv]))))


def test_yolo_pose_attack_moves_the_keypoints_and_lowers_its_soft_oks(yolo_pose: visionkit.Predictor,
                                                                    bus: np.ndarray) -> None:
    before, after = _attack_lowers_its_loss(yolo_pose, bus)
    assert after < 0.7 * before, (before, after)


@pytest.fixture(scope="module")
def yolo_seg(tmp_path_factory: pytest.TempPathFactory, bus: np.ndarray) -> visionkit.Predictor:
    path = build_yolo("yolo11n-seg.yaml", tmp_path_factory.mktemp("seg") / "seg-random.pt", [bus],
                      bias_shift=BIAS_SHIFT)
    return visionkit.Predictor("segment", path, device="cpu", conf=0.2, imgsz=320)


def test_yolo_seg_is_explained_per_box_and_attacked_as_a_detector(yolo_seg: visionkit.Predictor,
                                                                 bus: np.ndarray) -> None:
    ex = explain(yolo_seg, bus, max_targets=2)
    assert ex.method == "hirescam" and len(ex) == 2 and ex.targets[0].box is not None
    assert all(0 <= m.min() < m.max() <= 1 + 1e-6 for m in ex.maps)
    # Attacked as the detector it also is (vanishing PGD, COCO box mAP). A random-weight -seg net is too rough for a
    # loss test at uint8 steps (its loss rises between 1e-3 and 1/255), so only the attack's contract is checked
    # here; the vanishing loss itself is measured on the real yolov5n (test_attack).
    assert attack_kind(yolo_seg) == "detect"
    adv = dense_attack(differentiable(yolo_seg), yolo_seg, bus, 4 / 255, steps=2)
    assert adv.shape == bus.shape and adv.dtype == np.uint8
    assert 0 < np.abs(adv.astype(int) - bus).max() <= 4
