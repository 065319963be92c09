"""Stage timers: the one way visionkit measures preprocess / inference / postprocess into ``Result.speed``.

    timer = StageTimer(sync=backend.synchronize)
    with timer.stage("preprocess"):
        batch = backend.preprocess(images)
    with timer.stage("inference"):
        raw = backend.forward(batch)      # the stage ends after sync(): CUDA work is waited for, not just launched
    ...
    result.speed = timer.speed(per=len(images))

Stages may repeat (a sliding window's frames are preprocessed one by one): their times add up.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from .results import Speed

STAGES = ("preprocess", "inference", "postprocess")


def no_sync() -> None:
    return None


class StageTimer:
    def __init__(self, sync: Callable[[], None] = no_sync):
        self.sync = sync
        self.ms = dict.fromkeys(STAGES, 0.0)

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        """Time the block as ``name`` (one of ``STAGES``), ending with ``sync()`` for the inference stage."""
        start = time.perf_counter()
        try:
            yield
            if name == "inference":
                self.sync()
        finally:
            self.ms[name] += (time.perf_counter() - start) * 1e3

    def add(self, speed: Speed) -> None:
        """Count another timed call's stages in (a composite's stages are the sum of its predictors')."""
        for name in STAGES:
            self.ms[name] += getattr(speed, name)

    def speed(self, per: int = 1) -> Speed:
        """The stage times in milliseconds, divided over ``per`` inputs (a batch's time per image)."""
        n = max(per, 1)
        return Speed(*(self.ms[name] / n for name in STAGES))
