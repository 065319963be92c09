"""detect / pose / instance segment / YOLO-classify training through ultralytics' own trainer (no loop of ours).

Data: an ultralytics data YAML, or a COCO folder (``DIR/images/`` and ``DIR/annotations/instances*.json``, the layout
of ``shared/data/coco_val2017``), converted once into the run folder by ultralytics' ``convert_coco`` (80 classes).
A COCO folder has no separate validation images, so it validates on its training images: the run then measures
fit, not generalisation (say so when quoting its mAP).

The run folder is ultralytics' own (``weights/best.pt``, ``weights/last.pt``, ``results.csv``, ``results.png``,
``confusion_matrix.png``...) plus visionkit's ``card.json``; the checkpoints stay in ultralytics' format and load
through visionkit's ultralytics backend, so ``--model RUN_DIR`` (or ``RUN_DIR/weights/best.pt``) detects.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

from ..errors import DataError, OptionError, WeightsError
from .card import ModelCard, versions

YOLO_TASKS = {"detect": "detect", "pose": "pose", "segment": "segment", "classify": "classify"}
WEIGHTS = {"best": "weights/best.pt", "last": "weights/last.pt"}


def fit_yolo(task: str, data: str | None, model: str | None, run_dir: Path, *, epochs: int | None,
             batch: int | None, imgsz: int | None, lr: float | None, device: str, resume: bool,
             patience: int | None, seed: int | None, progress: bool = True) -> ModelCard:
    """Train with ``YOLO(model).train(...)`` into ``run_dir`` (or continue it from ``weights/last.pt``); with
    ``progress``, one line per finished epoch on stderr (ultralytics' own log is off: ``YOLO_VERBOSE=False``)."""
    from ..tasks._runtime import ultralytics_offline

    ultralytics_offline()
    from ultralytics import YOLO

    if resume:
        last = run_dir / WEIGHTS["last"]
        if not last.is_file():
            raise OptionError(f"--resume: {run_dir} holds no ultralytics run to continue (no {WEIGHTS['last']})")
        from ..tasks.checkpoints import check_checkpoint

        check_checkpoint(last)  # ultralytics unpickles it in full: only what a checkpoint is made of may be in it
        card = ModelCard.load(run_dir)
        if model is not None and Path(model).stem != Path(card.architecture).stem:
            raise OptionError(f"--resume: {run_dir} was trained with architecture {card.architecture!r}, not "
                              f"{model!r}; resume without --model, or train into a new --out folder")
        done = _last_metrics(run_dir / "results.csv").get("epochs_done", 0)
        if done >= card.hyperparameters.get("epochs", 0):
            raise OptionError(f"--resume: {run_dir} finished its {done} epoch(s); nothing to resume (train a new run "
                              f"from {run_dir / WEIGHTS['best']} to fine-tune further)")
        net = YOLO(str(last))
        _report_epochs(net, progress)
        _ultralytics_train(net, resume=True)
    else:
        if data is None or model is None:
            raise OptionError("training needs --data and --model (a .yaml to start from random weights, a .pt to "
                              "fine-tune)")
        if Path(model).suffix.lower() == ".pt":  # a checkpoint to fine-tune: ultralytics unpickles it in full
            from ..tasks.checkpoints import check_checkpoint

            check_checkpoint(Path(model))
        run_dir.mkdir(parents=True, exist_ok=True)
        data_yaml, names, digest = _data_yaml(Path(data).expanduser(), run_dir)
        settings = {"epochs": epochs or 10, "imgsz": imgsz or 640, "batch": batch or 16, "seed": seed or 0,
                    "patience": patience or 100}
        if lr is not None:
            settings["lr0"] = lr
        card = ModelCard(task=YOLO_TASKS[task], architecture=model, classes=names,
                         input={"size": settings["imgsz"], "channels": 3, "preprocess": "ultralytics letterbox"},
                         data={"path": str(Path(data).resolve()), "sha256": digest, "yaml": str(data_yaml)},
                         hyperparameters=settings, seed=settings["seed"], versions=versions(), weights=dict(WEIGHTS))
        card.save(run_dir)
        try:
            net = YOLO(model, task=YOLO_TASKS[task])
        except Exception as e:
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise WeightsError(f"cannot build {model}: {first}") from None
        _report_epochs(net, progress)
        _ultralytics_train(net, data=str(data_yaml), project=str(run_dir.parent.resolve()), name=run_dir.name,
                           exist_ok=True, device=_ultralytics_device(device), workers=0, plots=True, verbose=False,
                           **settings)
    card.metrics = _last_metrics(run_dir / "results.csv")
    card.save(run_dir)
    return card


def _report_epochs(net: Any, progress: bool) -> None:
    """Print ``epoch N/M: losses, metrics, time (~left)`` once each epoch is validated and ``last.pt`` written
    (ultralytics' ``on_fit_epoch_end``; it fires once more for the final validation of best.pt, not reported)."""
    if progress:
        net.add_callback("on_fit_epoch_end", _epoch_line)


def _epoch_line(trainer: Any) -> None:
    if trainer.epoch >= trainer.epochs:  # the closing validation of best.pt, after the last epoch
        return
    losses = "  ".join(f"{k.removeprefix('train/')} {v:.4f}" for k, v in
                       (trainer.label_loss_items(trainer.tloss) if trainer.tloss is not None else {}).items())
    metrics = "  ".join(f"{k.removeprefix('metrics/')} {float(v):.4f}" for k, v in trainer.metrics.items()
                        if k.startswith("metrics/"))
    seconds = trainer.epoch_time or 0.0
    left = seconds * (trainer.epochs - trainer.epoch - 1)
    print(f"epoch {trainer.epoch + 1}/{trainer.epochs}: {losses}  {metrics}  {seconds:.1f} s (~{left:.0f} s left)",
          file=sys.stderr, flush=True)


def _ultralytics_train(net: Any, **arguments: Any) -> None:
    """``net.train(**arguments)``; ultralytics' own failures (bad data, a file it cannot read) as one line."""
    import warnings

    try:
        with warnings.catch_warnings():
            # ultralytics' Ray Tune callback touches ray.train's session when ray is installed (the batch extra),
            # which warns about its deprecation on every run: not the user's concern.
            warnings.filterwarnings("ignore", module=r"ray\.")
            net.train(**arguments)
    except (KeyboardInterrupt, OptionError, DataError):
        raise
    except Exception as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise DataError(f"ultralytics training failed: {first}") from None


def _ultralytics_device(spec: str) -> str:
    from ..device import select_device

    device = select_device(spec, half=False)
    return "cpu" if device.type == "cpu" else str(device.index)


def _data_yaml(data: Path, run_dir: Path) -> tuple[Path, list[str], str]:
    """An ultralytics data YAML for ``data``: itself, or one written for a converted COCO folder; for an ImageFolder
    (``train/``, ``val/`` class folders: what ultralytics' classification trainer reads) the folder itself."""
    if data.is_dir() and (data / "train").is_dir() and not (data / "annotations").is_dir():
        names = sorted(p.name for p in (data / "train").iterdir() if p.is_dir())
        if not names or not (data / "val").is_dir():
            raise DataError(f"{data}: an image-folder dataset needs train/ and val/ folders with one folder per class")
        digest = hashlib.sha256("\n".join(sorted(str(p.relative_to(data)) for p in data.rglob("*")
                                                 if p.is_file())).encode())
        return data, names, digest.hexdigest()
    if data.suffix.lower() in (".yaml", ".yml") and data.is_file():
        import yaml

        names = yaml.safe_load(data.read_text(encoding="utf-8")).get("names", {})
        names = list(names.values()) if isinstance(names, dict) else list(names)
        return data, names, hashlib.sha256(data.read_bytes()).hexdigest()
    instances = sorted((data / "annotations").glob("instances*.json")) if data.is_dir() else []
    if not instances or not (data / "images").is_dir():
        raise DataError(f"{data}: expected an ultralytics data .yaml, or a COCO folder with images/ and "
                        f"annotations/instances*.json")
    from ultralytics.data.converter import convert_coco

    from ..catalog import load_class_names

    dataset = run_dir / "dataset"
    with tempfile.TemporaryDirectory() as tmp:
        shutil.copy(instances[0], tmp)
        converted = Path(tmp) / "converted"
        convert_coco(labels_dir=tmp, save_dir=str(converted), use_segments=False, cls91to80=True)
        labels = next((converted / "labels").iterdir())
        (dataset / "labels").mkdir(parents=True, exist_ok=True)
        shutil.copytree(labels, dataset / "labels" / "train", dirs_exist_ok=True)
    images = dataset / "images" / "train"
    images.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256(instances[0].read_bytes())
    for label in sorted((dataset / "labels" / "train").glob("*.txt")):
        image = data / "images" / f"{label.stem}.jpg"
        if not image.is_file():
            raise DataError(f"{data / 'images'}: no image {image.name} for the annotations of {label.stem}")
        target = images / image.name
        if not target.exists():
            os.symlink(image.resolve(), target)
        digest.update(image.name.encode())
    names = load_class_names("coco80")
    yaml_path = dataset / "data.yaml"
    yaml_path.write_text(json.dumps({"path": str(dataset.resolve()), "train": "images/train", "val": "images/train",
                                     "names": dict(enumerate(names))}, indent=2), encoding="utf-8")
    return yaml_path, names, digest.hexdigest()


def _last_metrics(results_csv: Path) -> dict[str, Any]:
    if not results_csv.is_file():
        return {}
    with open(results_csv, newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows:
        return {}
    last = {k.strip(): float(v) for k, v in rows[-1].items() if v not in (None, "")}
    return {"epochs_done": len(rows), **last}
