"""The backend contract: how one model family turns images into results, in three timed stages.

A backend is built by ``Predictor`` on first use (lazily, so a Predictor can be pickled and shipped to a
worker before any weights are read). Options are declared per backend in ``OPTIONS`` with fallback values;
catalog ``defaults`` (or ``eval``) override those, and the caller's non-None options override both.

Every option has one declared type (``OPTION_TYPES``; a backend may narrow one in ``OPTION_TYPE_OVERRIDES``): the
caller's values are type- and range-checked there, once, when the Predictor is made, so ``conf="abc"`` is an
``OptionError`` naming the option, never a ``ValueError`` from deep inside a backend. What only the loaded model
knows (a file's fixed input size, its class count) is checked by ``check_against_model`` right after the build.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np

from ..catalog import ModelEntry
from ..device import Device
from ..errors import ModelNotFoundError, OptionError, WeightsError
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
    # The runtime this family's model files run on when none is asked for (``visionkit.runtimes.RUNTIMES``);
    # ``runtimes`` says which others can run them. A family whose PyTorch models export to ONNX implements
    # ``export_onnx``, and its ``.pt`` then runs on every runtime that reads ONNX.
    RUNTIME: ClassVar[str] = "torch"
    # Whether several threads may run preprocess -> forward -> postprocess at once (``workers`` > 1, or one
    # Predictor called from several threads): true for PyTorch modules and ONNX Runtime sessions (``run()`` is
    # thread-safe) when the backend keeps no per-call state on itself; not for stateful runners (TFLite
    # interpreters, OpenCV's YuNet), which ``Predictor`` serialises with a lock.
    CONCURRENT: ClassVar[bool] = False
    # Narrower types than ``OPTION_TYPES`` for this backend's options (e.g. imgsz as one int only).
    OPTION_TYPE_OVERRIDES: ClassVar[dict[str, OptionType]] = {}
    # (h, w) when the model file fixes its input size (set once loaded): ``imgsz`` may then only repeat it.
    input_hw: tuple[int, int] | None = None

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
    def runtimes(cls, suffix: str) -> tuple[str, ...]:
        """The runtimes that can run this family's model files ending in ``suffix``, the default first."""
        return (cls.RUNTIME,)

    @classmethod
    def export_onnx(cls, weights: Path) -> Path:
        """The ONNX file of ``weights`` (exported once by the family's own exporter, then cached)."""
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

    def describe(self) -> str:
        """What runs the model, e.g. ``OpenVINO CPU bf16`` (the session's own words when it has one)."""
        session = getattr(self, "session", None)
        if session is not None:
            return str(session.describe())
        from ..runtimes.base import get_runtime_label

        return f"{get_runtime_label(self.RUNTIME)} {self.device}"

    def synchronize(self) -> None:
        """Wait for the model's queued device work (CUDA), so the inference stage's time is the work's."""
        if self.device.type == "cuda":
            import torch

            torch.cuda.synchronize(self.device.index)

    @classmethod
    def option_type(cls, name: str) -> OptionType:
        return cls.OPTION_TYPE_OVERRIDES.get(name) or OPTION_TYPES[name]

    def warmup_input(self) -> list[np.ndarray]:
        h, w = self.input_hw or as_hw(self.options.get("imgsz") or 640)
        return [np.zeros((h, w, 3), np.uint8)]


def as_hw(size: int | tuple[int, int] | list[int]) -> tuple[int, int]:
    """An ``imgsz`` (one side, or (h, w)) as (h, w)."""
    if isinstance(size, (int, np.integer)):
        return int(size), int(size)
    h, w = size
    return int(h), int(w)


