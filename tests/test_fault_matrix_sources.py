"""Fault matrix, sources: inputs that end early, are absent, unreachable, corrupt or drop mid-run, and runs over
more inputs than the process has file descriptors, through the real console script.

Every row checks what ``check_fault`` checks: the exit code, exactly one stderr line and nothing from OpenCV
or FFmpeg besides it, outputs that stay valid (the frames read before a failure are kept) and untouched inputs.
"""

from __future__ import annotations

import os
import re
import resource
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest
from clip_helpers import damaged_copy, make_clip, synthetic_clip, truncated_copy, write_png
from fault_harness import Fault, assert_jsonl_valid, assert_one_line, check_fault, run_cli
from mjpeg_server import MjpegServer
from rtsp_server import RtspServer, available

MODEL = "ssd_mobilenet_v1_coco"  # the fastest real model (~10 ms/image on a CPU)


@pytest.fixture(scope="module")
def clip(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 20-frame 480x360 MJPEG clip cut from vtest.avi."""
    return make_clip(shared_data / "tracking/demo/vtest.avi", tmp_path_factory.mktemp("clip") / "clip.avi", 20)


def _jsonl_frames(path: Path, low: int, high: int) -> Callable[[], None]:
    """An ``outputs_valid`` check: ``path`` parses and holds between ``low`` and ``high`` frame lines."""
    def check() -> None:
        records = assert_jsonl_valid(path)
        assert low <= len(records) <= high, f"{path}: {len(records)} lines, expected {low}..{high}"
    return check


def _fault(case: str, tmp: Path, clip: Path, coco_jpg: Path) -> Fault:
    out = tmp / "out.jsonl"
    detect = ["detect", "-m", MODEL, "--json", out]
    if case == "truncated video":  # 11 of its 20 frames decode; those results are kept
        video = truncated_copy(clip, tmp / "cut.avi", 0.5)
        return Fault(case, [*detect, video], 1, f"{video}: video ended early: 11 of 20 frames decoded",
                     [video], _jsonl_frames(out, 11, 11))
    if case == "truncated video in a folder":  # the other inputs are still processed
        folder = tmp / "inputs"
        folder.mkdir()
        truncated_copy(clip, folder / "a_cut.avi", 0.5)
        write_png(folder / "b_still.png", np.full((40, 60, 3), 90, np.uint8))
        synthetic_clip(folder / "c_whole.avi", frames=4)
        return Fault(case, [*detect, folder], 1, "a_cut.avi: video ended early", [folder],
                     _jsonl_frames(out, 11 + 1 + 4, 11 + 1 + 4))
    if case == "missing camera index":
        return Fault(case, [*detect, "7"], 1, "camera 7: not available")
    if case == "unreachable rtsp":
        return Fault(case, [*detect, "rtsp://127.0.0.1:9/stream"], 1, "rtsp://127.0.0.1:9/stream: cannot be opened")
    if case == "truncated image":
        image = truncated_copy(coco_jpg, tmp / "cut.jpg", 0.5)
        return Fault(case, [*detect, image], 1, f"{image}: not a decodable image", [image])
    if case in ("corrupt png", "truncated png"):  # libpng prints its own "libpng error: ..." line
        png = write_png(tmp / "good.png", cv2.imread(str(coco_jpg)))
        damage = damaged_copy if case == "corrupt png" else truncated_copy
        image = damage(png, tmp / "bad.png")
        return Fault(case, [*detect, image], 1, f"{image}: not a decodable image", [image])
    if case == "video that is not one":
        fake = tmp / "fake.mp4"
        fake.write_text("not a video\n")
        return Fault(case, [*detect, fake], 1, f"{fake}: cannot be opened as a video", [fake])
    if case == "--reconnect -1":
        return Fault(case, [*detect, "0", "--reconnect", "-1"], 2, "argument --reconnect: must be 0 (off) or")
    return _odd_name_fault(case, detect)


def _odd_name_fault(case: str, detect: list[str | Path]) -> Fault:
    """Names the OS or OpenCV refuse before any file is read: each once escaped as an OSError, RuntimeError,
    cv2.error or ValueError (an internal error), or gave a message over two lines."""
    if case == "name too long for the OS":
        name = "a" * 300 + ".jpg"
        return Fault(case, [*detect, name], 1, f"{name}: File name too long")
    if case == "~user that does not exist":
        return Fault(case, [*detect, "~nosuchuser/x.jpg"], 1, "~nosuchuser/x.jpg: no user 'nosuchuser' on this machine")
    if case == "camera index beyond a C int":
        return Fault(case, [*detect, "99999999999999999999"], 1, "camera 99999999999999999999: not available")
    if case == "superscript digit":  # str.isdigit() is True for it, int() refuses it: a file name, not a camera
        return Fault(case, [*detect, "\u00b3"], 1, "\u00b3: no such file or directory")
    if case == "line break in the name":
        return Fault(case, [*detect, "two\nlines.jpg"], 1, "two\\nlines.jpg: no such file or directory")
    raise AssertionError(case)


CASES = ["truncated video", "truncated video in a folder", "missing camera index", "unreachable rtsp",
         "truncated image", "corrupt png", "truncated png", "video that is not one", "--reconnect -1",
         "name too long for the OS", "~user that does not exist", "camera index beyond a C int", "superscript digit",
         "line break in the name"]


@pytest.mark.parametrize("case", CASES)
def test_source_fault(case: str, tmp_path: Path, clip: Path, shared_data: Path, shared_weights: Path) -> None:
    coco_jpg = sorted((shared_data / "coco_val2017" / "images").glob("*.jpg"))[0]
    check_fault(_fault(case, tmp_path, clip, coco_jpg))


def test_corrupt_jpeg_that_still_decodes_prints_only_visionkit_lines(tmp_path: Path, shared_data: Path,
                                                                     shared_weights: Path) -> None:
    """Damaged entropy data: libjpeg recovers (exit 0) but would print "Corrupt JPEG data: ..." itself."""
    image = damaged_copy(sorted((shared_data / "coco_val2017" / "images").glob("*.jpg"))[0], tmp_path / "damaged.jpg")
    outcome = run_cli("detect", image, "-m", MODEL, "--json", tmp_path / "out.jsonl")
    assert outcome.code == 0, outcome.stderr
    assert [line for line in outcome.stderr_lines if "frame(s)" not in line] == [], outcome.stderr
    assert len(assert_jsonl_valid(tmp_path / "out.jsonl")) == 1


def test_stream_lost_for_good_ends_the_run_cleanly(tmp_path: Path, shared_weights: Path) -> None:
    """A stream that stops and never comes back: the reconnect attempts are logged as warnings, then one error
    line, exit 1, and the results of the frames before the drop are kept."""
    out = tmp_path / "out.jsonl"
    with MjpegServer([np.full((48, 64, 3), 30 * i, np.uint8) for i in range(8)], fps=20) as server:
        server.stop_after(30)
        outcome = run_cli("detect", server.url, "-m", MODEL, "--json", out, "--reconnect", "2", timeout=120)
    line = assert_one_line(outcome, 1, f"{server.url}: stream lost after ")
    assert "2 reconnect attempt(s) over" in line
    assert any("stream dropped after" in x for x in outcome.stderr_lines), outcome.stderr
    records = assert_jsonl_valid(out)
    assert 1 <= len(records) <= 30


def _pets_frames(shared_data: Path, count: int) -> list[np.ndarray]:
    paths = sorted((shared_data / "tracking/PETS09-S2L1/img1").glob("*.jpg"))[:count]
    return [cv2.imread(str(p)) for p in paths]


def _iou(a: list[float], b: list[float]) -> float:
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - w * h
    return w * h / union if union > 0 else 0.0


def _wait_for_lines(path: Path, count: int, timeout: float = 120) -> int:
    """Wait until ``path`` holds at least ``count`` lines; returns how many it holds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        lines = len(path.read_text().splitlines()) if path.is_file() else 0
        if lines >= count:
            return lines
        time.sleep(0.05)
    raise AssertionError(f"{path}: fewer than {count} lines after {timeout} s")


def test_track_keeps_ids_across_a_reconnect(tmp_path: Path, shared_data: Path, shared_weights: Path) -> None:
    """PETS09 served as an MJPEG camera that drops for a second mid-run: `visionkit track URL --reconnect 3`
    reconnects under the same source name, so the tracker is not reset and people keep their ids. (yolov5n:
    PETS09's people are too small for the SSD model.)"""
    out = tmp_path / "tracks.jsonl"
    server = MjpegServer(_pets_frames(shared_data, 300), fps=10).start()

    def drop_mid_run() -> None:  # by the results written, not by frames sent: those can wait in socket buffers
        _wait_for_lines(out, 15)
        server.stop()
        time.sleep(1.0)
        server.start()
        _wait_for_lines(out, _wait_for_lines(out, 0) + 15)
        server.stop()  # gone for good: the run ends once the reconnect attempts are used up

    threading.Thread(target=drop_mid_run, daemon=True).start()
    try:
        outcome = run_cli("track", server.url, "-m", "yolov5n", "--classes", "0", "--json", out, "--reconnect", "3",
                          timeout=180)
    finally:
        server.stop()
    assert_one_line(outcome, 1, "stream lost after")
    assert any("reconnected after" in x for x in outcome.stderr_lines), outcome.stderr
    records = assert_jsonl_valid(out)
    assert {r["source"] for r in records} == {server.url}
    assert [r["frame_index"] for r in records] == sorted({r["frame_index"] for r in records})  # indices keep counting
    stamps = [r["timestamp"] for r in records]
    assert all(b > a for a, b in zip(stamps, stamps[1:])), "timestamps must strictly increase"
    gap = max(range(1, len(stamps)), key=lambda i: stamps[i] - stamps[i - 1])
    assert stamps[gap] - stamps[gap - 1] > 0.5, "no drop in the stream"
    assert 5 <= gap <= len(records) - 5, f"the drop must be mid-run (frame {gap} of {len(records)})"
    before = {d["track_id"]: d["box"] for r in records[gap - 3:gap] for d in r["detections"]}
    after = {d["track_id"]: d["box"] for d in records[gap]["detections"]}
    kept = [_iou(before[i], box) for i, box in after.items() if i in before]
    assert len(kept) >= 2 and min(kept) > 0.3, f"ids not kept across the drop: before {before}, after {after}"


def _many_inputs(folder: Path, images: int, videos: int) -> int:
    """``images`` tiny PNGs and ``videos`` two-frame clips in ``folder``; returns the frame count."""
    folder.mkdir()
    for i in range(images):
        write_png(folder / f"i{i:05d}.png", np.full((8, 8, 3), i % 256, np.uint8))
    for i in range(videos):
        synthetic_clip(folder / f"v{i:05d}.avi", frames=2, size=(32, 24))
    return images + 2 * videos


@pytest.mark.parametrize("images", [
    300,
    pytest.param(9_700, marks=pytest.mark.slow),  # 10 000 inputs: about 2-5 minutes on a CPU
])
def test_more_inputs_than_file_descriptors(images: int, tmp_path: Path, shared_weights: Path) -> None:
    """Inputs open one at a time: 300 videos and more under `ulimit -n 256` all come through."""
    folder = tmp_path / "inputs"
    frames = _many_inputs(folder, images, videos=300)
    out = tmp_path / "out.jsonl"
    outcome = run_cli("detect", folder, "-m", MODEL, "--json", out, "-q", timeout=1800,
                      preexec=lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (256, 256)))
    assert outcome.code == 0, outcome.stderr[-3000:]
    assert [line for line in outcome.stderr_lines if " 0 error(s)" not in line] == [], outcome.stderr[-3000:]
    records = assert_jsonl_valid(out)
    assert len(records) == frames
    assert {Path(r["source"]).name for r in records} == {p.name for p in folder.iterdir()}


