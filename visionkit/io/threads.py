"""Background threads between pipeline stages, so decoding, inference and encoding overlap.

OpenCV decode/encode, ONNX Runtime and PyTorch all release the GIL while they work, so plain threads
overlap them. Queues are bounded: a slow consumer makes the producer wait (files) or drops stale frames
(``latest_only``, for live cameras, so the display never falls behind).
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Any, Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")
_DONE = object()


class _Failure:
    def __init__(self, error: BaseException):
        self.error = error


class BackgroundIterator(Generic[T]):
    """Iterate ``iterable`` in a daemon thread, handing items over through a bounded queue.

    With ``latest_only`` the queue holds one item and a new item replaces an unconsumed one: the consumer
    always gets the newest frame and ``dropped`` counts the ones it never saw. Exceptions raised by the
    producer re-raise in the consumer, after the items produced before them.
    """

    def __init__(self, iterable: Iterable[T], maxsize: int = 4, latest_only: bool = False, name: str = "reader"):
        self.latest_only = latest_only
        self.dropped = 0
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=1 if latest_only else max(maxsize, 1))
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._produce, args=(iterable,), name=f"visionkit-{name}",
                                        daemon=True)
        self._thread.start()

    def _put(self, item: Any) -> bool:
        """Queue an item; False once the consumer has stopped listening."""
        if self.latest_only and item is not _DONE and not isinstance(item, _Failure):
            try:
                self._queue.get_nowait()
                self.dropped += 1
            except queue.Empty:
                pass
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                if self.latest_only:  # the end marker must not be lost: make room for it
                    try:
                        self._queue.get_nowait()
                    except queue.Empty:
                        pass
        return False

    def _produce(self, iterable: Iterable[T]) -> None:
        try:
            for item in iterable:
                if not self._put(item):
                    return
        except BaseException as e:  # handed to the consumer, raised there
            self._put(_Failure(e))
            return
        self._put(_DONE)

    def __iter__(self) -> Iterator[T]:
        try:
            while True:
                item = self._queue.get()
                if item is _DONE:
                    return
                if isinstance(item, _Failure):
                    raise item.error
                yield item
        finally:
            self.close()

    def poll(self, timeout: float = 0.0) -> tuple[bool, T | None]:
        """The next item if one comes within ``timeout`` seconds: ``(True, item)``, else ``(False, None)``, so a
        consumer of several iterators never waits on a slow one. Raises ``StopIteration`` at the end and the
        producer's exception after its items, as iteration does."""
        try:
            item = self._queue.get(timeout=timeout) if timeout > 0 else self._queue.get_nowait()
        except queue.Empty:
            return False, None
        if item is _DONE:
            self.close()
            raise StopIteration
        if isinstance(item, _Failure):
            self.close()
            raise item.error
        return True, item

    def close(self) -> None:
        """Stop the producer (it ends at its next item) and wait briefly for it."""
        self._stop.set()
        if threading.current_thread() is not self._thread:
            self._thread.join(timeout=2.0)


class BackgroundWorker:
    """Run ``fn(*args)`` calls in order in one daemon thread (e.g. drawing and encoding output frames).

    ``submit`` blocks when ``maxsize`` calls are pending (backpressure instead of unbounded memory). The first
    exception a call raises stops the calls after it and is re-raised, as it was raised, by every later
    ``submit`` and by ``close``: the caller sees the real error (a ``SinkError`` stays one), never a later one.
    """

    def __init__(self, fn: Callable[..., None], maxsize: int = 8, name: str = "writer"):
        self.fn = fn
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=max(maxsize, 1))
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._work, name=f"visionkit-{name}", daemon=True)
        self._thread.start()

    def _work(self) -> None:
        while (args := self._queue.get()) is not _DONE:
            if self._error is None:
                try:
                    self.fn(*args)
                except BaseException as e:
                    self._error = e

    def _raise(self) -> None:
        if self._error is not None:
            raise self._error

    def submit(self, *args: Any) -> None:
        self._raise()
        self._queue.put(args)

    def close(self) -> None:
        """Finish every submitted call, stop the thread, raise a pending error."""
        if self._thread.is_alive():
            self._queue.put(_DONE)
            self._thread.join()
        self._raise()


def ordered_map(fn: Callable[[T], R], items: Iterable[T], workers: int,
                name: str = "worker") -> Iterator[tuple[T, R]]:
    """``(item, fn(item))`` in input order, ``fn`` running in ``workers`` threads on consecutive items.

    For work that releases the GIL (ONNX Runtime, PyTorch kernels): two single-threaded inferences side by side
    get more out of a few CPU cores than one inference split over them. At most ``workers`` + 1 items are in
    flight, so memory stays flat; leaving the loop early cancels what has not started. When ``items`` itself
    raises (a source that fails mid-way), the items before the failure are still finished and yielded first.
    """
    from collections import deque
    from concurrent.futures import Future, ThreadPoolExecutor

    pending: deque[tuple[T, Future[R]]] = deque()
    failure: Exception | None = None
    with ThreadPoolExecutor(workers, thread_name_prefix=f"visionkit-{name}") as pool:
        try:
            iterator = iter(items)
            while True:
                try:
                    item = next(iterator)
                except StopIteration:
                    break
                except Exception as e:  # raised below, after the work already in flight
                    failure = e
                    break
                pending.append((item, pool.submit(fn, item)))
                if len(pending) > workers:
                    first, future = pending.popleft()
                    yield first, future.result()
            while pending:
                first, future = pending.popleft()
                yield first, future.result()
        finally:
            for _, future in pending:
                future.cancel()
    if failure is not None:
        raise failure
