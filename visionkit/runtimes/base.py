"""The runtime contract: a ``Runtime`` loads a model file into a ``Session``; a session runs a batch of arrays.

Precision means what it says on every runtime: ``fp32`` is float32 arithmetic end to end (OpenVINO's CPU plugin would
otherwise pick bf16 by itself on CPUs that have it, which moves boxes by pixels), ``fp16``/``bf16`` are asked for
explicitly, and ``int8`` runs a file that was quantized (``visionkit export --precision int8``), never a silent
on-the-fly quantization. A runtime that cannot honour a precision on a device refuses it in one line.

Threading is one policy for every runtime (``apply_thread_policy``): ``Device.threads`` (set by the Predictor from
its ``workers``) is the intra-op thread count of each session; None leaves the runtime's own default (all cores).
Busy-waiting worker threads are off where the runtime has them (ONNX Runtime), because the stage after the model
(NMS, mask decoding) runs on the same cores and would otherwise wait for the spinning threads to yield.
"""

from __future__ import annotations

import importlib
import importlib.util
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, ClassVar

from ..device import Device
from ..errors import OptionError, WeightsError, raise_if_interrupted

PRECISIONS = ("fp32", "fp16", "bf16", "int8")
# name -> "module:class"; imported on first use, so a runtime that is not installed costs nothing until asked for.
RUNTIMES: dict[str, str] = {
    "torch": "visionkit.runtimes.torch:TorchRuntime",
    "onnx": "visionkit.runtimes.onnxruntime:OnnxRuntime",
    "openvino": "visionkit.runtimes.openvino:OpenVinoRuntime",
    "tflite": "visionkit.runtimes.tflite:TfliteRuntime",
    "opencv": "visionkit.runtimes.opencv:OpenCvRuntime",
}


@dataclass(frozen=True)
class TensorSpec:
    """One input or output of a session: its name, shape (None or a name for a dynamic axis) and element type."""

    name: str
    shape: tuple[int | str | None, ...]
    dtype: str  # numpy's name: float32, uint8, int64...

    def fixed(self, axis: int) -> int | None:
        """The size of ``axis`` when the model fixes it, else None."""
        size = self.shape[axis] if -len(self.shape) <= axis < len(self.shape) else None
        return size if isinstance(size, int) and size > 0 else None


class Session(ABC):
    """A loaded model on one runtime and device: ``run(inputs) -> outputs``, arrays in the model's order.

    ``concurrent``: whether several threads may call ``run`` at once (each gets its own result).
    ``metadata``: what the file says about itself (ultralytics exports: names, stride, task, imgsz...).
    """

    runtime: ClassVar[str]
    concurrent: ClassVar[bool] = True

    def __init__(self, precision: str, inputs: list[TensorSpec], outputs: list[TensorSpec],
                 metadata: dict[str, str] | None = None, target: str = "CPU"):
        self.precision = precision
        self.inputs = inputs
        self.outputs = outputs
        self.metadata = metadata or {}
        self.target = target

    @abstractmethod
    def run(self, inputs: Sequence[Any]) -> list[Any]:
        """Run one batch: one array per model input, in order; returns one array per output, in order."""

    def synchronize(self) -> None:
        """Wait for queued device work (CUDA) so a stage timer measures the work, not its launch."""
        return None

    def describe(self) -> str:
        """E.g. ``OpenVINO CPU bf16``: what the speed figures of a result were measured on."""
        return f"{get_runtime(self.runtime).label} {self.target} {self.precision}"


class Runtime(ABC):
    """An engine: which files it reads, which precisions it honours on which device, and how to load a file."""

    name: ClassVar[str]
    label: ClassVar[str]
    # pip install 'visionkit[EXTRA]' brings it in (None: a core dependency).
    extra: ClassVar[str | None] = None
    module: ClassVar[str]  # the Python package to import, for the "not installed" check
    concurrent: ClassVar[bool] = True  # whether its sessions take calls from several threads at once
    reads: ClassVar[tuple[str, ...]] = ()  # model file suffixes it loads

    @classmethod
    def available(cls) -> bool:
        try:
            return importlib.util.find_spec(cls.module) is not None
        except (ValueError, ImportError):  # a module set to None in sys.modules (import blocked) or half-installed
            return False

    @classmethod
    def require(cls) -> None:
        if not cls.available():
            hint = f"pip install 'visionkit[{cls.extra}]'" if cls.extra else f"pip install {cls.module}"
            raise OptionError(f"runtime {cls.name} needs {cls.label}, which is not installed: {hint}")

    @classmethod
    @abstractmethod
    def precisions(cls, device: Device) -> tuple[str, ...]:
        """The precisions this runtime can run on ``device`` (the first is its default)."""

    @classmethod
    @abstractmethod
    def load(cls, path: Path, device: Device) -> Session:
        """Load ``path`` for ``device.precision`` (None = the runtime's default) with ``device.threads``."""

    @classmethod
    def check_precision(cls, device: Device, quantized: bool = False, label: str = "the model") -> str:
        """The precision to run at: ``device.precision`` when this runtime honours it there, else OptionError. A
        quantized file runs at int8 and only there; int8 on a float file is refused (no silent quantization)."""
        allowed = cls.precisions(device)
        if quantized:
            if device.precision not in (None, "int8"):
                raise OptionError(f"precision {device.precision}: {label} is quantized (int8); it runs at int8 only")
            return "int8"
        wanted = device.precision or allowed[0]
        if wanted == "int8":
            raise OptionError(f"precision int8: {label} is not quantized; make an int8 model with `visionkit export "
                              f"MODEL --precision int8 --data CALIB_DIR` and run that file")
        if wanted not in allowed:
            raise OptionError(f"precision {wanted}: {cls.label} runs {', '.join(allowed)} on {device.type} "
                              f"(not {wanted})")
        return wanted


