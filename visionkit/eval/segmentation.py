"""Semantic segmentation scores: a pixel confusion matrix -> IoU per class, mIoU and pixel accuracy.

Two protocols, both scored at the source resolution of each image (visionkit's masks are at source size):

* ``evaluate_coco_voc``: COCO val2017 reduced to the 20 PASCAL VOC categories, the targets built exactly as
  torchvision's ``references/segmentation/coco_utils.py`` builds them (the protocol behind torchvision's published
  ``COCO-val2017-VOC-labels`` mIoU). Differences from that reference, both forced by the data or the output: it
  scores at source size where torchvision resizes image and target (nearest) to a shorter side of 520 first, and
  mIoU averages the classes seen in the target or the prediction (torchvision's full val set has all 21; a small
  subset may not, and a class seen in neither has no IoU).
* ``evaluate_camvid``: CamVid (11 classes, 11 = unlabelled) scored for the classes a VOC model has: VOC car and bus
  -> CamVid Car, VOC person -> CamVid Pedestrian + Bicyclist (a rider is a person to VOC), everything else ->
  "other". IoU is reported for car and person; mIoU is their mean ("other" mixes eight CamVid classes).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import OptionError, SourceError
from ..results import SemanticMask
from .coco import load_coco

IGNORE_INDEX = 255
# torchvision references/segmentation/coco_utils.py: COCO category id of VOC class i (0 = background, no COCO id).
COCO_VOC_CATEGORIES = (0, 5, 2, 16, 9, 44, 6, 3, 17, 62, 21, 67, 18, 19, 4, 1, 64, 20, 63, 7, 72)
CAMVID_CLASSES = ("Sky", "Building", "Pole", "Road", "Pavement", "Tree", "SignSymbol", "Fence", "Car", "Pedestrian",
                  "Bicyclist")
CAMVID_UNLABELLED = 11
# CamVid scoring: CamVid class -> scored class, and the VOC names predicted as each scored class.
CAMVID_SCORED = ("other", "car", "person")
CAMVID_TO_SCORED = {"Car": 1, "Pedestrian": 2, "Bicyclist": 2}
VOC_TO_SCORED = {"car": 1, "bus": 1, "person": 2}


class ConfusionMatrix:
    """``mat[target, prediction]`` pixel counts over ``num_classes``; target pixels equal to 255 are ignored."""

    def __init__(self, num_classes: int):
        self.num_classes = num_classes
        self.mat = np.zeros((num_classes, num_classes), np.int64)

    def update(self, target: np.ndarray, prediction: np.ndarray) -> None:
        if target.shape != prediction.shape:
            raise ValueError(f"target shape {target.shape} != prediction shape {prediction.shape}")
        n = self.num_classes
        keep = target != IGNORE_INDEX
        index = n * target[keep].astype(np.int64) + prediction[keep].astype(np.int64)
        self.mat += np.bincount(index, minlength=n * n).reshape(n, n)

    def iou(self) -> np.ndarray:
        """Per-class IoU = TP / (TP + FP + FN); NaN for a class absent from both target and prediction."""
        tp = np.diag(self.mat).astype(np.float64)
        union = self.mat.sum(0) + self.mat.sum(1) - tp
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(union > 0, tp / union, np.nan)

    def pixel_accuracy(self) -> float:
        total = self.mat.sum()
        return float(np.diag(self.mat).sum() / total) if total else float("nan")


@dataclass
class SegmentationScore:
    miou: float
    pixel_acc: float
    iou: dict[str, float]  # per scored class that has an IoU
    images: int
    protocol: str
    # The pixel confusion matrix [target, prediction] over ``class_names`` (visionkit.eval.report / plots).
    confusion: np.ndarray | None = field(default=None, repr=False, compare=False)
    class_names: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"miou": round(self.miou, 4), "pixel_acc": round(self.pixel_acc, 4),
                "iou": {k: round(v, 4) for k, v in self.iou.items()}, "images": self.images,
                "protocol": self.protocol}


def _score(matrix: ConfusionMatrix, names: list[str] | tuple[str, ...], scored: list[int], images: int,
           protocol: str) -> SegmentationScore:
    iou = matrix.iou()
    per_class = {names[i]: float(iou[i]) for i in scored if not np.isnan(iou[i])}
    miou = float(np.mean(list(per_class.values()))) if per_class else float("nan")
    return SegmentationScore(miou, matrix.pixel_accuracy(), per_class, images, protocol, matrix.mat, tuple(names))


def _predict_mask(predictor: Any, path: Path) -> SemanticMask:
    result = predictor(str(path))
    if not isinstance(result, SemanticMask):
        raise OptionError(f"mIoU needs a semantic segmentation model (one class per pixel); "
                          f"{predictor.entry.name} gives {type(result).__name__}")
    return result


def read_label(path: Path) -> np.ndarray:
    """A single-channel label image (mode L: the pixel value is the class id), or a SourceError naming it."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            label = np.array(image)
    except (OSError, UnidentifiedImageError) as e:  # unreadable, truncated, not an image
        raise SourceError(f"{path}: not a readable label image ({e.strerror or e})") from None
    if label.ndim != 2:
        raise SourceError(f"{path}: a label image has one channel (class ids), this one has {label.shape[2]}")
    return label


