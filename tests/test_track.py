"""Tracking: ultralytics' trackers behind Tracker / TrackingPredictor, TrackEval scoring, the track CLI.

Data (../shared/data/tracking, see its README section 4): PETS09-S2L1 (300 of 795 frames, MOT15 gt),
MOT17-05-FRCNN (6 frames, MOT17 gt) and demo/vtest.avi (PETS09 at 480x360).
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from visionkit.cli import main
from visionkit.composites.track import Tracker, TrackingPredictor
from visionkit.errors import OptionError, SourceError
from visionkit.eval.mot import TrackScore, evaluate_mot_files, evaluate_tracker
from visionkit.io.sinks import MotSink
from visionkit.results import Detections

PETS, MOT17 = "PETS09-S2L1", "MOT17-05-FRCNN"


# -- helpers -----------------------------------------------------------------------------------------------
def _gt(seq: Path, frames: int | None = None) -> np.ndarray:
    """Scored gt rows: MOT15 flag=1, MOT17 consider=1 and class pedestrian; frames 1..frames."""
    gt = np.loadtxt(seq / "gt" / "gt.txt", delimiter=",", ndmin=2)
    keep = gt[:, 6] == 1
    if gt.shape[1] == 9:
        keep &= gt[:, 7] == 1
    if frames is not None:
        keep &= gt[:, 0] <= frames
    return gt[keep]


def _gt_detections(gt: np.ndarray, frame: int, shape: tuple[int, int]) -> Detections:
    rows = gt[gt[:, 0] == frame]
    xyxy = np.column_stack([rows[:, 2], rows[:, 3], rows[:, 2] + rows[:, 4], rows[:, 3] + rows[:, 5]])
    n = len(rows)
    return Detections(xyxy=xyxy.reshape(-1, 4), scores=np.ones(n), class_ids=np.zeros(n, np.int64),
                      class_names=np.array(["person"] * n, object), image_shape=shape)


def _mot_line(frame: int, d: Detections, i: int) -> str:
    x1, y1, x2, y2 = d.xyxy[i]
    return f"{frame},{d.track_ids[i]},{x1:.2f},{y1:.2f},{x2 - x1:.2f},{y2 - y1:.2f},{d.scores[i]:.4f},-1,-1,-1\n"


def _shape(seq: Path) -> tuple[int, int]:
    info = dict(line.split("=", 1) for line in (seq / "seqinfo.ini").read_text().splitlines() if "=" in line)
    return int(info["imHeight"]), int(info["imWidth"])


def _track_gt(seq: Path, kind: str, out: Path, **params: object) -> Path:
    """Feed a tracker the ground-truth boxes of every frame of img1/ (score 1, class 0) and write MOT results."""
    frames = len(list((seq / "img1").iterdir()))
    gt = _gt(seq, frames)
    tracker = Tracker(kind, **params)
    with open(out, "w") as f:
        for frame in range(1, frames + 1):
            tracked = tracker.update(_gt_detections(gt, frame, _shape(seq)))
            f.writelines(_mot_line(frame, tracked, i) for i in range(len(tracked)))
    return out


def _parse_mot(path: Path) -> list[list[float]]:
    rows = []
    for line in path.read_text().splitlines():
        fields = line.split(",")
        assert len(fields) == 10, line
        values = [float(v) for v in fields]
        assert values[0] == int(values[0]) >= 1 and values[1] == int(values[1]) >= 1, line
        assert values[4] > 0 and values[5] > 0 and values[7:] == [-1, -1, -1], line
        rows.append(values)
    return rows


def _link(src: Path, dst: Path) -> None:
    try:
        os.symlink(src, dst)
    except OSError:
        shutil.copy(src, dst)


def _signature(d: Detections) -> list[tuple[int, tuple[float, ...]]]:
    return sorted((int(t), tuple(np.round(b, 2).tolist())) for t, b in zip(d.track_ids, d.xyxy))


# -- fixtures ----------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def tracking_data(shared_data: Path) -> Path:
    root = shared_data / "tracking"
    for name in (PETS, MOT17, "demo/vtest.avi"):
        assert (root / name).exists(), f"{root / name} missing"
    return root


@pytest.fixture(scope="module")
def pets40(tracking_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The first 40 frames of PETS09-S2L1 as a sequence of its own: img1 links, gt and seqinfo cut to 40 frames."""
    seq = tmp_path_factory.mktemp("seq") / "PETS09-S2L1-40"
    (seq / "img1").mkdir(parents=True)
    (seq / "gt").mkdir()
    src = tracking_data / PETS
    for i in range(1, 41):
        _link(src / "img1" / f"{i:06d}.jpg", seq / "img1" / f"{i:06d}.jpg")
    lines = [ln for ln in (src / "gt" / "gt.txt").read_text().splitlines() if ln and int(ln.split(",")[0]) <= 40]
    (seq / "gt" / "gt.txt").write_text("\n".join(lines) + "\n")
    (seq / "seqinfo.ini").write_text((src / "seqinfo.ini").read_text().replace("seqLength=795", "seqLength=40"))
    return seq


