"""Pick the compute device once, so every backend agrees on it."""

from __future__ import annotations

from dataclasses import dataclass

from .errors import OptionError


@dataclass(frozen=True)
class Device:
    """Where and how a model runs: the hardware, the runtime that executes it and the number format.

    ``half`` is fp16 inference on CUDA (CPU fp16 is slower and less exact). ``runtime`` is the engine
    (``visionkit.runtimes.RUNTIMES``; None = the one the model file is native to) and ``precision`` what it computes
    in (None = that runtime's default for the device, fp32 on a CPU; see ``visionkit.runtimes.base``).
    """

    type: str  # "cpu" or "cuda"
    index: int = 0
    half: bool = False
    threads: int | None = None  # CPU threads per inference; None = the runtime's default (all cores)
    runtime: str | None = None
    precision: str | None = None

    @property
    def torch(self) -> str:
        return "cpu" if self.type == "cpu" else f"cuda:{self.index}"

    def __str__(self) -> str:
        precision = self.precision or ("fp16" if self.half else None)
        return self.torch + (f" ({precision})" if precision else "")


def select_device(spec: str | None = "auto", half: bool | None = None) -> Device:
    """Resolve ``auto`` / ``cpu`` / ``cuda`` / ``cuda:N`` to a Device; ``auto`` prefers CUDA with fp16."""
    import torch

    if spec is not None and not isinstance(spec, str):
        raise OptionError(f"device must be auto, cpu, cuda or cuda:N (a string), got {spec!r}")
    spec = (spec or "auto").strip().lower()
    if spec == "auto":
        spec = "cuda" if torch.cuda.is_available() else "cpu"
    if spec == "cpu":
        if half:
            raise OptionError("half precision (fp16) is only supported on CUDA devices; use --device cuda")
        return Device("cpu")
    if spec.startswith("cuda"):
        _, _, idx = spec.partition(":")
        if not torch.cuda.is_available():
            raise OptionError(f"device {spec!r} requested but CUDA is not available on this machine; use --device cpu")
        try:
            index = int(idx or 0)
        except ValueError:
            raise OptionError(f"bad device {spec!r}: expected cuda or cuda:N") from None
        if index >= torch.cuda.device_count():
            raise OptionError(f"device {spec!r} requested but only {torch.cuda.device_count()} CUDA device(s) exist")
        return Device("cuda", index, True if half is None else half)
    raise OptionError(f"unknown device {spec!r}: expected auto, cpu, cuda or cuda:N")


def cpu_cores() -> int:
    """CPU cores this process may run on (a container's or taskset's limit, not the host's count)."""
    import os

    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1
