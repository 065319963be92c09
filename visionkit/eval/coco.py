"""COCO box mAP with pycocotools, for any detector of the catalog.

Class names are mapped to COCO category ids through the 91-entry COCO list (index = category id), so models
with 80 contiguous classes (YOLO) and 91-id models (SSD, torchvision) are scored the same way.
"""

from __future__ import annotations

import contextlib
import io
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from ..catalog import load_class_names
from ..errors import SinkError, SourceError


@cache
def coco_ids() -> dict[str, int]:
    return {name: i for i, name in enumerate(load_class_names("coco91")) if name not in ("__background__", "N/A")}


def coco_category_id(class_name: str) -> int:
    try:
        return coco_ids()[class_name]
    except KeyError:
        raise SinkError(f"class {class_name!r} is not a COCO category: COCO results need a COCO model") from None


@dataclass
class CocoScore:
    map: float  # mAP@[.50:.95]
    map50: float
    map75: float
    images: int
    detections: int
    # The accumulated pycocotools COCOeval (per-class precision/recall arrays) for reports and plots; None = no rows.
    evaluator: Any = field(default=None, repr=False, compare=False)
    # The result rows that were scored (COCO results format), e.g. for a confusion matrix.
    rows: list[dict[str, Any]] = field(default_factory=list, repr=False, compare=False)

    def to_dict(self) -> dict[str, Any]:
        return {"map": round(self.map, 4), "map50": round(self.map50, 4), "map75": round(self.map75, 4),
                "images": self.images, "detections": self.detections}


def load_coco(annotations: str | Path) -> Any:
    """A pycocotools ``COCO`` index of an annotation file, without pycocotools' progress prints; a file that is
    missing, unreadable, not JSON or not COCO-shaped is a ``SourceError`` naming it (pycocotools would raise a
    bare ``KeyError`` or ``JSONDecodeError``)."""
    from pycocotools.coco import COCO

    annotations = Path(annotations)
    if not annotations.is_file():
        raise SourceError(f"{annotations}: no such annotation file")
    try:
        dataset = json.loads(annotations.read_bytes())
    except OSError as e:
        raise SourceError(f"cannot read {annotations}: {e.strerror}") from None
    except ValueError as e:  # JSONDecodeError, UnicodeDecodeError
        raise SourceError(f"{annotations}: not a JSON file ({e})") from None
    if not isinstance(dataset, dict) or not isinstance(dataset.get("images"), list):
        raise SourceError(f"{annotations}: not a COCO annotation file (no 'images' list)")
    coco = COCO()
    coco.dataset = dataset
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            coco.createIndex()
    except (KeyError, TypeError) as e:
        raise SourceError(f"{annotations}: not a COCO annotation file (an entry lacks {e})") from None
    return coco


def run_cocoeval(gt: Any, rows: list[dict[str, Any]], image_ids: list[int], iou_type: str) -> Any:
    """The evaluated, accumulated and summarised pycocotools ``COCOeval`` of result rows over ``image_ids``
    (``eval["precision"]`` [T, R, K, A, M], ``eval["recall"]`` [T, K, A, M]); None when there are no rows."""
    from pycocotools.cocoeval import COCOeval

    if not rows:
        return None
    with contextlib.redirect_stdout(io.StringIO()):
        ev = COCOeval(gt, gt.loadRes(json.loads(json.dumps(rows))), iou_type)
        ev.params.imgIds = image_ids
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return ev


def coco_map(gt: Any, rows: list[dict[str, Any]], image_ids: list[int], iou_type: str = "bbox") -> float:
    """mAP@[.5:.95] of result rows over ``image_ids`` (0 when there are none)."""
    ev = run_cocoeval(gt, rows, image_ids, iou_type)
    return 0.0 if ev is None else float(ev.stats[0])


def evaluate_detector(predictor: Any, images_dir: str | Path, annotations: str | Path,
                      progress: Callable[[int], None] | None = None) -> CocoScore:
    """Run ``predictor`` on every annotated image and score the boxes with pycocotools ``COCOeval``."""
    images_dir = Path(images_dir)
    gt = load_coco(annotations)
    rows = []
    image_ids = sorted(gt.getImgIds())
    for image_id in image_ids:
        info = gt.loadImgs(image_id)[0]
        result = predictor(str(images_dir / info["file_name"]))
        for box, score, name in zip(result.xyxy, result.scores, result.class_names):
            x1, y1, x2, y2 = (float(v) for v in box)
            rows.append({"image_id": image_id, "category_id": coco_category_id(str(name)),
                         "bbox": [x1, y1, x2 - x1, y2 - y1], "score": float(score)})
        if progress:
            progress(1)
    ev = run_cocoeval(gt, rows, image_ids, "bbox")
    stats = [0.0] * 3 if ev is None else [float(v) for v in ev.stats]
    return CocoScore(stats[0], stats[1], stats[2], len(image_ids), len(rows), evaluator=ev, rows=rows)
