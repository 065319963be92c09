"""What is explained or attacked: one target per explained prediction, and how each is scored.

A classification target is a class; a detection (or pose) target is a box with its class; a semantic
segmentation target is a class present in the mask. Gradient methods score a target
on the raw output (class logit; for a detector the class scores of the raw candidates that overlap the box,
weighted by that overlap), gradient-free methods score it on the predictor's results (class probability; the
best ``IoU x score`` of a same-class detection, as D-RISE does; the share of pixels still labelled with the class
for segmentation), so they work on any backend.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import OptionError
from ..results import Classification, Detections, Result, SemanticMask

# Raw candidates whose box overlaps a target box by at least this IoU vote for it.
CANDIDATE_IOU = 0.5


@dataclass(frozen=True)
class Target:
    """One thing to explain: a class, and for detections the box (image pixels) it was found in."""

    class_id: int
    class_name: str
    score: float
    box: tuple[float, float, float, float] | None = None
    keypoints: np.ndarray | None = None  # pose: the person's (K, 3) x, y, confidence in image pixels

    def describe(self) -> str:
        where = "" if self.box is None else " at [" + ", ".join(f"{v:.0f}" for v in self.box) + "]"
        return f"{self.class_name} ({self.class_id}) {self.score:.2f}{where}"

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"class_id": self.class_id, "class_name": self.class_name,
                               "score": round(self.score, 5)}
        if self.box is not None:
            out["box"] = [round(float(v), 2) for v in self.box]
        return out


def select_targets(prediction: Result, class_names: list[str], target: str | int | None = None,
                   max_targets: int = 10) -> list[Target]:
    """The targets ``target`` names in a prediction: None = the top class (classification), every box (detection,
    pose) or every non-background class in the mask (segmentation), up to ``max_targets``, best first; a class
    name or id; for detections also a box "x1,y1,x2,y2" (the detection that overlaps it most)."""
    if isinstance(prediction, Classification):
        if target is None:
            return [Target(*_top(prediction))]
        cid = class_index(target, class_names)
        probs = prediction.probs
        score = float(probs[cid]) if probs is not None and cid < len(probs) else float("nan")
        return [Target(cid, class_names[cid], score)]
    if isinstance(prediction, Detections):
        det = prediction[np.argsort(-prediction.scores, kind="stable")]
        if isinstance(target, str) and target.count(",") == 3:
            det = det[[int(np.argmax(iou(np.array(parse_box(target)), det.xyxy)))]] if len(det) else det
        elif target is not None:
            det = det[det.class_ids == class_index(target, class_names)]
        kpts = det.keypoints if det.keypoints is not None else [None] * len(det)
        return [Target(int(c), str(n), float(s), tuple(float(v) for v in b), k)
                for b, s, c, n, k in zip(det.xyxy, det.scores, det.class_ids, det.class_names, kpts)][:max_targets]
    if isinstance(prediction, SemanticMask):
        shares = prediction.pixel_share()
        if target is not None:
            name = class_names[class_index(target, class_names)]
            return [Target(class_names.index(name), name, shares.get(name, 0.0))]
        return [Target(class_names.index(n), n, share) for n, share in shares.items()
                if class_names.index(n) != 0][:max_targets]  # class 0 of segmentation models is the background
    raise OptionError(f"explaining {prediction.kind} results is not supported (classification, detection, pose "
                      "and semantic segmentation are)")


def _top(prediction: Classification) -> tuple[int, str, float]:
    if not len(prediction):
        raise OptionError("the classifier reported no class to explain")
    return prediction.top1


def class_index(target: str | int, class_names: list[str]) -> int:
    """A class id from an id or a name of the model's class list."""
    text = str(target).strip()
    if text.lstrip("-").isdigit():
        cid = int(text)
        if not 0 <= cid < len(class_names):
            raise OptionError(f"class id {cid} is out of range: the model has {len(class_names)} classes")
        return cid
    if text in class_names:
        return class_names.index(text)
    raise OptionError(f"unknown class {text!r}: not one of the model's {len(class_names)} class names")


