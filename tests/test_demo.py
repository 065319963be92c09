"""The live demo (apps/webcam_demo) as a user runs it: headless files, a real window under Xvfb, and the
browser page in headless Chromium. A looping video or still image stands in for the camera: the capture
path is the same except for the open call."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from visionkit.cli import main

CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def _need(tool: str) -> str:
    path = shutil.which(tool)
    if path:
        return path
    if CI:
        pytest.fail(f"{tool} is required in CI (.ci/run installs it)")
    pytest.skip(f"{tool} not installed")


@pytest.fixture(scope="module")
def clip(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    import cv2

    cap = cv2.VideoCapture(str(shared_data / "tracking/demo/vtest.avi"))
    path = tmp_path_factory.mktemp("demo") / "clip.mp4"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 10, (480, 360))
    for _ in range(20):
        ok, frame = cap.read()
        writer.write(frame)
    writer.release()
    return path


def test_headless_writes_video_and_jsonl(clip: Path, tmp_path: Path, shared_weights: Path) -> None:
    code = main(["demo", "--source", str(clip), "--loop", "--headless", "--save", str(tmp_path / "out"),
                 "--json", str(tmp_path / "live.jsonl"), "--max-frames", "12"])
    assert code == 0
    lines = [json.loads(x) for x in (tmp_path / "live.jsonl").read_text().splitlines()]
    assert len(lines) == 12 and all(x["type"] == "detections" for x in lines)
    import cv2

    cap = cv2.VideoCapture(str(tmp_path / "out" / "clip.mp4"))
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 12


def test_no_display_is_a_clear_error_or_headless_fallback(clip: Path, tmp_path: Path, monkeypatch, capsys,
                                                         shared_weights: Path) -> None:
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    assert main(["demo", "--source", str(clip)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no display" in err[0]
    assert main(["demo", "--source", str(clip), "--fallback-headless", "--max-frames", "3"]) == 0
    assert "running headless" in capsys.readouterr().err


def test_absent_camera_fails_fast_with_one_line(capsys) -> None:
    start = time.monotonic()
    assert main(["demo", "--source", "7", "--headless"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["visionkit: error: camera 7: not available (no camera at that index, or it is in use)"]
    assert time.monotonic() - start < 10


def test_source_that_ends_stops_cleanly(clip: Path, tmp_path: Path, shared_weights: Path) -> None:
    # Without --loop the file ends like an unplugged camera: the demo stops by itself, outputs intact.
    assert main(["demo", "--source", str(clip), "--headless", "--json", str(tmp_path / "x.jsonl")]) == 0
    lines = (tmp_path / "x.jsonl").read_text().splitlines()
    assert 1 <= len(lines) <= 20 and all(json.loads(x) for x in lines)


@pytest.mark.parametrize("spec", ["\u00b3", "\u0663"])
def test_capture_takes_other_unicode_digits_for_a_file_name(spec: str, tmp_path: Path) -> None:
    """'³' passes str.isdigit() (int() then raised ValueError) and '٣' is int() 3: neither is a camera index."""
    from visionkit_apps.webcam_demo.capture import LiveCapture

    from visionkit.errors import SourceError

    with pytest.raises(SourceError, match=f"{spec}: no such file or directory"):
        LiveCapture(str(tmp_path / spec))
    with pytest.raises(SourceError, match=f"^{spec}: no such file or directory"):
        LiveCapture(spec)


def test_capture_keeps_only_the_latest_frame(clip: Path) -> None:
    from visionkit_apps.webcam_demo.capture import LiveCapture

    capture = LiveCapture(str(clip), loop=True)
    stamps = []
    for n, item in enumerate(capture):
        time.sleep(0.3)  # a consumer 3x slower than the 10 fps source
        stamps.append(time.monotonic() - item.captured_at)
        if n == 5:
            break
    capture.close()
    assert capture.dropped >= 5  # frames were dropped, not queued
    assert max(stamps) < 0.45  # each frame handed over is at most one slow step old: no growing backlog


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def xvfb() -> str:
    xvfb = _need("Xvfb")
    display = f":{free_port() % 400 + 100}"
    proc = subprocess.Popen([xvfb, display, "-screen", "0", "1024x768x24"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    time.sleep(1.0)
    yield display
    proc.terminate()
    proc.wait(timeout=10)


def test_window_mode_under_xvfb_shows_the_annotated_frame(clip: Path, xvfb: str, shared_weights: Path) -> None:
    from PIL import ImageGrab

    env = {**os.environ, "DISPLAY": xvfb}
    proc = subprocess.Popen([sys.executable, "-m", "visionkit.cli", "demo", "--source", str(clip), "--loop",
                             "--duration", "150"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        def frame_and_overlay(image: np.ndarray) -> tuple[bool, bool]:
            video = bool((image[:360, :480].std(axis=(0, 1)) > 20).all())  # the 480x360 clip, not a blank screen
            band = image[330:360, :200]  # the stats overlay: a dark band with white text at the frame's bottom
            return video, bool((band > 200).any() and band.mean() < 120)

        seen = (False, False)
        deadline = time.monotonic() + 120  # model loading is slow on a busy 2-core machine
        while time.monotonic() < deadline and seen != (True, True):
            time.sleep(1.0)  # a grab can land while the window is still being drawn: look again
            seen = frame_and_overlay(np.asarray(ImageGrab.grab(xdisplay=xvfb)))
        assert seen[0], "no video frame appeared in the window"
        assert seen[1], "the frame appeared without the stats overlay"
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=20)
    assert b"Traceback" not in err


@pytest.fixture
def server(assets: Path, shared_weights: Path) -> str:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "visionkit.cli", "demo", "--source", str(assets / "bus.jpg"),
                             "--loop", "--serve", "--port", str(port), "--duration", "120"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    import urllib.request

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url + "/stats", timeout=1)
            break
        except OSError:
            if proc.poll() is not None:
                pytest.fail(proc.stderr.read().decode())
            time.sleep(0.5)
    yield url
    proc.terminate()
    _, err = proc.communicate(timeout=20)
    assert b"Traceback" not in err


def launch_chromium(playwright: Any) -> Any:
    """The system's Chromium, headless and quiet (no downloads, no background traffic)."""
    return playwright.chromium.launch(executable_path=_need("chromium"), args=[
        "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"])


def test_browser_page_streams_and_switches_task(server: str) -> None:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = launch_chromium(p)
        page = browser.new_page()
        page.goto(server + "/")
        page.wait_for_function("document.getElementById('stream').naturalWidth === 810", timeout=30000)
        page.wait_for_function("document.getElementById('stats').textContent.includes('FPS')", timeout=20000)
        assert page.inner_text("#stats").startswith("detect:")
        before = page.request.get(server + "/frame.jpg").body()

        page.click("button[data-task=track]")
        page.wait_for_function("document.getElementById('stats').textContent.startsWith('track:')", timeout=30000)
        time.sleep(1.0)
        after = page.request.get(server + "/frame.jpg").body()
        assert page.inner_text("#error") == ""
        assert page.eval_on_selector("button[data-task=track]", "b => b.classList.contains('active')")
        browser.close()
    import cv2

    a = cv2.imdecode(np.frombuffer(before, np.uint8), cv2.IMREAD_COLOR)
    b = cv2.imdecode(np.frombuffer(after, np.uint8), cv2.IMREAD_COLOR)
    assert a.shape == b.shape == (1080, 810, 3)
    # Same still image, other task: the drawing changed (tracked labels carry '#id').
    assert np.abs(a.astype(int) - b.astype(int)).max() > 100
