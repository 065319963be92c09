"""How an attack report scores each (perturbed) image: one ``Scorer`` per task, fed result by result and read
once at the end, so every eps and every input transform is scored the same way as the clean images.

  classify  top-1 against labels.csv
  detect    COCO mAP50-95 (pycocotools bbox)
  pose      COCO keypoint OKS mAP50-95 (pycocotools keypoints), every person row submitted with its score
  segment   CamVid mIoU of a VOC model over car and person (``visionkit.eval.segmentation.camvid_maps``)

A targeted attack also counts how often it reached its target (``TargetRate``), against the clean image's result:
the share of images whose top-1 is the target (classify), of the objects the clean image shows that are now
labelled the target (detect), of the pixels not already the target that now are (segment).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..results import Result
from .report import DISPLAY_CONF
from .targets import iou

# A clean object is matched by the adversarial boxes overlapping it by at least this IoU (COCO's loosest match).
MATCH_IOU = 0.5


class Scorer:
    """Accumulates ``add(i, sample, result)`` for score slot i (one per eps) and returns the scores."""

    def __init__(self, slots: int):
        self.slots = slots

    def add(self, i: int, sample: Any, result: Result) -> None:
        raise NotImplementedError

    def scores(self) -> list[float]:
        raise NotImplementedError


class TopOne(Scorer):
    def __init__(self, slots: int):
        super().__init__(slots)
        self.hits, self.count = np.zeros(slots), np.zeros(slots)

    def add(self, i: int, sample: Any, result: Result) -> None:
        self.hits[i] += int(result.class_ids[0] == sample.label)
        self.count[i] += 1

    def scores(self) -> list[float]:
        return (self.hits / np.maximum(self.count, 1)).tolist()


class CocoRows(Scorer):
    """COCO result rows per slot, scored by pycocotools: boxes (detect) or keypoints (pose)."""

    def __init__(self, slots: int, gt: Any, iou_type: str):
        super().__init__(slots)
        self.gt, self.iou_type = gt, iou_type
        self.rows: list[list[dict[str, Any]]] = [[] for _ in range(slots)]
        self.ids: set[int] = set()

    def add(self, i: int, sample: Any, result: Result) -> None:
        from ..eval.coco import coco_category_id

        self.ids.add(sample.label)
        for j in range(len(result)):  # type: ignore[arg-type]
            name = str(result.class_names[j])
            row: dict[str, Any] = {"image_id": sample.label, "category_id": coco_category_id(name),
                                   "score": float(result.scores[j])}
            if self.iou_type == "keypoints":
                row["keypoints"] = [float(v) for v in result.keypoints[j].reshape(-1)]
            else:
                b = result.xyxy[j]
                row["bbox"] = [float(b[0]), float(b[1]), float(b[2] - b[0]), float(b[3] - b[1])]
            self.rows[i].append(row)

    def scores(self) -> list[float]:
        from ..eval.coco import coco_map

        return [coco_map(self.gt, rows, sorted(self.ids), self.iou_type) for rows in self.rows]


class CamvidIoU(Scorer):
    """A pixel confusion matrix per slot over CamVid's labels mapped to the scored classes (car, person)."""

    def __init__(self, slots: int, labels: Path, predictor: Any):
        from ..eval.segmentation import CAMVID_SCORED, ConfusionMatrix, camvid_maps

        super().__init__(slots)
        self.labels = labels
        self.to_gt, self.to_pred, self.scored = camvid_maps(predictor.class_names, predictor.entry.name)
        self.matrices = [ConfusionMatrix(len(CAMVID_SCORED)) for _ in range(slots)]

    def add(self, i: int, sample: Any, result: Result) -> None:
        from ..eval.segmentation import read_label

        label = read_label(self.labels / sample.path.name)
        self.matrices[i].update(self.to_gt[label], self.to_pred[result.class_map])  # type: ignore[attr-defined]

    def scores(self) -> list[float]:
        return [float(np.nanmean(m.iou()[self.scored])) for m in self.matrices]


class TargetRate:
    """Accumulates ``add(i, clean, result)`` for slot i (one per eps): what of the clean result a targeted attack
    could send to ``target``, and how much of it the (perturbed) result gives the target; pooled over images."""

    def __init__(self, slots: int, target: int):
        self.target = target
        self.hits, self.count = np.zeros(slots), np.zeros(slots)

    def add(self, i: int, clean: Result, result: Result) -> None:
        hits, count = self.reached(clean, result)
        self.hits[i] += hits
        self.count[i] += count

    def reached(self, clean: Result, result: Result) -> tuple[int, int]:
        """(how many reached the target, out of how many)."""
        raise NotImplementedError

    def rates(self) -> list[float]:
        return (self.hits / np.maximum(self.count, 1)).tolist()


class TargetTopOne(TargetRate):
    """Images whose top-1 is the target (at eps 0: those the model already called it)."""

    def reached(self, clean: Result, result: Result) -> tuple[int, int]:
        return int(result.class_ids[0] == self.target), 1  # type: ignore[attr-defined]


class TargetBoxes(TargetRate):
    """The objects the clean image shows (score >= DISPLAY_CONF: what a user sees, not the evaluation's faint
    boxes) whose best shown adversarial box at IoU >= MATCH_IOU is labelled the target; an object with no such box
    vanished, which is no hit. At eps 0 it is the share already of the target's class."""

    def reached(self, clean: Result, result: Result) -> tuple[int, int]:
        objects = clean[clean.scores >= DISPLAY_CONF]  # type: ignore[index]
        shown = result[result.scores >= DISPLAY_CONF]  # type: ignore[index]
        hits = 0
        for box in objects.xyxy if len(shown) else []:
            overlap = iou(box, shown.xyxy)
            scores = np.where(overlap >= MATCH_IOU, shown.scores, -1.0)
            hits += int(scores.max() >= 0 and shown.class_ids[int(scores.argmax())] == self.target)
        return hits, len(objects)


class TargetPixels(TargetRate):
    """The pixels the clean map gives another class that the (perturbed) map gives the target (0 at eps 0)."""

    def reached(self, clean: Result, result: Result) -> tuple[int, int]:
        other = clean.class_map != self.target  # type: ignore[attr-defined]
        return int((result.class_map[other] == self.target).sum()), int(other.sum())  # type: ignore[attr-defined]


def target_rate(task: str, slots: int, target: int) -> TargetRate:
    """How a targeted attack of ``task`` (classify, detect or segment) counts its hits."""
    return {"classify": TargetTopOne, "detect": TargetBoxes, "segment": TargetPixels}[task](slots, target)


def scorer(task: str, slots: int, gt: Any, predictor: Any) -> Scorer:
    """The scorer of ``task`` for ``slots`` eps, against the ground truth ``load_samples`` returned."""
    if task == "classify":
        return TopOne(slots)
    if task == "segment":
        return CamvidIoU(slots, gt, predictor)
    return CocoRows(slots, gt, "keypoints" if task == "pose" else "bbox")
