"""Labelled image data for training classifiers: ImageFolder layouts, labels CSVs, and the digits export.

Accepted layouts (``--data``):
  DIR with train/ and val/ (optionally test/), each holding one folder per class (the folder name is the class
      name; classes sorted by name give the class ids). test/ is held back: scored once, with the best weights.
  FILE.csv with ``file,class_index`` columns (optionally ``class_name``), as ``shared/data/imagenet_sample``:
      files relative to the CSV's folder or its images/ folder; class names from classes.txt next to the CSV,
      else the class_name column. A seeded fifth of the rows is held out for validation.

Every image is decoded once while scanning: an unreadable one is skipped and counted, never fatal; layout and
label errors (an empty class folder, a class id outside the class list) are one-line ``DataError``s.
"""

from __future__ import annotations

import csv
import hashlib
import random
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from ..errors import DataError
from ..io.images import IMAGE_SUFFIXES

SPLITS = ("train", "val", "test")
CSV_VAL_FRACTION = 0.2


@dataclass
class TrainingData:
    """A training set: items per split, the class names, what was skipped and a hash of it all (for the card)."""

    root: Path
    classes: list[str]
    splits: dict[str, list[tuple[Path, Any]]]
    skipped: list[str] = field(default_factory=list)
    sha256: str = ""

    def summary(self) -> dict[str, object]:
        return {"path": str(self.root.resolve()), "sha256": self.sha256, "classes": len(self.classes),
                **{name: len(items) for name, items in self.splits.items()}, "skipped": self.skipped}


@dataclass
class ClassifyData(TrainingData):
    """Image paths and class ids per split."""

    splits: dict[str, list[tuple[Path, int]]]


def load_classify_data(data: str | Path, seed: int = 0) -> ClassifyData:
    """Scan ``data`` (see the module docstring), decoding every image once."""
    path = Path(data).expanduser()
    if path.is_file() and path.suffix.lower() == ".csv":
        return _from_csv(path, seed)
    if not path.is_dir():
        raise DataError(f"{path}: no such dataset (expected a folder with train/ and val/, or a labels .csv)")
    if not (path / "train").is_dir() or not (path / "val").is_dir():
        raise DataError(f"{path}: expected train/ and val/ folders with one sub-folder per class")
    classes = sorted(d.name for d in (path / "train").iterdir() if d.is_dir())
    if len(classes) < 2:
        raise DataError(f"{path / 'train'}: needs at least 2 class folders, found {len(classes)}")
    splits: dict[str, list[tuple[Path, int]]] = {}
    for split in SPLITS:
        if (path / split).is_dir():
            splits[split] = _scan_split(path / split, classes, required=split == "train")
    return _checked(path, classes, splits)


def _scan_split(folder: Path, classes: list[str], required: bool) -> list[tuple[Path, int]]:
    found = sorted(d.name for d in folder.iterdir() if d.is_dir())
    unknown = sorted(set(found) - set(classes))
    if unknown:
        raise DataError(f"{folder}: class folder(s) {', '.join(unknown)} are not in train/ (classes: "
                        f"{', '.join(classes)})")
    items = []
    for class_id, name in enumerate(classes):
        files = _images(folder / name)
        if not files and (required or (folder / name).is_dir()):
            raise DataError(f"{folder / name}: empty class folder (no images); add images or remove the folder")
        items += [(f, class_id) for f in files]
    return items


def _images(folder: Path) -> list[Path]:
    if not folder.is_dir():
        return []
    return sorted(f for f in folder.iterdir() if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES)


