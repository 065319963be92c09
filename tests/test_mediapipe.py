"""MediaPipe's TFLite models (the official files of the mediapipe 0.10.14 wheel) through the TFLite interpreter.

The reference figures are mp.solutions' own results (shared/weights/MANIFEST.md, pinned in mediapipe_reference.py):
Selfie Segmentation labels 54.6 % of zidane.jpg and 10 % of bus.jpg as person; MediaPipe Pose puts the left bus.jpg
person's nose at (143, 446) and left ankle at (185, 854).
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from mediapipe_reference import LEFT_PERSON, NOSE, PERSON_SHARE
from test_cli import run

import visionkit
from visionkit.composites.person_pose import PersonPose
from visionkit.errors import WeightsError
from visionkit.results import Detections, SemanticMask

SHARE_TOLERANCE = 0.03
POSE_TOLERANCE_PX = 25


@pytest.fixture(scope="module")
def selfie(shared_weights: Path) -> visionkit.Predictor:
    return visionkit.load("segment", "selfie_segmentation")


@pytest.fixture(scope="module")
def blazepose(shared_weights: Path) -> visionkit.Predictor:
    return visionkit.load("pose", "blazepose_full", detector="none")  # the bare single-person model


@pytest.mark.parametrize(("photo", "share"), list(PERSON_SHARE.items()))
def test_selfie_person_share_matches_mediapipe(selfie: visionkit.Predictor, assets: Path, photo: str,
                                               share: float) -> None:
    result = selfie(assets / photo)
    assert isinstance(result, SemanticMask) and result.class_names == ["background", "person"]
    assert result.class_map.shape == result.confidence.shape == cv2.imread(str(assets / photo)).shape[:2]
    assert result.pixel_share()["person"] == pytest.approx(share, abs=SHARE_TOLERANCE)
    assert result.confidence.min() >= 0.5 and result.confidence.max() <= 1.0  # the winning class's probability


@pytest.mark.parametrize("shape", [(8, 8), (8, 8, 4), (3000, 40, 3)])
def test_selfie_odd_images(selfie: visionkit.Predictor, shape: tuple[int, ...]) -> None:
    result = selfie(np.full(shape, 200, np.uint8))
    assert result.class_map.shape == shape[:2]


def test_selfie_cli_save(capsys: pytest.CaptureFixture, assets: Path, tmp_path: Path, shared_weights: Path) -> None:
    code, _, err = run(capsys, "segment", assets / "zidane.jpg", "--model", "selfie_segmentation", "--save", tmp_path)
    assert code == 0, err
    saved = [cv2.imread(str(p)) for p in tmp_path.rglob("*.jpg")]
    assert len(saved) == 1 and saved[0].shape == (720, 1280, 3)


def test_blazepose_person_pose_matches_mediapipe(blazepose: visionkit.Predictor, assets: Path) -> None:
    people = PersonPose(visionkit.load("detect", "yolov5n", classes=[0]), blazepose)(assets / "bus.jpg")
    assert people.keypoints.shape == (len(people), 33, 3) and len(people) >= 3
    presence = blazepose.backend.predict_in_boxes(cv2.imread(str(assets / "bus.jpg")), people.xyxy).scores
    assert (presence > 0.5).sum() >= 2  # the two people in full view; the third is cut off by the frame edge
    left = people[np.argmin(people.xyxy[:, 0])]
    for index, reference in LEFT_PERSON.values():
        assert np.linalg.norm(left.keypoints[0, index, :2] - reference) < POSE_TOLERANCE_PX
    inside = people.keypoints[..., 2] > 0.5
    x, y = people.keypoints[..., 0], people.keypoints[..., 1]
    box = people.xyxy[:, None]
    assert np.all(~inside | ((x >= box[..., 0] - 20) & (x <= box[..., 2] + 20) & (y >= box[..., 1] - 20)
                             & (y <= box[..., 3] + 20)))


def test_blazepose_whole_image_and_empty(blazepose: visionkit.Predictor, assets: Path) -> None:
    """A photo of one person (bus.jpg's left person cut out) is posed whole; a blank image holds nobody."""
    crop = cv2.imread(str(assets / "bus.jpg"))[350:950, 0:260]
    result = blazepose(crop)
    assert isinstance(result, Detections) and len(result) == 1 and result.keypoints.shape == (1, 33, 3)
    assert result.scores[0] >= 0.5
    assert np.linalg.norm(result.keypoints[0, NOSE, :2] + (0, 350) - LEFT_PERSON["nose"][1]) < POSE_TOLERANCE_PX
    none = blazepose.backend.predict_in_boxes(np.zeros((64, 64, 3), np.uint8), np.zeros((0, 4)))
    assert len(none) == 0 and none.keypoints.shape == (0, 33, 3)
    assert len(blazepose(np.zeros((8, 8), np.uint8))) == 0  # a blank tiny image holds no person


def test_tflite_file_given_by_path(shared_weights: Path, tmp_path: Path) -> None:
    """A .tflite path picks the backend by the model's tensors; a file of another kind is refused clearly."""
    assert visionkit.load("segment", shared_weights / "selfie_segmentation.tflite").backend.name == "tflite-selfie"
    bad = tmp_path / "garbage.tflite"
    bad.write_bytes(b"not a model")
    with pytest.raises(WeightsError, match="not a loadable TensorFlow Lite model"):
        visionkit.load("segment", bad).warmup()
