"""Annotated video files (visionkit.io.video) and stop signals (visionkit.interrupts): H.264 in fragmented MP4
that headless Chromium plays, that a SIGKILL leaves decodable up to its last keyframe, odd sizes, the OpenCV
fallback, and signal handlers that only the command installs.
"""

from __future__ import annotations

import functools
import http.server
import logging
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
from clip_helpers import make_clip
from fault_harness import Outcome, Stop, assert_jsonl_valid, assert_video_valid, run_cli

from visionkit.errors import SinkError
from visionkit.interrupts import (
    Interrupted,
    deferred_stop,
    hold_stop_signals,
    stop_gracefully,
    stop_requested,
    stop_signals,
)
from visionkit.io.video import VideoWriter

MODEL = "ssd_mobilenet_v1_coco"  # the fastest real model (~10 ms/image on a CPU)
CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def gradient(i: int, size: tuple[int, int] = (64, 48)) -> np.ndarray:
    """Frame ``i``: a colour gradient with a white square that moves (so frames differ and colours can be checked)."""
    w, h = size
    image = np.zeros((h, w, 3), np.uint8)
    image[..., 0] = np.linspace(0, 255, w, dtype=np.uint8)[None, :]
    image[..., 1] = np.linspace(0, 255, h, dtype=np.uint8)[:, None]
    image[..., 2] = 128
    image[8:24, 2 * i % (w - 16):2 * i % (w - 16) + 16] = 255
    return image


def packets(path: Path) -> list[av.Packet]:
    with av.open(str(path)) as container:
        return [p for p in container.demux(video=0) if p.size]


def decoded(path: Path) -> int:
    """Frames PyAV decodes (a decoding error fails the test)."""
    with av.open(str(path)) as container:
        return sum(1 for _ in container.decode(video=0))


# -- VideoWriter ------------------------------------------------------------------------------------------
def test_h264_fragmented_mp4(tmp_path: Path) -> None:
    path = tmp_path / "v.mp4"
    frames = [gradient(i) for i in range(25)]
    with VideoWriter(path, 10.0, (64, 48)) as video:
        for image in frames:
            video.write(image)
    assert video.codec == "libx264" and video.frames == 25
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        assert (stream.codec_context.name, stream.codec_context.pix_fmt) == ("h264", "yuv420p")
        assert (stream.width, stream.height, stream.average_rate) == (64, 48, 10)
    assert [i for i, p in enumerate(sorted(packets(path), key=lambda p: p.pts)) if p.is_keyframe] == [0, 10, 20]
    data = path.read_bytes()  # fragmented: the (empty) index first, then one moof+mdat per keyframe
    assert data.index(b"moov") < data.index(b"moof") < data.index(b"mdat")
    assert data.count(b"moof") == 3
    cap = cv2.VideoCapture(str(path))
    for image in frames:  # colours survive the BGR -> yuv420p -> BGR round trip (plain lossy-codec noise)
        ok, back = cap.read()
        assert ok and np.abs(back.astype(int) - image.astype(int)).mean() < 6
    cap.release()


def test_odd_size_is_padded_by_one_pixel(tmp_path: Path) -> None:
    image = gradient(0, (65, 49))
    image[:, -1] = (0, 0, 255)  # a red last column: padding repeats it, cropping would lose it
    original = image.copy()
    with VideoWriter(tmp_path / "odd.mp4", 5.0, (65, 49)) as video:
        for _ in range(3):
            video.write(image)
    assert video.encoded_size == (66, 50)
    cap = cv2.VideoCapture(str(tmp_path / "odd.mp4"))
    ok, back = cap.read()
    cap.release()
    assert ok and back.shape == (50, 66, 3)
    assert back[:, -2:, 2].mean() > 200 and back[:, -2:, :2].mean() < 60  # the red column, twice
    np.testing.assert_array_equal(image, original)  # the caller's frame is untouched


def test_frames_of_another_size_are_resized(tmp_path: Path) -> None:
    with VideoWriter(tmp_path / "v.mp4", 5.0, (64, 48)) as video:
        video.write(gradient(0))
        video.write(gradient(1, (128, 96)))
    assert assert_video_valid(tmp_path / "v.mp4") == 2
    with av.open(str(tmp_path / "v.mp4")) as container:
        assert {(f.width, f.height) for f in container.decode(video=0)} == {(64, 48)}


def test_unwritable_path_is_a_sink_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(SinkError, match=r"cannot write .*file/v\.mp4: Not a directory"):
        VideoWriter(blocker / "v.mp4", 10.0, (64, 48))