def coco_voc_target(coco: Any, image_id: int) -> np.ndarray:
    """(H, W) uint8 VOC class map of one COCO image, as torchvision's ``FilterAndRemapCocoCategories`` +
    ``ConvertCocoPolysToMask``: annotations of the 20 VOC categories (crowd regions included) become masks via
    pycocotools, each pixel takes the highest class id covering it, and pixels covered by more than one
    annotation become 255 (ignored)."""
    from pycocotools import mask as coco_mask

    info = coco.loadImgs(image_id)[0]
    h, w = info["height"], info["width"]
    anns = [a for a in coco.loadAnns(coco.getAnnIds(imgIds=image_id)) if a["category_id"] in COCO_VOC_CATEGORIES]
    if not anns:
        return np.zeros((h, w), np.uint8)
    masks = []
    for ann in anns:
        decoded = coco_mask.decode(coco_mask.frPyObjects(ann["segmentation"], h, w))
        masks.append((decoded[..., None] if decoded.ndim < 3 else decoded).any(axis=2))
    stack = np.stack(masks).astype(np.uint8)
    cats = np.array([COCO_VOC_CATEGORIES.index(a["category_id"]) for a in anns], np.uint8)
    target = (stack * cats[:, None, None]).max(axis=0)
    target[stack.sum(axis=0) > 1] = IGNORE_INDEX
    return target


def evaluate_coco_voc(predictor: Any, images_dir: str | Path, annotations: str | Path,
                      progress: Callable[[int], None] | None = None) -> SegmentationScore:
    """mIoU of a 21-class PASCAL VOC model on every image of a COCO instances file (torchvision keeps all val
    images, including those without a VOC object: their target is all background)."""
    images_dir = Path(images_dir)
    coco = load_coco(annotations)
    names = predictor.class_names
    if len(names) != len(COCO_VOC_CATEGORIES):
        raise OptionError(f"COCO-VOC mIoU needs a 21-class PASCAL VOC model; {predictor.entry.name} has "
                          f"{len(names)} classes")
    matrix = ConfusionMatrix(len(names))
    image_ids = sorted(coco.getImgIds())
    for image_id in image_ids:
        result = _predict_mask(predictor, images_dir / coco.loadImgs(image_id)[0]["file_name"])
        matrix.update(coco_voc_target(coco, image_id), result.class_map)
        if progress:
            progress(1)
    protocol = ("COCO val2017 -> 21 VOC classes (torchvision coco_utils targets; overlaps and 255 ignored), "
                "confusion matrix over all pixels at source size, mIoU over classes seen in target or prediction")
    return _score(matrix, names, list(range(len(names))), len(image_ids), protocol)


def evaluate_camvid(predictor: Any, root: str | Path,
                    progress: Callable[[int], None] | None = None) -> SegmentationScore:
    """Car and person IoU of a VOC model on CamVid (``root/images/*.png`` with ``root/labels/*.png``)."""
    root = Path(root)
    images = sorted((root / "images").glob("*.png"))
    if not images:
        raise SourceError(f"{root / 'images'}: no CamVid .png images")
    to_scored_gt, to_scored_pred, scored = camvid_maps(predictor.class_names, predictor.entry.name)
    matrix = ConfusionMatrix(len(CAMVID_SCORED))
    for path in images:
        label_path = root / "labels" / path.name
        if not label_path.is_file():
            raise SourceError(f"{label_path}: missing label for {path.name}")
        label = read_label(label_path)
        prediction = _predict_mask(predictor, path).class_map
        if label.shape != prediction.shape:
            raise SourceError(f"{label_path}: label is {label.shape[1]}x{label.shape[0]}, its image "
                              f"{prediction.shape[1]}x{prediction.shape[0]}")
        matrix.update(to_scored_gt[label], to_scored_pred[prediction])
        if progress:
            progress(1)
    protocol = ("CamVid at source size: VOC car+bus -> Car, VOC person -> Pedestrian+Bicyclist, other classes -> "
                "other, Unlabelled ignored; mIoU = mean of car and person IoU")
    return _score(matrix, CAMVID_SCORED, scored, len(images), protocol)


def camvid_maps(names: list[str], model: str) -> tuple[np.ndarray, np.ndarray, list[int]]:
    """Lookup tables CamVid label -> scored class and VOC prediction -> scored class, and the scored classes that
    make the mIoU (car, person); an OptionError when the model lacks a VOC class the mapping needs."""
    missing = sorted(set(VOC_TO_SCORED) - set(names))
    if missing:
        raise OptionError(f"CamVid scoring maps VOC car, bus and person; {model} lacks {', '.join(missing)}")
    to_scored_gt = np.zeros(256, np.uint8)
    to_scored_gt[CAMVID_UNLABELLED:] = IGNORE_INDEX
    for name, k in CAMVID_TO_SCORED.items():
        to_scored_gt[CAMVID_CLASSES.index(name)] = k
    to_scored_pred = np.zeros(max(len(names), 256), np.uint8)
    for name, k in VOC_TO_SCORED.items():
        to_scored_pred[names.index(name)] = k
    return to_scored_gt, to_scored_pred, [1, 2]
