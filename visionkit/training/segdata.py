"""Image/mask pairs for training semantic segmentation, in the CamVid layout.

``--data DIR`` holds ``images/NAME.png`` (any image format OpenCV reads) and ``labels/NAME.png``: a single-channel
8-bit mask whose pixel value is the class id. Class names come from ``DIR/classes.txt`` (one per line, index = id),
else CamVid's 11 (``shared/data/camvid`` has no such file). Ids ``len(classes)`` (CamVid's "Unlabelled" = 11) and
255 (PASCAL VOC's border) are ignored by the loss and the mIoU; any other id outside the class list is a
``DataError``, as is a mask whose size differs from its image's. Every 5th pair by name is held back for
validation (the development pairs have no split of their own).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from ..errors import DataError
from ..eval.segmentation import CAMVID_CLASSES, IGNORE_INDEX
from ..io.images import IMAGE_SUFFIXES
from .data import TrainingData, read_bgr

VAL_EVERY = 5  # pair i (sorted by name) is a validation pair when i % VAL_EVERY == VAL_EVERY - 1


@dataclass
class SegmentData(TrainingData):
    """(image, mask) paths per split; the hash covers names, pixels and labels."""

    splits: dict[str, list[tuple[Path, Path]]]

    def summary(self) -> dict[str, object]:
        return {**super().summary(), "ignored_ids": [len(self.classes), IGNORE_INDEX],
                "val_split": f"every {VAL_EVERY}th pair by name"}


def load_segment_data(data: str | Path, seed: int = 0) -> SegmentData:
    """Scan ``data`` (see the module docstring), decoding every image and mask once to check them.

    ``seed`` is unused (the split is by name, so it cannot depend on it); it keeps the classify loader's signature.
    """
    root = Path(data).expanduser()
    images_dir, labels_dir = root / "images", root / "labels"
    if not images_dir.is_dir() or not labels_dir.is_dir():
        raise DataError(f"{root}: expected images/ and labels/ folders (a mask per image, pixel value = class id)")
    names_file = root / "classes.txt"
    classes = names_file.read_text(encoding="utf-8").splitlines() if names_file.is_file() else list(CAMVID_CLASSES)
    images = sorted(f for f in images_dir.iterdir() if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES)
    digest = hashlib.sha256("\n".join(classes).encode())
    pairs, skipped = [], []
    for image in images:
        mask = _mask_of(image, labels_dir)
        raw = image.read_bytes()
        decoded = read_bgr(raw)
        if decoded is None:
            skipped.append(str(image))
            continue
        labels = read_mask(mask, len(classes))
        if labels.shape != decoded.shape[:2]:
            raise DataError(f"{image} is {decoded.shape[1]}x{decoded.shape[0]} but its mask {mask} is "
                            f"{labels.shape[1]}x{labels.shape[0]}: a mask must have its image's size")
        digest.update(f"{image.name}/".encode() + hashlib.sha256(raw).digest() + hashlib.sha256(labels).digest())
        pairs.append((image, mask))
    splits = {"train": [p for i, p in enumerate(pairs) if i % VAL_EVERY != VAL_EVERY - 1],
              "val": [p for i, p in enumerate(pairs) if i % VAL_EVERY == VAL_EVERY - 1]}
    for split, items in splits.items():
        if not items:
            raise DataError(f"{root}: no readable image/mask pairs for the {split} split (every {VAL_EVERY}th pair "
                            f"is held back for validation: at least {VAL_EVERY} pairs are needed)")
    return SegmentData(root, classes, splits, skipped, digest.hexdigest())


def _mask_of(image: Path, labels_dir: Path) -> Path:
    for candidate in (labels_dir / image.name, labels_dir / f"{image.stem}.png"):
        if candidate.is_file():
            return candidate
    raise DataError(f"{image}: no mask for it in {labels_dir} (expected {labels_dir / (image.stem + '.png')})")


def read_mask(path: Path, num_classes: int) -> np.ndarray:
    """The (H, W) uint8 class ids of a mask file, with the ignored ids (``num_classes`` and 255) set to 255."""
    labels = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if labels is None or labels.dtype != np.uint8 or labels.ndim != 2:
        what = "unreadable" if labels is None else f"{labels.dtype} with shape {labels.shape}"
        raise DataError(f"{path}: a mask must be a single-channel 8-bit image of class ids, got {what}")
    ids = np.unique(labels)
    outside = [int(i) for i in ids if num_classes < i < IGNORE_INDEX]
    if outside:
        raise DataError(f"{path}: label id(s) {', '.join(map(str, outside))} are outside the class list "
                        f"({num_classes} classes, ids 0..{num_classes - 1}; {num_classes} and {IGNORE_INDEX} "
                        f"mean unlabelled)")
    return np.where(labels == num_classes, IGNORE_INDEX, labels).astype(np.uint8)
