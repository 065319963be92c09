"""``attack_report``: how easily is the model fooled? Accuracy against perturbation size, in image space.

Perturbations live on the 0..255 image the user sees: a ``Differentiable`` runs the backend's preprocessing in
torch, so the gradient reaches the pixels, and each adversarial image is rounded back to uint8 and scored by the
predictor's own stages, exactly as a clean image is (eps = 0 therefore reproduces the clean score exactly).

  classifiers  torchattacks' FGSM / PGD (untargeted, or targeted at one class) on the image -> logits function
  detectors    PGD on the detection scores (a vanishing attack: every raw candidate's best class score is pushed
               down; targeted, a misclassification attack: the candidates the clean image shows pushed towards
               the target class), scored by COCO mAP50-95 with pycocotools
  pose         PGD on a soft OKS (each keypoint's confidence x OKS kernel to where it was: keypoints move, their
               confidence drops), scored by COCO keypoint OKS mAP; MoveNet top-down on its person crops
  segment      PGD on the per-pixel logits (minus the cross-entropy against the clean labels; targeted, the
               cross-entropy against the target on every pixel), scored by mIoU (CamVid with a VOC model: car and
               person, as ``visionkit eval segment --camvid``)

``transforms`` add the robustness view: the same score with a simple input transform (JPEG re-encoding, blur,
resize) in front of the model. It is a diagnostic of how fragile the perturbation is, not a defence: an attacker
who knows the transform attacks through it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from ..errors import OptionError, SinkError, SourceError
from ..io.images import read_image
from ..results import Detections
from .differentiable import Differentiable, differentiable
from .scoring import scorer, target_rate
from .targets import class_index

METRICS = {"classify": "top1", "detect": "map50-95", "pose": "oks-map50-95", "segment": "miou"}
# Crop-based pose models are attacked in the crops of the people found with at least this score (the interactive
# threshold): scored at evaluation settings the detector also reports up to 20 faint boxes per image, each crop
# one more forward and backward pass per step, for people that barely weigh in the OKS mAP.
ATTACKED_PERSON_SCORE = 0.25


def parse_eps(text: str) -> list[float]:
    """ "1/255,2/255,0.03" -> [0, 1/255, 2/255, 0.03]: perturbation sizes (L-inf, image in 0..1), 0 added first."""
    try:
        values = sorted({float(Fraction(v.strip())) for v in text.split(",") if v.strip()} | {0.0})
    except (ValueError, ZeroDivisionError):
        raise OptionError(f"--eps takes comma-separated numbers or fractions like 2/255, got {text!r}") from None
    if values[-1] > 1 or values[0] < 0:
        raise OptionError(f"eps must lie in 0..1 (the image's range), got {text!r}")
    return values


def input_transform(spec: str) -> Callable[[np.ndarray], np.ndarray]:
    """One robustness transform: jpeg:QUALITY, blur:KERNEL (odd, Gaussian) or resize:FACTOR (down and back up)."""
    name, _, arg = spec.partition(":")
    try:
        if name == "jpeg":
            quality = int(arg or 75)
            return lambda im: cv2.imdecode(cv2.imencode(".jpg", im, [cv2.IMWRITE_JPEG_QUALITY, quality])[1], 1)
        if name == "blur":
            k = int(arg or 3) | 1
            return lambda im: cv2.GaussianBlur(im, (k, k), 0)
        if name == "resize":
            f = float(arg or 0.5)
            if not 0 < f <= 1:
                raise ValueError
            return lambda im: cv2.resize(cv2.resize(im, None, fx=f, fy=f, interpolation=cv2.INTER_AREA),
                                         (im.shape[1], im.shape[0]), interpolation=cv2.INTER_LINEAR)
    except ValueError:
        pass
    raise OptionError(f"unknown input transform {spec!r}: expected jpeg:QUALITY, blur:KERNEL or resize:FACTOR")


@dataclass
class Sample:
    """One image of the attacked data with what it is scored against (a class id, or a COCO image id)."""

    path: Path
    label: int


@dataclass
class AttackReport:
    """Clean vs adversarial score per eps; ``scores[transform][i]`` is the score at ``eps[i]`` with that input
    transform in front of the model ("none" = as deployed); ``target_rates`` how often a targeted attack reached
    its target, per eps: the share of images (classify), of the clean image's objects (detect) or of the pixels
    the clean map gave another class (segment) now given the target (``scoring.TargetRate``)."""

    model: str
    method: str
    metric: str  # METRICS: top1, map50-95, oks-map50-95 or miou
    eps: list[float]
    scores: dict[str, list[float]]
    images: int
    steps: int
    targeted: str | None = None
    target_rates: list[float] | None = None
    triptychs: list[str] = field(default_factory=list)

    @property
    def clean(self) -> float:
        return self.scores["none"][self.eps.index(0.0)]

    def to_dict(self) -> dict[str, Any]:
        return {"model": self.model, "method": self.method, "metric": self.metric, "images": self.images,
                "steps": self.steps, "targeted": self.targeted, "eps": self.eps,
                "eps_255": [round(e * 255, 3) for e in self.eps], "clean": round(self.clean, 4),
                "scores": {k: [round(v, 4) for v in vs] for k, vs in self.scores.items()},
                "target_rates": None if self.target_rates is None else [round(v, 4) for v in self.target_rates],
                "triptychs": self.triptychs,
                "note": "input transforms are a diagnostic of the perturbation's fragility, not a defence"}

    def table(self) -> str:
        """The report as aligned text: one row per eps, one column per input transform."""
        cols = list(self.scores) + (["target hit"] if self.target_rates is not None else [])
        lines = [f"{'eps (x/255)':>12}  " + "  ".join(f"{c:>12}" for c in cols)]
        for i, e in enumerate(self.eps):
            vals = [self.scores[c][i] for c in self.scores] + ([self.target_rates[i]] if self.target_rates else [])
            lines.append(f"{e * 255:>12.2f}  " + "  ".join(f"{v:>12.3f}" for v in vals))
        return "\n".join(lines)


def load_samples(task: str, data: str | Path, limit: int | None = None) -> tuple[list[Sample], Any]:
    """The images of DATA: for classify a folder with labels.csv (file,class_index) and its images in images/ (or
    beside it); for detect (pose) a COCO folder with images/ and annotations/instances*.json
    (person_keypoints*.json); for segment a CamVid folder with images/ and labels/. Returns the samples and the
    ground truth (pycocotools index; for segment the labels folder)."""
    root = Path(data)
    if not root.is_dir():
        raise SourceError(f"{root}: not a folder (attack data is a labelled folder, see `visionkit attack --help`)")
    images = root / "images" if (root / "images").is_dir() else root
    if task == "classify":
        from ..eval.classify import read_labels

        rows = read_labels(root / "labels.csv")[:limit]
        return [Sample(images / f, c) for f, c in rows], None
    if task == "segment":
        if not (root / "labels").is_dir():
            raise SourceError(f"{root}: no labels/ folder (a segmentation attack takes CamVid's images/ + labels/)")
        return [Sample(p, n) for n, p in enumerate(sorted(images.glob("*.png"))[:limit])], root / "labels"
    from ..eval.coco import load_coco

    pattern = "person_keypoints*.json" if task == "pose" else "instances*.json"
    found = sorted((root / "annotations").glob(pattern)) if (root / "annotations").is_dir() else []
    if not found:
        raise SourceError(f"{root}: no annotations/{pattern} (COCO ground truth) for a {task} attack")
    gt = load_coco(found[0])
    ids = sorted(gt.getImgIds())[:limit]
    return [Sample(images / gt.loadImgs(i)[0]["file_name"], i) for i in ids], gt


def attack_kind(predictor: Any) -> str:
    """How a predictor is attacked and scored: its task, except that an instance segmentation model (YOLO-seg:
    boxes with masks) is attacked and scored as the detector it also is (vanishing PGD, COCO box mAP)."""
    if predictor.task == "segment" and isinstance(predictor.predict([np.zeros((32, 32, 3), np.uint8)])[0],
                                                  Detections):
        return "detect"
    return predictor.task


def classifier_attack(d: Differentiable, image: np.ndarray, label: int, method: str, eps: float, steps: int,
                      target: int | None = None) -> np.ndarray:
    """The adversarial uint8 BGR copy of ``image`` by torchattacks' FGSM or PGD (alpha 2.5 eps / steps, random
    start), untargeted against ``label`` or targeted at ``target``."""
    import torch
    import torchattacks

    x = d.image_tensor([image])
    if method == "fgsm":
        attack = torchattacks.FGSM(d, eps=eps)
    else:
        attack = torchattacks.PGD(d, eps=eps, alpha=2.5 * eps / steps, steps=steps, random_start=True)
    y = torch.tensor([label if target is None else target], device=x.device)
    if target is not None:
        attack.set_mode_targeted_by_label(quiet=True)
    return to_uint8(attack(x, y))[0]


def dense_attack(d: Differentiable, predictor: Any, image: np.ndarray, eps: float, steps: int,
                 target: int | None = None) -> np.ndarray:
    """PGD (L-inf, step 2.5 eps / steps; one step of size eps = FGSM) descending the Differentiable's
    ``adversarial_loss`` from the clean image: detectors vanish, poses drift, segment labels flip; with a
    ``target``, detections and pixels turn into that class."""
    import torch

    x0 = d.image_tensor([image])
    clean = predictor.predict([image])[0]
    if hasattr(clean, "xyxy"):
        d.focus_all(image.shape[:2], clean.xyxy[clean.scores >= ATTACKED_PERSON_SCORE])
    with torch.no_grad():
        loss = d.adversarial_loss(d(x0), target)
    x = x0.clone()
    alpha = eps if steps == 1 else 2.5 * eps / steps
    for _ in range(steps):
        x.requires_grad_(True)
        value = loss(d(x))
        if not value.requires_grad:  # the model sees nothing to attack (e.g. no person crop)
            return image
        (grad,) = torch.autograd.grad(value, x)
        x = (x0 + (x.detach() - alpha * grad.sign() - x0).clamp(-eps, eps)).clamp(0, 1)
    return to_uint8(x)[0]


def to_uint8(x: Any) -> np.ndarray:
    """(B, 3, H, W) RGB 0..1 -> (B, H, W, 3) BGR uint8, rounded as an image file would store it."""
    arr = (x.detach().float().cpu().numpy() * 255).round().clip(0, 255).astype(np.uint8)
    return np.ascontiguousarray(arr.transpose(0, 2, 3, 1)[..., ::-1])


def _adversarials(predictor: Any, samples: list[Sample], method: str, eps: list[float], steps: int,
                  target: int | None) -> Iterator[tuple[Sample, np.ndarray, list[np.ndarray]]]:
    import torch

    d = differentiable(predictor, "attacks")
    torch.manual_seed(0)  # PGD's random start: the same report on every run
    for s in samples:
        image = read_image(s.path)
        advs = []
        for e in eps:
            if e == 0:
                advs.append(image)
            elif predictor.task == "classify":
                advs.append(classifier_attack(d, image, s.label, method, e, steps, target))
            else:
                advs.append(dense_attack(d, predictor, image, e, 1 if method == "fgsm" else steps, target))
        yield s, image, advs


def attack_report(predictor: Any, data: str | Path, method: str = "fgsm", eps: list[float] | None = None,
                  steps: int = 10, targeted: str | int | None = None, transforms: list[str] | None = None,
                  save: str | Path | None = None, triptychs: int = 3, limit: int | None = None) -> AttackReport:
    """Attack every image of ``data`` at each ``eps`` and score clean vs adversarial through ``predictor``.

    Args:
        method: fgsm or pgd (``steps`` iterations).
        eps: L-inf sizes on the 0..1 image (0 is always included: the clean score); default 0..8/255.
        targeted: a class (name or id) the attack aims at (classify, detect, segment: not pose, whose keypoints
            have no class); the report adds how often it reached it (``target_rates``).
        transforms: robustness view, e.g. ["jpeg:75", "blur:3", "resize:0.5"].
        save: folder for report.json, curve.png and the first ``triptychs`` images' triptychs.
        limit: attack only the first N images.
    """
    from .report import save_curve, save_triptych

    if method not in ("fgsm", "pgd"):
        raise OptionError(f"unknown attack {method!r}: expected fgsm or pgd")
    if steps < 1:
        raise OptionError(f"steps must be a positive integer, got {steps}")
    eps = sorted(set(eps or parse_eps("1/255,2/255,4/255,8/255")) | {0.0})
    kind = attack_kind(predictor)
    if targeted is not None and kind == "pose":
        raise OptionError("--targeted is for classify, detect and segment attacks; a pose attack is untargeted")
    target = None if targeted is None else class_index(targeted, predictor.class_names)
    views = {"none": lambda im: im, **{t: input_transform(t) for t in transforms or []}}
    samples, gt = load_samples(kind, data, limit)
    if not samples:
        raise SourceError(f"{data}: no labelled images to attack")
    out = Path(save) if save else None
    if out is not None:  # before minutes of attacking, not after
        try:
            out.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise SinkError(f"cannot create the report folder {out}: {e.strerror or e}") from None
    scorers = {v: scorer(kind, len(eps), gt, predictor) for v in views}
    hits = None if target is None else target_rate(kind, len(eps), target)
    saved: list[str] = []
    for n, (s, image, advs) in enumerate(_adversarials(predictor, samples, method, eps, steps, target)):
        for v, fn in views.items():
            results = predictor.predict([fn(a) for a in advs])
            for i, r in enumerate(results):
                scorers[v].add(i, s, r)
                if v == "none" and hits is not None:
                    hits.add(i, results[0], r)  # results[0]: eps 0, the clean image
            if v == "none" and out is not None and n < triptychs:
                saved.append(str(save_triptych(out / f"triptych_{n}_{s.path.stem}.png", image, advs[-1],
                                               results[0], results[-1], eps[-1])))
    report = AttackReport(predictor.entry.name, method, METRICS[kind], eps,
                          {v: sc.scores() for v, sc in scorers.items()}, len(samples),
                          1 if method == "fgsm" else steps, None if target is None else predictor.class_names[target],
                          None if hits is None else hits.rates(), saved)
    if out is not None:
        from ..io.sinks import write_json

        write_json(out / "report.json", report.to_dict())
        save_curve(out / "curve.png", report)
    return report