@pytest.fixture(scope="module")
def clip(tracking_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The first 30 frames of vtest.avi as an MJPG AVI (every frame decodable on its own, so a cut copy plays)."""
    path = tmp_path_factory.mktemp("clip") / "vtest30.avi"
    cap = cv2.VideoCapture(str(tracking_data / "demo" / "vtest.avi"))
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (480, 360))
    for _ in range(30):
        ok, image = cap.read()
        assert ok
        writer.write(image)
    writer.release()
    cap.release()
    return path


@pytest.fixture(scope="module")
def ssd_tracking(shared_weights: Path) -> TrackingPredictor:
    """The fast detector (~10 ms a frame), for the tests about ids and plumbing; persons only (COCO id 1)."""
    return TrackingPredictor("ssd_mobilenet_v1_coco", device="cpu", classes=[1]).warmup()


@pytest.mark.parametrize("params, message", [
    (5, "tracker_params must map tracker setting names to values (e.g. {'track_buffer': 60}), got 5"),
    (["", "-q"], "tracker_params must map tracker setting names to values (e.g. {'track_buffer': 60}), got ['', '-q']"),
    ({1: 2}, "tracker_params must map tracker setting names to values"),
    ({"track_buffer": "60"}, "bytetrack parameter track_buffer must be a whole number >= 0, got '60'"),
    ({"match_thresh": float("nan")}, "bytetrack parameter match_thresh must be a number between 0 and 1, got nan"),
    ({"fuse_score": 1}, "bytetrack parameter fuse_score must be True or False, got 1"),
    ({"tracker_type": "botsort"}, "unknown bytetrack parameter(s) tracker_type; valid: fuse_score, match_thresh"),
])
def test_tracker_params_are_checked_at_load(params: object, message: str, shared_weights: Path) -> None:
    """Each once reached ``dict()`` or ultralytics unchecked: a TypeError or ValueError at load, or on a frame."""
    with pytest.raises(OptionError, match=re.escape(message)):
        TrackingPredictor("ssd_mobilenet_v1_coco", device="cpu", tracker_params=params)


def test_tracker_setting_of_the_default_kind_is_taken() -> None:
    tracker = Tracker("botsort", track_buffer=60, gmc_method="none", match_thresh=0.7)
    assert (tracker.settings["track_buffer"], tracker.settings["gmc_method"]) == (60, "none")


# -- TrackEval scoring -------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", [PETS, MOT17])
def test_ground_truth_as_results_scores_perfect(tracking_data: Path, tmp_path: Path, name: str) -> None:
    """The gt itself, as results, scores 1.0: frames past img1/ (PETS09: 301-795) are dropped, flag/consider=0
    rows ignored; for MOT17 boxes on distractors (static person, reflection, ...) are not false positives."""
    seq = tracking_data / name
    frames = len(list((seq / "img1").iterdir()))
    gt = np.loadtxt(seq / "gt" / "gt.txt", delimiter=",")
    scored = _gt(seq, frames)
    rows = scored
    if gt.shape[1] == 9:
        distractors = gt[np.isin(gt[:, 7], [2, 7, 8, 12]) & (gt[:, 0] <= frames)]
        assert len(distractors) > 0
        rows = np.concatenate([scored, distractors])
    results = tmp_path / "res.txt"
    results.write_text("".join(f"{int(r[0])},{int(r[1])},{r[2]},{r[3]},{r[4]},{r[5]},1,-1,-1,-1\n" for r in rows))
    score = evaluate_mot_files(seq, results)
    assert (score.hota, score.mota, score.idf1, score.id_switches, score.frames) == (1.0, 1.0, 1.0, 0, frames)

    # every unscored gt row given as a result is a false positive (PETS09: the 174 flag=0 rows of frames <= 300)
    if gt.shape[1] == 10:
        extra = gt[(gt[:, 6] == 0) & (gt[:, 0] <= frames)]
        with open(results, "a") as f:
            f.writelines(f"{int(r[0])},{int(r[1]) + 100},{r[2]},{r[3]},{r[4]},{r[5]},1,-1,-1,-1\n" for r in extra)
        assert evaluate_mot_files(seq, results).mota == pytest.approx(1 - len(extra) / len(scored), abs=1e-6)


@pytest.mark.parametrize("kind", ["bytetrack", "botsort"])
def test_tracker_on_ground_truth_boxes(tracking_data: Path, tmp_path: Path, kind: str) -> None:
    """Perfect detections: what is lost is the tracker's (one frame to confirm a track, Kalman-smoothed boxes, two
    id switches where PETS09 walkers cross). Measured: MOTA 0.9935, IDF1 0.921, HOTA 0.900 (ByteTrack) / 0.914."""
    params = {"gmc_method": "none"} if kind == "botsort" else {}  # no image given: no camera-motion compensation
    score = evaluate_mot_files(tracking_data / PETS, _track_gt(tracking_data / PETS, kind, tmp_path / "r.txt",
                                                                **params))
    assert score.frames == 300
    assert score.mota > 0.98 and score.idf1 > 0.9 and score.hota > 0.88, score
    assert score.id_switches <= 4, score


def test_botsort_without_image_matches_gmc_none(tracking_data: Path, tmp_path: Path) -> None:
    """BoT-SORT's default sparseOptFlow compensation is skipped when no image is passed: same tracks as 'none'."""
    a = _track_gt(tracking_data / MOT17, "botsort", tmp_path / "a.txt").read_text()
    b = _track_gt(tracking_data / MOT17, "botsort", tmp_path / "b.txt", gmc_method="none").read_text()
    assert a == b and a


