"""visionkit's training loop: fit on train, keep the best epoch on val, score the held-back split at the end.

One loop for classification and semantic segmentation: ``_Trainer`` is the classifier's, ``_SegmentTrainer``
changes only what differs (the tensors, the forward pass, the augmentation and the score: mIoU over the pixels
through ``visionkit.eval.segmentation.ConfusionMatrix`` instead of top-1 over the images).

A plain PyTorch loop rather than a framework: every piece of state that matters for an exact ``--resume`` is
explicit and saved in ``last.pth`` (model, optimizer, scheduler, epoch and batch position, running sums, history,
the torch RNG), and the batch order of epoch ``e`` is a permutation seeded by ``(seed, e)``, so a run stopped
mid-epoch continues with the very batches it would have seen. All checkpoints are plain tensors, numbers and
dicts: ``torch.load(weights_only=True)`` reads them, so loading a run never unpickles code.

Ctrl-C stops after the current batch (a second one stops at once): ``last.pth`` then holds the exact position.
"""

from __future__ import annotations

import csv
import io
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
from torch import nn

from ..device import select_device
from ..errors import OptionError, WeightsError
from ..eval.segmentation import IGNORE_INDEX, ConfusionMatrix
from . import architectures
from .card import BEST, LAST, ModelCard, Preprocess, card_path_for, versions, write_json_atomic
from .data import ClassifyData, load_classify_data, read_bgr
from .plots import confusion_matrix, plot_confusion, plot_curves
from .segdata import SegmentData, load_segment_data, read_mask

METRICS_CSV, CURVES_PNG, CONFUSION_PNG = "metrics.csv", "curves.png", "confusion_matrix.png"
DEFAULT_LR = 1e-3
WEIGHT_DECAY = 1e-4
EVAL_BATCH = 256
# Networks smaller than this train on one CPU thread: for layers this small a thread pool's hand-offs cost more
# than they save, and on a busy CPU far more (MLP step: 1.7 ms on one thread, 125 ms on two, 2-core CPU at load 10).
ONE_THREAD_PARAMS = 1_000_000
SHIFT_DIVISOR = 8  # training images move by up to 1/8 of their side: the one augmentation safe for any class
BATCH_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.SyncBatchNorm)


class TrainingInterrupted(KeyboardInterrupt):
    """Ctrl-C during training; ``last.pth`` was saved. The message says how to continue."""


@dataclass
class TrainResult:
    run_dir: Path
    card: ModelCard
    history: list[dict[str, float]] = field(default_factory=list)

    @property
    def best(self) -> Path:
        return self.run_dir / BEST

    @property
    def last(self) -> Path:
        return self.run_dir / LAST


@dataclass
class ClassifyConfig:
    data: str
    model: str
    epochs: int = 10
    batch: int = 32
    imgsz: int | None = None
    lr: float | None = None
    device: str = "auto"
    patience: int | None = None
    seed: int = 0
    task: str = "classify"  # or "segment": semantic segmentation on image/mask pairs

    def recipe(self) -> dict[str, Any]:
        segment = self.task == "segment"
        return {"architecture": self.model, "epochs": self.epochs, "batch": self.batch, "imgsz": self.imgsz,
                "lr": self.lr or DEFAULT_LR, "seed": self.seed, "patience": self.patience,
                "optimizer": f"AdamW(weight_decay={WEIGHT_DECAY})", "scheduler": "CosineAnnealingLR(T_max=epochs)",
                "loss": f"CrossEntropyLoss(ignore_index={IGNORE_INDEX})" if segment else "CrossEntropyLoss",
                "augment": "random horizontal flip of image and mask" if segment else
                f"random translation up to 1/{SHIFT_DIVISOR} of the side (edge padding)"}


