"""Post-training int8 quantization of ONNX models for OpenVINO (NNCF) and ONNX Runtime (QDQ), and the accuracy guard.

Model-agnostic: a caller (a model family's codec) supplies the calibration inputs, already preprocessed exactly as
inference preprocesses them, scores the fp32 and the int8 model with visionkit's own eval, and hands the two scores
to ``check_drop``; ``write_card`` records the figures next to the exported model.

What keeps a detector accurate in int8 (measured on the real yolov5n, ``benchmarks/bench_int8.py``): the box
decoding after the head's last convolutions stays in float. Quantizing it puts pixel coordinates (0..640) and
scores (0..1) under one int8 scale, which costs points or, when the output Concat is quantized, zeroes every
detection. ``head_tail`` finds those ops from the graph's shape, not from an exporter's node names, so it covers
YOLOv5, ultralytics' v8/11 exports and any other model whose outputs are computed from convolutions.

Files are written atomically: everything goes to a scratch folder next to the target and is renamed into place
only once complete, so an interrupted or failed run leaves no partial model (and keeps a previous one intact).
"""

from __future__ import annotations

import hashlib
import itertools
import logging
import os
import tempfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from .errors import AccuracyError, OptionError, SinkError, WeightsError, raise_if_interrupted
from .training.card import write_json_atomic

# Ops that carry a model's learned features. The walk back from the outputs stops at them: what lies between them
# and the outputs is decoding (reshapes, sigmoids, grids, strides, concatenations).
_ONNX_LEARNED = {"Conv", "ConvTranspose", "MatMul", "Gemm"}
_OPENVINO_LEARNED = {"Convolution", "GroupConvolution", "ConvolutionBackpropData", "MatMul"}
CARD_SUFFIX = ".card.json"
# keep_float: "head" = the decoding and the last learned layers (the default: measured within a point of fp32),
# "decode" = the decoding only, "none" = nothing beyond ``ignored`` (what a naive quantization does).
KEEP_FLOAT = ("head", "decode", "none")


# -- the float tail ---------------------------------------------------------------------------------------------------
def _tail(nodes: Mapping[str, tuple[str, Sequence[str]]], outputs: Iterable[str], learned: set[str],
          last_layers: bool) -> list[str]:
    """The nodes between the last learned ops and the outputs, and with ``last_layers`` those last learned ops too.

    ``nodes`` maps each node name to (op type, names of the nodes feeding it); ``outputs`` are the nodes producing
    the graph outputs. The walk goes back from the outputs and stops at a learned op, except one fed by a Softmax:
    that is a distribution-focal-loss integral (ultralytics' DFL, a fixed 1x1 convolution over bin probabilities),
    which turns distributions into box distances and so is decoding too. The last learned ops themselves (a YOLO
    head's output convolutions, whose channels mix box offsets, objectness and class logits) are small, and keeping
    them in float is what brings int8 yolov5n within a point of fp32."""
    seen: set[str] = set()
    stack = [name for name in outputs if name in nodes]
    while stack:
        name = stack.pop()
        if name in seen:
            continue
        op, inputs = nodes[name]
        if op in learned and not any(nodes.get(i, ("", ()))[0].lower() == "softmax" for i in inputs):
            if last_layers:
                seen.add(name)
            continue
        seen.add(name)
        stack.extend(i for i in inputs if i in nodes)
    return sorted(seen)


def onnx_head_tail(model: Any, last_layers: bool = True) -> list[str]:
    """``_tail`` of an ``onnx.ModelProto``: names for ONNX Runtime's ``nodes_to_exclude``."""
    producer = {out: node.name for node in model.graph.node for out in node.output}
    nodes = {node.name: (node.op_type, [producer[i] for i in node.input if i in producer]) for node in model.graph.node}
    outputs = [producer[o.name] for o in model.graph.output if o.name in producer]
    return _tail(nodes, outputs, _ONNX_LEARNED, last_layers)


def openvino_head_tail(model: Any, last_layers: bool = True) -> list[str]:
    """``_tail`` of an ``openvino.Model``: names for NNCF's ``IgnoredScope``."""
    nodes = {op.get_friendly_name(): (op.get_type_name(),
                                      [i.get_source_output().get_node().get_friendly_name() for i in op.inputs()])
             for op in model.get_ordered_ops()}
    outputs = [r.get_friendly_name() for r in model.get_results()]
    return _tail(nodes, outputs, _OPENVINO_LEARNED, last_layers)


def _float_names(keep_float: str, ignored: Sequence[str], head_tail: Any, model: Any) -> list[str]:
    """The node names to keep in float: ``ignored`` plus the head's tail that ``keep_float`` asks for."""
    if keep_float not in KEEP_FLOAT:
        raise OptionError(f"unknown keep_float {keep_float!r} (choose from {', '.join(KEEP_FLOAT)})")
    tail = [] if keep_float == "none" else head_tail(model, last_layers=keep_float == "head")
    return sorted({*tail, *ignored})