def test_reconnect_off_ends_the_stream_at_a_drop(caplog: pytest.LogCaptureFixture) -> None:
    """`reconnect=0` in the API: a drop ends the stream with a warning, not an error, after the frames before it."""
    import visionkit

    with MjpegServer([np.full((48, 64, 3), 50, np.uint8)], fps=20) as server:
        source = visionkit.open_source(server.url, reconnect=0)
        server.stop_after(10)
        with caplog.at_level("WARNING", logger="visionkit"):
            frames = list(source)
    assert 1 <= len(frames) <= 10 and [f.index for f in frames] == list(range(len(frames)))
    assert {f.source for f in frames} == {server.url}
    assert [r.getMessage() for r in caplog.records] == [f"{server.url}: stream ended after {len(frames)} frames"]
    with pytest.raises(visionkit.OptionError, match="reconnect must be a number of attempts"):
        visionkit.open_source(server.url, reconnect=-1)


def test_reconnect_in_the_background_reader(caplog: pytest.LogCaptureFixture) -> None:
    """Through ``Predictor.stream``'s decode thread: frames before and after a drop, one name, indices and
    timestamps going on, the drop and the reconnect each logged once with their durations."""
    from visionkit.io.sources import open_source
    from visionkit.io.threads import BackgroundIterator

    images = [np.full((48, 64, 3), 10 * i, np.uint8) for i in range(20)]
    with MjpegServer(images, fps=20) as server:
        source = open_source(server.url, reconnect=3)
        server.stop_after(10, then=lambda: threading.Timer(1.0, server.start).start())
        frames = []
        with caplog.at_level("WARNING", logger="visionkit"):
            for frame in BackgroundIterator(iter(source), latest_only=False):
                frames.append(frame)
                if len(frames) == 25:
                    break
    stamps = [f.timestamp for f in frames]
    assert [f.index for f in frames] == list(range(25))
    assert all(b > a for a, b in zip(stamps, stamps[1:]))
    assert max(b - a for a, b in zip(stamps, stamps[1:])) > 0.5  # the gap is there
    assert {f.source for f in frames} == {server.url}
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 2, messages
    assert re.fullmatch(rf"{re.escape(server.url)}: stream dropped after \d+ frames \(\d+\.\d s\); reconnecting, "
                        r"up to 3 attempts", messages[0]), messages
    assert re.fullmatch(rf"{re.escape(server.url)}: reconnected after \d+\.\d s \(attempt [1-3] of 3\), going on "
                        r"from frame \d+", messages[1]), messages


