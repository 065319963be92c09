"""Small media fixtures built from the shared data: short video clips and bad files of every kind."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np


def make_clip(source: Path, target: Path, frames: int = 20, fourcc: str = "MJPG", start: int = 0) -> Path:
    """Copy ``frames`` frames of ``source`` (from frame ``start``) into ``target`` at the source's fps."""
    cap = cv2.VideoCapture(str(source))
    assert cap.isOpened(), f"cannot open {source}"
    fps = cap.get(cv2.CAP_PROP_FPS) or 10.0
    if start:
        cap.set(cv2.CAP_PROP_POS_FRAMES, start)
    writer = None
    written = 0
    try:
        while written < frames:
            ok, image = cap.read()
            if not ok:
                break
            if writer is None:
                h, w = image.shape[:2]
                writer = cv2.VideoWriter(str(target), cv2.VideoWriter_fourcc(*fourcc), fps, (w, h))
                assert writer.isOpened(), f"cannot write {target}"
            writer.write(image)
            written += 1
    finally:
        cap.release()
        if writer is not None:
            writer.release()
    assert written == frames, f"{source} has only {written} frames"
    return target


def synthetic_clip(target: Path, frames: int = 5, size: tuple[int, int] = (64, 48), fps: float = 5.0,
                   fourcc: str = "MJPG") -> Path:
    """A tiny clip whose frame i is filled with grey level 10 * i (so frames can be told apart)."""
    w, h = size
    writer = cv2.VideoWriter(str(target), cv2.VideoWriter_fourcc(*fourcc), fps, (w, h))
    assert writer.isOpened()
    for i in range(frames):
        writer.write(np.full((h, w, 3), 10 * i, np.uint8))
    writer.release()
    return target


def count_frames(path: Path) -> tuple[int, int, int]:
    """(decoded frame count, width, height) of a video, counted by decoding every frame."""
    cap = cv2.VideoCapture(str(path))
    assert cap.isOpened(), f"cannot open {path}"
    n = 0
    w, h = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
    while True:
        ok, _ = cap.read()
        if not ok:
            break
        n += 1
    cap.release()
    return n, w, h


def truncated_copy(source: Path, target: Path, fraction: float = 0.5) -> Path:
    data = source.read_bytes()
    target.write_bytes(data[: int(len(data) * fraction)])
    return target


def write_png(path: Path, image: np.ndarray) -> Path:
    assert cv2.imwrite(str(path), image), f"cannot write {path}"
    return path


def damaged_copy(source: Path, target: Path, length: int = 200) -> Path:
    """``source`` with ``length`` bytes in the middle scrambled: the header intact, the data behind it broken."""
    data = bytearray(source.read_bytes())
    middle = len(data) // 2
    data[middle:middle + length] = bytes(b ^ 0x5A for b in data[middle:middle + length])
    target.write_bytes(bytes(data))
    return target