def apply_thread_policy(device: Device) -> None:
    """PyTorch's intra-op threads for a model about to be built: its share of the cores when ``workers`` > 1 fixes
    ``device.threads`` (PyTorch's count is process-wide; the other runtimes take theirs per session), else left as
    the process has it. visionkit does not lower it behind the user's back for a model on another runtime, although
    that runtime's codec glue (NMS) runs faster on one torch thread next to a busy engine: the user's own torch code
    in the same process would pay for it. Spin-waiting is off in ONNX Runtime instead, which removes most of that
    contention (NMS after ONNX Runtime: 21-32 ms with spinning threads, 3-8 ms without, on 2 cores).
    """
    if device.type == "cpu" and device.threads:
        import torch

        torch.set_num_threads(device.threads)


def get_runtime(name: str) -> type[Runtime]:
    """The runtime registered as ``name``; OptionError naming the known ones, or the extra that installs it."""
    target = RUNTIMES.get(name)
    if target is None:
        raise OptionError(f"unknown runtime {name!r}: expected {', '.join(RUNTIMES)} or auto")
    module, _, cls_name = target.partition(":")
    runtime: type[Runtime] = getattr(importlib.import_module(module), cls_name)
    runtime.require()
    return runtime


def get_runtime_label(name: str) -> str:
    """``ONNX Runtime`` for ``onnx``... (the registered runtime's label, whether or not it is installed)."""
    try:
        return get_runtime(name).label
    except OptionError:
        return name


def available_runtimes() -> list[str]:
    """Runtimes installed here, in registry order."""
    out = []
    for name in RUNTIMES:
        try:
            get_runtime(name)
        except OptionError:
            continue
        out.append(name)
    return out


def open_session(path: Path, device: Device) -> Session:
    """``path`` loaded by ``device.runtime`` (None: the file's native runtime, ``native_runtime``); a file that
    runtime cannot parse is a one-line ``WeightsError``."""
    runtime = get_runtime(device.runtime or native_runtime(path))
    if path.suffix.lower() not in runtime.reads:
        raise OptionError(f"runtime {runtime.name}: {runtime.label} does not read '{path.suffix}' files "
                          f"({path.name}); it reads {', '.join(runtime.reads)}")
    try:
        return runtime.load(path, device)
    except (WeightsError, OptionError):
        raise
    except Exception as e:  # the engine's own parse error: bad weights, said in one line
        raise_if_interrupted(e)
        kind = FORMAT_NAMES.get(path.suffix.lower(), path.suffix)
        raise WeightsError(f"{path}: not a loadable {kind} model ({first_line(e)})") from None


def first_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__


@dataclass(frozen=True)
class FileFacts:
    """What a model file says about itself, the same for every runtime that runs it."""

    metadata: dict[str, str]  # ultralytics exports: names, stride, task, imgsz, end2end...
    outputs: tuple[str, ...]  # output names, in order (tells model families apart when only a path is given)
    quantized: bool  # holds quantize/dequantize (or OpenVINO FakeQuantize) operations: an int8 model


_QUANTIZE_OPS = {"QuantizeLinear", "DequantizeLinear", "QLinearConv", "QLinearMatMul", "FakeQuantize"}


@cache
def file_facts(path: Path) -> FileFacts:
    """Read once per file, without the weights: ONNX metadata props and op types; an OpenVINO IR's rt_info
    ``model_info`` entries (where visionkit's and ultralytics' exporters put the metadata) and op types."""
    suffix = path.suffix.lower()
    if suffix == ".onnx":
        import onnx

        try:
            model = onnx.load(str(path), load_external_data=False)
        except Exception as e:
            raise_if_interrupted(e)
            raise WeightsError(f"{path}: not a loadable ONNX model ({first_line(e)})") from None
        ops = {n.op_type for n in model.graph.node}
        return FileFacts({p.key: p.value for p in model.metadata_props}, tuple(o.name for o in model.graph.output),
                         bool(ops & _QUANTIZE_OPS))
    if suffix == ".xml":
        import xml.etree.ElementTree as ET

        try:
            root = ET.parse(path).getroot()
        except (ET.ParseError, OSError) as e:
            raise WeightsError(f"{path}: not an OpenVINO IR ({first_line(e)})") from None
        layers = list(root.iter("layer"))
        ops = {layer.get("type") for layer in layers}
        outputs = tuple(str(layer.get("name", "")).split("/sink_port")[0] for layer in layers
                        if layer.get("type") == "Result")
        info = root.find("rt_info/model_info")
        metadata = {child.tag: child.get("value", "") for child in info} if info is not None else {}
        return FileFacts(metadata, outputs, bool(ops & _QUANTIZE_OPS))
    return FileFacts({}, (), False)


FORMAT_NAMES = {".onnx": "ONNX", ".xml": "OpenVINO IR", ".tflite": "TensorFlow Lite"}
# The runtime a model file runs on when none is asked for; anything else (.pt, .pth) is PyTorch's.
NATIVE_RUNTIMES = {".onnx": "onnx", ".xml": "openvino", ".tflite": "tflite"}


def native_runtime(path: Path) -> str:
    return NATIVE_RUNTIMES.get(path.suffix.lower(), "torch")