# -- calibration ------------------------------------------------------------------------------------------------------
def _take(calibration: Iterable[np.ndarray], subset_size: int) -> list[np.ndarray]:
    """The first ``subset_size`` calibration inputs as float32 arrays (both quantizers read them more than once)."""
    if subset_size < 1:
        raise OptionError(f"subset_size must be at least 1, got {subset_size}")
    arrays = [np.ascontiguousarray(a, dtype=np.float32) for a in itertools.islice(calibration, subset_size)]
    if not arrays:
        raise OptionError("no calibration inputs: int8 calibration needs at least one preprocessed input")
    return arrays


def fingerprint(calibration: Sequence[np.ndarray]) -> dict[str, Any]:
    """Count and sha256 of calibration inputs (shapes and bytes), for the model card: two exports calibrated on the
    same data show the same hash."""
    h = hashlib.sha256()
    for a in calibration:
        a = np.ascontiguousarray(a)
        h.update(f"{a.dtype}{a.shape}".encode())
        h.update(a.tobytes())
    return {"count": len(calibration), "sha256": h.hexdigest()}


class _Reader:
    """ONNX Runtime's ``CalibrationDataReader`` protocol (``get_next`` until None) over in-memory inputs; ``rewind``
    lets quantize_static's calibrators read them again."""

    def __init__(self, input_name: str, arrays: Sequence[np.ndarray]):
        self.input_name, self.arrays = input_name, arrays
        self.it: Iterator[np.ndarray] = iter(arrays)

    def get_next(self) -> dict[str, np.ndarray] | None:
        a = next(self.it, None)
        return None if a is None else {self.input_name: a}

    def rewind(self) -> None:
        self.it = iter(self.arrays)


# -- the quantizers ---------------------------------------------------------------------------------------------------
def _first_line(error: Exception) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def _failure(path: Path, what: str, error: Exception) -> WeightsError:
    """The one-line error for a model a library could not read or quantize (Ctrl-C stays Ctrl-C)."""
    raise_if_interrupted(error)
    return WeightsError(f"{path}: {what} ({_first_line(error)})")


def _write_failure(path: Path, error: Exception) -> SinkError:
    """The one-line error for a model file that could not be written (a full disk, a read-only folder)."""
    raise_if_interrupted(error)
    return SinkError(f"cannot write {path}: {getattr(error, 'strerror', None) or _first_line(error)}")


def quantize_openvino(onnx_path: Path, calibration: Iterable[np.ndarray], out_xml: Path, *,
                      keep_float: str = "head", ignored: Sequence[str] = (), subset_size: int = 300,
                      preset: str = "performance", fast_bias_correction: bool = True) -> Path:
    """An int8 OpenVINO IR (``out_xml`` + its ``.bin``) of ``onnx_path``, calibrated by NNCF on ``calibration``.

    ``keep_float`` (see KEEP_FLOAT) and ``ignored`` (more OpenVINO node names) say what stays in float.
    ``preset`` "performance" (all symmetric, NNCF's default for CNNs) or "mixed" (asymmetric activations, meant
    for activations not centred on 0; on yolov5n it scored 0.2-0.4 points lower, see benchmarks/bench_int8.py).
    The weights are kept in float32 in the IR (``compress_to_fp16=False``): only what NNCF quantized becomes int8."""
    import nncf
    import openvino as ov

    presets = {"mixed": nncf.QuantizationPreset.MIXED, "performance": nncf.QuantizationPreset.PERFORMANCE}
    if preset not in presets:
        raise OptionError(f"unknown preset {preset!r} (choose from {', '.join(presets)})")
    arrays = _take(calibration, subset_size)
    onnx_path, out_xml = Path(onnx_path), Path(out_xml)
    try:
        model = ov.Core().read_model(str(onnx_path))
    except Exception as e:
        raise _failure(onnx_path, "not a model OpenVINO can read", e) from None
    names = _float_names(keep_float, ignored, openvino_head_tail, model)
    scope = nncf.IgnoredScope(names=names, validate=False) if names else None
    nncf_log = logging.getLogger("nncf")
    level = nncf_log.level
    nncf_log.setLevel(logging.WARNING)  # not one INFO line per op it leaves unquantized
    try:
        quantized = nncf.quantize(model, nncf.Dataset(arrays), preset=presets[preset], subset_size=len(arrays),
                                  fast_bias_correction=fast_bias_correction, ignored_scope=scope)
    except Exception as e:
        raise _failure(onnx_path, "NNCF could not quantize it", e) from None
    finally:
        nncf_log.setLevel(level)
    out_xml.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out_xml.parent, prefix=".quantize-") as tmp:
        staged = Path(tmp) / "model.xml"
        try:
            ov.save_model(quantized, str(staged), compress_to_fp16=False)
        except Exception as e:
            raise _write_failure(out_xml, e) from None
        # The .bin first: an .xml is only ever next to the weights it was written with once it is in place.
        os.replace(staged.with_suffix(".bin"), out_xml.with_suffix(".bin"))
        os.replace(staged, out_xml)
    return out_xml


