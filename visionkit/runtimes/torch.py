"""PyTorch: runs a ``torch.nn.Module`` the model family built (PyTorch has no file format of its own that a runtime
could load without the family's code: checkpoints are pickles of its classes or state dicts for its builders).

The session moves numpy inputs to the device in the session's precision, runs under ``inference_mode`` and hands the
outputs back as tensors (the codecs' postprocessing is torch code, e.g. ultralytics' NMS, so nothing is copied back
to the host that the codec would copy again). ``outputs`` is the family's view of what the module returns, as the
list its ONNX export would return, so one codec serves every runtime.
"""

from __future__ import annotations

import copy
import itertools
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..device import Device
from ..errors import OptionError
from .base import Runtime, Session
from .pool import Pool

_DTYPES = {"fp32": "float32", "fp16": "float16", "bf16": "bfloat16"}


class TorchSession(Session):
    runtime = "torch"

    def __init__(self, module: Any, device: Device, precision: str, outputs: Callable[[Any], list[Any]] | None = None,
                 per_call_state: bool = False, channels_last: bool = False):
        """
        Args:
            module: the eval-mode model, already on ``device`` in ``precision``.
            outputs: the module's return value -> the list of output tensors (default: as returned, listed).
            per_call_state: the module caches state of the last input on itself (ultralytics' heads keep the anchors
                of the last input shape), so concurrent calls each borrow a copy that shares the weights.
            channels_last: the module was put in channels-last memory order (oneDNN's faster CPU layout; inputs
                stay as they come, as ultralytics' own predictor feeds them).
        """
        super().__init__(precision, [], [], target="CUDA" if device.type == "cuda" else "CPU")
        import torch

        self.module = module
        self.device = device
        self.dtype = getattr(torch, _DTYPES[precision])
        self._outputs = outputs or _as_list
        self._pool: Pool[Any] | None = Pool(lambda: _shared_copy(module)) if per_call_state else None

    def to_device(self, x: Any) -> Any:
        """A numpy array (or tensor, or list of them) as a tensor on the device, floats in the session's dtype."""
        import torch

        if isinstance(x, (list, tuple)):
            return [self.to_device(v) for v in x]
        t = torch.from_numpy(x) if isinstance(x, np.ndarray) else x
        t = t.to(self.device.torch, non_blocking=True)
        return t.to(self.dtype) if t.is_floating_point() else t

    def run(self, inputs: Sequence[Any]) -> list[Any]:
        import torch

        args = [self.to_device(x) for x in inputs]
        with torch.inference_mode():
            if self._pool is None:
                return self._outputs(self.module(*args))
            with self._pool.borrow() as module:
                return self._outputs(module(*args))

    def synchronize(self) -> None:
        if self.device.type == "cuda":
            import torch

            torch.cuda.synchronize(self.device.index)


class TorchRuntime(Runtime):
    name = "torch"
    label = "PyTorch"
    module = "torch"

    @classmethod
    def precisions(cls, device: Device) -> tuple[str, ...]:
        return ("fp16", "fp32", "bf16") if device.type == "cuda" and device.half else \
            ("fp32", "fp16", "bf16") if device.type == "cuda" else ("fp32", "bf16")

    @classmethod
    def load(cls, path: Path, device: Device) -> Session:
        raise OptionError(f"runtime torch runs models a family builds from {path.name}, not files by themselves")

    @classmethod
    def session(cls, module: Any, device: Device, outputs: Callable[[Any], list[Any]] | None = None,
                per_call_state: bool = False, channels_last: bool = False) -> TorchSession:
        """``module`` (eval mode, on CPU or the device) moved to the device in the precision asked for. Parameters keep
        their ``requires_grad``: runs are under ``inference_mode`` anyway, and the explanation tools differentiate
        the same module."""
        precision = cls.check_precision(device)
        import torch

        module = module.to(device.torch).to(getattr(torch, _DTYPES[precision])).eval()
        if channels_last:
            module = module.to(memory_format=torch.channels_last)
        return TorchSession(module, device, precision, outputs, per_call_state, channels_last)


def _as_list(out: Any) -> list[Any]:
    return list(out) if isinstance(out, (list, tuple)) else [out]


def _shared_copy(module: Any) -> Any:
    """A deep copy of ``module`` whose parameters and buffers are the original's (only Python objects and small
    cached tensors are copied, never the weights: about 0.1 s for a nano YOLO). Copies are taken from the module as
    loaded, which no call runs, so a copy never starts from a half-updated cache."""
    shared = {id(t): t for t in itertools.chain(module.parameters(), module.buffers())}
    return copy.deepcopy(module, memo=shared)

