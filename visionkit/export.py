"""``visionkit export``: a model as a deployable file for another runtime, int8 only behind an accuracy guard.

    export("yolov8n", format="onnx")                        # the ONNX file --runtime onnx runs (cached)
    export("yolov8n", format="openvino")                    # OpenVINO IR (.xml + .bin), metadata in its rt_info
    export("yolov5n", format="openvino", precision="int8",  # NNCF post-training quantization, then the guard:
           data="calib/", val="coco/", max_drop=1.0)        # fp32 and int8 scored with visionkit's own eval

The guard is what no peer toolkit has: an int8 model is handed over only when its score on the validation data is
within ``max_drop`` points of the fp32 model's (mAP50-95 points for detection, top-1 points for classification);
otherwise nothing is written and the one-line error says what was measured. The figures go into the model's card
(``<file>.card.json``). Calibration images are preprocessed by the model family's own codec, exactly as inference
preprocesses them (square letterbox for YOLO, so calibration covers the full input).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import logging
import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .errors import DataError, OptionError, SinkError
from .io.images import IMAGE_SUFFIXES, read_image

log = logging.getLogger("visionkit")
FORMATS = ("onnx", "openvino")
# The runtime each export format is for, and the file it writes.
RUNTIME_OF = {"onnx": "onnx", "openvino": "openvino"}
SUFFIX_OF = {"onnx": ".onnx", "openvino": ".xml"}
CALIBRATION_IMAGES = 300  # NNCF's default subset size: more adds time, not accuracy, on small CNNs


@dataclass
class ExportResult:
    """The exported file, and for int8 what the guard measured (fractions: 0.358 = 35.8 mAP points)."""

    path: Path
    format: str
    precision: str
    metric: str | None = None
    fp32_score: float | None = None
    int8_score: float | None = None
    card: Path | None = None
    extra_files: list[Path] = field(default_factory=list)

    @property
    def drop_points(self) -> float | None:
        if self.fp32_score is None or self.int8_score is None:
            return None
        return (self.fp32_score - self.int8_score) * 100


def export(model: str | Path, task: str = "detect", *, format: str = "onnx", precision: str | None = None,
           data: str | Path | None = None, val: str | Path | None = None, max_drop: float = 1.0,
           weights: str | Path | None = None, trust_weights: bool = False,
           output: str | Path | None = None) -> ExportResult:
    """Export ``model`` (a catalog name or a model file) for ``format``'s runtime; see the module docstring.

    ``data``: a folder of calibration images (int8 only); ``val``: validation data scored by the guard, in the
    layout ``visionkit eval TASK`` reads (detect: ``images/`` + ``annotations/*.json`` COCO; classify: images +
    ``labels.csv``). ``output``: where to write (default: visionkit's cache, printed by the CLI).
    """
    from .predictor import export_onnx

    if format not in FORMATS:
        raise OptionError(f"unknown export format {format!r}: expected {', '.join(FORMATS)}")
    precision = precision or "fp32"
    if precision not in ("fp32", "fp16", "int8"):
        raise OptionError(f"precision {precision}: export writes fp32, fp16 (OpenVINO IR weights) or int8 models "
                          "(bf16 is an inference setting: export fp32 and run it with --precision bf16)")
    if precision == "fp16" and format != "openvino":
        raise OptionError("precision fp16: only OpenVINO IR stores fp16 weights (--format openvino)")
    if precision != "int8" and (data is not None or val is not None):
        raise OptionError("--data and --val calibrate and check an int8 export: give --precision int8 with them")
    onnx = export_onnx(model, task, weights, trust_weights=trust_weights, warn_if_onnx=format == "onnx" and
                       precision == "fp32")
    metadata = _onnx_metadata(onnx)
    if precision == "int8":
        return _export_int8(model, task, onnx, metadata, format, data, val, max_drop, output, weights,
                            trust_weights)
    if format == "onnx":
        return ExportResult(_place(onnx, output), format, precision)
    target = _target(output, onnx, f"{precision}.xml")
    if not (target.is_file() and target.with_suffix(".bin").is_file()):
        _write_ir(onnx, target, metadata, compress=precision == "fp16")
    return ExportResult(target, format, precision, extra_files=[target.with_suffix(".bin")])


def _export_int8(model: str | Path, task: str, onnx: Path, metadata: dict[str, str], format: str,
                 data: str | Path | None, val: str | Path | None, max_drop: float, output: str | Path | None,
                 weights: str | Path | None, trust_weights: bool) -> ExportResult:
    from . import quantize
    from .predictor import Predictor

    if data is None or val is None:
        raise OptionError("--precision int8 needs --data CALIB_DIR (calibration images) and --val DATA (the guard "
                          "scores fp32 and int8 on it)")
    scorer = _scorer(task, Path(val))
    if not Path(data).is_dir():
        raise DataError(f"--data {data}: not a folder of calibration images")
    if Path(data).resolve() == Path(val).resolve():
        log.warning("calibrating and validating on the same images (%s): the guard's figure will be optimistic", data)
    runtime = RUNTIME_OF[format]
    # The codec of the fp32 export preprocesses the calibration images as inference would, at the full square size.
    options = {"rect": False} if task in ("detect", "pose", "segment") else {}
    codec = Predictor(task, onnx, device="cpu", runtime="onnx", **options).backend
    calibration = [np.asarray(codec.preprocess([image])) for image in _images(Path(data))]
    digest = hashlib.sha256(b"".join(a.tobytes() for a in calibration)).hexdigest()[:12]
    target = _target(output, onnx, f"int8-{digest}{SUFFIX_OF[format]}")
    with tempfile.TemporaryDirectory(dir=_scratch_dir(target), prefix=".int8-") as tmp:
        staged = Path(tmp) / target.name
        with _quiet_quantizer():
            if format == "openvino":
                quantize.quantize_openvino(onnx, calibration, staged)
            else:
                quantize.quantize_onnxruntime(onnx, calibration, staged)
        _stamp_metadata(staged, metadata)
        fp32 = scorer.score(Predictor(task, onnx, device="cpu", runtime=runtime, precision="fp32", evaluate=True))
        int8 = scorer.score(Predictor(task, staged, device="cpu", runtime=runtime, evaluate=True))
        log.info("int8 guard: %s fp32 %.3f, int8 %.3f", scorer.metric, fp32, int8)
        quantize.check_drop(fp32, int8, max_drop, scorer.metric)  # AccuracyError: nothing is written
        extra = [staged.with_suffix(".bin")] if format == "openvino" else []
        for part in (*extra, staged):  # the weights before the .xml that names them
            os.replace(part, target.with_name(part.name))
    figures = {"precision": "int8", "runtime": runtime, "format": format, "source": Path(str(model)).name,
               "calibration": {"images": len(calibration), "sha256": digest, "folder": str(data)},
               "validation": str(val), "metric": scorer.metric, "fp32_score": fp32, "int8_score": int8,
               "max_drop_points": max_drop}
    card = quantize.write_card(target, figures)
    return ExportResult(target, format, "int8", scorer.metric, fp32, int8, card,
                        [target.with_suffix(".bin")] if format == "openvino" else [])


@contextmanager
def _quiet_quantizer() -> Iterator[None]:
    """NNCF draws its progress bars on stdout (which carries the exported path, for scripts) and ONNX Runtime's
    quantizer logs advice through the root logger at warning level: neither is the user's concern here."""
    with contextlib.redirect_stdout(io.StringIO()):
        logging.disable(logging.WARNING)
        try:
            yield
        finally:
            logging.disable(logging.NOTSET)


@dataclass(frozen=True)
class _Scorer:
    metric: str
    run: Callable[[Any], float]

    def score(self, predictor: Any) -> float:
        return float(self.run(predictor))


def _scorer(task: str, val: Path) -> _Scorer:
    """visionkit's own eval for the guard, on ``val`` in the layout ``visionkit eval TASK`` reads."""
    if task == "detect":
        from .eval.coco import evaluate_detector

        images = val / "images" if (val / "images").is_dir() else val
        notes = sorted((val / "annotations").glob("*.json")) if (val / "annotations").is_dir() else \
            sorted(val.glob("*.json"))
        if not notes:
            raise DataError(f"--val {val}: no COCO annotations (annotations/*.json) to score the int8 model on")
        return _Scorer("mAP50-95", lambda p: evaluate_detector(p, images, notes[0]).map)
    if task == "classify":
        from .eval.classify import evaluate_classifier

        labels = val / "labels.csv"
        if not labels.is_file():
            raise DataError(f"--val {val}: no labels.csv to score the int8 model on")
        images = val / "images" if (val / "images").is_dir() else val
        return _Scorer("top-1", lambda p: evaluate_classifier(p, images, labels).top1_rate)
    raise OptionError(f"int8 export checks accuracy for detect and classify models; {task} is not covered yet")


def _images(folder: Path) -> Iterator[np.ndarray]:
    files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)[:CALIBRATION_IMAGES]
    if not files:
        raise DataError(f"--data {folder}: no images to calibrate on")
    for file in files:
        yield read_image(file)


def _onnx_metadata(path: Path) -> dict[str, str]:
    from .runtimes import file_facts

    return dict(file_facts(path).metadata)


def _stamp_metadata(path: Path, metadata: dict[str, str]) -> None:
    """Carry the fp32 export's metadata (class names, stride, task...) into the quantized file, which the
    quantizers drop: an ONNX file's metadata_props, an OpenVINO IR's rt_info ``model_info``."""
    if path.suffix == ".onnx":
        import onnx

        model = onnx.load(str(path))
        del model.metadata_props[:]
        for key, value in metadata.items():
            model.metadata_props.add(key=key, value=value)
        onnx.save(model, str(path))
        return
    import openvino as ov

    model = ov.Core().read_model(str(path))
    _write_ir_model(model, path, metadata, compress=False)


def _write_ir(onnx: Path, target: Path, metadata: dict[str, str], compress: bool) -> None:
    import openvino as ov

    with tempfile.TemporaryDirectory(dir=_scratch_dir(target), prefix=".ir-") as tmp:
        staged = Path(tmp) / target.name
        _write_ir_model(ov.convert_model(str(onnx)), staged, metadata, compress)
        for part in (staged.with_suffix(".bin"), staged):
            os.replace(part, target.with_name(part.name))


def _write_ir_model(model: Any, path: Path, metadata: dict[str, str], compress: bool) -> None:
    import openvino as ov

    for key, value in metadata.items():
        model.set_rt_info(value, ["model_info", key])
    scratch = path.with_name(f".{path.stem}.tmp.xml")
    try:
        ov.save_model(model, str(scratch), compress_to_fp16=compress)
        os.replace(scratch.with_suffix(".bin"), path.with_suffix(".bin"))
        os.replace(scratch, path)
    except OSError as e:
        raise SinkError(f"cannot write {path}: {e.strerror or e}") from None


def _target(output: str | Path | None, onnx: Path, tail: str) -> Path:
    """Where the export goes: ``output`` as given; a folder (one that exists, or a name without a suffix) gets the
    default file name ``<stem>.<tail>`` in it; nothing: the cache next to the ONNX export. A file name whose suffix
    is not the format's (``model.onnx`` for an OpenVINO IR) is refused, since the runtimes go by the suffix."""
    if output is None:
        return onnx.with_name(f"{onnx.stem}.{tail}")
    target = Path(output)
    if target.is_dir() or not target.suffix:
        target = target / f"{onnx.stem}.{tail}"
    wanted = Path(tail).suffix or f".{tail}"
    if target.suffix.lower() != wanted:
        raise OptionError(f"--output {output}: this export is a {wanted} file (give a name ending in {wanted}, "
                          f"or a folder)")
    if target.exists() and target.samefile(onnx):  # e.g. -o the folder the input ONNX file sits in
        raise OptionError(f"--output {output}: {target} is the input: refusing to write the export over it")
    target.parent.mkdir(parents=True, exist_ok=True)
    return target


def _scratch_dir(target: Path) -> Path:
    target.parent.mkdir(parents=True, exist_ok=True)
    return target.parent


def _place(path: Path, output: str | Path | None) -> Path:
    if output is None:
        return path
    from .io.sinks import copy_file

    return copy_file(path, _target(output, path, path.suffix.lstrip(".")))