def test_opencv_fallback_without_the_encoder(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """An encoder PyAV's FFmpeg lacks: OpenCV's mp4v writer takes over, with one warning for the whole process."""
    for name in ("a.mp4", "b.mp4"):
        with caplog.at_level(logging.WARNING, "visionkit"), \
                VideoWriter(tmp_path / name, 10.0, (64, 48), encoder="no-such-h264") as video:
            for i in range(5):
                video.write(gradient(i))
        assert video.codec == "mp4v"
        assert assert_video_valid(tmp_path / name) == 5
        with av.open(str(tmp_path / name)) as container:
            assert container.streams.video[0].codec_context.name == "mpeg4"
    (warning,) = [r.getMessage() for r in caplog.records]
    assert "no 'no-such-h264' encoder" in warning and "OpenCV" in warning and "VISIONKIT_VIDEO_ENCODER" in warning


# -- the command ------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def clip(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_clip(shared_data / "tracking/demo/vtest.avi", tmp_path_factory.mktemp("clip") / "walk.avi", 20)


@pytest.fixture(scope="module")
def long_clip(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """150 frames: a run long enough to be signalled mid-way."""
    return make_clip(shared_data / "tracking/demo/vtest.avi", tmp_path_factory.mktemp("clip") / "long.avi", 150)


@pytest.fixture(scope="module")
def finished_video(clip: Path, shared_weights: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("finished")
    outcome = run_cli("detect", clip, "-m", MODEL, "--save", out, "-q", env={"VISIONKIT_WEIGHTS": str(shared_weights)})
    assert outcome.code == 0, outcome.stderr
    return out / "walk.mp4"


@pytest.fixture(scope="module")
def killed_run(shared_data: Path, shared_weights: Path, tmp_path_factory: pytest.TempPathFactory
               ) -> tuple[Outcome, Path, Path]:
    """``visionkit detect vtest.avi --save`` ended by SIGKILL after 60 frames (6 s of video): nothing runs after."""
    tmp = tmp_path_factory.mktemp("killed")
    jsonl = tmp / "r.jsonl"
    stop = Stop(signal.SIGKILL, lambda _: jsonl.is_file() and len(jsonl.read_text().splitlines()) >= 60)
    outcome = run_cli("detect", shared_data / "tracking/demo/vtest.avi", "-m", MODEL, "--save", tmp / "out", "--json",
                      jsonl, "-q", env={"VISIONKIT_WEIGHTS": str(shared_weights)}, stop=stop)
    return outcome, tmp / "out" / "vtest.mp4", jsonl


def test_sigkill_leaves_the_video_playable_to_its_last_keyframe(killed_run: tuple[Outcome, Path, Path]) -> None:
    outcome, video, jsonl = killed_run
    assert outcome.code == -signal.SIGKILL
    lines = len(assert_jsonl_valid(jsonl))
    frames = assert_video_valid(video, min_frames=10)  # at least the first 1 s fragment
    assert decoded(video) == frames <= lines
    keyframes = [i for i, p in enumerate(sorted(packets(video), key=lambda p: p.pts)) if p.is_keyframe]
    assert len(keyframes) >= 2 and keyframes[:2] == [0, 10]  # one keyframe (and fragment) per second of video


def test_fallback_through_the_environment(clip: Path, shared_weights: Path, tmp_path: Path) -> None:
    outcome = run_cli("detect", clip, "-m", MODEL, "--save", tmp_path, "-q",
                      env={"VISIONKIT_WEIGHTS": str(shared_weights), "VISIONKIT_VIDEO_ENCODER": "no-such-h264"})
    assert outcome.code == 0, outcome.stderr
    notes = [line for line in outcome.stderr_lines if "no-such-h264" in line]
    assert len(notes) == 1 and notes[0].startswith("visionkit: WARNING: PyAV's FFmpeg has no 'no-such-h264' encoder")
    assert assert_video_valid(tmp_path / "walk.mp4") == 20
    with av.open(str(tmp_path / "walk.mp4")) as container:
        assert container.streams.video[0].codec_context.name == "mpeg4"


def test_nohup_keeps_sighup_ignored(long_clip: Path, shared_weights: Path, tmp_path: Path) -> None:
    """A hang-up the parent ignores (``nohup visionkit ...``) does not stop the run."""
    jsonl = tmp_path / "r.jsonl"
    outcome = run_cli("detect", long_clip, "-m", MODEL, "--json", jsonl, "-q",
                      env={"VISIONKIT_WEIGHTS": str(shared_weights)},
                      preexec=lambda: signal.signal(signal.SIGHUP, signal.SIG_IGN),
                      stop=Stop(signal.SIGHUP, lambda _: jsonl.is_file() and jsonl.stat().st_size > 0))
    assert outcome.code == 0, outcome.stderr
    assert len(assert_jsonl_valid(jsonl)) == 150


# -- in a browser -----------------------------------------------------------------------------------------
@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    """A folder served on 127.0.0.1 (a page and the video under test), stopped after the test."""
    (tmp_path / "index.html").write_text('<!doctype html><video id="v" muted playsinline src="video.mp4"></video>')
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path))
    handler.log_message = lambda *args: None  # type: ignore[attr-defined]
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield tmp_path, f"http://127.0.0.1:{server.server_address[1]}/index.html"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.mark.parametrize("which", ["finished", "killed"])
def test_plays_in_chromium(which: str, request: pytest.FixtureRequest, served: tuple[Path, str]) -> None:
    chromium = shutil.which("chromium")
    if chromium is None:
        if CI:
            pytest.fail("chromium is required in CI (.ci/run installs it)")
        pytest.skip("chromium not installed")
    from playwright.sync_api import sync_playwright

    video = request.getfixturevalue("finished_video") if which == "finished" else \
        request.getfixturevalue("killed_run")[1]
    folder, url = served
    shutil.copyfile(video, folder / "video.mp4")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox", "--disable-gpu",
                                                                    "--autoplay-policy=no-user-gesture-required"])
        try:
            page = browser.new_page()
            page.goto(url)
            page.wait_for_function("() => { const v = document.getElementById('v'); return v.readyState >= 2 "
                                   "|| v.error; }", timeout=30000)
            state = page.evaluate("() => { const v = document.getElementById('v'); return {ready: v.readyState, "
                                  "width: v.videoWidth, height: v.videoHeight, error: v.error && v.error.message}; }")
            assert state["error"] is None and state["ready"] >= 2, state  # 2: HAVE_CURRENT_DATA, a frame decoded
            assert (state["width"], state["height"]) == (480, 360)
            page.evaluate("() => document.getElementById('v').play()")
            page.wait_for_function("() => document.getElementById('v').currentTime > 0.5", timeout=30000)
            assert page.evaluate("() => document.getElementById('v').error") is None
        finally:
            browser.close()


