"""Shared plumbing for backends: loading ultralytics checkpoints, torchvision state dicts and weights enums,
ONNX Runtime sessions, exporting ultralytics checkpoints to ONNX, ultralytics' offline switches, its input-size
rounding and a pool of copies of a module that keeps per-call state on itself."""

from __future__ import annotations

import copy
import itertools
import logging
import math
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from typing import Any

from ..device import Device
from ..errors import WeightsError, raise_if_interrupted
from .base import as_hw
from .checkpoints import check_checkpoint, is_trusted, load_ultralytics_checkpoint

log = logging.getLogger("visionkit")


def ultralytics_offline() -> None:
    """ultralytics checks the network, fetches fonts and pip-installs extras unless told not to."""
    os.environ.setdefault("YOLO_OFFLINE", "1")
    os.environ.setdefault("YOLO_AUTOINSTALL", "False")
    os.environ.setdefault("YOLO_VERBOSE", "False")


def onnx_session(path: Path, device: Device) -> Any:
    import onnxruntime as ort

    providers = ["CPUExecutionProvider"]
    if device.type == "cuda" and "CUDAExecutionProvider" in ort.get_available_providers():
        providers.insert(0, ("CUDAExecutionProvider", {"device_id": device.index}))
    options = ort.SessionOptions()
    options.log_severity_level = 3  # errors only: QDQ models log one warning per node otherwise
    if device.threads:
        options.intra_op_num_threads = device.threads
    # No fallback: on a file it cannot load, ONNX Runtime would print a four-line "EP Error ... Falling back" banner
    # on stdout (print(), whatever the log level) and retry the same file; the caller reports the failure instead.
    return ort.InferenceSession(str(path), sess_options=options, providers=providers, enable_fallback=0)


def onnx_signature(session: Any) -> str:
    """What an ONNX model takes and gives, as a message quotes it when the file is not of the family expected:
    ``uint8 [1, 300, 300, 3] -> float [1, 10, 4], float [1, 10], ...`` (dynamic axes by their names)."""
    def tensor(arg: Any) -> str:
        kind = arg.type.removeprefix("tensor(").removesuffix(")")
        return f"{kind} [{', '.join(str(d) for d in arg.shape)}]"

    def listed(args: list[Any], most: int = 4) -> str:
        shown = ", ".join(tensor(a) for a in args[:most])
        return shown if len(args) <= most else f"{shown}, ... ({len(args)} in all)"

    return f"{listed(session.get_inputs())} -> {listed(session.get_outputs())}"


@cache
def onnx_output_names(path: Path) -> tuple[str, ...]:
    """Output names of an ONNX file, to tell model families apart when only a path is given."""
    from ..device import Device

    try:
        session = onnx_session(path, Device("cpu"))
    except Exception as e:  # garbage or truncated file: a user-facing WeightsError, not an internal error
        raise_if_interrupted(e)
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise WeightsError(f"{path}: not a loadable ONNX model ({first})") from None
    return tuple(o.name for o in session.get_outputs())


def torchvision_weights(entry: Any) -> Any:
    """The torchvision weights enum member named by a catalog entry's ``weights_enum``: its transforms,
    categories and metrics travel with it, so preprocessing comes from torchvision itself, not a copy."""
    import torchvision

    name = entry.extra.get("weights_enum")
    if not name:
        raise WeightsError(f"catalog entry {entry.name!r} has no weights_enum (e.g. 'ResNet18_Weights.IMAGENET1K_V1'):"
                           " torchvision preprocessing comes from it")
    try:
        return torchvision.models.get_weight(name)
    except (ValueError, KeyError, AttributeError) as e:
        raise WeightsError(f"catalog entry {entry.name!r}: unknown torchvision weights {name!r} ({e})") from None


def _ultralytics_channels_last(device: Device) -> bool:
    """Whether ultralytics' own predictor would run this model channels-last (its AutoBackend does so on x86 CPUs
    with oneDNN since 8.4): the faster CPU path, and the same float rounding as the reference."""
    import inspect
    import platform
    import sys

    import torch
    from ultralytics.nn.autobackend import AutoBackend

    return (device.type == "cpu" and "channels_last" in inspect.signature(AutoBackend.__init__).parameters
            and platform.machine() in ("AMD64", "x86_64") and sys.platform in ("linux", "win32")
            and torch.backends.mkldnn.is_available() and torch.backends.mkldnn.enabled)


def _ultralytics_selects_head() -> bool:
    """Whether ultralytics' predictors choose the head of dual-head models (YOLO26, YOLOv10) themselves: since 8.4
    they run the one-to-many head with NMS unless asked for ``nms=False``, whatever the checkpoint was saved with."""
    import inspect

    from ultralytics.nn.autobackend import AutoBackend

    return "end2end" in inspect.signature(AutoBackend.__init__).parameters


def stride_multiple(imgsz: int | tuple[int, int], stride: int, model: str) -> int | tuple[int, int]:
    """``imgsz`` rounded up to a multiple of the network's stride, as ultralytics' ``check_imgsz`` does for its own
    predictors (a YOLO network's feature maps only line up at such sizes), saying so when that changes it."""
    hw = as_hw(imgsz)
    rounded = tuple(max(math.ceil(side / stride) * stride, stride) for side in hw)
    if rounded == hw:
        return imgsz
    result = rounded[0] if isinstance(imgsz, int) else rounded
    log.warning("imgsz %s is not a multiple of %s's stride %d: using %s, as ultralytics does", imgsz, model, stride,
                result)
    return result


