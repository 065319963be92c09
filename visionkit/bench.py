"""``visionkit bench``: what each runtime x precision costs and scores, next to the reference library's own path.

Every *side* is one way to run the model end to end on decoded images (preprocess + inference + postprocess):
visionkit's ``Predictor`` on one runtime at one precision, or the reference library on the same model:

  ultralytics checkpoint (.pt)  ``YOLO(pt).predict`` (PyTorch), ``YOLO(onnx).predict`` on the ONNX export visionkit
                                runs, ``YOLO(openvino_dir).predict`` on ultralytics' own OpenVINO export (its default
                                precision: the CPU's own hint, bf16 on a CPU that has it)
  torchvision classifier        the plain torchvision forward: weights preset transforms, ``model(x)``, softmax top-k
  ONNX file                     ``onnxruntime.InferenceSession.run`` on visionkit's preprocessed input (model only)

All sides are warm and time the same images, in alternating rounds (each round runs every side once, every other
round in reverse order), so load from other processes on a shared machine hits them alike. PyTorch's process-wide
intra-op thread count is set before each side to what it would have in a process of its own: all cores for a side
that runs PyTorch models, 1 for visionkit on another runtime (its policy, ``runtimes.base.apply_thread_policy``).

    report = run_bench("yolov8n.pt", runtimes=["torch", "openvino"], precisions=["fp32", "bf16"])
    print(render_table(report))          # the terminal table;  render_markdown(report) for the README

Peak RSS is per side: the kernel's resident high-water mark is reset before a side is built (``/proc/self/
clear_refs``), so ``peak_rss_mb`` is what building and warming that side took above the process's memory before it;
where the mark cannot be reset it is the process's peak so far (``getrusage``) and the report says so.
"""

from __future__ import annotations

import logging
import os
import platform
import resource
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .device import cpu_cores
from .errors import ModelNotFoundError, OptionError, SourceError, WeightsError, raise_if_interrupted
from .runtimes import PRECISIONS, RUNTIMES
from .runtimes.base import first_line

log = logging.getLogger("visionkit")

TIMING_IMAGES = 8  # images of --data timed per round (all of them are scored for accuracy)
BATCHES = (1,)


@dataclass
class SideResult:
    """One side's figures. ``ratio_*``: visionkit / its reference (lower is faster for latency, higher for images/s)."""

    side: str  # "visionkit" or "reference"
    runtime: str
    precision: str
    label: str  # what ran, e.g. "OpenVINO CPU bf16" or "ultralytics YOLO(pt).predict"
    latency_ms: dict[str, float] = field(default_factory=dict)  # p50, p90 per image at batch 1
    throughput: dict[str, float] = field(default_factory=dict)  # images/s per batch size (keys are str for JSON)
    peak_rss_mb: float = 0.0
    accuracy: dict[str, float] | None = None
    reference: str | None = None  # the reference this row's ratios are against (visionkit rows)
    ratio_latency: float | None = None
    ratio_throughput: dict[str, float] = field(default_factory=dict)
    ratio_vs_base: float | None = None  # latency against the reference's base path (e.g. ultralytics' PyTorch)
    note: str = ""


@dataclass
class BenchReport:
    model: str
    task: str
    family: str
    device: str
    imgsz: int | None
    batches: list[int]
    runs: int
    images: list[str]
    conditions: dict[str, Any]
    results: list[SideResult]
    skipped: list[str]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class _Side:
    """A runnable side: ``run(images)`` processes a list of decoded images in one call at its batch size."""

    result: SideResult
    run: Callable[[list[np.ndarray]], object]
    set_batch: Callable[[int], None]
    torch_threads: int


# -- arguments -----------------------------------------------------------------------------------------------
def parse_list(value: str, known: Sequence[str], what: str) -> list[str]:
    """``all`` or a comma-separated list of ``known`` names; OptionError naming the unknown ones."""
    if value.strip() == "all":
        return list(known)
    names = [v.strip() for v in value.split(",") if v.strip()]
    unknown = [n for n in names if n not in known]
    if unknown or not names:
        raise OptionError(f"{what} {value!r}: expected all or a comma-separated list of {', '.join(known)}")
    return list(dict.fromkeys(names))


