"""A pool of per-call objects: what lets one loaded model serve several threads at once on every runtime."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Generic, TypeVar

T = TypeVar("T")


class Pool(Generic[T]):
    """``with pool.borrow() as item:`` gives a call an item no other call holds, made by ``factory`` when none is
    free and kept for later calls, so there are never more items than calls that ran at once.

    Used for PyTorch modules that cache per-shape state on themselves (copies sharing the weights) and for
    OpenVINO infer requests (one compiled model, one request per call in flight).
    """

    def __init__(self, factory: Callable[[], T]):
        self._factory = factory
        self._free: list[T] = []
        self._lock = threading.Lock()

    @contextmanager
    def borrow(self) -> Iterator[T]:
        with self._lock:
            item = self._free.pop() if self._free else None
        if item is None:
            item = self._factory()
        try:
            yield item
        finally:
            with self._lock:
                self._free.append(item)
