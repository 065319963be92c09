"""Top-1 / top-5 accuracy of an ImageNet-1k classifier on a labelled image folder.

The labels file is a CSV with at least the columns ``file`` (name inside the images folder) and ``class_index``
(the standard 0-based ImageNet-1k index), as ``shared/data/imagenet_sample/labels.csv``. The model's class ids must
be ImageNet-1k indices, which every ImageNet model of the catalog reports.
"""

from __future__ import annotations

import csv
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import OptionError, SourceError

TOP_K = 5


@dataclass
class ClassifyScore:
    top1: int  # images whose label is the best class
    top5: int  # images whose label is among the 5 best classes
    images: int
    # (label, best class) per image, in order: per-class accuracy and confusions (visionkit.eval.report).
    pairs: list[tuple[int, int]] = field(default_factory=list, repr=False, compare=False)

    @property
    def top1_rate(self) -> float:
        return self.top1 / self.images if self.images else 0.0

    @property
    def top5_rate(self) -> float:
        return self.top5 / self.images if self.images else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {"top1": self.top1, "top5": self.top5, "images": self.images,
                "top1_rate": round(self.top1_rate, 4), "top5_rate": round(self.top5_rate, 4)}


def read_labels(labels_csv: str | Path) -> list[tuple[str, int]]:
    """``(file, class_index)`` rows of a labels CSV, or a SourceError naming what is missing."""
    path = Path(labels_csv)
    if not path.is_file():
        raise SourceError(f"{path}: no such labels file")
    try:
        with open(path, newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            missing = {"file", "class_index"} - set(reader.fieldnames or ())
            if missing:
                raise SourceError(f"{path}: expected the columns file,class_index; missing "
                                  f"{', '.join(sorted(missing))}")
            rows = list(reader)
    except OSError as e:
        raise SourceError(f"cannot read {path}: {e.strerror}") from None
    except (UnicodeDecodeError, csv.Error) as e:
        raise SourceError(f"{path}: not a UTF-8 CSV file ({e})") from None
    labels = []
    for line, row in enumerate(rows, 2):  # line 1 is the header
        try:
            labels.append((row["file"], int(row["class_index"])))
        except (TypeError, ValueError):  # a short row leaves None; a non-number
            raise SourceError(f"{path}, line {line}: class_index must be an integer, got "
                              f"{row['class_index']!r}") from None
    return labels


def evaluate_classifier(predictor: Any, images_dir: str | Path, labels_csv: str | Path,
                        progress: Callable[[int], None] | None = None) -> ClassifyScore:
    """Run ``predictor`` on every labelled image and count top-1 and top-5 hits.

    The predictor must report at least 5 classes per image (``top_k`` >= 5, the default), else top-5 is undefined.
    """
    top_k = predictor.options.get("top_k", TOP_K)
    if top_k < TOP_K:
        raise OptionError(f"top-5 accuracy needs top_k >= {TOP_K}, but the predictor reports {top_k} class(es)")
    images_dir = Path(images_dir)
    rows = read_labels(labels_csv)
    top1 = top5 = 0
    pairs = []
    for file, label in rows:
        ids = predictor(str(images_dir / file)).class_ids
        pairs.append((label, int(ids[0])))
        top1 += int(ids[0] == label)
        top5 += int(label in ids[:TOP_K])
        if progress:
            progress(1)
    return ClassifyScore(top1, top5, len(rows), pairs)