def parse_box(text: str) -> tuple[float, float, float, float]:
    try:
        x1, y1, x2, y2 = (float(v) for v in text.split(","))
    except ValueError:
        raise OptionError(f"a box target is x1,y1,x2,y2 in image pixels, got {text!r}") from None
    if x2 <= x1 or y2 <= y1:
        raise OptionError(f"box {text!r} is empty: x2 must exceed x1 and y2 exceed y1")
    return x1, y1, x2, y2


def iou(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """IoU of one xyxy box with (n, 4) boxes."""
    x1, y1 = np.maximum(box[0], boxes[:, 0]), np.maximum(box[1], boxes[:, 1])
    x2, y2 = np.minimum(box[2], boxes[:, 2]), np.minimum(box[3], boxes[:, 3])
    inter = (x2 - x1).clip(0) * (y2 - y1).clip(0)
    union = (box[2] - box[0]) * (box[3] - box[1]) + (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]) - inter
    return inter / np.maximum(union, 1e-9)


def oks(keypoints: np.ndarray, reference: np.ndarray, area: float) -> np.ndarray:
    """COCO's object keypoint similarity of (n, K, 3) poses with one (K, 3) reference pose of a person of ``area``
    pixels, over the reference's keypoints with confidence > 0 (pycocotools' sigmas and formula)."""
    kappa = oks_kappa()
    seen = reference[:, 2] > 0
    if not seen.any():
        return np.zeros(len(keypoints), np.float32)
    d2 = ((keypoints[:, :, :2] - reference[None, :, :2]) ** 2).sum(-1)
    return np.exp(-d2 / (2 * max(area, 1.0) * kappa ** 2))[:, seen].mean(1).astype(np.float32)


def oks_kappa() -> np.ndarray:
    """COCO's per-keypoint OKS constants (2 x pycocotools' sigmas), in the 17-keypoint order."""
    from pycocotools.cocoeval import Params

    return 2 * Params(iouType="keypoints").kpt_oks_sigmas


def soft_oks(xy: Any, reference: Any, conf: Any, area: Any) -> Any:
    """Differentiable keypoint similarity of (..., K, 2) keypoints to where they were: sum over K of
    ``conf x exp(-d^2 / (2 area kappa^2))`` (OKS's kernel weighted by the model's confidence), per pose. An attack
    lowering it both moves the keypoints and lowers their confidence."""
    import torch

    kappa = torch.as_tensor(oks_kappa(), dtype=xy.dtype, device=xy.device)
    d2 = ((xy - reference) ** 2).sum(-1)
    return (conf * torch.exp(-d2 / (2 * area.clamp_min(1e-6) * kappa ** 2))).sum(-1)


def result_scores(result: Result, targets: list[Target]) -> np.ndarray:
    """How strongly a (perturbed) image's result still shows each target, from the predictor's own results: the
    class probability (0 when a result without ``probs`` no longer lists the class in its top k), for a box the
    best IoU x score of a same-class detection, for a pose the best OKS x score of a person."""
    if isinstance(result, Classification):
        scores = dict(zip(result.class_ids.tolist(), result.scores.tolist()))
        return np.array([float(result.probs[t.class_id]) if result.probs is not None else scores.get(t.class_id, 0.0)
                         for t in targets], np.float32)
    if isinstance(result, SemanticMask):
        shares = result.pixel_share()
        return np.array([shares.get(t.class_name, 0.0) for t in targets], np.float32)
    out = np.zeros(len(targets), np.float32)
    for j, t in enumerate(targets):
        same = result[result.class_ids == t.class_id]
        if not len(same):
            continue
        if t.keypoints is not None and same.keypoints is not None:
            x1, y1, x2, y2 = t.box
            out[j] = float((oks(same.keypoints, t.keypoints, (x2 - x1) * (y2 - y1)) * same.scores).max())
        else:
            out[j] = float((iou(np.array(t.box), same.xyxy) * same.scores).max())
    return out


def _yolo_rows(raw: Any) -> tuple[Any, bool]:
    """A YOLO head's raw output as (B, N, channels) rows, and whether it is the v5 layout (objectness column)."""
    pred = raw[0] if isinstance(raw, (list, tuple)) else raw
    if pred.shape[1] > pred.shape[2]:  # v5: [B, N, 5 + nc]
        return pred, True
    return pred.transpose(1, 2), False  # v8/11: [B, 4 + nc (+ extra), N]


