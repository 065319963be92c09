"""visionkit.io.sinks: annotated images/videos, JSONL, COCO results; unwritable outputs are a SinkError."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from clip_helpers import count_frames, make_clip

from visionkit.errors import OutputConflictError, SinkError
from visionkit.io.coco_sink import CocoResultsSink
from visionkit.io.sinks import AnnotatedSink, JsonlSink, MotSink, OutputGuard, new_run_dir
from visionkit.io.sources import Frame, open_source
from visionkit.results import Classification, Detections


def dets(n: int = 2, names=("person", "car"), **kwargs) -> Detections:
    xyxy = np.array([[10 + 5 * i, 12 + 3 * i, 40 + 5 * i, 50 + 3 * i] for i in range(n)], np.float32)
    return Detections(xyxy=xyxy, scores=np.linspace(0.9, 0.6, n), class_ids=np.arange(n),
                      class_names=[names[i % len(names)] for i in range(n)], **kwargs)


def still(name: str = "photo.jpg", shape=(80, 100, 3), index: int = 0) -> Frame:
    return Frame(np.full(shape, 90, np.uint8), name, index)


@pytest.fixture
def blocker(tmp_path: Path) -> Path:
    """A regular file: any output path under it cannot be created, even by root."""
    path = tmp_path / "i-am-a-file"
    path.write_text("x")
    return path


@pytest.fixture(scope="module")
def clip(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_clip(shared_data / "tracking/demo/vtest.avi", tmp_path_factory.mktemp("clip") / "walk.avi", 12)


# -- AnnotatedSink ----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "written_as"),
    [
        ("photo.jpg", "photo.jpg"),
        ("/some/where/scan.png", "scan.png"),
        ("img.JPEG", "img.JPEG"),
        ("frame.bmp", "frame.bmp"),
        ("array", "array.jpg"),  # in-memory images get a JPEG name
        ("weird.xyz", "weird.jpg"),
    ],
)
def test_annotated_stills_keep_their_name(tmp_path: Path, name: str, written_as: str) -> None:
    frame = still(name)
    with AnnotatedSink(tmp_path / "out") as sink:
        sink.write(frame, dets())
    target = tmp_path / "out" / written_as
    assert sink.written == [target]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [written_as]
    image = cv2.imread(str(target))
    assert image.shape == frame.image.shape
    assert np.abs(image.astype(int) - 90).max() > 60  # boxes were drawn (beyond JPEG noise)
    np.testing.assert_array_equal(frame.image, 90)  # the frame itself is not drawn on


def test_annotated_sink_uses_given_annotation(tmp_path: Path) -> None:
    frame = still("x.png")
    annotated = np.zeros_like(frame.image)
    annotated[5:10, 5:10] = 255
    with AnnotatedSink(tmp_path) as sink:
        sink.write(frame, dets(), annotated)
    np.testing.assert_array_equal(cv2.imread(str(tmp_path / "x.png")), annotated)  # PNG: lossless


def test_annotated_sink_creates_nested_dirs(tmp_path: Path) -> None:
    with AnnotatedSink(tmp_path / "a" / "b" / "c") as sink:
        sink.write(still(), dets())
    assert (tmp_path / "a" / "b" / "c" / "photo.jpg").is_file()


def test_annotated_video(tmp_path: Path, clip: Path) -> None:
    out = tmp_path / "out"
    with AnnotatedSink(out) as sink:
        for frame in open_source(clip):
            sink.write(frame, dets(frame_index=frame.index))
    assert sink.written == [out / "walk.mp4"]
    assert [p.name for p in out.iterdir()] == ["walk.mp4"]
    n, w, h = count_frames(out / "walk.mp4")
    assert (n, w, h) == (12, 480, 360)
    cap = cv2.VideoCapture(str(out / "walk.mp4"))
    assert cap.get(cv2.CAP_PROP_FPS) == pytest.approx(10.0)
    ok, first = cap.read()
    cap.release()
    assert ok and first[12:50, 10:40].std() > 0


def test_annotated_videos_one_file_per_source(tmp_path: Path, clip: Path, monkeypatch) -> None:
    """Two videos, one a relative path named like a camera: each gets <stem>.mp4 inside the output folder."""
    cams = tmp_path / "cams"
    cams.mkdir()
    (cams / "camera_2.avi").write_bytes(clip.read_bytes())
    monkeypatch.chdir(cams)
    out = tmp_path / "out"
    with AnnotatedSink(out) as sink:
        for spec in (clip, "camera_2.avi"):
            for frame in open_source(spec):
                sink.write(frame, dets())
    assert sorted(p.name for p in out.iterdir()) == ["camera_2.mp4", "walk.mp4"]
    assert count_frames(out / "camera_2.mp4")[0] == 12
    assert not list(cams.glob("*.mp4"))


def test_annotated_live_camera_name(tmp_path: Path) -> None:
    with AnnotatedSink(tmp_path) as sink:
        for i in range(3):
            sink.write(Frame(np.zeros((48, 64, 3), np.uint8), "camera 0", i, i / 5, 5.0, is_video=True), dets())
    assert [p.name for p in tmp_path.iterdir()] == ["camera0.mp4"]
    assert count_frames(tmp_path / "camera0.mp4") == (3, 64, 48)


def test_annotated_sink_close_twice(tmp_path: Path, clip: Path) -> None:
    sink = AnnotatedSink(tmp_path)
    for frame in open_source(clip):
        sink.write(frame, dets())
        break
    sink.close()
    sink.close()
    assert count_frames(tmp_path / "walk.mp4")[0] == 1


# -- JsonlSink --------------------------------------------------------------------------------------------
def test_jsonl_one_object_per_line_flushed(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "out.jsonl"
    sink = JsonlSink(path, task="detect", model="m")
    assert path.is_file()
    sink.write(still("a.jpg"), dets(frame_index=0))
    lines = path.read_text().splitlines()  # readable before close: flushed per frame
    assert len(lines) == 1
    sink.write(Frame(np.zeros((4, 4, 3), np.uint8), "v.mp4", 7, 0.7, 10.0, True), dets(1))
    sink.write(still("c.jpg", index=2), Detections.empty())
    lines = path.read_text().splitlines()
    assert len(lines) == 3
    records = [json.loads(line) for line in lines]
    sink.close()
    sink.close()
    assert [r["source"] for r in records] == ["a.jpg", "v.mp4", "c.jpg"]
    assert [r["frame_index"] for r in records] == [0, 7, 2]
    assert all(r["task"] == "detect" and r["model"] == "m" and r["type"] == "detections" for r in records)
    assert "timestamp" not in records[0] and records[1]["timestamp"] == 0.7
    assert len(records[0]["detections"]) == 2 and records[0]["detections"][0]["class_name"] == "person"
    assert records[2]["detections"] == []
    assert Detections.from_dict(records[0]).xyxy.tolist() == dets().xyxy.tolist()


def test_jsonl_other_result_kinds(tmp_path: Path) -> None:
    with JsonlSink(tmp_path / "c.jsonl") as sink:
        sink.write(still(), Classification.from_probs(np.array([0.1, 0.7, 0.2]), ["a", "b", "c"], top_k=2))
    (record,) = [json.loads(x) for x in (tmp_path / "c.jsonl").read_text().splitlines()]
    assert record["type"] == "classification" and [t["class_name"] for t in record["top"]] == ["b", "c"]


# -- CocoResultsSink --------------------------------------------------------------------------------------
def test_coco_results(tmp_path: Path) -> None:
    path = tmp_path / "coco" / "results.json"
    with CocoResultsSink(path) as sink:
        sink.write(still("/data/000000000139.jpg"), dets(2, names=("person", "tv")))
        sink.write(still("000000000785.jpg"), dets(1, names=("toothbrush",)))
        sink.write(still("holiday.jpg", index=5), dets(1, names=("dog",)))
        sink.write(still("000000000999.jpg"), Detections.empty())
        assert not path.exists()  # written atomically on close
    rows = json.loads(path.read_text())
    assert isinstance(rows, list) and len(rows) == 4
    assert [r["image_id"] for r in rows] == [139, 139, 785, 1000]  # non-numeric stem: numbered after the largest id
    assert [r["category_id"] for r in rows] == [1, 72, 90, 18]  # official COCO category ids
    assert rows[0]["bbox"] == [10.0, 12.0, 30.0, 38.0]  # x, y, w, h
    assert rows[0]["score"] == pytest.approx(0.9)
    assert set(rows[0]) == {"image_id", "category_id", "bbox", "score"}
    assert not list(path.parent.glob("*.tmp"))


def test_coco_results_load_in_pycocotools(tmp_path: Path, shared_data: Path) -> None:
    from pycocotools.coco import COCO

    ann = shared_data / "coco_val2017/annotations/instances_val2017.json"
    gt = COCO(str(ann))
    image = gt.loadImgs(sorted(gt.getImgIds())[0])[0]
    path = tmp_path / "r.json"
    with CocoResultsSink(path) as sink:
        sink.write(still(image["file_name"], (image["height"], image["width"], 3)), dets(3))
    dt = gt.loadRes(str(path))
    anns = dt.loadAnns(dt.getAnnIds())
    assert len(anns) == 3 and {a["image_id"] for a in anns} == {image["id"]}
    assert {a["category_id"] for a in anns} <= set(gt.getCatIds())


def test_coco_image_named_by_other_unicode_digits(tmp_path: Path) -> None:
    """'³' passes str.isdigit() but not int() (it was a ValueError): not a COCO id, so it is numbered after the
    largest one; Arabic-Indic '١٣٩' is the number 139."""
    with CocoResultsSink(tmp_path / "r.json") as sink:
        sink.write(still("\u00b3.jpg"), dets(1))
        sink.write(still("\u0661\u0663\u0669.jpg"), dets(1))
    assert [r["image_id"] for r in json.loads((tmp_path / "r.json").read_text())] == [140, 139]


def test_coco_video_frames_get_distinct_ids(tmp_path: Path) -> None:
    with CocoResultsSink(tmp_path / "r.json") as sink:
        for i in range(3):
            sink.write(Frame(np.zeros((8, 8, 3), np.uint8), "000000000139.mp4", i, is_video=True), dets(1))
    assert [r["image_id"] for r in json.loads((tmp_path / "r.json").read_text())] == [1, 2, 3]


def test_coco_rejects_results_that_are_not_detections(tmp_path: Path) -> None:
    sink = CocoResultsSink(tmp_path / "r.json")
    with pytest.raises(SinkError, match="COCO results hold detections, not classification"):
        sink.write(still("1.jpg"), Classification.from_probs(np.array([1.0]), ["a"]))


# -- MotSink ----------------------------------------------------------------------------------------------
def test_mot_sink(tmp_path: Path) -> None:
    with MotSink(tmp_path / "mot.txt") as sink:
        sink.write(still(index=4), dets(2, track_ids=[3, 8]))
        with pytest.raises(SinkError, match="tracked detections"):
            sink.write(still(), dets(1))
    lines = (tmp_path / "mot.txt").read_text().splitlines()
    assert lines == ["5,3,10.00,12.00,30.00,38.00,0.9000,-1,-1,-1", "5,8,15.00,15.00,30.00,38.00,0.6000,-1,-1,-1"]


# -- unwritable outputs -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("make", "sub", "message"),
    [
        (AnnotatedSink, "out", "cannot create output directory"),
        (AnnotatedSink, "", "cannot create output directory"),  # the file itself as the folder
        (JsonlSink, "out.jsonl", "cannot create output directory"),
        (JsonlSink, "deeper/out.jsonl", "cannot create output directory"),
        (CocoResultsSink, "coco.json", "cannot create output directory"),
        (MotSink, "mot.txt", "cannot create output directory"),
    ],
)
def test_output_under_a_regular_file(blocker: Path, make, sub: str, message: str) -> None:
    target = blocker / sub if sub else blocker
    with pytest.raises(SinkError) as info:
        make(target)
    text = str(info.value)
    assert message in text and str(blocker) in text and "\n" not in text


def test_jsonl_path_is_a_directory(tmp_path: Path) -> None:
    with pytest.raises(SinkError, match=r"cannot write .*: Is a directory"):
        JsonlSink(tmp_path)


def test_coco_output_path_is_a_directory(tmp_path: Path) -> None:
    (tmp_path / "r.json").mkdir()
    sink = CocoResultsSink(tmp_path / "r.json")
    sink.write(still("1.jpg"), dets(1))
    with pytest.raises(SinkError, match="cannot write .*r.json"):
        sink.close()


def test_annotated_image_cannot_be_written(tmp_path: Path) -> None:
    sink = AnnotatedSink(tmp_path)
    (tmp_path / "photo.jpg").mkdir()  # the target name is taken by a folder
    with pytest.raises(SinkError, match="cannot write .*photo.jpg"):
        sink.write(still("photo.jpg"), dets())


# -- OutputGuard: never over an input, an existing file only with exist_ok ----------------------------------
@pytest.fixture
def an_input(tmp_path: Path) -> Path:
    path = tmp_path / "in" / "photo.jpg"
    path.parent.mkdir()
    path.write_bytes(b"input bytes")
    return path


@pytest.mark.parametrize("link", ["same path", "hard link", "symlink", "through a symlinked folder"])
def test_guard_refuses_an_input_however_it_is_named(tmp_path: Path, an_input: Path, link: str) -> None:
    if link == "same path":
        output = an_input
    elif link == "hard link":
        output = tmp_path / "results.jsonl"
        output.hardlink_to(an_input)
    elif link == "symlink":
        output = tmp_path / "results.jsonl"
        output.symlink_to(an_input)
    else:
        (tmp_path / "alias").symlink_to(an_input.parent)
        output = tmp_path / "alias" / an_input.name
    guard = OutputGuard([an_input.parent], exist_ok=True)  # a folder input counts for every file in it
    with pytest.raises(OutputConflictError, match="is an input of this run"):
        JsonlSink(output, guard)
    assert an_input.read_bytes() == b"input bytes"


def test_guard_lists_lazy_inputs_only_when_an_output_exists(tmp_path: Path, an_input: Path) -> None:
    listed = []

    def inputs():
        listed.append(True)
        yield an_input

    guard = OutputGuard(inputs(), exist_ok=False)
    guard.claim(tmp_path / "new.jsonl")
    assert not listed
    with pytest.raises(OutputConflictError, match="is an input"):
        guard.claim(an_input)
    assert listed == [True]


def test_guard_existing_files_and_devices(tmp_path: Path) -> None:
    existing = tmp_path / "r.jsonl"
    existing.write_text("old\n")
    with pytest.raises(OutputConflictError, match=r"r.jsonl already exists \(--exist-ok replaces it\)"):
        JsonlSink(existing, OutputGuard(exist_ok=False))
    assert existing.read_text() == "old\n"
    OutputGuard(exist_ok=False).claim("/dev/null")  # written to, not replaced
    with JsonlSink(existing, OutputGuard(exist_ok=True)) as sink:
        sink.write(still(), dets(1))
    assert len(existing.read_text().splitlines()) == 1


def test_guard_one_path_one_output(tmp_path: Path) -> None:
    guard = OutputGuard()
    JsonlSink(tmp_path / "r.json", guard).close()
    with pytest.raises(OutputConflictError, match="already an output of this run"):
        CocoResultsSink(tmp_path / "r.json", guard)


def test_annotated_sink_takes_a_free_name_unless_exist_ok(tmp_path: Path) -> None:
    (tmp_path / "photo.jpg").write_bytes(b"earlier run")
    with AnnotatedSink(tmp_path, OutputGuard(exist_ok=False)) as sink:
        sink.write(still("photo.jpg"), dets(1))
        sink.write(still("/other/photo.jpg"), dets(1))
    assert sink.written == [tmp_path / "photo_1.jpg", tmp_path / "photo_2.jpg"]
    assert (tmp_path / "photo.jpg").read_bytes() == b"earlier run"
    with AnnotatedSink(tmp_path, OutputGuard(exist_ok=True)) as sink:
        sink.write(still("photo.jpg"), dets(1))
    assert sink.written == [tmp_path / "photo.jpg"] and (tmp_path / "photo.jpg").read_bytes()[:2] == b"\xff\xd8"


def test_annotated_sink_refuses_to_write_over_its_input(an_input: Path) -> None:
    sink = AnnotatedSink(an_input.parent, OutputGuard([an_input], exist_ok=False))
    with pytest.raises(OutputConflictError, match="photo.jpg is an input"):
        sink.write(still(str(an_input)), dets(1))
    assert an_input.read_bytes() == b"input bytes"


def test_new_run_dir_numbers_like_ultralytics(tmp_path: Path) -> None:
    assert [new_run_dir(tmp_path / "runs/detect").name for _ in range(3)] == ["predict", "predict2", "predict3"]


# -- one sequence per MOT file; COCO ids across folders; write errors --------------------------------------
def video(source: str, index: int) -> Frame:
    return Frame(np.zeros((48, 64, 3), np.uint8), source, index, is_video=True)


def test_mot_folder_one_file_per_sequence(tmp_path: Path) -> None:
    with MotSink(tmp_path / "mot") as sink:
        for source in ("/a/walk.mp4", "/b/walk.mp4", "camera 0"):
            for i in range(2):
                sink.write(video(source, i), dets(1, track_ids=[1]))
        sink.write(still("/seq/img1/000001.jpg"), dets(1, track_ids=[4]))
    names = sorted(p.name for p in (tmp_path / "mot").iterdir())
    assert names == ["camera0.txt", "img1.txt", "walk.txt", "walk_1.txt"]
    assert [line.split(",")[0] for line in (tmp_path / "mot/walk_1.txt").read_text().splitlines()] == ["1", "2"]


def test_mot_file_refuses_a_second_sequence(tmp_path: Path, clip: Path) -> None:
    with pytest.raises(OutputConflictError, match="holds one sequence, but this run reads 2"):
        MotSink(tmp_path / "m.txt", OutputGuard([clip, clip.with_name("other.mp4")]))
    sink = MotSink(tmp_path / "m.txt")  # no inputs known: the second sequence is refused when it comes
    sink.write(video("a.mp4", 0), dets(1, track_ids=[1]))
    with pytest.raises(SinkError, match="b.mp4 starts another"):
        sink.write(video("b.mp4", 0), dets(1, track_ids=[1]))
    sink.close()
    assert len((tmp_path / "m.txt").read_text().splitlines()) == 1


def test_coco_ids_unique_across_folders_and_videos(tmp_path: Path) -> None:
    with CocoResultsSink(tmp_path / "r.json") as sink:
        sink.write(still("/a/000000000139.jpg", index=0), dets(1))
        sink.write(still("/b/000000000139.jpg", index=1), dets(1))  # the same stem in another folder
        sink.write(still("/b/000000000785.jpg", index=2), dets(1))
        sink.write(video("/v/000000000785.mp4", 0), dets(1))
    ids = [r["image_id"] for r in json.loads((tmp_path / "r.json").read_text())]
    assert ids[2] == 785 and len(set(ids)) == 4 and min(ids[:2] + ids[3:]) > 785


def test_line_sink_disk_full_is_a_sink_error() -> None:
    sink = JsonlSink("/dev/full")
    with pytest.raises(SinkError, match="cannot write /dev/full: No space left on device"):
        sink.write(still(), dets(1))
    with pytest.raises(SinkError, match="cannot write /dev/full"):  # the unwritten line is still buffered
        sink.close()
    sink.close()  # closed all the same: a second close is quiet