class ModulePool:
    """Copies of a torch module that share its weights, one per call in flight: ``with pool.borrow() as m: m(x)``.

    ultralytics' heads cache the anchors of the last input shape on themselves (``Detect.anchors``, ``strides``,
    ``shape``; the pose head decodes keypoints with them too), so two threads running inputs of different shapes
    through one module decode with each other's anchors: wrong boxes or a shape error. ultralytics' own answer is a
    model per thread; here a call borrows a copy no other call is running, made when none is free by ``deepcopy``
    with every parameter and buffer memoised to itself (only the Python objects and small cached tensors are copied,
    never the weights: about 0.1 s for a nano YOLO) and kept for later calls, so there are never more copies than
    calls that ran at once. Copies are taken from the module as loaded, which nothing runs, so a copy never starts
    from a half-updated cache.
    """

    def __init__(self, module: Any):
        self.template = module
        self._free: list[Any] = []
        self._lock = threading.Lock()

    @contextmanager
    def borrow(self) -> Iterator[Any]:
        with self._lock:
            module = self._free.pop() if self._free else None
        if module is None:
            shared = {id(t): t for t in itertools.chain(self.template.parameters(), self.template.buffers())}
            module = copy.deepcopy(self.template, memo=shared)
        try:
            yield module
        finally:
            with self._lock:
                self._free.append(module)


def load_ultralytics(weights: Path, device: Device, expected_task: str) -> Any:
    """An ultralytics ``.pt`` checkpoint as a fused, frozen eval model on ``device`` (fp16 on CUDA).

    Shared by every task's ultralytics backend; a checkpoint of another task (e.g. a -cls file given to detect)
    is refused here with a clear message instead of failing later on an unexpected output shape. The file is read
    without running code from it unless it is trusted (``checkpoints.trusting``).
    """
    ultralytics_offline()
    model = load_ultralytics_checkpoint(weights, device.torch)
    model_task = getattr(model, "task", "detect")
    if model_task != expected_task:
        raise WeightsError(f"{weights} is an ultralytics {model_task} model, not a {expected_task} model")
    if hasattr(model, "end2end") and _ultralytics_selects_head():
        model.end2end = False  # what its predictors pick by default (nms=None): the NMS head, before fusion drops one
    model = model.fuse(verbose=False) if hasattr(model, "fuse") else model
    model = (model.half() if device.half else model.float()).eval()
    for p in model.parameters():
        p.requires_grad = False
    if _ultralytics_channels_last(device):
        import torch

        model = model.to(memory_format=torch.channels_last)
    return model


@contextmanager
def _quiet_ultralytics() -> Iterator[None]:
    """Keep the exporter's banner, progress lines and the exporter's deprecation warnings out of the user's output
    (they arrive even with YOLO_VERBOSE=False when ultralytics was imported before visionkit set it)."""
    import warnings

    from ultralytics.utils import LOGGER

    level = LOGGER.level
    LOGGER.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        LOGGER.setLevel(level)


def export_ultralytics_onnx(weights: Path) -> Path:
    """An ultralytics checkpoint exported to ONNX by ultralytics' own exporter, built once and cached.

    The export has a dynamic input size and no NMS inside, so the letterbox (rectangular, like the reference's)
    and NMS stay ultralytics' own ops; only the network moves to ONNX Runtime, which runs these small convnets
    about 1.4x (one thread) to 2x (all cores) faster than PyTorch on a CPU. Keyed by the checkpoint's sha256
    and the ultralytics version, so a changed file or exporter gives a new export; written atomically, so an
    interrupted export never leaves a half file behind.
    """
    import shutil
    import tempfile

    ultralytics_offline()
    import ultralytics
    from ultralytics import YOLO

    from ..weights import cache_dir, sha256_of

    key = f"{sha256_of(weights)[:16]}-ultralytics{ultralytics.__version__}"
    target = cache_dir() / "onnx" / f"{weights.stem}-{key}.onnx"
    if target.is_file():
        return target

    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".export-") as tmp:
        source = Path(tmp) / weights.name  # the exporter writes next to its input: keep it out of a weights folder
        shutil.copyfile(weights, source)
        if not is_trusted(weights):  # the exporter unpickles the copy itself: it must hold nothing but a model
            check_checkpoint(source, label=f"cannot export {weights} to ONNX")
        try:
            with _quiet_ultralytics():
                exported = YOLO(str(source)).export(format="onnx", dynamic=True, simplify=False, device="cpu")
        except Exception as e:
            raise_if_interrupted(e)
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            first = first.replace(str(source), str(weights))  # name the user's file, not the scratch copy
            raise WeightsError(f"cannot export {weights} to ONNX: {first}") from e
        os.replace(exported, target)
    return target


def load_state_dict(model: Any, weights: Path, arch: str) -> None:
    """Load a torchvision-style state dict file into ``model`` safely (``weights_only``), as WeightsError on failure."""
    import torch

    try:
        state = torch.load(weights, map_location="cpu", weights_only=True)
    except Exception as e:
        raise_if_interrupted(e)
        raise WeightsError(f"{weights}: not a readable PyTorch state dict ({type(e).__name__})") from None
    try:
        model.load_state_dict(state)
    except RuntimeError as e:
        raise WeightsError(f"{weights} does not fit {arch}: {str(e).splitlines()[0]}") from None
