"""The three ways to run the demo over one capture loop: a desktop window, headless files, a web page."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np

import visionkit
from visionkit.io.sinks import AnnotatedSink, JsonlSink, OutputGuard

from .capture import Captured, LiveCapture
from .engine import TASKS, DemoEngine

KEYS_HELP = "keys: 1-5 task (" + " ".join(f"{i + 1}={t}" for i, t in enumerate(TASKS)) + \
            "), m model, space pause, s snapshot, q/Esc quit"


def has_display() -> bool:
    return not sys.platform.startswith("linux") or bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def limited(capture: LiveCapture, max_frames: int | None, duration: float | None) -> Iterator[Captured]:
    """The capture's frames until ``max_frames`` were taken or ``duration`` seconds passed."""
    end = time.monotonic() + duration if duration else None
    for n, item in enumerate(capture, start=1):
        yield item
        if (max_frames and n >= max_frames) or (end and time.monotonic() >= end):
            return


def save_snapshot(image: np.ndarray, directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / time.strftime("snapshot_%Y%m%d_%H%M%S.png")
    n = 1
    while path.exists():
        path = path.with_name(f"{path.stem.split('.')[0]}_{n}.png")
        n += 1
    if not cv2.imwrite(str(path), image):
        raise visionkit.SinkError(f"cannot write snapshot {path}")
    return path


def run_window(engine: DemoEngine, frames: Iterator[Captured], snapshots: Path,
               log: Callable[[str], None]) -> None:
    """OpenCV window; keyboard switches task/model, pauses, saves snapshots."""
    name = "visionkit demo"
    fonts = Path("/usr/share/fonts")
    if fonts.is_dir():  # OpenCV's Qt build ships no fonts and warns on every window unless pointed at some
        os.environ.setdefault("QT_QPA_FONTDIR", str(fonts))
    cv2.namedWindow(name, cv2.WINDOW_AUTOSIZE | cv2.WINDOW_GUI_NORMAL)  # frame at its own size, no toolbar
    log(KEYS_HELP)
    shown: np.ndarray | None = None
    try:
        for item in frames:
            if not engine.paused or shown is None:
                shown, _ = engine.process(item.frame.image, item.captured_at)
            cv2.imshow(name, shown)
            key = cv2.waitKey(1) & 0xFF
            if key in (ord("q"), 27):
                return
            if key == ord(" "):
                engine.paused = not engine.paused
            elif key == ord("s"):
                log(f"snapshot saved to {save_snapshot(shown, snapshots)}")
            elif key == ord("m"):
                engine.next_model()
            elif ord("1") <= key < ord("1") + len(TASKS):
                engine.set_task(TASKS[key - ord("1")])
            if cv2.getWindowProperty(name, cv2.WND_PROP_VISIBLE) < 1:  # closed with the mouse
                return
    finally:
        cv2.destroyAllWindows()


def run_headless(engine: DemoEngine, frames: Iterator[Captured], save: str | None, json_path: str | None,
                 log: Callable[[str], None], guard: OutputGuard | None = None) -> None:
    """No display: annotated video and/or JSONL, written as frames are processed, under the CLI's output rules
    (``guard``: never over the source file; an existing file kept unless --exist-ok)."""
    sinks: list[Any] = []
    try:
        if save:
            sinks.append(AnnotatedSink(save, guard))
        if json_path:
            sinks.append(JsonlSink(json_path, guard, task=engine.task, model=engine.model))
        for item in frames:
            annotated, result = engine.process(item.frame.image, item.captured_at)
            for sink in sinks:
                sink.write(item.frame, result, annotated)
    finally:
        for sink in sinks:
            sink.close()
    log(f"processed {engine.stats.frames} frames" + (f"; saved to {save}" if save else ""))