def quantize_onnxruntime(onnx_path: Path, calibration: Iterable[np.ndarray], out_onnx: Path, *,
                         keep_float: str = "head", ignored: Sequence[str] = (), subset_size: int = 300,
                         per_channel: bool = True, method: str = "minmax") -> Path:
    """A QDQ int8 ONNX model of ``onnx_path`` (uint8 activations, int8 weights: the pair x86 VNNI kernels run),
    calibrated by ``onnxruntime.quantization.quantize_static`` on ``calibration``.

    ``keep_float`` (see KEEP_FLOAT) and ``ignored`` (more ONNX node names) say what stays in float. ``method``:
    "minmax" or "entropy" (ONNX Runtime's calibration methods)."""
    import onnx
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

    # Not Percentile: with onnxruntime 1.32 it made a yolov5n that ONNX Runtime cannot run (QLinearConcat shapes).
    methods = {"minmax": CalibrationMethod.MinMax, "entropy": CalibrationMethod.Entropy}
    if method not in methods:
        raise OptionError(f"unknown calibration method {method!r} (choose from {', '.join(methods)})")
    arrays = _take(calibration, subset_size)
    onnx_path, out_onnx = Path(onnx_path), Path(out_onnx)
    try:
        model = onnx.load(str(onnx_path))
        onnx.checker.check_model(model)
    except Exception as e:
        raise _failure(onnx_path, "not a valid ONNX model", e) from None
    initializers = {t.name for t in model.graph.initializer}
    inputs = [i.name for i in model.graph.input if i.name not in initializers]
    if len(inputs) != 1:
        raise WeightsError(f"{onnx_path}: calibration feeds one input, the model has {len(inputs)}")
    names = _float_names(keep_float, ignored, onnx_head_tail, model)
    out_onnx.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out_onnx.parent, prefix=".quantize-") as tmp:
        staged = Path(tmp) / "model.onnx"
        try:
            quantize_static(model, staged, _Reader(inputs[0], arrays), quant_format=QuantFormat.QDQ,
                            per_channel=per_channel, activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                            nodes_to_exclude=names, calibrate_method=methods[method],
                            extra_options={"CalibTensorRangeSymmetric": False})
        except OSError as e:
            raise _write_failure(out_onnx, e) from None
        except Exception as e:
            raise _failure(onnx_path, "ONNX Runtime could not quantize it", e) from None
        os.replace(staged, out_onnx)
    return out_onnx


# -- the guard and the card -------------------------------------------------------------------------------------------
def check_drop(fp32_score: float, int8_score: float, max_drop: float, metric: str) -> None:
    """Refuse an int8 model scoring more than ``max_drop`` points (scores are fractions, points = 100x) below
    fp32, with a message that says what was measured."""
    drop = (fp32_score - int8_score) * 100
    if drop > max_drop:
        raise AccuracyError(f"int8 {metric} {int8_score:.3f} is {drop:.1f} points below fp32 {fp32_score:.3f} "
                            f"(limit --max-drop {max_drop:g}): not written")


def package_versions() -> dict[str, str]:
    """Versions of visionkit and the packages that convert and run its exported models (those installed)."""
    found = {}
    for package in ("visionkit", "openvino", "nncf", "onnxruntime", "onnx"):
        try:
            found[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            continue
    return found


def card_path(model_path: Path) -> Path:
    """Where the card of an exported model lives: ``yolov5n.int8.xml`` -> ``yolov5n.int8.card.json``."""
    return Path(model_path).with_suffix(CARD_SUFFIX)


def write_card(model_path: Path, figures: dict[str, Any]) -> Path:
    """Write the model card (JSON) next to an exported model: ``figures`` (precision, runtime, calibration count
    and hash, fp32 and int8 scores, metric, ...) plus the drop in points when both scores are given and the
    versions of the packages that made it. Atomic, like the model."""
    card = {"model": Path(model_path).name, **figures}
    if isinstance(card.get("fp32_score"), float) and isinstance(card.get("int8_score"), float):
        card["drop_points"] = round((card["fp32_score"] - card["int8_score"]) * 100, 2)
    card["versions"] = package_versions()
    return write_json_atomic(card_path(model_path), card)
