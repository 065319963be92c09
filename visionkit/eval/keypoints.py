"""Person keypoint accuracy: COCO OKS AP with pycocotools, and PCK on ground-truth person crops.

Two protocols, because they answer different questions:

* ``evaluate_keypoints`` -> COCO keypoint AP (``COCOeval`` iouType "keypoints": OKS with COCO's per-keypoint sigmas,
  AP@[.50:.95], top 20 people per image by score). It scores the whole system: finding people and placing their
  keypoints. Any callable returning ``Detections`` with ``keypoints`` works: a pose ``Predictor`` (YOLO-pose,
  Keypoint R-CNN, MoveNet on whole images) or ``visionkit.composites.PersonPose`` (detector -> MoveNet per box).
* ``evaluate_pck`` -> PCK@alpha for a single-person model given the ground-truth box of each person (no detector
  involved): a labelled keypoint (v > 0) is correct when the prediction lies within alpha x max(box width, box
  height) of it, the box being the annotation's ``bbox``. Persons with fewer than ``min_keypoints`` labelled
  keypoints and crowd annotations are skipped.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import OptionError, SourceError
from ..io.images import read_image
from .coco import load_coco, run_cocoeval


@dataclass
class KeypointScore:
    map: float  # OKS AP@[.50:.95]
    map50: float
    map75: float
    images: int
    people: int  # predicted people submitted
    # The accumulated pycocotools COCOeval (precision/recall arrays) for reports and plots; None = no people.
    evaluator: Any = field(default=None, repr=False, compare=False)

    def to_dict(self) -> dict[str, Any]:
        return {"map": round(self.map, 4), "map50": round(self.map50, 4), "map75": round(self.map75, 4),
                "images": self.images, "people": self.people}


@dataclass
class PckScore:
    pck: dict[float, float]  # alpha -> fraction of labelled keypoints placed within alpha x the box's longer side
    persons: int
    keypoints: int  # labelled keypoints scored

    def to_dict(self) -> dict[str, Any]:
        return {**{f"pck@{a:g}": round(v, 4) for a, v in self.pck.items()}, "persons": self.persons,
                "keypoints": self.keypoints, "normaliser": "max(gt box width, gt box height)"}


def _load_gt(annotations: str | Path) -> tuple[Any, int]:
    """The COCO index of a person keypoints file and its person category id, or a SourceError naming the file."""
    gt = load_coco(annotations)
    if not any("keypoints" in a for a in gt.dataset.get("annotations", [])):
        raise SourceError(f"{annotations}: no keypoint annotations (expected a COCO person_keypoints file)")
    ids = gt.getCatIds(catNms=["person"])
    if not ids:
        raise SourceError(f"{annotations}: no 'person' category")
    return gt, int(ids[0])


def evaluate_keypoints(predictor: Callable[[str], Any], images_dir: str | Path, annotations: str | Path,
                       progress: Callable[[int], None] | None = None) -> KeypointScore:
    """Run ``predictor`` on every annotated image and score its people with pycocotools' keypoint ``COCOeval``.

    Each person is submitted with its 17 keypoints (x, y; COCO ignores the third value) and its detection score;
    run predictors with their evaluation settings (``evaluate=True``: low conf) so the precision-recall curve is
    complete.
    """

    gt, category = _load_gt(annotations)
    images_dir = Path(images_dir)
    rows = []
    image_ids = sorted(gt.getImgIds())
    for image_id in image_ids:
        result = predictor(str(images_dir / gt.loadImgs(image_id)[0]["file_name"]))
        if result.keypoints is None:
            raise OptionError(f"{type(predictor).__name__} returned no keypoints: evaluate a pose model")
        for keypoints, score, name in zip(result.keypoints, result.scores, result.class_names, strict=True):
            if name == "person":
                rows.append({"image_id": image_id, "category_id": category, "score": float(score),
                             "keypoints": [float(v) for v in keypoints.reshape(-1)]})
        if progress:
            progress(1)
    ev = run_cocoeval(gt, rows, image_ids, "keypoints")
    stats = [0.0] * 3 if ev is None else [float(v) for v in ev.stats]
    return KeypointScore(stats[0], stats[1], stats[2], len(image_ids), len(rows), evaluator=ev)


def evaluate_pck(pose: Any, images_dir: str | Path, annotations: str | Path, alphas: tuple[float, ...] = (0.1, 0.2),
                 min_keypoints: int = 5, progress: Callable[[int], None] | None = None) -> PckScore:
    """PCK of a single-person pose model on each ground-truth person box (see the module docstring).

    ``pose`` is a pose ``Predictor`` whose backend runs inside boxes (``predict_in_boxes``, e.g. MoveNet, which
    crops 1.25 x the box).
    """
    if not pose.runs_in_boxes:
        raise OptionError(f"PCK on ground-truth boxes needs a single-person pose model (e.g. movenet_lightning), "
                          f"not {pose.entry.name!r}")
    gt, category = _load_gt(annotations)
    images_dir = Path(images_dir)
    hits = np.zeros(len(alphas), np.int64)
    persons = labelled = 0
    for image_id in sorted(gt.getImgIds()):
        anns = [a for a in gt.loadAnns(gt.getAnnIds(imgIds=image_id, catIds=[category], iscrowd=False))
                if a.get("num_keypoints", 0) >= min_keypoints]
        if anns:
            image = read_image(images_dir / gt.loadImgs(image_id)[0]["file_name"])
            xywh = np.array([a["bbox"] for a in anns], np.float64)
            xyxy = np.column_stack([xywh[:, :2], xywh[:, :2] + xywh[:, 2:]])
            predicted = pose.predict_in_boxes(image, xyxy).keypoints
            for ann, box, pred in zip(anns, xywh, predicted, strict=True):
                truth = np.asarray(ann["keypoints"], np.float64).reshape(-1, 3)
                seen = truth[:, 2] > 0
                dist = np.hypot(*(pred[seen, :2] - truth[seen, :2]).T)
                hits += [(dist <= a * box[2:].max()).sum() for a in alphas]
                labelled += int(seen.sum())
                persons += 1
        if progress:
            progress(1)
    return PckScore({a: float(h) / max(labelled, 1) for a, h in zip(alphas, hits, strict=True)}, persons, labelled)