@pytest.fixture
def rtsp_server() -> Iterator[RtspServer]:
    """A real RTSP server (GStreamer's); required under CI, where .ci/run installs it."""
    if not available():
        message = ("GStreamer's RTSP server is not installed (apt-get install python3-gi gir1.2-gst-rtsp-server-1.0 "
                   "gstreamer1.0-plugins-good)")
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(message)
        pytest.skip(message)
    server = RtspServer().start()
    yield server
    server.stop()


def test_rtsp_stream_reconnects_after_the_server_restarts(rtsp_server: RtspServer,
                                                         caplog: pytest.LogCaptureFixture) -> None:
    """An RTSP camera whose server dies and comes back a second later: frames before and after, under one
    name, indices and timestamps going on, one drop and one reconnect logged."""
    from visionkit.io.sources import open_source

    source = open_source(rtsp_server.url, reconnect=3)
    frames = []
    with caplog.at_level("WARNING", logger="visionkit"):
        for frame in source:
            frames.append(frame)
            if len(frames) == 5:
                rtsp_server.stop()
                threading.Timer(1.0, rtsp_server.start).start()
            if len(frames) == 40:
                break
    stamps = [f.timestamp for f in frames]
    assert [f.index for f in frames] == list(range(40)) and {f.source for f in frames} == {rtsp_server.url}
    assert all(b > a for a, b in zip(stamps, stamps[1:]))
    assert max(b - a for a, b in zip(stamps, stamps[1:])) > 1.0  # the second without a server
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 2 and "stream dropped after" in messages[0] and "reconnected after" in messages[1], messages


