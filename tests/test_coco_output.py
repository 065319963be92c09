"""``--coco`` for any model (issue #15 item 6): categories from the model's class list, keypoint results with the
skeleton for poses, instance masks as RLE, and the image-id map beside the results; every file loads in pycocotools
(``COCO(index)`` + ``loadRes(results)``), and pose results score with COCOeval against the shared annotations."""

from __future__ import annotations

import contextlib
import io
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from fault_harness import Fault, check_fault, run_cli

from visionkit.io.coco_sink import CocoResultsSink
from visionkit.io.sources import Frame
from visionkit.results import Detections


def load(results: Path):
    """The index file opened with COCO() and the results with loadRes, as a user joins them."""
    from pycocotools.coco import COCO

    with contextlib.redirect_stdout(io.StringIO()):
        index = COCO(str(results.with_name(f"{results.stem}.images.json")))
        return index, index.loadRes(str(results))


def boxes(class_ids: list[int], names: list[str], **kwargs) -> Detections:
    n = len(class_ids)
    xyxy = np.array([[5 + i, 6, 30 + i, 40] for i in range(n)], np.float32)
    return Detections.from_arrays(xyxy, np.linspace(0.9, 0.4, n), class_ids, names, **kwargs)


def test_any_class_list_gets_its_own_categories(tmp_path: Path) -> None:
    names = ["helmet", "vest", "person"]
    path = tmp_path / "r.json"
    with CocoResultsSink(path, class_names=names) as sink:
        sink.write(Frame(np.zeros((50, 60, 3), np.uint8), "/site/cam1.jpg"), boxes([0, 2], names))
        sink.write(Frame(np.zeros((50, 60, 3), np.uint8), "/site/cam2.jpg", 1), boxes([1], names))
    index, results = load(path)
    assert [c["name"] for c in index.loadCats(index.getCatIds())] == names
    assert index.getCatIds() == [1, 2, 3]  # class id + 1
    anns = results.loadAnns(results.getAnnIds())
    assert [a["category_id"] for a in anns] == [1, 3, 2]
    assert {index.imgs[a["image_id"]]["file_name"] for a in anns} == {"cam1.jpg", "cam2.jpg"}
    assert index.imgs[anns[0]["image_id"]]["source"] == "/site/cam1.jpg"


def test_coco_classes_keep_the_official_ids(tmp_path: Path) -> None:
    names = ["person", "bicycle", "car"]
    path = tmp_path / "r.json"
    with CocoResultsSink(path, class_names=names) as sink:
        sink.write(Frame(np.zeros((50, 60, 3), np.uint8), "000000000139.jpg"), boxes([2], names))
    index, results = load(path)
    assert index.getCatIds() == [1, 2, 3] and results.loadAnns(results.getAnnIds())[0]["category_id"] == 3
    assert list(index.imgs) == [139]


def test_video_frames_are_mapped_to_ids(tmp_path: Path) -> None:
    path = tmp_path / "r.json"
    with CocoResultsSink(path) as sink:
        for i in range(3):
            frame = Frame(np.zeros((40, 40, 3), np.uint8), "/v/walk.mp4", i, timestamp=i / 25, is_video=True)
            sink.write(frame, boxes([0], ["face"]))
    index, _ = load(path)
    assert [(i["id"], i["file_name"], i["frame_index"]) for i in index.dataset["images"]] == \
        [(1, "walk_000000.jpg", 0), (2, "walk_000001.jpg", 1), (3, "walk_000002.jpg", 2)]


def test_instance_masks_are_rle_segmentations(tmp_path: Path) -> None:
    from pycocotools import mask as mask_utils

    masks = np.zeros((2, 30, 40), bool)
    masks[0, 5:15, 5:20] = True
    masks[1, 10:25, 20:35] = True
    path = tmp_path / "r.json"
    with CocoResultsSink(path, class_names=["leaf"]) as sink:
        sink.write(Frame(np.zeros((30, 40, 3), np.uint8), "plant.png"), boxes([0, 0], ["leaf"], masks=masks))
    _, results = load(path)
    anns = results.loadAnns(results.getAnnIds())
    assert [int(mask_utils.area(a["segmentation"])) for a in anns] == [150, 225]
    assert np.array_equal(results.annToMask(anns[1]).astype(bool), masks[1])