def parse_batches(value: str) -> list[int]:
    """``1,8,32`` -> [1, 8, 32]; OptionError for anything but positive integers."""
    try:
        sizes = [int(v) for v in value.split(",") if v.strip()]
    except ValueError:
        sizes = []
    if not sizes or any(s < 1 or s > 4096 for s in sizes):
        raise OptionError(f"--batch {value!r}: expected comma-separated batch sizes between 1 and 4096, e.g. 1,8,32")
    return sorted(set(sizes))


# -- memory ------------------------------------------------------------------------------------------------
def _reset_peak_rss() -> bool:
    """Reset the kernel's resident high-water mark (Linux ``clear_refs`` 5); False where that is not possible."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def _rss_mb(key: str) -> float:
    """``VmRSS`` or ``VmHWM`` of this process in MiB from /proc; getrusage's peak where /proc is missing."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# -- inputs ------------------------------------------------------------------------------------------------
@dataclass
class EvalSet:
    """Where the images come from, and what scores them: COCO (detect) or labels.csv (classify)."""

    images_dir: Path
    annotations: Path | None = None
    labels: Path | None = None


def eval_set(data: str | Path, task: str) -> EvalSet:
    """``data`` as ``visionkit eval`` reads it: detect = images/ + annotations/*.json (instances), classify =
    images/ + labels.csv; SourceError naming what is missing."""
    root = Path(data)
    images = root / "images"
    if not images.is_dir():
        raise SourceError(f"--data {root}: no images/ folder in it")
    if task == "detect":
        candidates = sorted((root / "annotations").glob("instances*.json")) or sorted(
            (root / "annotations").glob("*.json"))
        if not candidates:
            raise SourceError(f"--data {root}: no annotations/*.json (COCO instances) in it")
        return EvalSet(images, annotations=candidates[0])
    if task == "classify":
        if not (root / "labels.csv").is_file():
            raise SourceError(f"--data {root}: no labels.csv in it")
        return EvalSet(images, labels=root / "labels.csv")
    raise OptionError(f"--data: accuracy is measured for detect and classify models, not {task}")


def timing_images(data: EvalSet | None) -> tuple[list[str], list[np.ndarray]]:
    """The images every side times: the first ``TIMING_IMAGES`` of --data, else ultralytics' bus.jpg and zidane.jpg."""
    from .io.images import IMAGE_SUFFIXES, read_image

    if data is None:
        from ultralytics.utils import ASSETS

        paths = [ASSETS / "bus.jpg", ASSETS / "zidane.jpg"]
    else:
        paths = sorted(p for p in data.images_dir.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)[:TIMING_IMAGES]
        if not paths:
            raise SourceError(f"--data: no images in {data.images_dir}")
    return [p.name for p in paths], [read_image(p) for p in paths]


# -- sides -------------------------------------------------------------------------------------------------
def _predictor(task: str, model: str, weights: str | None, device: str, runtime: str, precision: str,
               options: dict[str, Any], evaluate: bool = False) -> Any:
    from .predictor import Predictor

    return Predictor(task, model, weights=weights, device=device, runtime=runtime, precision=precision,
                     evaluate=evaluate, **options)


def visionkit_side(predictor: Any, runtime: str) -> _Side:
    """visionkit's whole pipeline (``Predictor.predict``), warm; its batch size set per throughput run."""
    predictor.warmup()

    def set_batch(size: int) -> None:
        predictor.batch_size = size

    threads = cpu_cores() if runtime == "torch" else 1
    session = getattr(predictor.backend, "session", None)
    precision = predictor.precision or (session.precision if session is not None else "default")
    result = SideResult("visionkit", runtime, precision, predictor.backend.describe())
    return _Side(result, predictor.predict, set_batch, threads)


class _Batched:
    """A reference that takes one list per call at any batch size, or, where its model has a fixed batch of 1,
    one image per call in a loop (what that export allows)."""

    def __init__(self, call: Callable[[list[np.ndarray]], object], fixed_one: bool = False):
        self.call = call
        self.fixed_one = fixed_one

    def run(self, images: list[np.ndarray]) -> object:
        if self.fixed_one:
            return [self.call([image]) for image in images]
        return self.call(images)


def _sync(device: str) -> Callable[[], None]:
    if device.startswith("cuda"):
        import torch

        return torch.cuda.synchronize
    return lambda: None


