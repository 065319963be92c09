"""Per-class tables of an evaluation, printed by ``visionkit eval``: what a score hides (a class the model never
finds, two classes it mixes up).

* detection / pose: AP@[.5:.95], AP@.5 and recall@.5 per category, read from pycocotools' accumulated
  ``COCOeval.eval`` arrays (``precision`` [T, R, K, A, M], ``recall`` [T, K, A, M]; area "all", the largest maxDets),
  the same arrays its summary mAP averages;
* classification: accuracy per labelled class and the most frequent (true -> predicted) confusions;
* segmentation: IoU per class with its share of the labelled pixels.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass
class ClassAP:
    name: str
    ap: float  # mean precision over IoU 0.50:0.95 and 101 recall points
    ap50: float
    recall50: float  # the largest recall reached at IoU 0.5
    instances: int  # ground-truth objects (not crowd)


def coco_per_class(evaluator: Any) -> list[ClassAP]:
    """One row per category with ground truth in the scored images, in category-id order."""
    precision, recall = evaluator.eval["precision"], evaluator.eval["recall"]
    gt = evaluator.cocoGt
    image_ids = set(evaluator.params.imgIds)
    rows = []
    for k, cat in enumerate(evaluator.params.catIds):
        instances = sum(1 for a in gt.loadAnns(gt.getAnnIds(catIds=[cat], iscrowd=False)) if a["image_id"] in image_ids)
        if not instances:
            continue
        p = precision[:, :, k, 0, -1]
        p50 = p[0]
        rows.append(ClassAP(gt.cats[int(cat)]["name"], _mean_valid(p), _mean_valid(p50),
                            max(float(recall[0, k, 0, -1]), 0.0), instances))
    return rows


def _mean_valid(values: np.ndarray) -> float:
    """pycocotools' mean over the entries that are defined (-1 = no ground truth)."""
    valid = values[values > -1]
    return float(valid.mean()) if valid.size else 0.0


def detection_table(rows: list[ClassAP]) -> str:
    return table(("class", "instances", "AP", "AP50", "recall@.5"),
                 [(r.name, r.instances, f"{r.ap:.3f}", f"{r.ap50:.3f}", f"{r.recall50:.3f}") for r in rows])


def classification_tables(pairs: list[tuple[int, int]], names: list[str], confusions: int = 5) -> str:
    """Accuracy of every class that has a miss (worst first; the all-correct classes are counted) and the
    ``confusions`` most frequent (true -> predicted) pairs."""
    labelled = Counter(label for label, _ in pairs)
    correct = Counter(label for label, best in pairs if label == best)

    def name(i: int) -> str:
        return names[i] if 0 <= i < len(names) else str(i)

    missed = sorted((c for c in labelled if correct[c] < labelled[c]), key=lambda c: (correct[c] / labelled[c], c))
    lines = [table(("class", "images", "correct", "accuracy"),
                   [(name(c), labelled[c], correct[c], f"{correct[c] / labelled[c]:.3f}") for c in missed])]
    lines.append(f"({len(labelled) - len(missed)} of {len(labelled)} classes all correct)")
    confused = Counter((label, best) for label, best in pairs if label != best).most_common(confusions)
    if confused:
        lines.append("most confused (true -> predicted):")
        lines.append(table(("true", "predicted", "images"), [(name(t), name(p), n) for (t, p), n in confused]))
    return "\n".join(lines)


def segmentation_table(confusion: np.ndarray, names: tuple[str, ...], iou: dict[str, float]) -> str:
    """IoU per scored class and its share of the labelled pixels."""
    pixels = confusion.sum(1)
    total = max(int(pixels.sum()), 1)
    return table(("class", "IoU", "labelled pixels"),
                 [(n, f"{v:.3f}", f"{pixels[names.index(n)] / total:.1%}") for n, v in iou.items()])


def table(headers: tuple[str, ...], rows: list[tuple[Any, ...]]) -> str:
    """A plain text table: the first column left-aligned, the others right-aligned."""
    cells = [tuple(str(c) for c in headers), *[tuple(str(c) for c in r) for r in rows]]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    return "\n".join("  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths)))
                     for r in cells)


def detection_confusion(evaluator: Any, rows: list[dict[str, Any]], conf: float = 0.25,
                        iou: float = 0.45) -> tuple[np.ndarray, list[str]]:
    """Ultralytics' detection confusion matrix (its ``ConfusionMatrix`` settings: boxes from ``conf``, matched one to
    one by IoU above ``iou``, best overlaps first, class-agnostic) as [true, predicted] counts over the categories
    present plus a last "background" row/column: a missed object is (class, background), a false box
    (background, class)."""
    gt = evaluator.cocoGt
    image_ids = list(evaluator.params.imgIds)
    truths = [a for a in gt.loadAnns(gt.getAnnIds(imgIds=image_ids, iscrowd=False))]
    boxes = [r for r in rows if r["score"] >= conf]
    cats = sorted({a["category_id"] for a in truths} | {r["category_id"] for r in boxes})
    index = {c: i for i, c in enumerate(cats)}
    background = len(cats)
    matrix = np.zeros((len(cats) + 1, len(cats) + 1), np.int64)
    for image_id in image_ids:
        t = [a for a in truths if a["image_id"] == image_id]
        p = [r for r in boxes if r["image_id"] == image_id]
        overlap = _iou_xywh(np.array([a["bbox"] for a in t]).reshape(-1, 4),
                            np.array([r["bbox"] for r in p]).reshape(-1, 4))
        matched_t, matched_p = set(), set()
        for ti, pi in zip(*np.unravel_index(np.argsort(-overlap, axis=None), overlap.shape)):
            if overlap[ti, pi] <= iou:
                break
            if ti in matched_t or pi in matched_p:
                continue
            matched_t.add(ti)
            matched_p.add(pi)
            matrix[index[t[ti]["category_id"]], index[p[pi]["category_id"]]] += 1
        for ti, a in enumerate(t):
            if ti not in matched_t:
                matrix[index[a["category_id"]], background] += 1
        for pi, r in enumerate(p):
            if pi not in matched_p:
                matrix[background, index[r["category_id"]]] += 1
    return matrix, [gt.cats[c]["name"] for c in cats] + ["background"]


def _iou_xywh(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(len(a), len(b)) IoU of COCO [x, y, w, h] boxes."""
    a1, a2 = a[:, None, :2], a[:, None, :2] + a[:, None, 2:]
    b1, b2 = b[None, :, :2], b[None, :, :2] + b[None, :, 2:]
    inter = np.prod(np.clip(np.minimum(a2, b2) - np.maximum(a1, b1), 0, None), axis=2)
    union = np.prod(a[:, None, 2:], axis=2) + np.prod(b[None, :, 2:], axis=2) - inter
    return inter / np.maximum(union, 1e-9)