def test_score_to_dict_and_bad_inputs(tracking_data: Path, tmp_path: Path) -> None:
    assert TrackScore(0.123456, 0.5, 2 / 3, 3, 10).to_dict() == {
        "hota": 0.1235, "mota": 0.5, "idf1": 0.6667, "id_switches": 3, "frames": 10}
    not_a_sequence = tmp_path / "clip"
    (not_a_sequence / "img1").mkdir(parents=True)
    for target in (tmp_path / "nothing", not_a_sequence):
        with pytest.raises(SourceError) as e:
            evaluate_mot_files(target, tmp_path / "r.txt")
        assert "\n" not in str(e.value)
    with pytest.raises(SourceError, match="missing gt/gt.txt"):
        evaluate_tracker(None, not_a_sequence)  # checked before any frame is tracked
    beyond = tmp_path / "beyond.txt"
    beyond.write_text("7,1,10,10,20,40,0.9,-1,-1,-1\n")  # MOT17-05 here has 6 frames
    with pytest.raises(SourceError, match="outside the sequence's frames 1..6"):
        evaluate_mot_files(tracking_data / MOT17, beyond)
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    score = evaluate_mot_files(tracking_data / MOT17, empty)  # no tracks at all: every gt box missed
    assert score.mota == 0 and score.hota == 0 and score.frames == 6