def ultralytics_references(weights: Path, runtimes: list[str], device: str, imgsz: int | None,
                           onnx_file: Path | None, scratch: Path) -> dict[str, _Side]:
    """ultralytics' own predict on the checkpoint (torch), on the ONNX export visionkit runs (onnx) and on its own
    OpenVINO export (openvino), each warm."""
    import shutil

    from ultralytics import YOLO

    sync = _sync(device)
    kwargs: dict[str, Any] = {"device": device, "verbose": False, **({"imgsz": imgsz} if imgsz else {})}
    files: dict[str, tuple[str, str, bool]] = {"torch": (str(weights), "ultralytics YOLO(pt).predict", False)}
    if "onnx" in runtimes and onnx_file is not None:
        files["onnx"] = (str(onnx_file), "ultralytics YOLO(onnx).predict", False)
    if "openvino" in runtimes and not device.startswith("cuda"):
        copy = scratch / weights.name  # the exporter writes next to its input: never into the user's folder
        shutil.copyfile(weights, copy)
        with _quiet_ultralytics():
            exported = YOLO(str(copy)).export(format="openvino", device="cpu", verbose=False,
                                              **({"imgsz": imgsz} if imgsz else {}))
        files["openvino"] = (str(exported), "ultralytics YOLO(openvino).predict (its default precision)", True)
    sides = {}
    for runtime, (path, label, fixed_one) in files.items():
        with _quiet_ultralytics():
            model = YOLO(path, task="detect" if runtime != "torch" else None)

        def call(images: list[np.ndarray], model: Any = model) -> object:
            out = model.predict(images, **kwargs)
            sync()
            return out

        batched = _Batched(call, fixed_one)
        with _quiet_ultralytics():  # its first call says which runtime it loaded
            batched.run([np.zeros((64, 64, 3), np.uint8)])  # warm: lazy imports, first-call allocations
        precision = "default" if runtime == "openvino" else "fp32"
        note = "fixed batch 1: images one per call" if fixed_one else ""
        sides[runtime] = _Side(SideResult("reference", runtime, precision, label, note=note), batched.run,
                               lambda size: None, cpu_cores())
    return sides


@contextmanager
def _quiet_ultralytics() -> Iterator[None]:
    """ultralytics' INFO lines (exports, "Loading ... for ONNX Runtime inference") off while the references load."""
    from ultralytics.utils import LOGGER

    level = LOGGER.level
    LOGGER.setLevel(logging.WARNING)
    try:
        yield
    finally:
        LOGGER.setLevel(level)


def torchvision_reference(predictor: Any, device: str) -> dict[str, _Side]:
    """The plain torchvision forward of the same architecture and weights: preset transforms, model, softmax top-k."""
    import torch
    import torchvision

    from .weights import resolve_verified

    entry = predictor.entry
    path, _ = resolve_verified(entry, predictor.weights_arg)
    model = torchvision.models.get_model(entry.arch or entry.name, weights=None)
    model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    model = model.eval().to(device)
    transforms = torchvision.models.get_weight(entry.extra["weights_enum"]).transforms()
    top_k = predictor.options.get("top_k", 5)
    sync = _sync(device)

    def call(images: list[np.ndarray]) -> object:
        with torch.inference_mode():
            x = torch.stack([transforms(torch.from_numpy(np.ascontiguousarray(im[..., ::-1].transpose(2, 0, 1))))
                             for im in images]).to(device)
            out = model(x).softmax(1).topk(top_k, 1)
            out.values.cpu()
        sync()
        return out

    call([np.zeros((64, 64, 3), np.uint8)])
    label = "torchvision forward"
    return {"torch": _Side(SideResult("reference", "torch", "fp32", label), call, lambda size: None, cpu_cores())}


