"""A few CamVid image/mask pairs shrunk to 128x96 (masks by nearest neighbour): data small enough to train on in
seconds, for the semantic segmentation training tests."""

from __future__ import annotations

from pathlib import Path

import cv2

SIZE = (128, 96)


def camvid_pairs(shared_data: Path, out: Path, count: int = 7) -> Path:
    """The first ``count`` pairs of ``shared_data/camvid`` at ``SIZE`` in ``out`` (images/, labels/): with every
    5th pair held back, 7 pairs are 6 for training and 1 for validation."""
    src = shared_data / "camvid"
    for sub in ("images", "labels"):
        (out / sub).mkdir(parents=True)
    for image in sorted((src / "images").iterdir())[:count]:
        pixels = cv2.imread(str(image))
        labels = cv2.imread(str(src / "labels" / image.name), cv2.IMREAD_UNCHANGED)
        cv2.imwrite(str(out / "images" / image.name), cv2.resize(pixels, SIZE, interpolation=cv2.INTER_AREA))
        cv2.imwrite(str(out / "labels" / image.name), cv2.resize(labels, SIZE, interpolation=cv2.INTER_NEAREST))
    return out
