"""The label and crop sinks against ultralytics' own writers: the same boxes, masks, keypoints and track ids give
the same label lines as ``Results.save_txt`` and the same pixels as ``save_one_box``; plus the drawing style
options of ``visionkit.draw.annotate``."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from ultralytics.engine.results import Results
from ultralytics.utils.plotting import save_one_box

from visionkit.draw import BoxAnnotator, LabelAnnotator, annotate
from visionkit.errors import SinkError
from visionkit.io.labels import CropSink, LabelSink, crop_boxes, folder_name, label_lines
from visionkit.io.sinks import OutputGuard
from visionkit.io.sources import Frame
from visionkit.results import Classification, Detections, SemanticMask

NAMES = ["person", "bicycle", "car"]
H, W = 120, 160


def _detections(masks: bool = False, keypoints: bool = False, tracked: bool = False) -> Detections:
    xyxy = np.array([[10.5, 20.25, 60.0, 100.0], [80.0, 5.0, 150.0, 40.5]], np.float32)
    extra: dict = {}
    if masks:
        m = np.zeros((2, H, W), bool)
        m[0, 30:90, 15:55] = True
        m[0, 95:99, 20:30] = True  # a second part: ultralytics joins the outlines into one polygon
        m[1, 10:35, 90:140] = True
        extra["masks"] = m
    if keypoints:
        rng = np.random.default_rng(0)
        extra["keypoints"] = np.concatenate([rng.uniform(0, 100, (2, 17, 2)), rng.uniform(0, 1, (2, 17, 1))],
                                            axis=2).astype(np.float32)
    if tracked:
        extra["track_ids"] = np.array([7, 3])
    return Detections.from_arrays(xyxy, np.array([0.9, 0.55], np.float32), np.array([0, 2]), NAMES, **extra)


def _ultralytics_lines(det: Detections, tmp_path: Path, save_conf: bool) -> list[str]:
    cols = [torch.tensor(det.xyxy)]
    if det.track_ids is not None:
        cols.append(torch.tensor(det.track_ids, dtype=torch.float32)[:, None])
    cols += [torch.tensor(det.scores)[:, None], torch.tensor(det.class_ids, dtype=torch.float32)[:, None]]
    result = Results(np.zeros((H, W, 3), np.uint8), "x.jpg", dict(enumerate(NAMES)), boxes=torch.cat(cols, 1),
                     masks=None if det.masks is None else torch.tensor(det.masks, dtype=torch.float32),
                     keypoints=None if det.keypoints is None else torch.tensor(det.keypoints))
    target = tmp_path / f"u{save_conf}.txt"
    result.save_txt(target, save_conf=save_conf)
    return target.read_text().splitlines(keepends=True)


@pytest.mark.parametrize("kind", ["boxes", "masks", "keypoints", "tracked"])
@pytest.mark.parametrize("save_conf", [False, True])
def test_label_lines_match_ultralytics_save_txt(kind: str, save_conf: bool, tmp_path: Path) -> None:
    det = _detections(masks=kind == "masks", keypoints=kind == "keypoints", tracked=kind == "tracked")
    ours = label_lines(det, (H, W), save_conf)
    assert len(ours) == 2
    assert ours == _ultralytics_lines(det, tmp_path, save_conf)


def test_classification_and_class_map_lines() -> None:
    top = Classification(class_ids=np.array([2, 0]), class_names=["car", "person"], scores=np.array([0.8, 0.15]))
    assert label_lines(top, (H, W)) == ["0.80 car\n", "0.15 person\n"]
    class_map = np.zeros((H, W), np.int64)
    class_map[10:50, 20:80] = 1  # one region of class 1, two of class 2; 0 is background
    class_map[60:100, 10:40] = 2
    class_map[60:100, 100:150] = 2
    semantic = SemanticMask(class_map=class_map, class_names=["background", "person", "car"],
                            confidence=np.full((H, W), 0.75, np.float32))
    lines = label_lines(semantic, (H, W), save_conf=True)
    assert sorted(line.split()[0] for line in lines) == ["1", "2", "2"]
    for line in lines:
        values = [float(v) for v in line.split()[1:]]
        coords, conf = np.array(values[:-1]).reshape(-1, 2), values[-1]
        assert conf == 0.75 and len(coords) >= 3 and coords.min() >= 0 and coords.max() <= 1
    person = next(line for line in lines if line.startswith("1 "))
    outline = (np.array([float(v) for v in person.split()[1:-1]]).reshape(-1, 2) * [W, H]).round()
    assert outline.min(0).tolist() == [20, 10] and outline.max(0).tolist() == [79, 49]  # the region's outline


def test_label_sink_names_files_after_the_input_and_frame(tmp_path: Path) -> None:
    image = np.zeros((H, W, 3), np.uint8)
    with LabelSink(tmp_path / "labels", OutputGuard(exist_ok=False)) as sink:
        sink.write(Frame(image, "/data/a/bus.jpg"), _detections())
        sink.write(Frame(image, "/data/b/bus.jpg"), _detections())  # same stem: bus_1.txt
        sink.write(Frame(image, "/data/empty.jpg"), Detections.empty())  # nothing found: no file
        for index in (0, 5):
            sink.write(Frame(image, "/v/clip.mp4", index, is_video=True), _detections())
        sink.write(Frame(image, "/w/clip.mp4", 0, is_video=True), _detections())  # another video of that name
    names = sorted(p.name for p in (tmp_path / "labels").iterdir())
    assert names == ["bus.txt", "bus_1.txt", "clip-2_0.txt", "clip_0.txt", "clip_5.txt"]


def test_crops_are_ultralytics_save_one_box_crops(shared_data: Path, tmp_path: Path) -> None:
    image = cv2.imread(str(shared_data / "coco_val2017/images/000000000139.jpg"))
    h, w = image.shape[:2]
    xyxy = np.array([[412.8, 157.6, 465.9, 295.6], [0.0, 0.0, 30.5, 20.5], [w - 5.0, h - 8.0, w, h]], np.float32)
    for box, (x1, y1, x2, y2) in zip(xyxy, crop_boxes(xyxy, (h, w))):
        expected = save_one_box(torch.tensor(box), image, save=False, BGR=True)
        assert np.array_equal(image[y1:y2, x1:x2], expected)
    det = Detections.from_arrays(xyxy, np.ones(3, np.float32), np.array([0, 0, 2]), ["a/b", "x", ".."])
    with CropSink(tmp_path / "crops") as sink:
        sink.write(Frame(image, "room.jpg"), det)
        with pytest.raises(SinkError, match="crops are cut from boxes"):
            sink.write(Frame(image, "room.jpg"), SemanticMask(class_map=np.zeros((h, w), np.int64),
                                                              class_names=["background"]))
    files = sorted(str(p.relative_to(tmp_path / "crops")) for p in (tmp_path / "crops").rglob("*.jpg"))
    assert files == ["2/room.jpg", "a_b/room.jpg", "a_b/room_1.jpg"]  # a class folder never climbs out
    crop = cv2.imread(str(tmp_path / "crops/a_b/room.jpg"))
    x1, y1, x2, y2 = crop_boxes(xyxy[:1], (h, w))[0]
    assert crop.shape == (y2 - y1, x2 - x1, 3)
    assert np.abs(crop.astype(int) - image[y1:y2, x1:x2]).mean() < 3  # JPEG quality 95, 4:4:4
    assert folder_name("traffic light", 9) == "traffic light"


def test_drawing_style_options() -> None:
    det = _detections()
    scene = np.full((H, W, 3), 40, np.uint8)
    plain = det.plot(scene)
    boxes_only = det.plot(scene, labels=False)
    assert np.array_equal(boxes_only, BoxAnnotator().annotate(scene.copy(), det))
    assert not np.array_equal(plain, boxes_only)
    no_conf = det.plot(scene, conf=False)
    assert np.array_equal(no_conf, LabelAnnotator(show_score=False).annotate(BoxAnnotator().annotate(
        scene.copy(), det), det))
    thin, thick = det.plot(scene, line_width=1, labels=False), det.plot(scene, line_width=4, labels=False)
    assert (thick != scene).any(axis=2).sum() > 2 * (thin != scene).any(axis=2).sum()
    with pytest.raises(TypeError, match="unknown drawing option"):
        det.plot(scene, hide_labels=True)
    with pytest.raises(ValueError, match="line_width must be a positive"):
        det.plot(scene, line_width=0)
    top = Classification(class_ids=np.array([0]), class_names=["car"], scores=np.array([0.8]))
    assert not np.array_equal(top.plot(scene), top.plot(scene, conf=False))
    assert np.array_equal(annotate(scene.copy(), top, labels=False), top.plot(scene))  # the panel is the result


def test_vid_stride_in_the_api(shared_data: Path, shared_weights: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``open_source`` and ``stream`` take ``vid_stride``: source frame indices and timestamps, a true length."""
    import visionkit

    monkeypatch.setenv("VISIONKIT_WEIGHTS", str(shared_weights))
    video = shared_data / "action/v_Basketball_g01_c01.avi"
    every = {f.index: f.timestamp for f in visionkit.open_source(video)}
    strided = visionkit.open_source(video, vid_stride=50)
    assert len(strided) == 3 and [(f.index, f.timestamp) for f in strided] == [(i, every[i]) for i in (0, 50, 100)]
    predictor = visionkit.load("detect", "ssd_mobilenet_v1_coco", device="cpu")
    assert [r.frame_index for _, r in predictor.stream(video, vid_stride=70)] == [0, 70, 140]
    with pytest.raises(visionkit.OptionError, match="vid_stride must be a positive integer"):
        visionkit.open_source(video, vid_stride=0)