def onnxruntime_reference(predictor: Any, path: Path, images: list[np.ndarray]) -> dict[str, _Side]:
    """onnxruntime direct on the file: ``session.run`` of visionkit's preprocessed input for each image (made once,
    untimed), so the ratio is the cost of visionkit's whole pipeline over the bare model call."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = ort.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    backend = predictor.backend
    inputs = {id(im): np.asarray(_as_numpy(backend.preprocess([im]))) for im in images}
    fixed_one = isinstance(session.get_inputs()[0].shape[0], int)

    def call(batch: list[np.ndarray]) -> object:
        x = np.concatenate([inputs[id(im)] for im in batch])
        return session.run(None, {name: x})

    batched = _Batched(call, fixed_one)
    batched.run(images[:1])
    note = "model only (no pre/postprocess)" + ("; fixed batch 1: images one per call" if fixed_one else "")
    result = SideResult("reference", "onnx", "fp32", "onnxruntime session.run", note=note)
    return {"onnx": _Side(result, batched.run, lambda size: None, 1)}


def _as_numpy(batch: Any) -> Any:
    """A preprocessed batch as numpy (the first element where a codec hands over a list of arrays)."""
    if isinstance(batch, list):
        batch = batch[0]
    return batch.cpu().numpy() if hasattr(batch, "cpu") else batch


# -- timing ------------------------------------------------------------------------------------------------
# Pause before each side's turn: a runtime's threads keep spinning for a while after a call returns (ONNX Runtime's
# default), and without the pause that spin lands in the next side's time (measured: a spinning onnxruntime
# reference made the side after it 1.5-2x slower on 2 cores).
SETTLE_S = 0.02

def _rounds(sides: list[_Side], work: Callable[[_Side], float], runs: int) -> list[list[float]]:
    """``runs`` rounds; each calls ``work(side)`` once for every side (reversed every other round), in the side's
    own PyTorch thread count, after a pause of ``SETTLE_S``; returns each side's values in side order."""
    import torch

    values: list[list[float]] = [[] for _ in sides]
    order = list(enumerate(sides))
    for i in range(runs):
        for index, side in (order if i % 2 == 0 else order[::-1]):
            torch.set_num_threads(side.torch_threads)
            time.sleep(SETTLE_S)
            values[index].append(work(side))
    return values