# -- ids per stream ----------------------------------------------------------------------------------------
def test_interleaved_trackers_number_ids_independently(tracking_data: Path) -> None:
    """Two Tracker objects advanced alternately give exactly the tracks each gives alone, ids from 1."""
    seqs = [tracking_data / PETS, tracking_data / MOT17]
    gts = [_gt(s, 6) for s in seqs]
    shapes = [_shape(s) for s in seqs]

    def run(trackers: list[Tracker], order: list[int]) -> list[list]:
        out: list[list] = [[], []]
        frame = [0, 0]
        for k in order:
            frame[k] += 1
            out[k].append(_signature(trackers[k].update(_gt_detections(gts[k], frame[k], shapes[k]))))
        return out

    alone = [run([Tracker(), Tracker()], [0] * 6)[0], run([Tracker(), Tracker()], [1] * 6)[1]]
    pair = [Tracker(), Tracker()]
    together = run(pair, [0, 1] * 6)
    assert together == alone
    for frames in together:
        assert min(t for t, _ in frames[0]) == 1
    pair[0].reset()
    assert run(pair, [0] * 6)[0] == alone[0]  # reset restarts at id 1; the other tracker is untouched
    issued = max(t for sig in together[1] for t, _ in sig)
    newcomer = Detections(xyxy=np.array([[900.0, 700, 960, 800]]), scores=np.ones(1), class_ids=np.zeros(1, np.int64),
                          class_names=np.array(["person"], object), image_shape=shapes[1])
    pair[1].update(newcomer)  # a track born after frame 1 is confirmed (reported) on its second frame
    (new_id,) = pair[1].update(newcomer).track_ids.tolist()
    assert new_id > issued  # ... and tracker 1 goes on numbering its own ids


def test_interleaved_streams(ssd_tracking: TrackingPredictor, pets40: Path, tracking_data: Path,
                             tmp_path: Path) -> None:
    """Two TrackingPredictor.stream generators over different sources, advanced frame by frame in turn."""
    a = tmp_path / "a"
    a.mkdir()
    for i in range(1, 11):
        _link(pets40 / "img1" / f"{i:06d}.jpg", a / f"{i:06d}.jpg")
    b = tracking_data / MOT17 / "img1"
    alone = [[(f.index, _signature(d)) for f, d in ssd_tracking.stream(src)] for src in (a, b)]
    assert [len(x) for x in alone] == [10, 6]
    streams = [ssd_tracking.stream(a), ssd_tracking.stream(b)]
    together: list[list] = [[], []]
    while streams[0] is not None or streams[1] is not None:
        for k, s in enumerate(streams):
            if s is None:
                continue
            item = next(s, None)
            if item is None:
                streams[k] = None
            else:
                together[k].append((item[0].index, _signature(item[1])))
    assert together == alone
    for frames in together:
        ids = [t for _, sig in frames for t, _ in sig]
        assert ids and min(ids) == 1 and min(t for t, _ in frames[0][1]) == 1


def test_calls_keep_one_stream_until_reset(ssd_tracking: TrackingPredictor, pets40: Path,
                                           tracking_data: Path) -> None:
    """Frame-by-frame calls are one live stream (same tracks as ``stream`` over those frames) until reset()."""
    paths = sorted((pets40 / "img1").iterdir())[:8]
    streamed = [_signature(d) for _, d in ssd_tracking.stream(paths)]
    ssd_tracking.reset()
    called = [_signature(ssd_tracking(str(p))) for p in paths]
    assert called == streamed
    ids = [{t for t, _ in sig} for sig in called]
    assert min(ids[0]) == 1 and all(ids[i] & ids[i + 1] for i in range(len(ids) - 1))  # the same people, same ids
    issued = max(max(s) for s in ids)
    other = [_signature(ssd_tracking(str(p))) for p in sorted((tracking_data / MOT17 / "img1").iterdir())]
    assert min(t for sig in other for t, _ in sig) > issued  # no reset: numbering goes on
    ssd_tracking.reset()
    assert [_signature(ssd_tracking(str(p))) for p in paths] == called  # reset: a fresh stream from id 1


# -- real detector, end to end -----------------------------------------------------------------------------
def _track_to_mot(tracking: TrackingPredictor, seq: Path, results: Path) -> list[int]:
    seen = []
    with MotSink(results) as sink:
        for frame, tracked in tracking.stream(seq / "img1"):
            seen.append(frame.index)
            sink.write(frame, tracked)
    return seen


