"""The backend contract: how one model family turns images into results, in three timed stages.

A backend is built by ``Predictor`` on first use (lazily, so a Predictor can be pickled and shipped to a
worker before any weights are read). Options are declared per backend in ``OPTIONS`` with fallback values;
catalog ``defaults`` (or ``eval``) override those, and the caller's non-None options override both.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from ..catalog import ModelEntry
from ..device import Device
from ..errors import ModelNotFoundError, OptionError
from ..results import Result

_BACKENDS: dict[tuple[str, str], type[Backend]] = {}


class Backend(ABC):
    task: ClassVar[str]
    name: ClassVar[str]
    OPTIONS: ClassVar[dict[str, Any]] = {}
    # Scoring settings of the family (e.g. YOLO's conf 0.001), for a model file the catalog has no ``eval`` for:
    # a mAP needs the low-confidence boxes too, so an interactive conf 0.25 would understate every score.
    EVAL_OPTIONS: ClassVar[dict[str, Any]] = {}
    # Suffixes of model files this backend runs when the user passes a path instead of a catalog name.
    SUFFIXES: ClassVar[tuple[str, ...]] = ()
    # What runs the model: "torch" or "onnx" (ONNX Runtime). A torch backend whose models export to ONNX names
    # the backend that runs the export in ONNX_BACKEND and implements ``export_onnx``.
    RUNTIME: ClassVar[str] = "torch"
    ONNX_BACKEND: ClassVar[str | None] = None
    # Whether several threads may run preprocess -> forward -> postprocess at once (``workers`` > 1): true for
    # PyTorch modules and ONNX Runtime sessions; not for stateful runners (TFLite interpreters, OpenCV's YuNet).
    CONCURRENT: ClassVar[bool] = False

    def __init__(self, entry: ModelEntry, weights: Path, device: Device, options: dict[str, Any]):
        self.entry = entry
        self.weights = weights
        self.device = device
        self.options = options
        self.class_names: list[str] = entry.class_names

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "name" in cls.__dict__:
            key = (cls.task, cls.name)
            if key in _BACKENDS:
                raise ValueError(f"backend {key} registered twice")
            _BACKENDS[key] = cls

    @classmethod
    def accepts(cls, path: Path) -> bool:
        """Whether this backend can run the model file at ``path`` (used when a path is given, not a name)."""
        return path.suffix.lower() in cls.SUFFIXES

    @classmethod
    def export_onnx(cls, weights: Path) -> Path:
        """The ONNX file of ``weights`` for ``ONNX_BACKEND`` to run (exported once, then cached)."""
        raise NotImplementedError(f"{cls.name} models do not export to ONNX")

    @abstractmethod
    def preprocess(self, images: list[np.ndarray]) -> Any:
        """BGR uint8 images -> model input batch."""

    @abstractmethod
    def forward(self, batch: Any) -> Any:
        """Run the model; no gradient, no host work that belongs to the other stages."""

    @abstractmethod
    def postprocess(self, raw: Any, batch: Any, images: list[np.ndarray]) -> list[Result]:
        """Model output -> one result per image, in source-image coordinates."""

    def warmup_input(self) -> list[np.ndarray]:
        size = self.options.get("imgsz") or 640
        h, w = (size, size) if isinstance(size, int) else size
        return [np.zeros((h, w, 3), np.uint8)]


def backend_class(task: str, name: str) -> type[Backend]:
    _import_task(task)
    try:
        return _BACKENDS[(task, name)]
    except KeyError:
        known = sorted(n for t, n in _BACKENDS if t == task)
        raise ModelNotFoundError(f"no backend {name!r} for task {task!r} (known: {', '.join(known)})") from None


def backend_for_file(task: str, path: Path) -> type[Backend]:
    _import_task(task)
    for (t, _), cls in _BACKENDS.items():
        if t == task and cls.accepts(path):
            return cls
    suffixes = sorted({s for (t, _), c in _BACKENDS.items() if t == task for s in c.SUFFIXES})
    hint = (f"runs {', '.join(suffixes)} files" if suffixes else "takes no bare model files") + \
        f"; for a weights file of a catalog architecture use --model NAME --weights {path.name}"
    raise ModelNotFoundError(f"{path}: no {task} backend runs '{path.suffix}' files ({task} {hint})")


def _import_task(task: str) -> None:
    import importlib

    try:
        importlib.import_module(f"visionkit.tasks.{task}")
    except ModuleNotFoundError as e:
        if e.name == f"visionkit.tasks.{task}":
            raise ModelNotFoundError(f"unknown task {task!r}") from None
        raise


def merge_options(cls: type[Backend], entry: ModelEntry, user: dict[str, Any], evaluate: bool) -> dict[str, Any]:
    """Fallbacks (with ``evaluate``: the family's ``EVAL_OPTIONS``) < catalog defaults (or eval settings) < caller;
    unknown names raise, listing the valid ones."""
    user = {k: v for k, v in user.items() if v is not None}  # None = "not given": catalog defaults stay
    unknown = sorted(set(user) - set(cls.OPTIONS))
    if unknown:
        raise OptionError(f"unknown option(s) {', '.join(unknown)} for {cls.task} backend {cls.name!r}; "
                          f"valid: {', '.join(sorted(cls.OPTIONS))}")
    preset = {**entry.defaults, **(entry.eval if evaluate else {})}
    fallback = {**cls.OPTIONS, **(cls.EVAL_OPTIONS if evaluate else {})}
    merged = {**fallback, **{k: v for k, v in preset.items() if k in cls.OPTIONS}}
    if "imgsz" in cls.OPTIONS and entry.input_size:
        merged["imgsz"] = entry.input_size
    merged.update(user)
    for key in ("conf", "iou"):
        if key in merged and merged[key] is not None and not 0.0 <= float(merged[key]) <= 1.0:
            raise OptionError(f"{key} must be between 0 and 1, got {merged[key]}")
    return merged