def _ms(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return (time.perf_counter() - start) * 1e3


def measure(sides: list[_Side], images: list[np.ndarray], batches: list[int], runs: int) -> None:
    """Latency p50/p90 per image (batch 1, every image each round) and images/s at every batch size, into each
    side's result; one untimed round of each first."""
    for side in sides:
        side.set_batch(1)

    def latency(side: _Side) -> list[float]:
        return [_ms(lambda im=im: side.run([im])) for im in images]

    _rounds(sides, latency, 1)
    per_image = _rounds(sides, latency, runs)
    for side, rounds in zip(sides, per_image):
        flat = [v for r in rounds for v in r]
        side.result.latency_ms = {"p50": round(statistics.median(flat), 2),
                                  "p90": round(float(np.percentile(flat, 90)), 2)}
    for size in batches:
        batch = [images[i % len(images)] for i in range(size)]
        for side in sides:
            side.set_batch(size)
        def whole(side: _Side, batch: list[np.ndarray] = batch) -> float:
            return _ms(lambda: side.run(batch))

        _rounds(sides, whole, 1)
        times = _rounds(sides, whole, runs)
        for side, ms in zip(sides, times):
            side.result.throughput[str(size)] = round(size / (statistics.median(ms) / 1e3), 2)
        for side in sides:
            side.set_batch(1)


def score(predictor: Any, data: EvalSet) -> dict[str, float]:
    """mAP50-95 / mAP50 (detect, pycocotools) or top-1 / top-5 (classify) of ``predictor`` on ``data``."""
    if data.annotations is not None:
        from .eval.coco import evaluate_detector

        coco = evaluate_detector(predictor, data.images_dir, data.annotations)
        return {"map50_95": round(coco.map, 4), "map50": round(coco.map50, 4), "images": coco.images}
    from .eval.classify import evaluate_classifier

    assert data.labels is not None
    top = evaluate_classifier(predictor, data.images_dir, data.labels)
    return {"top1": round(top.top1_rate, 4), "top5": round(top.top5_rate, 4), "images": top.images}


# -- the run -----------------------------------------------------------------------------------------------
def run_bench(model: str, *, task: str = "detect", weights: str | None = None, runtimes: Sequence[str] = ("torch",),
              precisions: Sequence[str] = ("fp32",), imgsz: int | None = None, batches: Sequence[int] = BATCHES,
              data: str | Path | None = None, runs: int = 10, device: str = "cpu",
              progress: Callable[[str], None] = lambda line: None) -> BenchReport:
    """Build every visionkit runtime x precision that runs ``model`` here (the others become one-line ``skipped``
    notes) and the reference sides, time them all in the same alternating rounds, score them on ``data``."""
    import torch

    if runs < 1:
        raise OptionError(f"--runs must be a positive integer, got {runs}")
    for name in runtimes:
        if name not in RUNTIMES:
            raise OptionError(f"unknown runtime {name!r}: expected {', '.join(RUNTIMES)}")
    for name in precisions:
        if name not in PRECISIONS:
            raise OptionError(f"unknown precision {name!r}: expected {', '.join(PRECISIONS)}")
    evals = eval_set(data, task) if data is not None else None
    names, images = timing_images(evals)
    options = {"imgsz": imgsz} if imgsz else {}
    resettable = _reset_peak_rss()
    skipped: list[str] = []
    sides: list[_Side] = []
    scorers: list[tuple[SideResult, Any]] = []
    first: Any = None
    for runtime in runtimes:
        try:  # the runtime itself: installed, and one this model family runs on (no model built yet)
            _predictor(task, model, weights, device, runtime, None, options)
        except OptionError as e:
            skipped.append(f"{runtime}: {e}")
            progress(f"skip {runtime}: {e}")
            continue
        for precision in precisions:
            before = _rss_mb("VmRSS")
            _reset_peak_rss()
            try:
                predictor = _predictor(task, model, weights, device, runtime, precision, options)
                side = visionkit_side(predictor, runtime)
            except (OptionError, WeightsError) as e:
                if isinstance(e, ModelNotFoundError):
                    raise
                skipped.append(f"{runtime} {precision}: {e}")
                progress(f"skip {runtime} {precision}: {e}")
                continue
            side.result.peak_rss_mb = round(_rss_mb("VmHWM") - (before if resettable else 0), 1)
            progress(f"built visionkit {side.result.label}")
            sides.append(side)
            first = first or predictor
            if evals is not None:
                scorers.append((side.result, lambda r=runtime, p=precision: _predictor(
                    task, model, weights, device, r, p, options, evaluate=True)))
    if first is None:
        raise OptionError(f"no runtime x precision asked for runs {model} here: " + "; ".join(skipped))
    family = first.backend_class.name
    with tempfile.TemporaryDirectory(prefix="visionkit-bench-") as scratch:
        before = _rss_mb("VmRSS")
        _reset_peak_rss()
        references = _references(first, family, [s.result.runtime for s in sides], device, imgsz, images,
                                 Path(scratch))
        ref_rss = round(_rss_mb("VmHWM") - (before if resettable else 0), 1)
        for ref in references.values():
            ref.result.peak_rss_mb = ref_rss
            progress(f"built reference {ref.result.label}")
        everyone = sides + list(references.values())
        progress(f"timing {len(everyone)} sides, {runs} alternating rounds, {len(images)} images")
        threads = torch.get_num_threads()
        measure(everyone, images, list(batches), runs)
        torch.set_num_threads(threads)
    for result, make in scorers:
        progress(f"scoring {result.label}")
        result.accuracy = score(make(), evals)  # type: ignore[arg-type]
    _ratios([s.result for s in sides], {k: v.result for k, v in references.items()})
    conditions = {"cpu": platform.processor() or platform.machine(), "cpu_cores": cpu_cores(),
                  "load_average": [round(v, 2) for v in os.getloadavg()], "torch": torch.__version__,
                  "torch_threads": "all cores for PyTorch sides, 1 for visionkit on other runtimes",
                  "peak_rss": "per side (high-water mark reset)" if resettable else "process peak so far",
                  "warm": True, "order": "alternating rounds, every other one reversed"}
    return BenchReport(model=str(model), task=task, family=family, device=str(first.device), imgsz=imgsz,
                       batches=list(batches), runs=runs, images=names, conditions=conditions,
                       results=[s.result for s in everyone], skipped=skipped)


def _references(predictor: Any, family: str, runtimes: list[str], device: str, imgsz: int | None,
                images: list[np.ndarray], scratch: Path) -> dict[str, _Side]:
    """The reference library's sides for this model family (none for a family without one)."""
    from .weights import resolve_verified

    path, _ = resolve_verified(predictor.entry, predictor.weights_arg)
    try:
        if family == "ultralytics" and path.suffix == ".pt":
            from .tasks.yolo import YoloCodec

            onnx_file = YoloCodec.export_onnx(path) if "onnx" in runtimes else None
            return ultralytics_references(path, runtimes, device, imgsz, onnx_file, scratch)
        if family == "torchvision":
            return torchvision_reference(predictor, device)
        if path.suffix.lower() == ".onnx":
            return onnxruntime_reference(predictor, path, images)
    except Exception as e:  # the reference library failing is a figure we cannot give, not a reason to stop
        raise_if_interrupted(e)
        log.warning("reference for %s not measured: %s", path.name, first_line(e))
    return {}


def _ratios(ours: list[SideResult], references: dict[str, SideResult]) -> None:
    """Each visionkit row against the reference of its runtime (else the base one: the reference's first path)."""
    if not references:
        return
    base = next(iter(references.values()))
    for row in ours:
        ref = references.get(row.runtime, base)
        row.reference = ref.label
        row.ratio_latency = round(row.latency_ms["p50"] / ref.latency_ms["p50"], 3)
        row.ratio_vs_base = round(row.latency_ms["p50"] / base.latency_ms["p50"], 3)
        row.ratio_throughput = {b: round(v / ref.throughput[b], 3) for b, v in row.throughput.items()
                                if ref.throughput.get(b)}


# -- output ------------------------------------------------------------------------------------------------
def _rows(report: BenchReport) -> tuple[list[str], list[list[str]]]:
    batches = [str(b) for b in report.batches]
    acc_key = next((k for r in report.results if r.accuracy for k in r.accuracy if k != "images"), None)
    columns = ["side", "runtime", "precision", "p50 ms", "p90 ms", *(f"img/s b{b}" for b in batches), "RSS MB"]
    if acc_key:
        columns.append(acc_key.replace("_", "-"))
    columns += ["x ref (p50)", "x base ref"]
    rows = []
    for r in report.results:
        row = ["visionkit" if r.side == "visionkit" else r.label, r.runtime, r.precision,
               f"{r.latency_ms['p50']:.1f}", f"{r.latency_ms['p90']:.1f}",
               *(f"{r.throughput.get(b, 0):.1f}" for b in batches), f"{r.peak_rss_mb:.0f}"]
        if acc_key:
            row.append(f"{r.accuracy[acc_key]:.3f}" if r.accuracy else "")
        row += [f"{r.ratio_latency:.2f}" if r.ratio_latency is not None else "",
                f"{r.ratio_vs_base:.2f}" if r.ratio_vs_base is not None else ""]
        rows.append(row)
    return columns, rows


def render_table(report: BenchReport) -> str:
    """The terminal table: one row per side, then the skipped combinations, one line each."""
    columns, rows = _rows(report)
    widths = [max(len(c), *(len(r[i]) for r in rows)) for i, c in enumerate(columns)]
    lines = [f"{report.model} ({report.family}, {report.task}) on {report.device}, images {', '.join(report.images)}"
             f", {report.runs} alternating runs",
             "  ".join(c.ljust(w) for c, w in zip(columns, widths))]
    lines += ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)) for row in rows]
    lines += [f"skipped {note}" for note in report.skipped]
    return "\n".join(lines)


