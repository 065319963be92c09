"""YuNet faces (``yunet_face``, the official OpenCV Zoo file): the MANIFEST's faces, identity with calling
``cv2.FaceDetectorYN`` directly, the ``visionkit detect`` command with --save, and odd image sizes."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from test_cli import run

import visionkit
from visionkit.results import Detections

MODEL = "yunet_face"
# shared/weights/MANIFEST.md: FaceDetectorYN(path, '', (w, h), 0.6, 0.3, 5000).detect(img) on ultralytics' samples.
MANIFEST_SCORES = {"zidane.jpg": [0.94, 0.90, 0.61], "bus.jpg": [0.92, 0.91]}


@pytest.fixture(autouse=True)
def _shared_weights_env(shared_weights: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VISIONKIT_WEIGHTS", str(shared_weights))


@pytest.fixture(scope="module")
def faces(shared_weights: Path) -> visionkit.Predictor:
    return visionkit.load("detect", MODEL)


def _reference(weights: Path, image: np.ndarray) -> np.ndarray:
    """OpenCV Zoo's own usage: a detector sized to the image, score 0.6, NMS 0.3, top_k 5000 -> (n, 15) rows."""
    h, w = image.shape[:2]
    _, found = cv2.FaceDetectorYN.create(str(weights), "", (w, h), 0.6, 0.3, 5000).detect(image)
    return np.zeros((0, 15), np.float32) if found is None else found


@pytest.mark.parametrize("name", MANIFEST_SCORES)
def test_manifest_faces(faces: visionkit.Predictor, assets: Path, name: str) -> None:
    det = faces(assets / name)
    assert isinstance(det, Detections) and list(det.class_names) == ["face"] * len(det)
    np.testing.assert_allclose(np.sort(det.scores)[::-1], MANIFEST_SCORES[name], atol=0.01)
    assert det.keypoints.shape == (len(det), 5, 3)
    np.testing.assert_array_equal(det.keypoints[..., 2], np.repeat(det.scores[:, None], 5, axis=1))
    x1, y1, x2, y2 = det.xyxy.T[:, :, None]
    kx, ky = det.keypoints[..., 0], det.keypoints[..., 1]
    assert ((kx > x1) & (kx < x2) & (ky > y1) & (ky < y2)).all()  # the landmarks lie in their face's box
    right_eye, left_eye, nose = det.keypoints[:, 0, :2], det.keypoints[:, 1, :2], det.keypoints[:, 2, :2]
    assert (right_eye[:, 0] < left_eye[:, 0]).all()  # the subject's right eye is on the image's left
    assert (nose[:, 1] > right_eye[:, 1]).all()


@pytest.mark.parametrize("name", MANIFEST_SCORES)
def test_identical_to_face_detector_yn(faces: visionkit.Predictor, shared_weights: Path, assets: Path,
                                       name: str) -> None:
    image = cv2.imread(str(assets / name))
    ref = _reference(shared_weights / "face_detection_yunet_2023mar.onnx", image)
    det = faces(image)
    h, w = image.shape[:2]
    ref_xyxy = np.clip(np.concatenate([ref[:, :2], ref[:, :2] + ref[:, 2:4]], axis=1), 0, [w, h, w, h])
    np.testing.assert_array_equal(det.xyxy, ref_xyxy)
    np.testing.assert_array_equal(det.scores, ref[:, 14])
    np.testing.assert_array_equal(det.keypoints[..., :2], ref[:, 4:14].reshape(-1, 5, 2))


def test_batch_equals_single(assets: Path, faces: visionkit.Predictor) -> None:
    paths = [assets / "zidane.jpg", assets / "bus.jpg"]
    batched = visionkit.load("detect", MODEL, batch_size=2).predict(paths)
    for one, many in zip((faces(p) for p in paths), batched):
        np.testing.assert_array_equal(one.xyxy, many.xyxy)
        np.testing.assert_array_equal(one.keypoints, many.keypoints)


def test_cli_save(capsys: pytest.CaptureFixture, tmp_path: Path, assets: Path) -> None:
    code, out, err = run(capsys, "detect", assets / "zidane.jpg", "--model", MODEL, "--save", tmp_path / "out",
                         "--json", tmp_path / "r.jsonl")
    assert code == 0, err
    assert "3 face" in out and "WARN" not in err  # OpenCV's create-time warning is kept off the console
    (record,) = [json.loads(line) for line in (tmp_path / "r.jsonl").read_text().splitlines()]
    assert [round(d["score"], 2) for d in record["detections"]] == MANIFEST_SCORES["zidane.jpg"]
    assert all(len(d["keypoints"]) == 5 for d in record["detections"])
    original = cv2.imread(str(assets / "zidane.jpg")).astype(int)
    drawn = cv2.imread(str(tmp_path / "out" / "zidane.jpg")).astype(int)
    changed = np.abs(drawn - original).max(axis=2) > 80
    for d in record["detections"]:
        x1, y1, x2, y2 = (round(v) for v in d["box"])
        assert changed[y1:y2, x1:x2].any()  # box outline / landmark dots drawn on every face
        for x, y, _ in d["keypoints"]:
            assert changed[round(y), round(x)]  # a dot on each landmark


def test_large_image_is_detected_downscaled(faces: visionkit.Predictor, assets: Path) -> None:
    """An 8000x6000 photo runs at imgsz 1280 (max side) and its boxes come back in the photo's own pixels."""
    image = cv2.imread(str(assets / "zidane.jpg"))
    big = cv2.resize(image, (8000, 4500), interpolation=cv2.INTER_LINEAR)
    small, big_det = faces(image), faces(big)
    assert big_det.image_shape == (4500, 8000) and len(big_det) >= 2
    scale = 8000 / 1280
    for box in big_det.xyxy:  # each face matches one found at native size, scaled up
        overlap = [_iou(box, b * scale) for b in small.xyxy]
        assert max(overlap) > 0.8, overlap


def test_tiny_and_grayscale(faces: visionkit.Predictor, assets: Path) -> None:
    tiny = faces(np.full((8, 8, 3), 127, np.uint8))
    assert len(tiny) == 0 and tiny.keypoints.shape == (0, 5, 3)
    gray = cv2.imread(str(assets / "zidane.jpg"), cv2.IMREAD_GRAYSCALE)
    det = faces(gray)
    assert det.image_shape == gray.shape and (det.scores > 0.85).sum() == 2  # both main faces still found


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)
