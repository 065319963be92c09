"""Pose: parity of the YOLO-pose and Keypoint R-CNN backends with their reference libraries (seeded random weights,
as no official weights are available offline), MoveNet's accuracy on the shared COCO keypoints against the
reference figures, the detector -> MoveNet pipeline, the ``visionkit pose`` command and bad inputs.
"""

from __future__ import annotations

import json
import math
from itertools import islice
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from random_models import build_yolo_pose, calibrate_bn
from test_cli import run
from test_parity_detect import assert_same_as_ultralytics

import visionkit
from visionkit.composites.person_pose import PersonPose
from visionkit.errors import OptionError, WeightsError
from visionkit.eval.keypoints import evaluate_keypoints, evaluate_pck

MOVENET = "movenet_lightning"
# shared/weights/MANIFEST.md: onnxruntime on crops of 1.25 x the GT box, 22 persons with >= 5 labelled keypoints.
REFERENCE_PCK = {0.1: 0.780, 0.2: 0.869}
CONF, IOU = 0.1, 0.6


@pytest.fixture(autouse=True)
def _shared_weights_env(shared_weights: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VISIONKIT_WEIGHTS", str(shared_weights))


@pytest.fixture(scope="module")
def coco(shared_data: Path) -> tuple[Path, Path]:
    root = shared_data / "coco_val2017"
    return root / "images", root / "annotations" / "person_keypoints_val2017.json"


@pytest.fixture(scope="module")
def movenet(shared_weights: Path) -> visionkit.Predictor:
    return visionkit.load("pose", MOVENET, device="cpu", detector="none")  # the bare single-person model


@pytest.fixture(scope="module")
def images(assets: Path) -> dict[str, np.ndarray]:
    return {n: cv2.imread(str(assets / n)) for n in ("bus.jpg", "zidane.jpg")}


# ------------------------------------------------------------------------------------- parity: ultralytics
@pytest.fixture(scope="module", params=["yolov8n-pose.yaml", "yolo11n-pose.yaml"], ids=["yolov8n-pose", "yolo11n-pose"])
def yolo_pose(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
              images: dict[str, np.ndarray]) -> Path:
    path = tmp_path_factory.mktemp("pose") / request.param.replace(".yaml", "-random.pt")
    return build_yolo_pose(request.param, path, list(images.values()))


@pytest.mark.parametrize("image_name", ["bus.jpg", "zidane.jpg"])
def test_ultralytics_pose_matches_yolo_predict(yolo_pose: Path, images: dict[str, np.ndarray],
                                               image_name: str) -> None:
    from ultralytics import YOLO

    image = images[image_name]
    ref = YOLO(str(yolo_pose)).predict(image, conf=CONF, iou=IOU, device="cpu", verbose=False)[0]
    got = visionkit.load("pose", str(yolo_pose), conf=CONF, iou=IOU, device="cpu")(image)
    assert_same_as_ultralytics(got, ref)
    assert got.keypoints.shape == (len(got), 17, 3)
    np.testing.assert_allclose(got.keypoints, ref.keypoints.data.numpy(), rtol=0, atol=1e-3)
    assert np.ptp(got.keypoints[..., :2]) > 100 and np.ptp(got.keypoints[..., 2]) > 0.1  # not a degenerate model


def test_ultralytics_pose_refuses_a_detection_checkpoint(tmp_path: Path) -> None:
    from ultralytics import YOLO

    pt = tmp_path / "det.pt"
    YOLO("yolov8n.yaml").save(pt)
    with pytest.raises(WeightsError, match="detect model, not a pose model"):
        visionkit.load("pose", str(pt))(np.zeros((64, 64, 3), np.uint8))


# ------------------------------------------------------------------------------------- parity: torchvision
def test_torchvision_keypointrcnn_matches_model(tmp_path: Path, images: dict[str, np.ndarray]) -> None:
    """Keypoint R-CNN (random weights, BatchNorm calibrated) vs the model called on ``weights.transforms()``.
    Its keypoint head costs ~4 GFLOPs per person: a small image, imgsz 256 and 6 people keep it affordable on a CPU."""
    import torchvision
    from torchvision.models.detection import KeypointRCNN_ResNet50_FPN_Weights

    image = cv2.resize(images["zidane.jpg"], (320, 180))
    settings = {"conf": 0.05, "iou": 0.5, "max_det": 6, "imgsz": 256}
    torch.manual_seed(0)
    model = torchvision.models.detection.keypointrcnn_resnet50_fpn(
        weights=None, weights_backbone=None, box_score_thresh=0.05, box_nms_thresh=0.5, box_detections_per_img=6,
        min_size=256, max_size=round(256 * 1333 / 800)).eval()
    rgb = torch.from_numpy(image[..., ::-1].copy()).permute(2, 0, 1)
    x = KeypointRCNN_ResNet50_FPN_Weights.COCO_V1.transforms()(rgb)
    calibrate_bn(model.backbone, lambda: model.backbone(model.transform([x])[0].tensors))
    with torch.no_grad():
        ref = model([x])[0]
    pth = tmp_path / "keypointrcnn-random.pth"
    torch.save(model.state_dict(), pth)
    got = visionkit.load("pose", "keypointrcnn_resnet50_fpn", weights=pth, device="cpu", **settings)(image)
    assert len(ref["boxes"]) >= 5 and len(got) == len(ref["boxes"])
    np.testing.assert_allclose(got.xyxy, ref["boxes"].numpy(), rtol=0, atol=1e-3)
    np.testing.assert_allclose(got.scores, ref["scores"].numpy(), rtol=0, atol=1e-5)
    np.testing.assert_allclose(got.keypoints[..., :2], ref["keypoints"][..., :2].numpy(), rtol=0, atol=1e-3)
    np.testing.assert_allclose(got.keypoints[..., 2], ref["keypoints_scores"].sigmoid().numpy(), rtol=0, atol=1e-5)
    assert set(got.class_names) == {"person"}
    assert np.ptp(got.keypoints[..., 0]) > 50  # keypoints spread over the picture, not one constant point


# ------------------------------------------------------------------------------------------ MoveNet accuracy
def test_movenet_pck_on_ground_truth_crops(movenet: visionkit.Predictor, coco: tuple[Path, Path]) -> None:
    score = evaluate_pck(movenet, *coco, alphas=tuple(REFERENCE_PCK))
    assert (score.persons, score.keypoints) == (22, 245)  # the reference's 22 persons with >= 5 labelled keypoints
    for alpha, reference in REFERENCE_PCK.items():
        assert abs(score.pck[alpha] - reference) <= 0.02, (alpha, score.pck[alpha], reference)


def test_oks_ap_of_ground_truth_is_perfect(coco: tuple[Path, Path]) -> None:
    """The evaluation itself: the annotations submitted as predictions score AP 1.0 (format, ids and category)."""
    from pycocotools.coco import COCO

    gt = COCO(str(coco[1]))
    by_file = {im["file_name"]: im["id"] for im in gt.dataset["images"]}

    def oracle(path: str) -> visionkit.Detections:
        anns = [a for a in gt.loadAnns(gt.getAnnIds(imgIds=by_file[Path(path).name])) if a["num_keypoints"] > 0]
        if not anns:
            return visionkit.Detections.empty(keypoints=np.zeros((0, 17, 3), np.float32))
        x, y, w, h = np.array([a["bbox"] for a in anns], np.float32).T
        return visionkit.Detections.from_arrays(np.stack([x, y, x + w, y + h], 1), np.ones(len(anns)),
                                                np.zeros(len(anns)), ["person"],
                                                keypoints=np.array([a["keypoints"] for a in anns], np.float32)
                                                .reshape(-1, 17, 3))

    score = evaluate_keypoints(oracle, *coco)
    assert score.map == pytest.approx(1.0) and score.people == 25


def test_pipeline_oks_ap(movenet: visionkit.Predictor, coco: tuple[Path, Path], tmp_path: Path) -> None:
    """yolov5n person boxes (its interactive settings, conf 0.25, to keep the crops few) -> MoveNet crops, on the
    first 10 annotated images with people: 0.478 AP measured (all 40 images at eval settings: 0.405)."""
    data = json.loads(coco[1].read_text())
    keep = sorted({a["image_id"] for a in data["annotations"] if a["num_keypoints"] > 0})[:10]
    data["images"] = [im for im in data["images"] if im["id"] in keep]
    data["annotations"] = [a for a in data["annotations"] if a["image_id"] in keep]
    subset = tmp_path / "keypoints10.json"
    subset.write_text(json.dumps(data))
    detector = visionkit.load("detect", "yolov5n", classes=[0], device="cpu")
    score = evaluate_keypoints(PersonPose(detector, movenet), coco[0], subset)
    assert math.isfinite(score.map) and 0.38 < score.map <= 1.0, score
    assert score.map50 >= score.map and score.images == 10


# ------------------------------------------------------------------------------------------------ pipeline
def _keypoints_inside_boxes(people: visionkit.Detections, min_found: int = 8, margin: float = 0.05) -> None:
    """Each person has at least ``min_found`` keypoints scoring 0.3 or more, all inside its box (+ margin)."""
    for box, kpts in zip(people.xyxy, people.keypoints, strict=True):
        found = kpts[kpts[:, 2] >= 0.3, :2]
        assert len(found) >= min_found, kpts
        pad = margin * (box[2:] - box[:2])
        assert ((found >= box[:2] - pad) & (found <= box[2:] + pad)).all(), (box, found)


def test_pipeline_with_detector(movenet: visionkit.Predictor, images: dict[str, np.ndarray]) -> None:
    pipe = PersonPose(visionkit.load("detect", "yolov5n", device="cpu"), movenet)
    people = pipe(images["bus.jpg"])
    assert set(people.class_names) == {"person"} and len(people) >= 3  # the bus itself is dropped
    assert people.keypoints.shape == (len(people), 17, 3) and people.track_ids is None
    _keypoints_inside_boxes(people[people.areas > 0.02 * people.areas.max()][:2])
    assert people.speed.inference > 0
    left = people[int(np.argmin(people.xyxy[:, 0]))].keypoints[0]
    # MANIFEST reference for the left person: nose (136, 447), ankles (187, 859) and (72, 864)
    np.testing.assert_allclose(left[[0, 15, 16], :2], [[136, 447], [187, 859], [72, 864]], atol=12)


def test_pipeline_with_tracker_streams_ids(movenet: visionkit.Predictor, shared_data: Path) -> None:
    pipe = PersonPose(visionkit.load("track", "yolov5n", classes=[0], device="cpu"), movenet)
    *_, (frame, people) = islice(pipe.stream(shared_data / "tracking/demo/vtest.avi"), 3)
    assert frame.index == 2 and len(people) >= 2
    assert people.track_ids is not None and len(set(people.track_ids)) == len(people)
    assert people.keypoints.shape == (len(people), 17, 3)
    found = people.keypoints[..., 2] >= 0.3
    assert found.sum() >= 8 * len(people) // 2


def test_pipeline_call_on_zidane(movenet: visionkit.Predictor, assets: Path) -> None:
    pipe = PersonPose(visionkit.load("track", "yolov5n", device="cpu"), movenet)
    people = pipe(str(assets / "zidane.jpg"))
    assert len(people) == 2 and people.track_ids is not None
    _keypoints_inside_boxes(people, min_found=5)  # the left man is cut by the bottom edge: only his top is seen


def test_pipeline_refuses_a_multi_person_model() -> None:
    with pytest.raises(OptionError, match="single-person model"):
        PersonPose(visionkit.load("detect", "yolov5n"), visionkit.load("pose", "yolo11n-pose"))
    with pytest.raises(OptionError, match="pose predictor"):
        PersonPose(visionkit.load("detect", "yolov5n"), visionkit.load("detect", "yolov5n"))


# -------------------------------------------------------------------------------------- MoveNet, bad inputs
def test_movenet_whole_image_finds_one_person(movenet: visionkit.Predictor, images: dict[str, np.ndarray]) -> None:
    for image in images.values():
        person = movenet(image)
        assert len(person) == 1 and person.class_names[0] == "person"
        _keypoints_inside_boxes(person, margin=0.0)
        assert person.scores[0] == pytest.approx(person.keypoints[0, :, 2].mean())


@pytest.mark.parametrize(
    "image",
    [np.zeros((8, 8, 3), np.uint8), np.zeros((8000, 6000, 3), np.uint8), np.zeros((50, 3000, 3), np.uint8),
     np.full((120, 90), 200, np.uint8), np.zeros((64, 64, 4), np.uint8), np.zeros((64, 48, 3), np.uint16)],
    ids=["tiny", "huge", "thin", "gray", "rgba", "16-bit"],
)
def test_movenet_odd_images(movenet: visionkit.Predictor, image: np.ndarray) -> None:
    result = movenet(image)
    assert result.image_shape == image.shape[:2]
    assert result.keypoints is not None and result.keypoints.shape == (len(result), 17, 3)


def test_predict_in_boxes_edge_cases(movenet: visionkit.Predictor, images: dict[str, np.ndarray]) -> None:
    image = images["bus.jpg"]
    h, w = image.shape[:2]
    boxes = np.array([[-50, -50, 5, 5], [w + 10, h + 10, w + 90, h + 200], [300, 300, 300, 300]], np.float32)
    out = movenet.backend.predict_in_boxes(image, boxes)
    assert out.keypoints.shape == (3, 17, 3)
    np.testing.assert_array_equal(out.xyxy, boxes)  # row i belongs to box i, nothing dropped
    assert ((out.keypoints[..., :2] >= 0) & (out.keypoints[..., :2] <= [w, h])).all()
    assert len(movenet.backend.predict_in_boxes(image, np.zeros((0, 4)))) == 0
    with pytest.raises(ValueError, match=r"shape \(n, 4\)"):
        movenet.backend.predict_in_boxes(image, np.zeros((2, 5)))


def test_non_movenet_onnx_is_refused(shared_weights: Path) -> None:
    with pytest.raises(WeightsError, match="not a MoveNet pose model"):
        visionkit.load("pose", str(shared_weights / "yolov5n.onnx")).warmup()


# ----------------------------------------------------------------------------------------------------- CLI
def test_cli_pose_saves_skeleton_and_json(capsys: pytest.CaptureFixture, tmp_path: Path, assets: Path) -> None:
    code, _, err = run(capsys, "pose", assets / "bus.jpg", "--model", MOVENET, "--save", tmp_path / "out",
                       "--json", tmp_path / "pose.jsonl", "--detector", "none")
    assert code == 0, err
    record = json.loads((tmp_path / "pose.jsonl").read_text().splitlines()[0])
    assert record["task"] == "pose" and record["model"] == MOVENET
    (person,) = record["detections"]
    kpts = np.array(person["keypoints"])
    assert kpts.shape == (17, 3) and person["class_name"] == "person"
    source, drawn = cv2.imread(str(assets / "bus.jpg")), cv2.imread(str(tmp_path / "out" / "bus.jpg"))
    assert drawn.shape == source.shape
    changed = np.abs(drawn.astype(int) - source.astype(int)).max(2) > 40
    # the limb from left shoulder (5) to left hip (11) is drawn: its midpoint's neighbourhood changed
    if kpts[5, 2] >= 0.3 and kpts[11, 2] >= 0.3:
        x, y = ((kpts[5, :2] + kpts[11, :2]) / 2).round().astype(int)
        assert changed[y - 3:y + 4, x - 3:x + 4].any()
    x1, y1, x2, y2 = np.array(person["box"]).round().astype(int)
    assert changed[y1:y2, x1:x2].mean() > 0.01 and changed[:, : max(x1 - 40, 1)].mean() < 0.001


@pytest.mark.parametrize(
    ("argv", "code", "message"),
    [
        (["--model", MOVENET, "--iou", "0.5"], 2, "unknown option(s) iou"),
        (["--model", "yolo11n-pose"], 1, "yolo11n-pose.pt"),
        (["--model", "movenet-lightning"], 2, "did you mean movenet_lightning"),
    ],
    ids=["option-movenet-lacks", "official-weights-offline", "unknown-model"],
)
def test_cli_pose_errors(capsys: pytest.CaptureFixture, assets: Path, argv: list[str], code: int,
                         message: str) -> None:
    got, _, err = run(capsys, "pose", assets / "bus.jpg", *argv)
    assert got == code and message in err and "Traceback" not in err, err
    assert len([line for line in err.splitlines() if line.startswith("visionkit: error")]) == 1


def test_catalog_default_is_yolo11n_pose() -> None:
    entry = visionkit.catalog.default_model("pose")
    assert entry.name == "yolo11n-pose" and entry.sha256.startswith("869e83fc")
    assert {e.backend for e in visionkit.list_models("pose")} == {"ultralytics", "torchvision", "onnx-movenet",
                                                                  "tflite-blazepose"}