def yolo_candidates(raw: Any, nc: int | None = None) -> tuple[Any, Any]:
    """A YOLO head's raw output -> (boxes xyxy (B, N, 4), class scores (B, N, nc)) in input pixels, for the v5
    layout [B, N, 5+nc] (scores = objectness x class probability) and the v8/11 layout [B, 4+nc(+extra), N]
    (``nc`` needed when -pose keypoints or -seg mask coefficients follow the classes)."""
    import torch

    pred, v5 = _yolo_rows(raw)
    if v5:
        xywh, scores = pred[..., :4], pred[..., 5:5 + (nc or pred.shape[-1])] * pred[..., 4:5]
    else:
        xywh, scores = pred[..., :4], pred[..., 4:4 + (nc or pred.shape[-1])]
    half = xywh[..., 2:] / 2
    return torch.cat([xywh[..., :2] - half, xywh[..., :2] + half], -1), scores


def yolo_keypoints(raw: Any, nc: int, kpt_shape: tuple[int, int]) -> Any:
    """YOLO-pose's raw output -> (B, N, K, dims) keypoints of every candidate (x, y in input pixels, confidence
    already a probability in eval mode)."""
    pred, _ = _yolo_rows(raw)
    return pred[..., 4 + nc:4 + nc + kpt_shape[0] * kpt_shape[1]].reshape(*pred.shape[:2], *kpt_shape)


def misclassification(scores: Any, target: int) -> Any:
    """Per row of (..., nc) class scores (probabilities), the binary cross-entropy against ``target`` one-hot with
    the best other class standing for the others: what a targeted attack lowers. Unlike a score difference it
    cannot be lowered by dropping a YOLOv5 objectness that multiplies every class (the row vanishing instead of
    changing class)."""
    import torch

    others = torch.cat([scores[..., :target], scores[..., target + 1:]], -1).amax(-1)
    tiny = 1e-6  # log(0) guard
    return -torch.log(scores[..., target].clamp(tiny, 1)) - torch.log((1 - others).clamp(tiny, 1))


class BoxScore:
    """A pytorch-grad-cam target for one detection: the class score summed over the raw candidates overlapping its
    box (input pixels), each weighted by its IoU (weights held constant, so the gradient is the class evidence)."""

    def __init__(self, box_input: np.ndarray, class_id: int, nc: int | None = None):
        self.box = box_input
        self.class_id = class_id
        self.nc = nc

    def weights(self, boxes: Any) -> Any:
        """IoU of each candidate with the box, 0 below CANDIDATE_IOU, held constant."""
        import torch
        from torchvision.ops import box_iou

        box = torch.as_tensor(self.box, dtype=boxes.dtype, device=boxes.device)[None]
        overlap = box_iou(box, boxes)[0].detach()
        return overlap * (overlap >= CANDIDATE_IOU)

    def __call__(self, output: Any) -> Any:
        boxes, scores = yolo_candidates(output[None], self.nc)
        return (self.weights(boxes[0]) * scores[0, :, self.class_id]).sum()


class PoseBoxScore(BoxScore):
    """YOLO-pose: a person's evidence is its overlapping candidates' person score times their mean keypoint
    confidence, so the map shows what makes the model see this person's keypoints, not only the person."""

    def __init__(self, box_input: np.ndarray, class_id: int, nc: int, kpt_shape: tuple[int, int]):
        super().__init__(box_input, class_id, nc)
        self.kpt_shape = kpt_shape

    def __call__(self, output: Any) -> Any:
        boxes, scores = yolo_candidates(output[None], self.nc)
        kpts = yolo_keypoints(output[None], self.nc, self.kpt_shape)[0]
        conf = kpts[..., 2].mean(-1) if self.kpt_shape[1] == 3 else 1
        return (self.weights(boxes[0]) * scores[0, :, self.class_id] * conf).sum()


def keypoint_confidence(output: Any) -> Any:
    """A pytorch-grad-cam target for a single-person pose model's (K, 3) output: the sum of its keypoint
    confidences."""
    return output[:, 2].sum()
