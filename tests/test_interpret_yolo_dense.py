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
from visionkit.interpret.attack import dense_attack
from visionkit.interpret.differentiable import differentiable


@pytest.fixture(scope="module")
def bus(assets: Path) -> np.ndarray:
    return cv2.resize(cv2.imread(str(assets / "bus.jpg")), (324, 432), interpolation=cv2.INTER_AREA)


@pytest.fixture(scope="module")
def yolo_pose(tmp_path_factory: pytest.TempPathFactory, bus: np.ndarray) -> visionkit.Predictor:
    path = build_yolo_pose("yolo11n-pose.yaml", tmp_path_factory.mktemp("pose") / "pose-random.pt", [bus])
    return visionkit.Predictor("pose", path, device="cpu", conf=0.2, imgsz=320)


def test_yolo_pose_hirescam_gives_one_map_per_person_box(yolo_pose: visionkit.Predictor, bus: np.ndarray) -> None:
    ex = explain(yolo_pose, bus, max_targets=3)
    assert ex.method == "hirescam" and len(ex) >= 2 and ex.targets[0].keypoints.shape == (17, 3)
    for i, t in enumerate(ex.targets):
        m = ex.maps[i]
        assert m.shape == bus.shape[:2] and 0 <= m.min() < m.max() <= 1 + 1e-6
        x1, y1, x2, y2 = t.box
        share = (x2 - x1) * (y2 - y1) / (bus.shape[0] * bus.shape[1])
        assert ex.mass_inside(t.box, i) > share  # the box's evidence weighs more inside it than a flat map would


def test_yolo_pose_attack_moves_the_keypoints_and_lowers_its_soft_oks(yolo_pose: visionkit.Predictor,
                                                                    bus: np.ndarray) -> None:
    d = differentiable(yolo_pose)
    x0 = d.image_tensor([bus])
    with torch.no_grad():
        loss = d.adversarial_loss(d(x0))
        before = float(loss(d(x0)))
    adv = dense_attack(d, yolo_pose, bus, 8 / 255, steps=3)
    assert np.abs(adv.astype(int) - bus).max() <= 8 and not np.array_equal(adv, bus)
    with torch.no_grad():
        after = float(loss(d(d.image_tensor([adv]))))
    assert after < 0.7 * before, (before, after)


@pytest.fixture(scope="module")
def yolo_seg(tmp_path_factory: pytest.TempPathFactory, bus: np.ndarray) -> visionkit.Predictor:
    path = build_yolo("yolo11n-seg.yaml", tmp_path_factory.mktemp("seg") / "seg-random.pt", [bus])
    return visionkit.Predictor("segment", path, device="cpu", conf=0.2, imgsz=320)


def test_yolo_seg_is_explained_per_box_and_vanishes_under_attack(yolo_seg: visionkit.Predictor,
                                                                 bus: np.ndarray) -> None:
    ex = explain(yolo_seg, bus, max_targets=2)
    assert ex.method == "hirescam" and len(ex) == 2 and ex.targets[0].box is not None
    assert all(0 <= m.min() < m.max() <= 1 + 1e-6 for m in ex.maps)
    clean = yolo_seg.predict([bus])[0]
    adv = dense_attack(differentiable(yolo_seg), yolo_seg, bus, 8 / 255, steps=3)
    assert len(yolo_seg.predict([adv])[0]) < len(clean) / 2, len(clean)