@pytest.fixture(scope="module")
def people(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The shared COCO images that have labelled person keypoints, and their annotations."""
    annotations = shared_data / "coco_val2017/annotations/person_keypoints_val2017.json"
    data = json.loads(annotations.read_text())
    labelled = {a["image_id"] for a in data["annotations"] if a["num_keypoints"] > 0}
    folder = tmp_path_factory.mktemp("people")
    for image in data["images"]:
        if image["id"] in sorted(labelled)[:6]:
            shutil.copy(shared_data / "coco_val2017/images" / image["file_name"], folder)
    return folder, annotations


def test_pose_results_score_with_cocoeval(people: tuple[Path, Path], tmp_path: Path, shared_weights: Path) -> None:
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    folder, annotations = people
    out = tmp_path / "pose.json"
    outcome = run_cli("pose", folder, "-m", "movenet_lightning", "--detector", "yolov5n", "-q", "--coco", out,
                      env={"VISIONKIT_WEIGHTS": str(shared_weights)})
    assert outcome.code == 0, outcome.stderr
    index, results = load(out)
    (person,) = index.dataset["categories"]
    assert person["id"] == 1 and len(person["keypoints"]) == 17 and person["keypoints"][0] == "nose"
    assert [16, 14] in person["skeleton"] and len(person["skeleton"]) == 19  # COCO's own, 1-based
    rows = json.loads(out.read_text())
    assert rows and all(len(r["keypoints"]) == 51 and 0 <= r["num_keypoints"] <= 17 for r in rows)
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(str(annotations))
        scored = COCOeval(gt, gt.loadRes(str(out)), "keypoints")
        scored.params.imgIds = sorted(i["id"] for i in index.dataset["images"])
        scored.evaluate()
        scored.accumulate()
        scored.summarize()
    assert scored.stats[1] > 0.3  # OKS mAP50 on these people: the results mean what they say
    assert len(results.getAnnIds()) == len(rows)


def test_faces_with_landmarks_from_a_non_coco_model(assets: Path, tmp_path: Path, shared_weights: Path) -> None:
    """yunet_face (class "face", 5 landmarks) gave `[]` and exit 1 before."""
    out = tmp_path / "faces.json"
    outcome = run_cli("detect", assets / "zidane.jpg", "-m", "yunet_face", "-q", "--coco", out,
                      env={"VISIONKIT_WEIGHTS": str(shared_weights)})
    assert outcome.code == 0, outcome.stderr
    index, results = load(out)
    (face,) = index.dataset["categories"]
    assert face["name"] == "face" and face["keypoints"][2] == "nose_tip" and face["skeleton"] == []
    anns = results.loadAnns(results.getAnnIds())
    assert len(anns) >= 2 and all(a["category_id"] == 1 and len(a["keypoints"]) == 15 for a in anns)


def test_coco_of_a_class_map_is_one_line(shared_data: Path, tmp_path: Path, shared_weights: Path) -> None:
    image = sorted((shared_data / "coco_val2017/images").glob("*.jpg"))[0]
    check_fault(Fault("semantic-coco", ["segment", image, "-m", "deeplabv3_mnv2_257", "-q", "--coco",
                                        tmp_path / "s.json"], 1, "COCO results hold detections, not semantic_mask",
                      inputs=[image], env={"VISIONKIT_WEIGHTS": str(shared_weights)}))


def test_an_existing_image_map_is_kept(tmp_path: Path, assets: Path, shared_weights: Path) -> None:
    """FILE_STEM.images.json is claimed like every output: an existing one is replaced only with --exist-ok."""
    folder = tmp_path / "in"
    folder.mkdir()
    shutil.copy(assets / "bus.jpg", folder)
    taken = tmp_path / "r.images.json"
    taken.write_text("{}")
    check_fault(Fault("index-exists", ["detect", folder, "-m", "yunet_face", "-q", "--coco", tmp_path / "r.json"], 2,
                      "r.images.json already exists", inputs=[taken, folder / "bus.jpg"],
                      env={"VISIONKIT_WEIGHTS": str(shared_weights)}))