def render_markdown(report: BenchReport | dict[str, Any]) -> str:
    """The README table of one report (a ``BenchReport`` or its JSON): a header line saying what was measured and
    how, then one row per side; x ref = visionkit p50 / its reference's p50."""
    if isinstance(report, dict):
        report = report_from_dict(report)
    columns, rows = _rows(report)
    head = (f"**{Path(report.model).name}** ({report.family}, {report.task}), {report.device}, "
            f"{'imgsz ' + str(report.imgsz) + ', ' if report.imgsz else ''}"
            f"images {', '.join(report.images)}; median of {report.runs} alternating runs, "
            f"load average {', '.join(str(v) for v in report.conditions.get('load_average', []))}")
    table = ["| " + " | ".join(columns) + " |", "|" + "---|" * 3 + "---:|" * (len(columns) - 3)]
    table += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join([head, "", *table, *([""] + [f"- skipped {n}" for n in report.skipped] if report.skipped else [])])


def report_from_dict(data: dict[str, Any]) -> BenchReport:
    """A report read back from its JSON (``BenchReport.to_dict``)."""
    known = set(BenchReport.__dataclass_fields__) - {"results"}
    fields = {k: v for k, v in data.items() if k in known}  # extra keys (a script's "repeats") are left out
    return BenchReport(**fields, results=[SideResult(**r) for r in data["results"]])
