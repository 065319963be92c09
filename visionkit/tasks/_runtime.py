"""What the codecs share about the model families' own libraries: loading ultralytics checkpoints, torchvision state
dicts and weights enums, exporting ultralytics checkpoints and torchvision networks to ONNX (and opening a torchvision
network on the runtime asked for), ultralytics' offline switches and its input-size rounding. Nothing here executes
a model: that is ``visionkit.runtimes``."""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from ..device import Device
from ..errors import WeightsError, raise_if_interrupted
from ..runtimes import open_session
from ..runtimes.base import Session, native_runtime
from ..runtimes.torch import TorchRuntime
from .base import as_hw
from .checkpoints import check_checkpoint, is_trusted, load_ultralytics_checkpoint

log = logging.getLogger("visionkit")


def ultralytics_offline() -> None:
    """ultralytics checks the network, fetches fonts and pip-installs extras unless told not to."""
    os.environ.setdefault("YOLO_OFFLINE", "1")
    os.environ.setdefault("YOLO_AUTOINSTALL", "False")
    os.environ.setdefault("YOLO_VERBOSE", "False")


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


def ultralytics_channels_last(device: Device) -> bool:
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


def load_ultralytics(weights: Path, device: Device, expected_task: str) -> Any:
    """An ultralytics ``.pt`` checkpoint as a fused float32 eval model on ``device`` (a runtime session then sets its
    precision and memory layout).

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
    for p in model.parameters():
        p.requires_grad = False
    return model.float().eval()


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


def cached_onnx(weights: Path, key: str, build: Callable[[Path], Path]) -> Path:
    """The ONNX export of ``weights`` in visionkit's cache, made by ``build(scratch_dir) -> file`` on first use.

    Keyed by the weights' sha256 and ``key`` (the exporter and its version), so a changed file or exporter gives a
    new export; built in a scratch folder beside the target and renamed into place, so an interrupted export never
    leaves a half file behind, and never written into a weights folder.
    """
    import tempfile

    from ..weights import cache_dir, sha256_of

    target = cache_dir() / "onnx" / f"{weights.stem}-{sha256_of(weights)[:16]}-{key}.onnx"
    if target.is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".export-") as tmp:
        try:
            built = build(Path(tmp))
        except WeightsError:
            raise
        except Exception as e:
            raise_if_interrupted(e)
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            first = first.replace(tmp, str(weights.parent))  # name the user's file, not the scratch copy
            raise WeightsError(f"cannot export {weights} to ONNX: {first}") from e
        os.replace(built, target)
    return target


def export_ultralytics_onnx(weights: Path) -> Path:
    """An ultralytics checkpoint exported to ONNX by ultralytics' own exporter, built once and cached.

    The export has a dynamic input size and no NMS inside, so the letterbox (rectangular, like the reference's)
    and NMS stay ultralytics' own ops; only the network moves to another runtime, which runs these small convnets
    about 1.4x (one thread) to 2x (all cores) faster than PyTorch on a CPU.
    """
    import shutil

    ultralytics_offline()
    import ultralytics
    from ultralytics import YOLO

    def build(tmp: Path) -> Path:
        source = tmp / weights.name  # the exporter writes next to its input: keep it out of a weights folder
        shutil.copyfile(weights, source)
        if not is_trusted(weights):  # the exporter unpickles the copy itself: it must hold nothing but a model
            check_checkpoint(source, label=f"cannot export {weights} to ONNX")
        with _quiet_ultralytics():
            return Path(YOLO(str(source)).export(format="onnx", dynamic=True, simplify=False, device="cpu"))

    return cached_onnx(weights, f"ultralytics{ultralytics.__version__}", build)


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


def export_torch_onnx(model: Any, weights: Path, input_shape: tuple[int, ...], label: str,
                      input_axes: dict[int, str] | None = None, output_axes: dict[int, str] | None = None) -> Path:
    """A torchvision-style network exported by ``torch.onnx.export`` at ``input_shape``, built once and cached
    (``cached_onnx``; keyed by ``label`` and the torch version too). For runtimes other than PyTorch: ONNX Runtime
    runs the file, OpenVINO reads it directly. ``input_axes`` / ``output_axes`` name the free axes of the input and
    the output (default: the batch axis only); a model whose input size varies per image frees its height and width
    so every runtime sees the very input PyTorch would."""
    import torch

    batch = {0: "batch"}

    def build(tmp: Path) -> Path:
        scratch = tmp / "model.onnx"
        with _no_warnings():
            torch.onnx.export(model.float().cpu().eval(), torch.zeros(input_shape), str(scratch), dynamo=False,
                              input_names=["images"], output_names=["output0"], opset_version=17,
                              dynamic_axes={"images": input_axes or batch, "output0": output_axes or batch})
        return scratch

    return cached_onnx(weights, f"{label}-torch{torch.__version__.split('+')[0]}", build)


@dataclass(frozen=True)
class TorchNet:
    """A torchvision-style network as the codec runs it: the session, the PyTorch module when the runtime is PyTorch
    (the explanation tools differentiate it; None elsewhere) and the float type the preprocessed input takes."""

    session: Session
    module: Any | None
    dtype: Any


def torch_net(model: Any, weights: Path, device: Device, input_shape: tuple[int, ...], label: str,
              outputs: Callable[[Any], list[Any]] | None = None, input_axes: dict[int, str] | None = None,
              output_axes: dict[int, str] | None = None) -> TorchNet:
    """``model`` (a torchvision-style eval module built by the family) on ``device.runtime``: PyTorch runs it as it
    is; any other runtime runs its ``export_torch_onnx`` export (``input_shape``, ``label``, the axes as there).

    ``outputs`` is the family's view of what the module returns (e.g. a segmenter's ``{"out": logits, ...}`` ->
    ``[logits]``): the PyTorch session lists the outputs with it, and the export is of the module followed by it,
    so every runtime hands the codec the same list and one codec serves them all. The torchvision classifiers,
    segmenters and video classifiers share this one path, so a runtime added here reaches all of them.
    """
    if (device.runtime or native_runtime(weights)) == "torch":
        session = TorchRuntime.session(model.eval(), device, outputs)
        return TorchNet(session, session.module, session.dtype)
    import torch

    exported = _listed_module()(model.eval(), outputs) if outputs else model.eval()
    onnx_file = export_torch_onnx(exported, weights, input_shape, label, input_axes, output_axes)
    return TorchNet(open_session(onnx_file, device), None, torch.float32)


@cache
def _listed_module() -> type:
    """The export wrapper class, made on first use (torch is imported only when a model is exported)."""
    import torch

    class Listed(torch.nn.Module):
        """The family's module followed by its ``outputs`` view: the network as the codec reads it, exported."""

        def __init__(self, module: Any, outputs: Callable[[Any], list[Any]]):
            super().__init__()
            self.module = module
            self.outputs = outputs

        def forward(self, x: Any) -> tuple[Any, ...]:
            return tuple(self.outputs(self.module(x)))

    return Listed


@contextmanager
def _no_warnings() -> Iterator[None]:
    """torch.onnx's tracer warnings (constant folding, TracerWarning) are not the user's concern."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield
