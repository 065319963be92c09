"""``runtime="auto"``: the fastest installed runtime that runs a model on this device, measured once and remembered.

Each candidate (the runtimes the model family runs the file on, that are installed and honour the precision asked
for on the device) is built and timed end to end (preprocess, forward, postprocess) on the model's warm-up input,
median of a few runs after two untimed ones; the winner is kept in ``$VISIONKIT_CACHE/auto-runtime.json`` under the
file's sha256, task, backend, device, threads, precision and input size, so the next load costs nothing extra.
The measurement is per machine on purpose: which engine wins depends on the CPU (AVX-512, VNNI, AMX) and the GPU.
"""

from __future__ import annotations

import json
import logging
import os
import statistics
import time
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..device import Device
from ..errors import OptionError
from .base import get_runtime

if TYPE_CHECKING:
    from ..catalog import ModelEntry
    from ..tasks.base import Backend

log = logging.getLogger("visionkit")
TIMED_RUNS = 5


def choose_runtime(cls: type[Backend], entry: ModelEntry, path: Path, device: Device, options: dict[str, Any],
                   precision: str | None) -> str:
    from ..weights import cache_dir, sha256_of

    key = "|".join(str(v) for v in (sha256_of(path)[:16], cls.task, cls.name, device.torch, device.threads,
                                    precision, options.get("imgsz")))
    store = cache_dir() / "auto-runtime.json"
    known = _read(store)
    if key in known:
        return str(known[key]["runtime"])
    timings: dict[str, float] = {}
    for name in cls.runtimes(path.suffix.lower()):
        try:
            get_runtime(name)
            backend = cls(entry, path, replace(device, runtime=name, precision=precision), options)
        except OptionError as e:  # not installed, or not at this precision on this device
            log.info("runtime auto: %s skipped (%s)", name, e)
            continue
        timings[name] = _time(backend)
    if not timings:
        raise OptionError(f"runtime auto: no installed runtime runs {path.name} at precision {precision or 'default'}")
    best = min(timings, key=timings.__getitem__)
    log.info("runtime auto: %s (%s)", best, ", ".join(f"{n} {t:.1f} ms" for n, t in timings.items()))
    known[key] = {"runtime": best, "ms": {n: round(t, 2) for n, t in timings.items()}}
    _write(store, known)
    return best


def _time(backend: Backend) -> float:
    import torch

    images = backend.warmup_input()
    runs = []
    for i in range(TIMED_RUNS + 2):
        start = time.perf_counter()
        with torch.inference_mode():
            batch = backend.preprocess(images)
            backend.postprocess(backend.forward(batch), batch, images)
        backend.synchronize()
        if i >= 2:
            runs.append((time.perf_counter() - start) * 1e3)
    return statistics.median(runs)


def _read(store: Path) -> dict[str, Any]:
    try:
        data = json.loads(store.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _write(store: Path, data: dict[str, Any]) -> None:
    """Atomically: two processes choosing at once each leave a whole file (the last one's)."""
    store.parent.mkdir(parents=True, exist_ok=True)
    tmp = store.with_name(f".{store.name}.{os.getpid()}")
    tmp.write_text(json.dumps(data, indent=1, sort_keys=True))
    os.replace(tmp, store)