# -- signal handlers --------------------------------------------------------------------------------------
def test_importing_the_library_sets_no_signal_handlers() -> None:
    code = ("import signal; names = ('SIGINT', 'SIGTERM', 'SIGHUP'); "
            "before = [signal.getsignal(getattr(signal, n)) for n in names]; "
            "import visionkit, visionkit.cli, visionkit.interrupts, visionkit.io.sinks, visionkit.io.video; "
            "assert [signal.getsignal(getattr(signal, n)) for n in names] == before")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr


def test_the_command_restores_the_handlers(capsys: pytest.CaptureFixture) -> None:
    from visionkit.cli import main

    before = [signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)]
    assert main(["models", "--task", "detect", "--json"]) == 0
    assert [signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)] == before


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143), (signal.SIGHUP, 129)])
def test_stop_signals_raise_interrupted(signum: int, code: int) -> None:
    with stop_signals(), pytest.raises(Interrupted) as stopped:
        signal.raise_signal(signum)
    assert isinstance(stopped.value, KeyboardInterrupt)
    assert (stopped.value.exit_code, stopped.value.signal_name) == (code, signal.Signals(signum).name)


def test_signals_while_finishing_outputs_are_held() -> None:
    with stop_signals():
        hold_stop_signals()
        signal.raise_signal(signal.SIGTERM)  # noted, not raised: the outputs are being finished
        signal.raise_signal(signal.SIGINT)  # a second stop changes nothing
        held = stop_requested()
    assert held is not None and held.exit_code == 143
    assert stop_requested() is None  # nothing is left over outside the command


def test_a_stop_during_native_start_up_is_raised_after_it() -> None:
    """``deferred_stop``: torch's C++ start-up aborts the process on an exception from a Python callback, so a
    stop that lands in it waits for the block to end, then interrupts as usual."""
    steps: list[str] = []
    with stop_signals(), pytest.raises(Interrupted) as stopped:
        with deferred_stop():
            signal.raise_signal(signal.SIGTERM)
            steps.append("import finished")
        steps.append("never reached")
    assert steps == ["import finished"] and stopped.value.exit_code == 143
    with stop_signals(), deferred_stop():  # no signal: nothing is raised
        steps.append("quiet")
    assert steps[-1] == "quiet"


def test_the_command_entry_point_catches_a_stop_while_its_modules_load() -> None:
    """``python -m visionkit``: a Ctrl-C while the command's modules import (before ``cli`` exists) is one line."""
    code = textwrap.dedent("""
        import builtins, signal, sys
        real_import = builtins.__import__
        def import_with_ctrl_c(name, *args, **kwargs):
            if name == "cli":  # the entry point's `from .cli import main`: Ctrl-C lands as it starts
                signal.raise_signal(signal.SIGINT)
            return real_import(name, *args, **kwargs)
        builtins.__import__ = import_with_ctrl_c
        from visionkit.__main__ import main
        sys.exit(main())
    """)
    done = subprocess.run([sys.executable, "-c", code, "--version"], capture_output=True, text=True, timeout=120)
    assert (done.returncode, done.stderr.strip()) == (130, "visionkit: interrupted by SIGINT"), done.stderr


def test_a_graceful_stop_is_called_then_raised() -> None:
    """``stop_gracefully``: a server is told to shut down, and the stop is raised once the block has ended."""
    calls: list[str] = []
    with stop_signals(), pytest.raises(Interrupted) as stopped:
        with stop_gracefully(lambda: calls.append("stop")):
            signal.raise_signal(signal.SIGHUP)
            calls.append("still running")  # the signal did not interrupt the block
    assert calls == ["stop", "still running"] and stopped.value.exit_code == 129
