"""The one contract every task shares.

    predictor = visionkit.load("detect", "yolo11n")
    result = predictor("photo.jpg")                      # one input -> one result
    results = predictor(["a.jpg", frame_bgr, pil_image])  # a list -> a list, in order
    for frame, result in predictor.stream("clip.mp4"):    # any source -> a generator, nothing accumulates
        ...

Stages are preprocess -> forward (under ``torch.inference_mode``) -> postprocess, each timed into
``result.speed``. Configuration is fixed in ``__init__``; the model is built on first use, so a Predictor
pickles cheaply (e.g. as a Ray ``map_batches`` callable class) and each worker loads it once.

Threads: one Predictor may be called from several threads at once, for every backend, and gives each call the
result it would get alone. The model is built once (under a lock) however many threads ask first; backends that
cannot run two inputs at once (``Backend.CONCURRENT`` false: TFLite interpreters, OpenCV's YuNet) run one call at
a time under a lock, the others side by side. What keeps state across frames is per stream: ``stream()`` of a
tracker or an action recogniser starts its own state per call, but ``TrackingPredictor.__call__`` (frame by
frame, one live state) must be fed from one thread.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, nullcontext
from dataclasses import replace
from itertools import islice
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, overload

import numpy as np

from . import catalog
from .device import Device, cpu_cores, select_device
from .errors import ModelNotFoundError, OptionError, WeightsError, raise_if_interrupted
from .io.images import IMAGE_SUFFIXES, VIDEO_SUFFIXES, read_image, to_bgr
from .io.sources import ErrorHandler, Frame, Source, open_source, reconnect_attempts
from .io.threads import BackgroundIterator, ordered_map
from .paths import user_path
from .results import Result
from .runtimes import PRECISIONS, RUNTIMES, get_runtime
from .runtimes.auto import choose_runtime
from .runtimes.base import apply_thread_policy, get_runtime_label, native_runtime
from .tasks.base import Backend, backend_class, backend_for_file, check_against_model, given_options, merge_options
from .tasks.checkpoints import trusting
from .timing import StageTimer
from .weights import resolve_verified, sha256_of

if TYPE_CHECKING:  # the composites import this module: their types only, for load()'s overloads
    from .composites.action import ActionPredictor
    from .composites.person_pose import PersonPose
    from .composites.track import TrackingPredictor

log = logging.getLogger("visionkit")


class Predictor:
    """One model behind ``__call__`` / ``predict`` / ``stream``, built on first use.

    Thread-safe: several threads may call one Predictor at once and each call gets the result it would get alone;
    the model is built once, and a backend that runs one input at a time (TFLite, OpenCV's YuNet) is serialised by a
    lock (``exclusive()``), which pickling leaves out and unpickling makes anew. Per-stream state is per ``stream()``
    call, so two threads may each stream their own source through one predictor.
    """

    def __init__(self, task: str, model: str | Path | None = None, *, weights: str | Path | None = None,
                 device: str = "auto", runtime: str | None = None, precision: str | None = None,
                 batch_size: int = 1, workers: int | None = 1,
                 reconnect: int | None = None, evaluate: bool = False, trust_weights: bool = False, **options: Any):
        """
        Args:
            task: detect, classify, pose, segment or action.
            model: a catalog name (``visionkit models``) or a model file path; None = the task's default.
            weights: a weights file for a catalog architecture (overrides the catalog's file, not hash-checked).
            device: auto (CUDA with fp16 when present, else CPU), cpu, cuda or cuda:N.
            runtime: None = the model file's own (PyTorch for .pt/.pth, ONNX Runtime for .onnx, OpenVINO for .xml);
                "onnx" or "openvino" run a PyTorch model's ONNX export (made once by the family's exporter and
                cached); "auto" = the fastest installed runtime that runs the model on this device, measured once on
                a warm-up input and remembered (``visionkit.runtimes.auto``). See ``visionkit.runtimes``.
            precision: fp32, fp16, bf16 or int8; None = the runtime's default (fp32 on a CPU, fp16 on CUDA). A
                runtime that cannot honour it on the device refuses it; int8 runs quantized files only
                (``visionkit export --precision int8``).
            batch_size: frames per forward pass in ``stream`` (more = throughput, less = latency).
            workers: batches ``stream`` runs at once, each in its own thread, for files (a camera or stream URL
                always gets 1); on a CPU each gets cores / workers threads (ONNX Runtime per session; PyTorch's
                count is process-wide and set to the same). Two single-threaded inferences side by side do up to
                1.5x the work of one split over two cores on small models (PyTorch; ONNX Runtime gains less), so
                2 is the throughput setting for videos and folders; 1 (default) gives the lowest latency per
                image. None = 2 on a multi-core CPU when the backend can run inputs side by side, else 1 (the
                CLI's default for videos and folders).
            reconnect: times ``stream`` reopens a camera or stream URL that drops, with backoff from 0.5 s doubling
                to 8 s (None = 5, 0 = off); the frames after a reconnect go on under the same source name.
            evaluate: use the catalog's scoring settings (e.g. conf 0.001) instead of the interactive ones.
            trust_weights: load a pickled checkpoint (.pt) with the full unpickler, which runs any code the file
                names; by default only what a model checkpoint is made of is loaded, and anything else is refused
                (a catalog file whose sha256 matched the catalog is trusted either way).
            options: backend options such as conf, iou, imgsz, max_det; unknown names, values of the wrong type or
                range (``visionkit.tasks.base.OPTION_TYPES``) and, once the model is loaded, values it rules out (an
                imgsz other than a fixed-size file's, class ids beyond its class list) raise ``OptionError``.
        """
        self.task = task
        self.entry, self._backend_cls, model_path = _resolve_model(task, model, fallback=weights is None)
        self.weights_arg = weights if weights is not None else model_path
        self.runtime = check_runtime(self._backend_cls, self.entry, self.weights_arg, runtime)
        self.precision = check_precision(precision)
        self.trust_weights = bool(trust_weights)
        self.device_spec = device
        self.batch_size = self._backend_cls.option_type("batch_size").check("batch_size", batch_size)
        self._auto_workers = workers is None
        self.workers = _check_workers(workers, self._backend_cls, self.entry, self.concurrent)
        self.reconnect = reconnect_attempts(reconnect)
        self._given = given_options(self._backend_cls, options)  # checked against the model once it is loaded, too
        self.options = merge_options(self._backend_cls, self.entry, self._given, evaluate)
        self._backend: Backend | None = None
        self._new_locks()

    def _new_locks(self) -> None:
        """The build lock (one build however many threads ask first) and, for a backend that runs one input at a
        time, the inference lock; made anew on unpickling, as locks do not pickle."""
        self._build_lock = threading.Lock()
        self._run_lock: AbstractContextManager[Any] = nullcontext() if self.concurrent else threading.Lock()

    @property
    def concurrent(self) -> bool:
        """Whether several inputs may run at once: the codec keeps no per-call state and the runtime's sessions
        take calls from several threads (TFLite interpreters and OpenCV nets do not)."""
        return self._backend_cls.CONCURRENT and runtime_concurrent(self.runtime)

    # -- model life cycle --------------------------------------------------------------------------------
    @property
    def backend(self) -> Backend:
        """The model, built on first use by exactly one thread when several ask at once, then run once on a dummy
        input (``_prime``): the stages import their libraries lazily (torch, ultralytics: seconds) and runtimes
        allocate on their first run, and neither may be counted in a real result's ``speed``."""
        if self._backend is None:
            with self._build_lock:
                if self._backend is None:
                    self._backend = self._build()
                    try:
                        self._prime()
                    except BaseException:
                        self._backend = None
                        raise
        return self._backend

    def exclusive(self) -> AbstractContextManager[Any]:
        """Hold this around any direct use of ``backend``'s stages (``predict_in_boxes``...): a lock when the backend
        runs one input at a time (``Backend.CONCURRENT`` false), nothing when inputs may run side by side."""
        return self._run_lock

    def _build(self) -> Backend:
        device: Device = select_device(self.device_spec)
        if self._auto_workers and device.type != "cpu":
            self.workers = 1  # a GPU runs one batch at a time anyway
        if self.workers > 1 and device.type == "cpu":
            device = replace(device, threads=max(cpu_cores() // self.workers, 1))
        path, verified = resolve_verified(self.entry, self.weights_arg)
        with trusting(path if self.trust_weights or verified else None):
            if self.runtime == "auto":
                self.runtime = choose_runtime(self._backend_cls, self.entry, path, device, self.options,
                                              self.precision)
            device = replace(device, runtime=self.runtime or native_runtime(path), precision=self.precision)
            apply_thread_policy(device)
            try:
                backend = self._backend_cls(self.entry, path, device, self.options)
            except (WeightsError, ModelNotFoundError, OptionError):  # already user-facing: keep the type
                raise
            except Exception as e:  # a library's own failure to parse the file: report it as bad weights
                raise_if_interrupted(e)
                first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
                raise WeightsError(f"cannot load {self.entry.name} from {path}: {first}") from e
        check_against_model(backend, self._given)
        log.info("loaded %s (%s) on %s, %s", self.entry.name, self._backend_cls.name, device, backend.describe())
        return backend

    def _prime(self) -> None:
        """One untimed dummy batch through the three stages (lazy imports, CUDA kernel selection)."""
        self._run(self.backend.warmup_input())

    @property
    def runs_in_boxes(self) -> bool:
        """Whether the model estimates inside given boxes (single-person pose: MoveNet, BlazePose), i.e. whether
        ``predict_in_boxes`` works; known before the model is built."""
        return hasattr(self._backend_cls, "predict_in_boxes")

    def predict_in_boxes(self, image: Any, xyxy: Any) -> Result:
        """The model run inside each (x1, y1, x2, y2) box of one image (a path, BGR array or PIL image): row i of the
        result belongs to box i, nothing filtered. What top-down composites (``PersonPose``) build on."""
        if not self.runs_in_boxes:
            raise OptionError(f"{self.entry.name} ({self._backend_cls.name}) finds its objects itself; it does not "
                              "run inside given boxes")
        backend = self.backend
        with self.exclusive():
            result: Result = backend.predict_in_boxes(_load_image(image), xyxy)  # type: ignore[attr-defined]
        return result

    def warmup(self) -> Predictor:
        """Load the model now (it is primed with a dummy batch), so the first real frame pays for neither."""
        _ = self.backend
        return self

    @property
    def backend_class(self) -> type[Backend]:
        """The backend that runs the model (known before the model is built)."""
        return self._backend_cls

    @property
    def class_names(self) -> list[str]:
        return self.backend.class_names

    @property
    def device(self) -> Device:
        return self.backend.device

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_backend"] = None  # workers rebuild the model from the config
        del state["_build_lock"], state["_run_lock"]
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._new_locks()

    def __repr__(self) -> str:
        opts = ", ".join(f"{k}={v}" for k, v in self.options.items())
        runtime = f", runtime={self.runtime!r}" if self.runtime else ""
        return (f"Predictor(task={self.task!r}, model={self.entry.name!r}, backend={self._backend_cls.name!r}"
                f"{runtime}, {opts})")

    # -- inference -----------------------------------------------------------------------------------------
    def _run(self, images: list[np.ndarray]) -> list[Result]:
        backend = self.backend
        import torch  # imported at build already (by the priming pass): kept out of the timed stages

        timer = StageTimer(backend.synchronize)
        with self.exclusive():
            with timer.stage("preprocess"):
                batch = backend.preprocess(images)
            with timer.stage("inference"), torch.inference_mode():
                raw = backend.forward(batch)
            with timer.stage("postprocess"):
                results = backend.postprocess(raw, batch, images)
        speed = timer.speed(per=len(images))
        for result, image in zip(results, images):
            result.speed = speed
            result.image_shape = image.shape[:2]
        return results

    def predict(self, images: list[Any]) -> list[Result]:
        """Results for a list of in-memory images or image paths, in order, batched by ``batch_size``."""
        out: list[Result] = []
        for start in range(0, len(images), self.batch_size):
            chunk = [_load_image(x) for x in images[start:start + self.batch_size]]
            out.extend(self._run(chunk))
        for i, r in enumerate(out):
            r.frame_index = i
        return out

    def __call__(self, inputs: Any) -> Result | list[Result]:
        """One image (path, numpy BGR array, PIL image) -> one result; a list -> a list of results.

        A directory, glob or video path also returns a list; use ``stream`` for long inputs, so results
        are not all held in memory.
        """
        if isinstance(inputs, (list, tuple)):
            return self.predict(list(inputs))
        if isinstance(inputs, (str, Path)) and not is_single_image(inputs):
            return [result for _, result in self.stream(inputs)]
        return self.predict([inputs])[0]

    def stream(self, source: Any, on_error: ErrorHandler | None = None, prefetch: int = 4,
               reconnect: int | None = None, vid_stride: int = 1) -> Iterator[tuple[Frame, Result]]:
        """Yield ``(frame, result)`` for every frame of any source (see ``visionkit.open_source``).

        ``on_error`` receives a ``SourceError`` for each bad item of a multi-item source and the run goes on;
        without it the first bad item raises. Frames are decoded ``prefetch`` ahead in a background thread
        (0 = in this thread); for live sources (camera, stream URL) only the newest frame is kept, so results
        never fall behind the scene. With ``workers`` > 1, that many batches are in inference at once and
        results still come out in frame order. ``reconnect`` overrides the predictor's (see ``__init__``).
        ``vid_stride`` N: every N-th frame of videos and streams, with their source frame index and timestamp.
        """
        src: Source = open_source(source, on_error, self.reconnect if reconnect is None else reconnect, vid_stride)
        frames: Iterator[Frame] = iter(src)
        if prefetch > 0 and (src.live or len(src) > 1):
            frames = iter(BackgroundIterator(frames, maxsize=prefetch, latest_only=src.live, name="decode"))
        batches = iter(lambda: list(islice(frames, self.batch_size)), [])
        if self.workers > 1 and not src.live:  # live: one frame at a time, the newest, for the least latency
            self.backend  # noqa: B018  (built here, before the workers start: it may lower self.workers on a GPU)
            done = ordered_map(lambda b: self._run([f.image for f in b]), batches, self.workers, name="infer")
        else:
            done = ((b, self._run([f.image for f in b])) for b in batches)
        for batch, results in done:
            for frame, result in zip(batch, results):
                result.frame_index = frame.index
                yield frame, result


def is_single_image(path: str | Path) -> bool:
    p = Path(path)
    return p.suffix.lower() in IMAGE_SUFFIXES or (p.is_file() and p.suffix.lower() not in VIDEO_SUFFIXES)


def _load_image(x: Any) -> np.ndarray:
    return read_image(x) if isinstance(x, (str, Path)) else to_bgr(x)


def _resolve_model(task: str, model: str | Path | None,
                   fallback: bool = True) -> tuple[catalog.ModelEntry, type[Backend], Path | None]:
    """Catalog entry, backend class and (for a model given as a file) its path. No model: the task's default, or with
    ``fallback`` (no weights file given for it) the best local one when its weights cannot be had (defaults.py)."""
    if model is None:
        from .defaults import usable_default

        entry = usable_default(task) if fallback else catalog.default_model(task)
        return entry, backend_class(task, entry.backend), None
    text = str(model)
    path = user_path(text, WeightsError)
    if not _in_catalog(text) and path.exists():  # a model file, or a training run (folder or card.json)
        from .training.card import weights_file

        file = weights_file(path)  # a run stands for its best checkpoint; a file for itself
        cls = backend_for_file(task, file)
        known = _catalog_entry_of_file(task, file, cls)
        if known is not None:  # the catalog's own file, moved: its settings (interactive and eval) still apply
            return known, backend_class(task, known.backend), file
        name = path.stem if path.is_file() else path.name
        return catalog.ModelEntry(name=name, task=task, backend=cls.name, file=file.name), cls, file
    if not _in_catalog(text) and _in_catalog(path.stem) and catalog.get_entry(path.stem).file == path.name:
        text = path.stem  # ultralytics-style "yolo11n.pt" means the catalog's yolo11n
    elif not _in_catalog(text) and path.suffix:
        raise WeightsError(f"model file not found: {path}")
    entry = catalog.get_entry(text)
    if entry.task != task:
        raise ModelNotFoundError(f"model {entry.name!r} is a {entry.task} model, not {task}")
    return entry, backend_class(task, entry.backend), None


def _catalog_entry_of_file(task: str, path: Path, cls: type[Backend]) -> catalog.ModelEntry | None:
    """The catalog entry whose weights ``path`` is: the same file name for the same backend, or the same sha256
    (hashed only when no name matched, and only against entries of this task that pin one)."""
    entries = catalog.list_models(task)
    for entry in entries:
        if entry.file == path.name and entry.backend == cls.name:
            return entry
    pinned = [e for e in entries if e.sha256]
    try:
        digest = sha256_of(path) if pinned else ""
    except OSError:  # unreadable: loading it reports that, naming the file
        return None
    return next((e for e in pinned if e.sha256 == digest), None)


def export_onnx(model: str | Path, task: str = "detect", weights: str | Path | None = None,
                trust_weights: bool = False, warn_if_onnx: bool = True) -> Path:
    """The ONNX file ``runtime="onnx"`` runs for ``model`` (a catalog name or a .pt file), exported once by the
    model family's own exporter and cached; for deploying the model elsewhere (ONNX Runtime, TensorRT, OpenVINO).
    ``trust_weights`` as for ``Predictor``.

    A model that already is ONNX is returned as it is, with a warning saying so: ``runtime="onnx"`` is a no-op for
    it too (it already runs on ONNX Runtime). A model no exporter handles raises ``OptionError``."""
    entry, cls, path = _resolve_model(task, model, fallback=weights is None)
    local, verified = resolve_verified(entry, weights if weights is not None else path)
    if local.suffix.lower() == ".onnx":
        if warn_if_onnx:
            log.warning("%s is already an ONNX model: nothing to export", local)
        return local
    if "onnx" not in cls.runtimes(local.suffix.lower()) or cls.RUNTIME != "torch":
        raise OptionError(f"{entry.name} ({cls.name} backend) does not export to ONNX")
    with trusting(local if trust_weights or verified else None):
        return cls.export_onnx(local)


def check_runtime(cls: type[Backend], entry: catalog.ModelEntry, weights: str | Path | None,
                  runtime: str | None) -> str | None:
    """``runtime`` checked against what runs this model: None (the file's own), "auto", or a registered runtime
    that is installed and that the model family runs its file on; else one ``OptionError`` line."""
    if runtime is None or runtime == "auto":
        return runtime
    if not isinstance(runtime, str):
        raise OptionError(f"runtime must be a name ({', '.join(RUNTIMES)} or auto), got {runtime!r}")
    engine = get_runtime(runtime)  # unknown, or not installed: names the extra
    suffix = Path(str(weights or entry.file or "")).suffix.lower()
    allowed = cls.runtimes(suffix)
    if runtime not in allowed:
        names = [get_runtime_label(r) for r in allowed]
        labels = names[0] if len(names) == 1 else f"{', '.join(names[:-1])} or {names[-1]}"
        raise OptionError(f"runtime {runtime}: {entry.name} runs on {labels} only, not {engine.label}")
    return runtime


def check_precision(precision: str | None) -> str | None:
    if precision is not None and precision not in PRECISIONS:
        raise OptionError(f"unknown precision {precision!r}: expected {', '.join(PRECISIONS)}")
    return precision


def runtime_concurrent(runtime: str | None) -> bool:
    """Whether ``runtime``'s sessions take calls from several threads (None, auto: the family's own runtime, whose
    concurrency the backend class states)."""
    if runtime in (None, "auto"):
        return True
    return get_runtime(runtime).concurrent


def _check_workers(workers: int | None, cls: type[Backend], entry: catalog.ModelEntry, concurrent: bool) -> int:
    if workers is None:
        return 2 if concurrent and cpu_cores() >= 2 else 1
    workers = cls.option_type("workers").check("workers", workers)
    if workers > 1 and not concurrent:
        raise OptionError(f"{entry.name} ({cls.name} backend) runs one input at a time: workers must be 1")
    return workers


def _in_catalog(name: str) -> bool:
    return name in {e.name for e in catalog.list_models()}


@overload
def load(task: Literal["track"], model: str | Path | None = None, device: str = "auto",
         **options: Any) -> TrackingPredictor: ...
@overload
def load(task: Literal["action"], model: str | Path | None = None, device: str = "auto",
         **options: Any) -> ActionPredictor: ...
@overload
def load(task: Literal["pose"], model: str | Path | None = None, device: str = "auto",
         **options: Any) -> Predictor | PersonPose: ...
@overload
def load(task: str, model: str | Path | None = None, device: str = "auto", **options: Any) -> Predictor: ...
def load(task: str, model: str | Path | None = None, device: str = "auto",
         **options: Any) -> Predictor | TrackingPredictor | ActionPredictor | PersonPose:
    """Get a Predictor for ``task`` with a catalog model name or a model file (see ``Predictor``).

    ``task="track"`` gives a ``TrackingPredictor``: a detector (``model``) plus ``tracker="bytetrack"`` or
    ``"botsort"`` (``tracker_params`` overrides ultralytics' tracker settings). ``task="action"`` gives an
    ``ActionPredictor``: clips of ``window`` frames every ``stride`` frames, ``top_k`` actions each.
    ``task="pose"`` is multi-person for every model: a single-person model (MoveNet, BlazePose) comes as a
    ``PersonPose`` on ``detector``'s person boxes (default: the best local detector; ``detector="none"``: the whole
    image), see ``visionkit.composites.person_pose.pose_predictor``; the table is ``visionkit.composites.COMPOSITES``.
    """
    from .composites import composite_for

    factory = composite_for(task)
    if factory is not None:
        return factory(model, device=device, **options)
    return Predictor(task, model, device=device, **options)