def _from_csv(path: Path, seed: int) -> ClassifyData:
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        missing = {"file", "class_index"} - set(reader.fieldnames or ())
        if missing:
            raise DataError(f"{path}: expected the columns file,class_index; missing {', '.join(sorted(missing))}")
        rows = list(reader)
    names_file = path.with_name("classes.txt")
    if names_file.is_file():
        classes = names_file.read_text(encoding="utf-8").splitlines()
    else:
        by_id: dict[int, str] = {}
        for row in rows:
            by_id.setdefault(_class_id(path, row), row.get("class_name") or str(row["class_index"]))
        classes = [by_id.get(i, str(i)) for i in range(max(by_id, default=-1) + 1)]
    items = []
    for line, row in enumerate(rows, start=2):
        class_id = _class_id(path, row)
        if not 0 <= class_id < len(classes):
            raise DataError(f"{path}:{line}: class_index {class_id} is outside the class list "
                            f"({len(classes)} classes, ids 0..{len(classes) - 1})")
        image = path.parent / row["file"]
        if not image.is_file() and (path.parent / "images" / row["file"]).is_file():
            image = path.parent / "images" / row["file"]
        items.append((image, class_id))
    order = list(range(len(items)))
    random.Random(seed).shuffle(order)
    n_val = max(1, round(len(items) * CSV_VAL_FRACTION))
    splits = {"train": [items[i] for i in sorted(order[n_val:])], "val": [items[i] for i in sorted(order[:n_val])]}
    return _checked(path, classes, splits)


def _class_id(path: Path, row: dict[str, str]) -> int:
    try:
        return int(row["class_index"])
    except ValueError:
        raise DataError(f"{path}: class_index must be an integer, got {row['class_index']!r}") from None


def _checked(root: Path, classes: list[str], splits: dict[str, list[tuple[Path, int]]]) -> ClassifyData:
    """Drop (and count) the images that do not decode; hash names, labels and bytes of the rest."""
    digest = hashlib.sha256()
    skipped: list[str] = []
    kept: dict[str, list[tuple[Path, int]]] = {}
    for split, items in splits.items():
        kept[split] = []
        for image, class_id in items:
            raw = image.read_bytes() if image.is_file() else b""
            if read_bgr(raw) is None:
                skipped.append(str(image))
                continue
            digest.update(f"{split}/{image.name}/{class_id}/".encode() + hashlib.sha256(raw).digest())
            kept[split].append((image, class_id))
        if not kept[split]:
            raise DataError(f"{root}: no readable images in the {split} split")
    return ClassifyData(root, classes, kept, skipped, digest.hexdigest())


def read_bgr(raw: bytes) -> np.ndarray | None:
    """Decode image bytes as 3-channel BGR; None when they are not an image OpenCV reads."""
    if not raw:
        return None
    return cv2.imdecode(np.frombuffer(raw, np.uint8), cv2.IMREAD_COLOR)


def export_digits(out: str | Path, seed: int = 0, holdout: float = 0.2) -> Path:
    """scikit-learn's bundled UCI digits (1797 8x8 grey images, 10 classes) as an ImageFolder.

    Stratified and seeded: ``holdout`` of the images go to test/ (held back), as many to val/, the rest to
    train/. Pixels 0..16 are scaled to 0..255 PNGs; each split also gets a labels.csv (file,class_index)
    for ``visionkit eval classify``.
    """
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    images = np.round(digits.images * (255 / 16)).astype(np.uint8)
    index = np.arange(len(images))
    rest, test = train_test_split(index, test_size=holdout, stratify=digits.target, random_state=seed)
    train, val = train_test_split(rest, test_size=len(test), stratify=digits.target[rest], random_state=seed)
    root = Path(out)
    for split, ids in (("train", train), ("val", val), ("test", test)):
        _write_split(root / split, ((f"{int(digits.target[i])}/{i:04d}.png", int(digits.target[i]), images[i])
                                    for i in sorted(ids)))
    return root


def _write_split(folder: Path, rows: Iterable[tuple[str, int, np.ndarray]]) -> None:
    lines = ["file,class_index"]
    for name, label, image in rows:
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        if not cv2.imwrite(str(folder / name), image):
            raise DataError(f"cannot write {folder / name}")
        lines.append(f"{name},{label}")
    (folder / "labels.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