def test_detector_tracker_scores(shared_weights: Path, pets40: Path, tmp_path: Path) -> None:
    """yolov5n + ByteTrack on 40 PETS09 frames: MOT lines well formed, scores finite and sane.
    Measured: HOTA 0.547, MOTA 0.656, IDF1 0.799, 1 id switch (all 300 frames: 0.463 / 0.641 / 0.621)."""
    tracking = TrackingPredictor("yolov5n", device="cpu", classes=[0])
    results = tmp_path / "pets40.txt"
    assert _track_to_mot(tracking, pets40, results) == list(range(40))
    rows = _parse_mot(results)
    assert {int(r[0]) for r in rows} <= set(range(1, 41)) and len({int(r[0]) for r in rows}) >= 38
    assert all(r[2] + r[4] <= 768 + 1 and r[3] + r[5] <= 576 + 1 for r in rows)
    score = evaluate_mot_files(pets40, results)
    assert score.frames == 40
    assert all(math.isfinite(v) for v in (score.hota, score.mota, score.idf1))
    assert 0.45 < score.hota <= 1 and 0.5 < score.mota <= 1 and 0.65 < score.idf1 <= 1, score
    assert 0 <= score.id_switches < 10


def test_evaluate_tracker_matches_written_results(ssd_tracking: TrackingPredictor, pets40: Path,
                                                  tmp_path: Path) -> None:
    """evaluate_tracker = stream img1/ -> MotSink -> evaluate_mot_files (one fresh tracker state per call)."""
    results = tmp_path / "r.txt"
    _track_to_mot(ssd_tracking, pets40, results)
    progress: list[int] = []
    score = evaluate_tracker(ssd_tracking, pets40, progress=progress.append)
    assert score == evaluate_mot_files(pets40, results) and progress == [1] * 40
    assert 0 < score.hota <= 1 and 0 < score.idf1 <= 1


# -- CLI -----------------------------------------------------------------------------------------------------
def _jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_cli_track_and_eval(clip: Path, pets40: Path, tracking_data: Path, tmp_path: Path,
                            capsys: pytest.CaptureFixture[str]) -> None:
    mot, jsonl, out = tmp_path / "t.txt", tmp_path / "t.jsonl", tmp_path / "out"
    # the SSD's class ids are COCO category ids: person = 1
    code = main(["track", str(clip), "--model", "ssd_mobilenet_v1_coco", "--classes", "1", "--mot", str(mot),
                 "--json", str(jsonl), "--save", str(out), "--quiet"])
    assert code == 0
    video = cv2.VideoCapture(str(out / "vtest30.mp4"))
    n = 0
    while video.read()[0]:
        n += 1
    assert n == 30
    records = _jsonl(jsonl)
    assert [r["frame_index"] for r in records] == list(range(30))
    boxes = [d for r in records for d in r["detections"]]
    assert boxes and all(d["track_id"] >= 1 and d["class_name"] == "person" for d in boxes)
    rows = _parse_mot(mot)
    assert len(rows) == len(boxes) and max(r[0] for r in rows) <= 30

    capsys.readouterr()
    scores = tmp_path / "scores.json"
    code = main(["eval", "track", "--gt", str(pets40), str(tracking_data / MOT17), "--model",
                 "ssd_mobilenet_v1_coco", "--classes", "1", "--json", str(scores)])
    printed = capsys.readouterr().out
    assert code == 0
    for name in (pets40.name, MOT17):
        assert any(line.startswith(f"{name}: HOTA ") and "MOTA" in line and "IDF1" in line
                   for line in printed.splitlines()), printed
    report = json.loads(scores.read_text())
    assert report["model"] == "ssd_mobilenet_v1_coco" and report["tracker"] == "bytetrack"
    assert [s["sequence"] for s in report["sequences"]] == [pets40.name, MOT17]
    assert report["sequences"][0]["frames"] == 40 and report["sequences"][1]["frames"] == 6
    for s in report["sequences"]:
        assert all(0 <= s[k] <= 1 for k in ("hota", "idf1")) and -1 <= s["mota"] <= 1