def fit(config: ClassifyConfig, run_dir: Path, resume: bool = False, progress: bool = True) -> TrainResult:
    """Train (or, with ``resume``, continue) a ``config.task`` model into ``run_dir``; see the module docstring."""
    if config.epochs < 1 or config.batch < 1:
        raise OptionError(f"epochs and batch must be positive integers, got {config.epochs} and {config.batch}")
    segment = config.task == "segment"
    state = _last_state(run_dir) if resume else None
    data = (load_segment_data if segment else load_classify_data)(config.data, config.seed)
    if data.skipped:
        print(f"visionkit: warning: skipped {len(data.skipped)} unreadable image(s) (e.g. {data.skipped[0]})",
              file=sys.stderr)
    if resume and ModelCard.load(run_dir).data.get("sha256") != data.sha256:
        raise OptionError(f"--resume: {config.data} is not the data {run_dir} was trained on (its sha256 differs); "
                          f"resume on the same data, or train into a new --out folder")
    device = select_device(config.device, half=False)
    spec = (architectures.segmentation_spec if segment else architectures.input_spec)(config.model, config.imgsz)
    torch.manual_seed(config.seed)
    model = architectures.build_for(config.task, config.model, len(data.classes), spec).to(device.torch)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr or DEFAULT_LR, weight_decay=WEIGHT_DECAY)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=config.epochs)
    card = ModelCard(task=config.task, architecture=config.model, classes=data.classes,
                     input={"size": spec.size, "channels": spec.channels, "mean": list(spec.mean),
                            "std": list(spec.std)},
                     data=data.summary(), hyperparameters=config.recipe(), seed=config.seed, versions=versions())
    trainer_class = _SegmentTrainer if segment else _Trainer
    trainer = trainer_class(model, optimizer, scheduler, data, Preprocess(spec), device.torch, config, run_dir, card)
    if state is not None:
        trainer.restore(state)
    run_dir.mkdir(parents=True, exist_ok=True)
    card.save(run_dir)
    threads = torch.get_num_threads()
    if device.type == "cpu" and sum(p.numel() for p in model.parameters()) < ONE_THREAD_PARAMS:
        torch.set_num_threads(1)
    try:
        trainer.run(progress)
    finally:
        torch.set_num_threads(threads)  # process-wide: give the caller its setting back
    return TrainResult(run_dir, card, trainer.history)


def resumed_config(run_dir: Path, given: dict[str, Any], task: str = "classify") -> ClassifyConfig:
    """The recipe of the run in ``run_dir``; a ``given`` value (None = not given) that differs is an OptionError,
    raised before anything is written."""
    if card_path_for(run_dir) is None or not (run_dir / LAST).is_file():
        raise OptionError(f"--resume: {run_dir} holds no run to continue (expected card.json and {LAST})")
    card = ModelCard.load(run_dir)
    if card.task != task:
        raise OptionError(f"--resume: {run_dir} is a {card.task} run, not {task}; resume it with "
                          f"`visionkit train {card.task}`")
    saved = {"task": task, "model": card.architecture, "data": card.data.get("path"), **{
        k: card.hyperparameters.get(k) for k in ("epochs", "batch", "imgsz", "lr", "seed", "patience")}}
    for key, value in given.items():
        if key in saved and key != "data" and value is not None and value != saved[key]:
            what = "architecture" if key == "model" else key
            raise OptionError(f"--resume: {run_dir} was trained with {what} {saved[key]!r}, not {value!r}; resume "
                              f"with the run's settings, or train into a new --out folder")
    merged = {**saved, **{k: v for k, v in given.items() if v is not None}}
    return ClassifyConfig(**{k: v for k, v in merged.items() if k in ClassifyConfig.__dataclass_fields__})


def _last_state(run_dir: Path) -> dict[str, Any]:
    last = run_dir / LAST
    try:
        return torch.load(last, map_location="cpu", weights_only=True)
    except Exception as e:
        raise WeightsError(f"{last}: not a readable training checkpoint ({type(e).__name__})") from None