def _is_int(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


@dataclass(frozen=True)
class OptionType:
    """What values one option takes: ``check(name, value)`` returns the value normalised (a float for a number, a
    list for class ids...) or raises ``OptionError`` naming the option, the value and what it must be."""

    # number: a float; size: imgsz, one side or (h, w) (only one side when low is 0); ids: class ids
    kind: Literal["number", "integer", "flag", "size", "ids"]
    low: float = -math.inf
    high: float = math.inf

    def describe(self) -> str:
        bounds = f"between {self.low:g} and {self.high:g}" if self.high < math.inf else f">= {self.low:g}"
        integer = "a positive integer" if self.low == 1 and self.high == math.inf else f"an integer {bounds}"
        return {"number": f"a number {bounds}", "integer": integer, "flag": "true or false",
                "size": f"{integer} or an (h, w) pair of them" if self.low > 0 else f"{integer} (0 = no limit)",
                "ids": "a class id or name, or a list of them (ids are integers >= 0)"}[self.kind]

    def check(self, name: str, value: Any) -> Any:
        checked = self._normalise(value)
        if checked is None:
            raise OptionError(f"{name} must be {self.describe()}, got {value!r}")
        return checked

    def _normalise(self, value: Any) -> Any:
        """The normalised value, or None when it does not fit."""
        if self.kind == "flag":
            return bool(value) if isinstance(value, (bool, np.bool_)) else None
        if self.kind == "number":
            ok = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_))
            return float(value) if ok and self.low <= float(value) <= self.high else None
        if self.kind == "integer":
            return int(value) if _is_int(value) and self.low <= value <= self.high else None
        if self.kind == "ids":  # names stay names until the model's class list resolves them (check_against_model)
            ids = [value] if _is_int(value) or isinstance(value, str) else value
            if not isinstance(ids, (list, tuple, np.ndarray)) or not all(
                    (_is_int(i) and i >= 0) or (isinstance(i, str) and i.strip()) for i in ids):
                return None
            return [int(i) if _is_int(i) else i.strip() for i in ids]
        # size: one side, or an (h, w) pair when the backend takes rectangles (low > 0: 0 is never a size)
        if _is_int(value):
            return int(value) if self.low <= value <= self.high else None
        pair = isinstance(value, (list, tuple)) and len(value) == 2 and all(_is_int(v) and v >= max(self.low, 1)
                                                                             for v in value)
        return (int(value[0]), int(value[1])) if pair and self.low > 0 else None


FRACTION = OptionType("number", 0.0, 1.0)
COUNT = OptionType("integer", 1)
FLAG = OptionType("flag")
# imgsz as one int only (the shorter side, or a square crop): backends whose resize takes no (h, w).
SIDE = COUNT
# Every option of every backend, and the Predictor's own numeric settings, with the one type each takes.
OPTION_TYPES: dict[str, OptionType] = {
    "conf": FRACTION, "iou": FRACTION, "max_det": COUNT, "top_k": COUNT, "window": COUNT, "stride": COUNT,
    # batch_size and workers are bounded: a batch or a thread pool beyond them only exhausts memory.
    "batch_size": OptionType("integer", 1, 4096), "workers": OptionType("integer", 1, 256),
    "imgsz": OptionType("size", 1), "classes": OptionType("ids"),
    "agnostic": FLAG, "multi_label": FLAG, "rect": FLAG, "keep_aspect": FLAG,
}


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
    if path.is_dir():
        raise ModelNotFoundError(f"{path} is a folder, not a model file (a `visionkit train` run folder holds "
                                 f"card.json)")
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


def given_options(cls: type[Backend], user: dict[str, Any]) -> dict[str, Any]:
    """The caller's options, checked: None = "not given" (catalog defaults stay) and is dropped; an unknown name
    raises, listing the valid ones; each value must fit its declared type (``OPTION_TYPES``)."""
    user = {k: v for k, v in user.items() if v is not None}
    unknown = sorted(set(user) - set(cls.OPTIONS))
    if unknown:
        raise OptionError(f"unknown option(s) {', '.join(unknown)} for {cls.task} backend {cls.name!r}; "
                          f"valid: {', '.join(sorted(cls.OPTIONS))}")
    return {k: cls.option_type(k).check(k, v) for k, v in user.items()}


