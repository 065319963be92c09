"""visionkit.MultiStream: N sources through one predictor, per-stream trackers.

Data: ../shared/data/tracking (PETS09-S2L1 img1, MOT17-05-FRCNN with gt, the demo video vtest.avi). The SSD
detector runs one image at a time inside a batch, so its boxes do not depend on the batch composition: what
MultiStream adds (the routing, one tracker per stream) is what these tests check.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import pytest
from test_track import MOT17, PETS, _signature

from visionkit import MultiStream
from visionkit.composites.track import TrackingPredictor
from visionkit.errors import OptionError, SourceError
from visionkit.eval.mot import evaluate_mot_files
from visionkit.io.sinks import MotSink


@pytest.fixture(scope="module")
def data(shared_data: Path) -> Path:
    return shared_data / "tracking"


@pytest.fixture(scope="module")
def sources(data: Path) -> dict[str, list[Path]]:
    pets = sorted((data / PETS / "img1").iterdir())
    return {"pets": pets[:24], "mot17": sorted((data / MOT17 / "img1").iterdir()), "pets-late": pets[10:30]}


def _tracking(batch: int, workers: int = 1) -> TrackingPredictor:
    return TrackingPredictor("ssd_mobilenet_v1_coco", device="cpu", classes=[1], batch_size=batch,
                             workers=workers).warmup()


@pytest.fixture(scope="module")
def alone(shared_weights: Path, sources: dict[str, list[Path]]) -> dict[str, list]:
    tracking = _tracking(1)
    return {name: [(f.index, _signature(d)) for f, d in tracking.stream(files)] for name, files in sources.items()}


@pytest.mark.parametrize(("batch", "workers"), [(1, 1), (2, 1), (4, 1), (1, 2), (2, 2)])
def test_streams_match_single_runs(sources: dict[str, list[Path]], alone: dict[str, list], data: Path,
                                   tmp_path: Path, batch: int, workers: int) -> None:
    """Three streams (two overlapping cuts of PETS09, MOT17) interleaved through one model: each stream's ids and
    boxes, and its MOT file and TrackEval score, are those of the stream run alone; at batch 1, 2 and 4 (one
    pass per frame, two passes a step, one a step), with one or two passes in flight at once."""
    tracking = _tracking(batch, workers)
    got: dict[str, list] = {}
    steps = []
    with MultiStream(sources, tracking) as streams, \
            MotSink(tmp_path / "multi.txt") as multi_mot:
        for step in streams.steps():
            steps.append(sorted(r.stream for r in step))
            for r in step:
                got.setdefault(r.stream, []).append((r.frame.index, _signature(r.result)))
                if r.stream == "mot17":
                    multi_mot.write(r.frame, r.result)
    assert got == alone
    assert steps[0] == ["mot17", "pets", "pets-late"] and len(steps) == 24  # all three share the first steps
    with MotSink(tmp_path / "alone.txt") as mot:
        for frame, tracked in tracking.stream(sources["mot17"]):
            mot.write(frame, tracked)
    assert (tmp_path / "multi.txt").read_text() == (tmp_path / "alone.txt").read_text() != ""
    assert evaluate_mot_files(data / MOT17, tmp_path / "multi.txt") == evaluate_mot_files(data / MOT17,
                                                                                          tmp_path / "alone.txt")


def test_stream_error_leaves_others_running(sources: dict[str, list[Path]], alone: dict[str, list], data: Path,
                                            tmp_path: Path) -> None:
    """A video cut in half (fails mid-run) and a file that is not a video: the errors go to on_error with the
    stream name, the other streams give every frame, unchanged."""
    cap = cv2.VideoCapture(str(data / "demo" / "vtest.avi"))
    clip = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(clip), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (480, 360))
    for _ in range(40):
        writer.write(cap.read()[1])
    writer.release()
    cut = tmp_path / "cut.avi"
    cut.write_bytes(clip.read_bytes()[: clip.stat().st_size // 2])
    errors: list[tuple[str, str]] = []
    got: dict[str, list] = {}
    streams = MultiStream({"cut": cut, "pets": sources["pets"], "mot17": sources["mot17"]}, _tracking(2),
                          on_error=lambda name, e: errors.append((name, str(e))))
    for r in streams:
        got.setdefault(r.stream, []).append((r.frame.index, _signature(r.result)))
    assert got["pets"] == alone["pets"] and got["mot17"] == alone["mot17"]
    assert 5 <= len(got["cut"]) < 40
    assert errors == [("cut", f"{cut}: video ended early: {len(got['cut'])} of 40 frames decoded (truncated or "
                              f"corrupt file)")]
    assert streams.names == []


def test_add_and_remove_while_running(sources: dict[str, list[Path]], alone: dict[str, list]) -> None:
    """A stream added after 5 steps starts from its own first frame with ids from 1, as if run alone; a stream
    removed after 8 steps stops there; names must be unique."""
    streams = MultiStream({"pets": sources["pets"]}, _tracking(2))
    got: dict[str, list] = {}
    for n, step in enumerate(streams.steps()):
        for r in step:
            got.setdefault(r.stream, []).append((r.frame.index, _signature(r.result)))
        if n == 4:
            assert streams.add(sources["mot17"], "mot17") == "mot17"
            with pytest.raises(OptionError, match="already running"):
                streams.add(sources["mot17"], "mot17")
        if n == 7:
            streams.remove("pets")
    assert got["mot17"] == alone["mot17"]
    assert got["pets"] == alone["pets"][:8]
    with pytest.raises(OptionError, match="no stream named 'pets'"):
        streams.remove("pets")


def test_names_and_bad_source(sources: dict[str, list[Path]], data: Path, tmp_path: Path) -> None:
    video = data / "demo" / "vtest.avi"
    streams = MultiStream([video, video, sources["mot17"][0]], _tracking(1))
    assert streams.names == ["vtest", "vtest-2", "000001"]
    streams.close()
    assert streams.names == []
    with pytest.raises(SourceError):
        MultiStream([tmp_path / "missing.mp4"], _tracking(1))


# -- CLI -------------------------------------------------------------------------------------------------------
def _clip(data: Path, path: Path, frames: int = 30) -> Path:
    cap = cv2.VideoCapture(str(data / "demo" / "vtest.avi"))
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (480, 360))
    for _ in range(frames):
        writer.write(cap.read()[1])
    writer.release()
    return path


def test_cli_several_sources(data: Path, tmp_path: Path) -> None:
    """`visionkit track A B C --save DIR --json F --mot DIR`: one video and one MOT file per stream (named by
    stream), JSONL records with a stream field; each stream's MOT file is the single-source run's; a stream that
    fails mid-run (a cut video) is reported in one line, exit 1, and the others are complete."""
    from fault_harness import assert_jsonl_valid, assert_video_valid

    from visionkit.cli import main

    clip = _clip(data, tmp_path / "clip.avi")
    other = tmp_path / "b"
    other.mkdir()
    copy = other / "clip.avi"
    copy.write_bytes(clip.read_bytes())
    cut = tmp_path / "cut.avi"
    cut.write_bytes(clip.read_bytes()[: clip.stat().st_size // 2])
    run = ["--model", "ssd_mobilenet_v1_coco", "--classes", "1", "--quiet"]
    assert main(["track", str(clip), *run, "--mot", str(tmp_path / "single.txt")]) == 0
    out, jsonl, mot = tmp_path / "out", tmp_path / "all.jsonl", tmp_path / "mot"
    code = main(["track", str(clip), str(copy), str(cut), *run, "--save", str(out), "--json", str(jsonl),
                 "--mot", str(mot)])
    assert code == 1
    assert sorted(p.name for p in out.iterdir()) == ["clip-2.mp4", "clip.mp4", "cut.mp4"]
    assert assert_video_valid(out / "clip.mp4") == assert_video_valid(out / "clip-2.mp4") == 30
    single = (tmp_path / "single.txt").read_text()
    assert (mot / "clip.txt").read_text() == (mot / "clip-2.txt").read_text() == single != ""
    records = assert_jsonl_valid(jsonl)
    per_stream = {s: [r["frame_index"] for r in records if r["stream"] == s] for s in ("clip", "clip-2", "cut")}
    assert per_stream["clip"] == per_stream["clip-2"] == list(range(30))
    assert 5 <= len(per_stream["cut"]) < 30
    assert {r["source"] for r in records} == {str(clip), str(copy), str(cut)}


def test_cli_batch_streams_heatmap(data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The demo video and a PETS09 image sequence as two streams, with --batch-streams (one pass per step) and
    without (one pass per frame): out/<stream>.mp4 per stream (the image sequence too), identical MOT files either
    way, equal to each stream run alone, and one heat map PNG per stream, the frame size of its stream."""
    from fault_harness import assert_video_valid

    from visionkit.cli import main

    clip = _clip(data, tmp_path / "hall.avi", frames=12)
    pets = tmp_path / "pets"
    pets.mkdir()
    for image in sorted((data / PETS / "img1").iterdir())[:12]:
        (pets / image.name).write_bytes(image.read_bytes())
    run = ["--model", "ssd_mobilenet_v1_coco", "--classes", "1", "--quiet"]
    for name in ("hall", "pets"):
        source = clip if name == "hall" else pets
        assert main(["track", str(source), *run, "--mot", str(tmp_path / f"{name}.txt")]) == 0
    for mode in ("batched", "per-frame"):
        out = tmp_path / mode
        flags = ["--batch-streams"] if mode == "batched" else []
        assert main(["track", str(clip), str(pets), *run, *flags, "--save", str(out / "out"), "--mot",
                     str(out / "mot"), "--heatmap", str(out / "heat")]) == 0
        assert sorted(p.name for p in (out / "out").iterdir()) == ["hall.mp4", "pets.mp4"]
        assert assert_video_valid(out / "out" / "hall.mp4") == assert_video_valid(out / "out" / "pets.mp4") == 12
        for name in ("hall", "pets"):
            assert (out / "mot" / f"{name}.txt").read_text() == (tmp_path / f"{name}.txt").read_text() != ""
        shapes = {p.stem: cv2.imread(str(p)).shape for p in (out / "heat").iterdir()}
        assert shapes == {"hall": (360, 480, 3), "pets": (576, 768, 3)}
    capsys.readouterr()
    assert main(["track", str(clip), str(pets), *run, "--heatmap", str(tmp_path / "one.png")]) == 2
    assert main(["track", str(clip), *run, "--batch-streams"]) == 2
    assert capsys.readouterr().err.splitlines() == [
        "visionkit: error: --heatmap with several streams takes a folder (DIR/<stream>.png), not one image file",
        "visionkit: error: --batch-streams batches several sources: give two or more"]
    assert not (tmp_path / "one.png").exists()