class _Trainer:
    """One classifier run's mutable state; ``state_dict``/``restore`` are the whole of what ``--resume`` needs."""

    metric = "top1"        # the validation score that picks the best epoch (higher is better)
    train_metric = "top1"  # the running score of the training batches: hits / count

    def __init__(self, model: nn.Module, optimizer: Any, scheduler: Any, data: ClassifyData | SegmentData,
                 preprocess: Preprocess,
                 device: str, config: ClassifyConfig, run_dir: Path, card: ModelCard):
        self.model, self.optimizer, self.scheduler = model, optimizer, scheduler
        self.data, self.preprocess, self.device = data, preprocess, device
        self.config, self.run_dir, self.card = config, run_dir, card
        self.loss_fn = nn.CrossEntropyLoss()
        self.epoch = 0          # the epoch in progress (0-based)
        self.batch = 0          # batches of it already done
        self.running = [0.0, 0, 0]  # count-weighted loss sum, hits, count (images or pixels) in the epoch so far
        self.best = {f"val_{self.metric}": -1.0, "epoch": 0}
        self.bad_epochs = 0
        self.history: list[dict[str, float]] = []

    # -- checkpoint state ----------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        rng = {"torch": torch.get_rng_state()}
        if torch.cuda.is_available():
            rng["cuda"] = torch.cuda.get_rng_state_all()
        return {"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict(), "epoch": self.epoch, "batch": self.batch,
                "running": list(self.running), "best": dict(self.best), "bad_epochs": self.bad_epochs,
                "history": list(self.history), "rng": rng, "architecture": self.config.model,
                "classes": self.data.classes}

    def restore(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.epoch, self.batch = int(state["epoch"]), int(state["batch"])
        self.running = list(state["running"])
        self.best, self.bad_epochs = dict(state["best"]), int(state["bad_epochs"])
        self.history = list(state["history"])
        torch.set_rng_state(state["rng"]["torch"])
        if "cuda" in state["rng"] and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["rng"]["cuda"])

    def _save(self, name: str, obj: Any) -> None:
        tmp = self.run_dir / f".{name}.tmp"
        torch.save(obj, tmp)
        os.replace(tmp, self.run_dir / name)  # atomic: a crash never leaves a half checkpoint

    # -- the loop --------------------------------------------------------------------------------------------
    def run(self, progress: bool) -> None:
        from tqdm import tqdm

        train = self.data.splits["train"]
        epochs = self.config.epochs
        started = time.monotonic()
        done_at_start = self.epoch
        with _stop_on_sigint() as stop:
            while self.epoch < epochs and not self._patience_spent():
                order = self._order(len(train))
                batches = [order[i:i + self.config.batch] for i in range(0, len(order), self.config.batch)]
                bar = tqdm(total=len(batches), initial=self.batch, desc=f"epoch {self.epoch + 1}/{epochs}",
                           unit="batch", file=sys.stderr, dynamic_ncols=True, leave=False,
                           disable=None if progress else True)  # None: a bar on a TTY only
                t0 = time.monotonic()
                with bar:
                    for indices in batches[self.batch:]:
                        if stop.is_set():
                            self._save(LAST, self.state_dict())
                            raise TrainingInterrupted(self._interrupted_message(len(batches)))
                        self._step(train, indices)
                        bar.set_postfix({"loss": f"{self.running[0] / self.running[2]:.3f}",
                                         self.train_metric: f"{self.running[1] / self.running[2]:.3f}"})
                        bar.update(1)
                row = self._end_epoch(time.monotonic() - t0)
                if progress:
                    per_epoch = (time.monotonic() - started) / max(self.epoch - done_at_start, 1)
                    print(self._epoch_line(row, per_epoch * (epochs - self.epoch)), file=sys.stderr)
        self._finish()

    def _order(self, n: int) -> list[int]:
        generator = torch.Generator().manual_seed(self.config.seed * 1_000_003 + self.epoch)
        return torch.randperm(n, generator=generator).tolist()

    def _step(self, items: list[Any], indices: list[int]) -> None:
        x, y = self._augment(*self._tensors(items, indices))
        self.model.train()
        logits = self._forward(x)
        loss = self.loss_fn(logits, y)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        hits, count = self._hits(logits, y)
        self.running[0] += loss.item() * count
        self.running[1] += hits
        self.running[2] += count
        self.batch += 1

    # -- what differs per task: overridden by _SegmentTrainer ------------------------------------------------
    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)

    def _augment(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return random_shift(x, max(x.shape[-1] // SHIFT_DIVISOR, 1)), y

    def _hits(self, logits: torch.Tensor, y: torch.Tensor) -> tuple[int, int]:
        return int((logits.argmax(1) == y).sum()), len(y)

    def _score(self, split: str) -> tuple[float, float]:
        """Mean loss and ``metric`` on ``split``."""
        loss, truth, predicted = self.evaluate(split)
        return loss, float((truth == predicted).mean())

    def _tensors(self, items: list[tuple[Path, int]], indices: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        images = []
        for i in indices:
            image = read_bgr(items[i][0].read_bytes())
            if image is None:
                raise WeightsError(f"{items[i][0]}: unreadable since the dataset was scanned")
            images.append(self.preprocess(image))
        x = torch.from_numpy(np.stack(images)).to(self.device)
        y = torch.tensor([items[i][1] for i in indices], device=self.device)
        return x, y

    @torch.no_grad()
    def evaluate(self, split: str) -> tuple[float, np.ndarray, np.ndarray]:
        """Mean loss, true and predicted class ids on ``split``."""
        items = self.data.splits[split]
        self.model.eval()
        loss, truth, predicted = 0.0, [], []
        for start in range(0, len(items), EVAL_BATCH):
            indices = list(range(start, min(start + EVAL_BATCH, len(items))))
            x, y = self._tensors(items, indices)
            logits = self.model(x)
            loss += float(self.loss_fn(logits, y)) * len(indices)
            truth.append(y.cpu().numpy())
            predicted.append(logits.argmax(1).cpu().numpy())
        return loss / len(items), np.concatenate(truth), np.concatenate(predicted)

    def _end_epoch(self, seconds: float) -> dict[str, float]:
        val_loss, val_score = self._score("val")
        key = f"val_{self.metric}"
        row = {"epoch": self.epoch + 1, "train_loss": self.running[0] / self.running[2],
               f"train_{self.train_metric}": self.running[1] / self.running[2], "val_loss": val_loss,
               key: val_score, "lr": self.optimizer.param_groups[0]["lr"], "seconds": round(seconds, 3)}
        self.scheduler.step()
        self.history.append(row)
        self.epoch, self.batch, self.running = self.epoch + 1, 0, [0.0, 0, 0]
        if row[key] > self.best[key]:
            self.best, self.bad_epochs = {key: row[key], "epoch": row["epoch"]}, 0
            self._save(BEST, self.model.state_dict())
        else:
            self.bad_epochs += 1
        self._save(LAST, self.state_dict())
        self._write_metrics()
        self.card.metrics = {"best_epoch": self.best["epoch"], key: round(self.best[key], 4),
                             "epochs_done": self.epoch}
        self.card.save(self.run_dir)
        return row

    def _patience_spent(self) -> bool:
        return self.config.patience is not None and self.bad_epochs >= self.config.patience

    def _write_metrics(self) -> None:
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=list(self.history[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(self.history)
        tmp = self.run_dir / f".{METRICS_CSV}.tmp"
        tmp.write_text(out.getvalue(), encoding="utf-8")
        os.replace(tmp, self.run_dir / METRICS_CSV)

    def _finish(self) -> None:
        """Score the best weights on the held-back split (val when there is no test/), draw the pictures."""
        self.model.load_state_dict(torch.load(self.run_dir / BEST, map_location=self.device, weights_only=True))
        split = "test" if "test" in self.data.splits else "val"
        loss, truth, predicted = self.evaluate(split)
        matrix = confusion_matrix(truth, predicted, len(self.data.classes))
        hits = int((truth == predicted).sum())
        self.card.metrics.update({f"{split}_top1": round(hits / len(truth), 4), f"{split}_correct": hits,
                                  f"{split}_images": len(truth), f"{split}_loss": round(loss, 4),
                                  "scored_split": split})
        self.card.save(self.run_dir)
        write_json_atomic(self.run_dir / "confusion_matrix.json", {"split": split, "classes": self.data.classes,
                                                                   "matrix": matrix.tolist()})
        plot_curves(self.history, self.run_dir / CURVES_PNG)
        plot_confusion(matrix, self.data.classes, self.run_dir / CONFUSION_PNG,
                       f"{self.config.model} on {split}: top-1 {hits}/{len(truth)}")

    def _interrupted_message(self, batches: int) -> str:
        return (f"stopped in epoch {self.epoch + 1}/{self.config.epochs} after batch {self.batch}/{batches}; "
                f"{self.run_dir / LAST} saved: continue with `visionkit train {self.config.task} --data "
                f"{self.config.data} --out {self.run_dir} --resume` (plus the run's options)")

    def _epoch_line(self, row: dict[str, float], left_s: float) -> str:
        train, val = f"train_{self.train_metric}", f"val_{self.metric}"
        return (f"epoch {int(row['epoch'])}/{self.config.epochs}: loss {row['train_loss']:.4f}  "
                f"{self.train_metric} {row[train]:.4f}  val loss {row['val_loss']:.4f}  {self.metric} "
                f"{row[val]:.4f}  lr {row['lr']:.2e}  {row['seconds']:.1f} s (~{left_s:.0f} s left)")


class _SegmentTrainer(_Trainer):
    """Semantic segmentation: square-resized images and nearest-resized masks in training; validation scores the
    argmax of the logits bilinearly resampled to each image's source size (as the predictor does) against its
    full-size mask, so the mIoU measured here is the one ``visionkit eval`` would see on these pairs."""

    metric = "miou"
    train_metric = "pixel_acc"

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.loss_fn = nn.CrossEntropyLoss(ignore_index=IGNORE_INDEX)

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)["out"]

    def _augment(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """A horizontal flip of image and mask together, per image; from torch's global generator (saved in
        ``last.pth``, so a resumed run flips the same images)."""
        flip = torch.rand(len(x)) < 0.5
        x, y = x.clone(), y.clone()
        x[flip], y[flip] = x[flip].flip(-1), y[flip].flip(-1)
        return x, y

    def _hits(self, logits: torch.Tensor, y: torch.Tensor) -> tuple[int, int]:
        keep = y != IGNORE_INDEX
        return int((logits.argmax(1)[keep] == y[keep]).sum()), max(int(keep.sum()), 1)

    def _mask(self, path: Path) -> np.ndarray:
        return read_mask(path, len(self.data.classes))

    def _tensors(self, items: list[tuple[Path, Path]], indices: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        images, masks = [], []
        size = self.preprocess.spec.size
        for i in indices:
            image = read_bgr(items[i][0].read_bytes())
            if image is None:
                raise WeightsError(f"{items[i][0]}: unreadable since the dataset was scanned")
            images.append(self.preprocess(image))
            masks.append(cv2.resize(self._mask(items[i][1]), (size, size), interpolation=cv2.INTER_NEAREST))
        x = torch.from_numpy(np.stack(images)).to(self.device)
        y = torch.from_numpy(np.stack(masks)).long().to(self.device)
        return x, y

    @torch.no_grad()
    def score_matrix(self, split: str) -> tuple[float, ConfusionMatrix]:
        """Mean pixel loss and the pixel confusion matrix of ``split``, each image scored at its source size."""
        items = self.data.splits[split]
        self.model.eval()
        matrix = ConfusionMatrix(len(self.data.classes))
        loss, pixels = 0.0, 0
        for i in range(len(items)):
            image = read_bgr(items[i][0].read_bytes())
            target = self._mask(items[i][1])
            x = torch.from_numpy(self.preprocess(image)[None]).to(self.device)
            logits = torch.nn.functional.interpolate(self._forward(x), target.shape, mode="bilinear")
            y = torch.from_numpy(target).long().to(self.device)[None]
            counted = int((y != IGNORE_INDEX).sum())
            if counted:
                loss += float(self.loss_fn(logits, y)) * counted
                pixels += counted
            matrix.update(target, logits.argmax(1)[0].cpu().numpy())
        return loss / max(pixels, 1), matrix

    def _score(self, split: str) -> tuple[float, float]:
        self._recalibrate_batchnorm()
        loss, matrix = self.score_matrix(split)
        return loss, _miou(matrix)

    @torch.no_grad()
    def _recalibrate_batchnorm(self) -> None:
        """Set every BatchNorm's running mean/variance to the exact averages over the training pairs ("precise
        BN", Wu & Johnson 2021) before validating. torchvision's MobileNetV3 backbones update them with momentum
        0.01, so after the few hundred steps of a small dataset they still mostly hold their initial values and
        the eval-mode network predicts one class everywhere; the weights are untouched."""
        norms = [m for m in self.model.modules() if isinstance(m, BATCH_NORMS)]
        if not norms:
            return
        momenta = [m.momentum for m in norms]
        for m in norms:
            m.reset_running_stats()
            m.momentum = None  # cumulative average over the batches below
        self.model.train()
        train = self.data.splits["train"]
        for start in range(0, len(train), self.config.batch):
            x, _ = self._tensors(train, list(range(start, min(start + self.config.batch, len(train)))))
            self._forward(x)
        for m, momentum in zip(norms, momenta, strict=True):
            m.momentum = momentum

    def _finish(self) -> None:
        """Score the best weights on the held-back pairs; per-class IoU in the card, the pictures next to it."""
        self.model.load_state_dict(torch.load(self.run_dir / BEST, map_location=self.device, weights_only=True))
        loss, matrix = self.score_matrix("val")
        classes = self.data.classes
        iou = {name: round(float(v), 4) for name, v in zip(classes, matrix.iou(), strict=True) if not np.isnan(v)}
        self.card.metrics.update({"val_miou": round(_miou(matrix), 4), "val_pixel_acc": round(
            matrix.pixel_accuracy(), 4), "val_iou": iou, "val_images": len(self.data.splits["val"]),
            "val_loss": round(loss, 4), "scored_split": "val", "scored_at": "source size of each image"})
        self.card.save(self.run_dir)
        write_json_atomic(self.run_dir / "confusion_matrix.json", {"split": "val", "classes": classes,
                                                                   "unit": "pixels", "matrix": matrix.mat.tolist()})
        plot_curves(self.history, self.run_dir / CURVES_PNG, metric="miou")
        plot_confusion(matrix.mat, classes, self.run_dir / CONFUSION_PNG,
                       f"{self.config.model} on val: mIoU {_miou(matrix):.3f} (pixels)")


def _miou(matrix: ConfusionMatrix) -> float:
    """Mean IoU over the classes seen in the target or the prediction (0 when there are none)."""
    iou = matrix.iou()
    return float(np.nanmean(iou)) if not np.all(np.isnan(iou)) else 0.0


def random_shift(x: torch.Tensor, pad: int) -> torch.Tensor:
    """Each image of the (B, C, H, W) batch moved by a random offset of up to ``pad`` pixels (edges repeated).

    No flips or colour changes: those change the meaning of some classes (digits, text); a small shift changes
    none. Drawn from torch's global generator, whose state ``last.pth`` keeps, so a resumed run draws the same.
    """
    h, w = x.shape[-2:]
    padded = torch.nn.functional.pad(x, (pad, pad, pad, pad), mode="replicate")
    offsets = torch.randint(0, 2 * pad + 1, (len(x), 2)).tolist()
    return torch.stack([padded[i, :, dy:dy + h, dx:dx + w] for i, (dy, dx) in enumerate(offsets)])


@contextmanager
def _stop_on_sigint() -> Iterator[threading.Event]:
    """The first SIGINT asks the loop to stop at the next batch boundary; a second one interrupts at once."""
    stop = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield stop  # signals reach the main thread only: there Ctrl-C interrupts as usual
        return
    previous = signal.getsignal(signal.SIGINT)

    def handler(signum: int, frame: Any) -> None:
        stop.set()
        signal.signal(signal.SIGINT, previous)

    signal.signal(signal.SIGINT, handler)
    try:
        yield stop
    finally:
        signal.signal(signal.SIGINT, previous)