def test_predictor_reconnect_option(shared_weights: Path, caplog: pytest.LogCaptureFixture) -> None:
    """`load(..., reconnect=N)` reaches the stream: with 0 a drop ends `stream()` after the frames before it;
    `stream(..., reconnect=2)` overrides it and rides over a drop."""
    import visionkit

    with pytest.raises(visionkit.OptionError, match="reconnect must be"):
        visionkit.load("detect", MODEL, reconnect=-2)
    detector = visionkit.load("detect", MODEL, reconnect=0)
    images = [np.full((48, 64, 3), 20 * i, np.uint8) for i in range(10)]
    with MjpegServer(images, fps=20) as server:
        server.stop_after(8)
        results = list(detector.stream(server.url))
        assert 1 <= len(results) <= 8
        server.start()
        server.stop_after(server.sent + 8, then=lambda: threading.Timer(0.3, server.start).start())
        with caplog.at_level("WARNING", logger="visionkit"):
            frames = []
            for frame, _ in detector.stream(server.url, reconnect=2):
                frames.append(frame)
                if len(frames) == 15:
                    break
    indices = [f.index for f in frames]  # live: stream() keeps only the newest frame, so some are skipped
    assert all(b > a for a, b in zip(indices, indices[1:])), indices
    assert any("reconnected after" in r.getMessage() for r in caplog.records), caplog.text
