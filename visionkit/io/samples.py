"""The inputs a command runs on when no SOURCE is given: ultralytics' bundled photo ``bus.jpg`` for the image tasks,
and for the video tasks (``track``, ``action``: a still image has no motion to follow) a short clip made from that
photo, a camera panning across the street scene, written once into the weights cache.
"""

from __future__ import annotations

import os
from pathlib import Path

CLIP_FRAMES = 48  # 3 s at 16 fps: three of the action models' 16-frame windows
CLIP_FPS = 16.0
CLIP_SIZE = (640, 480)  # width, height of the moving window over the 810x1080 photo
CLIP_NAME = "bus_pan.avi"


def sample_image() -> Path:
    from ultralytics.utils import ASSETS  # ultralytics ships bus.jpg and zidane.jpg inside its package

    return Path(ASSETS) / "bus.jpg"


def sample_clip() -> Path:
    """``bus_pan.avi`` in the cache (made on first use): a 640x480 window moving down and across ``bus.jpg``,
    so the people and the bus move through the frame as under a panning camera."""
    import cv2

    from ..weights import cache_dir

    target = cache_dir() / "samples" / CLIP_NAME
    if target.is_file():
        return target
    photo = cv2.imread(str(sample_image()))
    w, h = CLIP_SIZE
    target.parent.mkdir(parents=True, exist_ok=True)
    part = target.with_name(f".{CLIP_NAME}.{os.getpid()}.avi")  # same suffix: OpenCV picks the container by it
    writer = cv2.VideoWriter(str(part), cv2.VideoWriter_fourcc(*"MJPG"), CLIP_FPS, (w, h))
    try:
        for i in range(CLIP_FRAMES):
            x = round((photo.shape[1] - w) * i / (CLIP_FRAMES - 1))
            y = round((photo.shape[0] - h) * (0.4 + 0.3 * i / (CLIP_FRAMES - 1)))
            writer.write(photo[y:y + h, x:x + w])
    finally:
        writer.release()
    os.replace(part, target)  # atomic: a run stopped while writing never leaves a short clip under the real name
    return target
