"""Stop signals (SIGINT, SIGTERM, SIGHUP) as ``KeyboardInterrupt``, for the command line.

A service manager stops a run with SIGTERM, a closed terminal or SSH session sends SIGHUP; both kill Python
on the spot by default, before any video is finalised. ``stop_signals()`` turns each into ``Interrupted``, a
``KeyboardInterrupt`` raised in the main thread, so the cleanup that Ctrl-C already runs (finish the videos,
flush the sinks, print the summary) runs for all three, and the exit status is the shell's ``128 + signal``
(130, 143, 129). A signal the parent process ignores (``nohup`` ignores SIGHUP) stays ignored. Nothing here
is installed on import: only the CLI enters ``stop_signals()``, so a program that uses the library keeps its
own handlers.

Once one stop signal has been raised, the next ones are ignored while the outputs are finalised (a second
Ctrl-C must not cut a video short); SIGKILL still ends a run that hangs, and the video survives that too.
``hold_stop_signals()`` marks the point where outputs are being finished (a stop then is only noted, see
``stop_requested()``), ``deferred_stop()`` holds a stop back until a block of native start-up code has run (it is
raised when the block ends), and ``stop_gracefully(stop)`` hands a stop to code that shuts down by itself (the demo's
web server) and raises it once that is done.
"""

from __future__ import annotations

import contextlib
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from types import FrameType

STOP_SIGNALS = tuple(getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name))


class Interrupted(KeyboardInterrupt):
    """A run stopped by ``signum``; a KeyboardInterrupt, so every Ctrl-C cleanup path handles it."""

    def __init__(self, signum: int = signal.SIGINT):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum

    @property
    def signal_name(self) -> str:
        return signal.Signals(self.signum).name

    @property
    def exit_code(self) -> int:
        """What a shell reports for a process ended by the signal: 130 SIGINT, 143 SIGTERM, 129 SIGHUP."""
        return 128 + self.signum


class _StopHandler:
    """Raise ``Interrupted`` for the first stop signal, unless outputs are being finished (then only note it) or
    a graceful stop is set (then call it)."""

    def __init__(self) -> None:
        self.received: int | None = None
        self.held = False
        self.deferred = False
        self.graceful: Callable[[], None] | None = None

    def __call__(self, signum: int, frame: FrameType | None) -> None:
        if self.graceful is not None:
            self.received = self.received or signum
            self.graceful()
            return
        if self.received is not None:
            return  # already stopping
        self.received = signum
        if not self.held and not self.deferred:
            raise Interrupted(signum)


_active: _StopHandler | None = None


@contextlib.contextmanager
def stop_signals() -> Iterator[None]:
    """While inside, SIGINT/SIGTERM/SIGHUP raise ``Interrupted`` in the main thread; the previous handlers come
    back on exit. Outside the main thread (where Python allows no handlers) this does nothing."""
    global _active
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    handler, outer = _StopHandler(), _active
    # A signal the parent set to be ignored stays ignored: `nohup visionkit ...` must survive a hang-up.
    previous = {signum: signal.signal(signum, handler) for signum in STOP_SIGNALS
                if signal.getsignal(signum) is not signal.SIG_IGN}
    _active = handler
    try:
        yield
    finally:
        _active = outer
        for signum, old in previous.items():
            signal.signal(signum, old)


def hold_stop_signals() -> None:
    """Outputs are being finished: from now until ``stop_signals()`` ends, a stop signal is only noted (see
    ``stop_requested``), not raised, so no file is cut short. Without ``stop_signals()`` it does nothing."""
    if _active is not None:
        _active.held = True


@contextlib.contextmanager
def deferred_stop() -> Iterator[None]:
    """Within, a stop signal is only noted; ``Interrupted`` is raised for it once the block has ended. For native
    start-up code that calls back into Python: torch's C++ initialisation turns an exception raised in such a
    callback into ``std::terminate``, so a Ctrl-C while ``import torch`` runs would abort the process (SIGABRT, no
    cleanup, no exit status 130) instead of interrupting it. Without ``stop_signals()`` it changes nothing."""
    handler = _active
    if handler is None or handler.deferred:
        yield
        return
    before = handler.received
    handler.deferred = True
    try:
        yield
    finally:
        handler.deferred = False
    if before is None and handler.received is not None and not handler.held:
        raise Interrupted(handler.received)


@contextlib.contextmanager
def stop_gracefully(stop: Callable[[], None]) -> Iterator[None]:
    """Within, a stop signal calls ``stop()`` (e.g. tell a server to shut down) instead of raising wherever the
    main thread is (inside an event loop that would leave a task's exception unretrieved); once the block has
    ended, ``Interrupted`` is raised for it. Without ``stop_signals()`` it changes nothing."""
    handler = _active
    if handler is None:
        yield
        return
    handler.graceful = stop
    try:
        yield
    finally:
        handler.graceful = None
    if handler.received is not None:
        raise Interrupted(handler.received)


def stop_requested() -> Interrupted | None:
    """The stop signal received since ``stop_signals()`` began (raised or held), if any."""
    return Interrupted(_active.received) if _active is not None and _active.received is not None else None


def report_interrupted(stop: KeyboardInterrupt) -> int:
    """Print the command's one ``visionkit: interrupted by SIGNAL`` line; return the exit status, 128 + its number."""
    if not isinstance(stop, Interrupted):  # Ctrl-C where no handler could be installed (not the main thread)
        stop = Interrupted()
    print(f"visionkit: interrupted by {stop.signal_name}", file=sys.stderr)
    return stop.exit_code