def merge_options(cls: type[Backend], entry: ModelEntry, given: dict[str, Any], evaluate: bool) -> dict[str, Any]:
    """Fallbacks < catalog defaults (or eval settings) < the caller's options, as ``given_options`` returns them."""
    preset = {**entry.defaults, **(entry.eval if evaluate else {})}
    fallback = {**cls.OPTIONS, **(cls.EVAL_OPTIONS if evaluate else {})}
    merged = {**fallback, **{k: v for k, v in preset.items() if k in cls.OPTIONS}}
    if "imgsz" in cls.OPTIONS and entry.input_size:
        merged["imgsz"] = entry.input_size
    merged.update(given)
    return merged


def check_against_model(backend: Backend, given: dict[str, Any]) -> None:
    """The caller's options that only the loaded model can judge: ``imgsz`` on a model whose file fixes its input
    size (accepted only when it repeats that size: the model cannot run at another), and class ids beyond the
    model's class list (they would silently match nothing). Class names are turned into the model's ids here, in
    the backend's options (the ids its postprocess filters by)."""
    name = backend.entry.name
    size = given.get("imgsz")
    if size is not None and backend.input_hw is not None and as_hw(size) != backend.input_hw:
        h, w = backend.input_hw
        raise OptionError(f"imgsz {size}: {name} has a fixed {h}x{w} input ({backend.weights.name}); "
                          f"leave imgsz out or give {h if h == w else (h, w)}")
    if given.get("classes") is None:
        return
    ids = backend.options["classes"] = class_ids(given["classes"], backend.class_names, name)
    n = len(backend.class_names)
    if ids and max(ids) >= n:
        bad = ", ".join(str(i) for i in ids if i >= n)
        raise OptionError(f"classes {bad}: {name} has {n} classes (ids 0-{n - 1})")


def class_ids(classes: list[int | str], names: list[str], model: str) -> list[int]:
    """``classes`` (ids and/or names) as the ids of ``names``: a name matches exactly, else ignoring case; an
    unknown one is an ``OptionError`` that offers the closest names of the model."""
    import difflib

    by_lower: dict[str, list[int]] = {}
    for i, n in enumerate(names):
        by_lower.setdefault(str(n).lower(), []).append(i)
    ids: list[int] = []
    for c in classes:
        if not isinstance(c, str):
            ids.append(c)
        elif c in names:
            ids.append(names.index(c))
        elif len(by_lower.get(c.lower(), ())) == 1:
            ids.append(by_lower[c.lower()][0])
        else:
            close = difflib.get_close_matches(c.lower(), list(by_lower), n=3, cutoff=0.6)
            shown = ", ".join(map(str, names[:8])) + (f", ... ({len(names)} in all)" if len(names) > 8 else "")
            hint = f"did you mean {', '.join(close)}?" if close else f"its classes: {shown}"
            raise OptionError(f"classes: {model} has no class {c!r}; {hint}")
    return ids


class TrainedRunBackend(Backend):
    """What the backends of ``visionkit train`` runs share: the card finds the network and its classes, and
    images are preprocessed exactly as in training, through the card's ``Preprocess``. Not registered itself
    (no ``name``); ``TrainedClassify`` and ``TrainedSegment`` add their task's forward and postprocess."""

    SUFFIXES = (".pth",)

    @classmethod
    def accepts(cls, path: Path) -> bool:
        """A checkpoint of a run (a run folder or its card.json resolve to its best.pth before this is asked)."""
        from ..training.card import card_path_for

        return path.suffix.lower() in cls.SUFFIXES and card_path_for(path) is not None

    def __init__(self, entry: ModelEntry, weights: Path, device: Device, options: dict[str, Any]):
        super().__init__(entry, weights, device, options)
        from ..training.card import Preprocess, load_trained

        card, model = load_trained(weights)
        if card.task != self.task:
            raise WeightsError(f"{weights} was trained for {card.task}, not {self.task}")
        self.model = model.to(device.torch)
        self.transform = Preprocess(card.spec)
        self.class_names = card.classes
        self.size = card.spec.size

    def warmup_input(self) -> list[np.ndarray]:
        return [np.zeros((self.size, self.size, 3), np.uint8)]

    def preprocess(self, images: list[np.ndarray]) -> Any:
        import torch

        return torch.from_numpy(np.stack([self.transform(im) for im in images])).to(self.device.torch)