@pytest.mark.parametrize("container", ["avi", "mp4"])
def test_cli_truncated_video(clip: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], container: str) -> None:
    """A video cut in half: the AVI plays up to the cut (what was tracked is written whole, then one error line
    says how far it got), the MP4 loses its index (moov atom at the end) and cannot be opened: one line, exit 1."""
    if container == "avi":
        source = clip
    else:
        source = tmp_path / "full.mp4"
        cap = cv2.VideoCapture(str(clip))
        writer = cv2.VideoWriter(str(source), cv2.VideoWriter_fourcc(*"mp4v"), 10.0, (480, 360))
        while (item := cap.read())[0]:
            writer.write(item[1])
        writer.release()
    cut = tmp_path / f"cut.{container}"
    data = source.read_bytes()
    cut.write_bytes(data[: len(data) // 2])
    mot, jsonl = tmp_path / "t.txt", tmp_path / "t.jsonl"
    capsys.readouterr()
    code = main(["track", str(cut), "--model", "ssd_mobilenet_v1_coco", "--classes", "1", "--mot", str(mot),
                 "--json", str(jsonl), "--save", str(tmp_path / "out"), "--quiet"])
    err = capsys.readouterr().err
    assert code in (0, 1)
    assert "Traceback" not in err and "internal error" not in err
    if container == "mp4":
        assert code == 1
        assert [line for line in err.splitlines() if "error" in line] == [
            f"visionkit: error: {cut}: cannot be opened as a video (corrupt or unsupported format)"]
        return
    records = _jsonl(jsonl)  # every line parses
    assert 5 <= len(records) < 30 and [r["frame_index"] for r in records] == list(range(len(records)))
    rows = _parse_mot(mot)
    assert rows and max(r[0] for r in rows) <= len(records)
    assert sum(len(r["detections"]) for r in records) == len(rows)
    assert code == 1  # an error, with what was tracked kept
    assert [line for line in err.splitlines() if "error:" in line] == [
        f"visionkit: error: {cut}: video ended early: {len(records)} of 30 frames decoded (truncated or corrupt file)"]


def test_cli_track_runtime_onnx(clip: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A YOLO .pt tracked on ONNX Runtime (`--runtime onnx`) gives the tracks the same .pt gives on PyTorch.

    The random test network reports ~70 boxes per frame, many right at the threshold, so float rounding may keep
    a box on one side only, and a track born on one side only shifts the numbering of every later track: boxes
    are matched per frame, and the ids of matched boxes must pair up one to one."""
    from random_models import build_yolo

    cap = cv2.VideoCapture(str(clip))
    calib = [cap.read()[1] for _ in range(2)]
    cap.release()
    pt = build_yolo("yolov8n.yaml", tmp_path / "yolov8n-random.pt", calib)
    tracks = {}
    for runtime in ("torch", "onnx"):
        mot = tmp_path / f"{runtime}.txt"
        code = main(["track", str(clip), "--model", str(pt), "--runtime", runtime, "--conf", "0.5", "--device", "cpu",
                     "--mot", str(mot), "--save", str(tmp_path / runtime), "--quiet"])
        assert code == 0, capsys.readouterr().err
        tracks[runtime] = np.array(_parse_mot(mot))
    ref, got = tracks["torch"], tracks["onnx"]
    assert len(ref) >= 300 and len(np.unique(ref[:, 1])) >= 20
    pairs = []
    for row in got:
        same = ref[(ref[:, 0] == row[0]) & (np.abs(ref[:, 2:6] - row[2:6]).max(1) <= 0.05)]
        if len(same):
            pairs.append((row[1], same[0, 1]))
    assert len(pairs) >= 0.98 * max(len(got), len(ref))
    partner: dict[float, set[float]] = {}
    for a, b in pairs:
        partner.setdefault(a, set()).add(b)
    assert all(len(b) == 1 for b in partner.values()), "a track's boxes went to several tracks on the other side"
    assert len({next(iter(b)) for b in partner.values()}) == len(partner)  # one to one
