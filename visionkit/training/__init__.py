"""Training: a model trained here is immediately a visionkit model (``visionkit.load(task, RUN_DIR)``).

    run = visionkit.train("classify", data="digits/", model="lenet5", epochs=10)
    run.card.metrics["test_top1"]                       # the held-back figure, also in run_dir/card.json
    visionkit.load("classify", run.run_dir)("digit.png").top1

classify (and segment: semantic) runs visionkit's own loop (``loop.py``); detect / pose / instance segment /
YOLO-classify run ultralytics' own trainer (``yolo.py``). Each run folder holds best and last checkpoints, a
metrics CSV, curves and confusion-matrix PNGs and a model card (``card.json``).
"""

from __future__ import annotations

from pathlib import Path

from ..errors import OptionError
from .card import ModelCard
from .loop import ClassifyConfig, TrainingInterrupted, TrainResult, fit, resumed_config

RUNS_DIR = Path("runs") / "train"
YOLO_TRAIN_TASKS = ("detect", "pose", "segment")  # ultralytics' trainer, from a YOLO .yaml or .pt
# classify and segment with anything else: visionkit's own loops (a torchvision or catalog architecture)
YOLO_MODEL_SUFFIXES = (".yaml", ".yml", ".pt")
TASKS = ("classify", *YOLO_TRAIN_TASKS)

__all__ = ["ModelCard", "TrainResult", "TrainingInterrupted", "train"]


def train(task: str, data: str | Path | None = None, model: str | None = None, *, epochs: int | None = None,
          batch: int | None = None, imgsz: int | None = None, lr: float | None = None, device: str = "auto",
          out: str | Path | None = None, resume: bool = False, patience: int | None = None, seed: int | None = None,
          progress: bool = True) -> TrainResult:
    """Train ``model`` (an architecture name, see ``visionkit models``) for ``task`` on ``data`` into a run folder.

    Args:
        data: classify: a folder with train/ and val/ (optionally test/) class folders, or a labels CSV;
            detect/pose/segment: an ultralytics data YAML or a COCO folder (images/, annotations/instances*.json);
            segment with a torchvision architecture: a folder of images/ and labels/ masks (``segdata.py``).
        model: classify: lenet5, mlp or a torchvision classifier name (resnet18, mobilenet_v3_large, ...);
            detect/pose/segment: an ultralytics .yaml (random init, e.g. yolov8n.yaml) or .pt (fine-tune);
            segment: also a torchvision semantic segmentation architecture (lraspp_mobilenet_v3_large, ...),
            trained by visionkit's loop from random weights (mIoU on every 5th pair).
        epochs, batch, imgsz, lr, patience, seed: None = the architecture's default (10 epochs, batch 32, its
            input size, AdamW lr 1e-3, no early stopping, seed 0); with ``resume`` None = the run's own value,
            and a different value is an error.
        out: the run folder; default runs/train/<task>-<model> (numbered -2, -3... so no run is overwritten).
            An ``out`` that already holds a run is refused unless ``resume``.
        resume: continue the run in ``out`` exactly where its ``last.pth`` stopped.
        progress: a progress bar per epoch on a terminal, else one summary line per epoch (stderr).
    """
    if task not in TASKS:
        raise OptionError(f"training task {task!r} is not supported (supported: {', '.join(TASKS)})")
    if _ultralytics_run(task, model, out, resume):
        from .yolo import fit_yolo

        run_dir = (Path(out) if out is not None else _default_run(task, model)) if resume else \
            _new_run(Path(out) if out is not None else None, task, model or "")
        try:
            card = fit_yolo(task, None if data is None else str(data), model, run_dir, epochs=epochs, batch=batch,
                            imgsz=imgsz, lr=lr, device=device, resume=resume, patience=patience, seed=seed,
                            progress=progress)
        except KeyboardInterrupt:
            raise TrainingInterrupted(f"{run_dir / 'weights' / 'last.pt'} holds the last finished epoch: continue "
                                      f"with `visionkit train {task} --out {run_dir} --resume`") from None
        return TrainResult(run_dir, card)
    given = {"data": None if data is None else str(data), "model": model, "epochs": epochs, "batch": batch,
             "imgsz": imgsz, "lr": lr, "patience": patience, "seed": seed}
    if resume:
        run_dir = Path(out) if out is not None else _default_run(task, model)
        config = resumed_config(run_dir, given, task)
    else:
        if data is None or model is None:
            raise OptionError("training needs data and a model (an architecture name such as lenet5 or resnet18)")
        config = ClassifyConfig(task=task, **{k: v for k, v in given.items() if v is not None})
        run_dir = _new_run(Path(out) if out is not None else None, task, model)
    config.device = device
    return fit(config, run_dir, resume=resume, progress=progress)


def _ultralytics_run(task: str, model: str | None, out: str | Path | None, resume: bool) -> bool:
    """Whether ultralytics' trainer runs this: detect and pose always; classify (YOLO-cls) and segment (instances)
    for a YOLO .yaml/.pt model, or when resuming without --model a run folder that holds ultralytics' last.pt."""
    from .yolo import WEIGHTS

    if task not in ("classify", "segment"):
        return True
    if model is not None:
        return Path(model).suffix.lower() in YOLO_MODEL_SUFFIXES
    return resume and out is not None and (Path(out) / WEIGHTS["last"]).is_file()


def _default_run(task: str, model: str | None) -> Path:
    if model is None:
        raise OptionError("--resume needs --out RUN_DIR (the run to continue) or the --model it was trained with")
    return RUNS_DIR / f"{task}-{Path(model).stem}"


def _new_run(out: Path | None, task: str, model: str) -> Path:
    """``out`` when it is new or empty; else, for the default name only, the first free numbered sibling."""
    if out is not None:
        if out.exists() and any(out.iterdir()):
            raise OptionError(f"{out} already holds files: continue that run with --resume, or choose another --out")
        return out
    base = _default_run(task, model)
    candidate, n = base, 2
    while candidate.exists() and any(candidate.iterdir()):
        candidate, n = base.with_name(f"{base.name}-{n}"), n + 1
    return candidate
