"""Progress of a long command on stderr: tqdm's bar on a terminal, plain lines anywhere else.

A bar redraws itself with carriage returns, which a CI log or a ``nohup.out`` keeps as one ever-growing line; and
tqdm switched off (its choice off a terminal) says nothing at all for an hour of video. Off a terminal a run
therefore prints one plain line (``detect: 450/1500 frame(s) (30%), 24.8 frame/s, ~42 s left``) at each new 10 %
of the total, and at least every ``VISIONKIT_PROGRESS_SECONDS`` (default 10) seconds when the total is unknown or
the run is slow, but none in the first of those seconds: a short run stays as quiet as it was.
"""

from __future__ import annotations

import os
import re
import sys
import time
from collections.abc import Callable
from typing import Any, TextIO

INTERVAL_ENV = "VISIONKIT_PROGRESS_SECONDS"
DEFAULT_INTERVAL_S = 10.0
STEPS = 10  # a line at each tenth of the total
_AMOUNT = r"[\d.]+[A-Za-z]*"  # 450, 24.8, 1.20M
_LINE = re.compile(rf"^[^:]+: {_AMOUNT}(/{_AMOUNT})? \S+( \(\d+%\))?, {_AMOUNT} \S+/s(, ~\d+ s left)?$")


def progress_bar(total: int | None, desc: str, unit: str, *, disable: bool = False, unit_scale: bool = False,
                 leave: bool = True, announce: str = "", stream: TextIO | None = None) -> Any:
    """A progress reporter with tqdm's ``update(n)`` / ``close()`` / context-manager interface: tqdm's bar when
    ``stream`` (stderr by default) is a terminal, ``LineProgress`` otherwise, a silent tqdm with ``disable``.
    ``announce``: a line printed at once off a terminal, for what a log must show even when it is quick (a download;
    on a terminal the bar's ``desc`` says it)."""
    from tqdm import tqdm

    stream = stream if stream is not None else sys.stderr
    if disable:
        return tqdm(disable=True)
    if _is_terminal(stream):
        return tqdm(total=total or None, desc=desc, unit=unit, unit_scale=unit_scale, leave=leave, file=stream,
                    dynamic_ncols=True)
    if announce:
        print(announce, file=stream, flush=True)
    return LineProgress(total, desc, unit, stream=stream, unit_scale=unit_scale)


def is_progress_line(line: str) -> bool:
    """Whether ``line`` is one of ``LineProgress``'s lines (tests tell them from error and log lines)."""
    return bool(_LINE.match(line))


def progress_interval() -> float:
    """``VISIONKIT_PROGRESS_SECONDS``: seconds between lines (and of quiet at the start); 0 = a line each update."""
    value = os.environ.get(INTERVAL_ENV, "")
    try:
        return max(float(value), 0.0) if value.strip() else DEFAULT_INTERVAL_S
    except ValueError:
        return DEFAULT_INTERVAL_S


class LineProgress:
    """Plain, newline-ended progress lines for a log: see the module docstring for when one is printed."""

    def __init__(self, total: int | None, desc: str, unit: str, *, stream: TextIO, unit_scale: bool = False,
                 interval: float | None = None, clock: Callable[[], float] = time.monotonic):
        self.total, self.desc, self.unit, self.unit_scale = total or 0, desc, unit, unit_scale
        self.stream, self.clock = stream, clock
        self.interval = progress_interval() if interval is None else interval
        self.n = 0
        self.start = self.last_line = clock()
        self.step = 0  # the last tenth of the total reported

    def update(self, n: int = 1) -> None:
        self.n += n
        now = self.clock()
        if now - self.start < self.interval:
            return
        step = min(self.n * STEPS // self.total, STEPS) if self.total else 0
        if step > self.step or now - self.last_line >= self.interval:
            self.step, self.last_line = max(step, self.step), now
            print(self.line(now), file=self.stream, flush=True)

    def line(self, now: float) -> str:
        rate = self.n / max(now - self.start, 1e-9)
        if not self.total:
            return f"{self.desc}: {self._amount(self.n)} {self._unit()}, {self._amount(rate)} {self.unit}/s"
        left = (self.total - self.n) / rate if rate > 0 else 0.0
        return (f"{self.desc}: {self._amount(self.n)}/{self._amount(self.total)} {self._unit()} "
                f"({100 * self.n // self.total}%), {self._amount(rate)} {self.unit}/s, ~{max(left, 0):.0f} s left")

    def _amount(self, value: float) -> str:
        if self.unit_scale:
            from tqdm import tqdm

            return tqdm.format_sizeof(value)
        return f"{value:.1f}" if isinstance(value, float) else str(value)

    def _unit(self) -> str:
        return self.unit if self.unit_scale else f"{self.unit}(s)"

    def close(self) -> None:
        """Nothing to clear: every line is already complete."""

    def __enter__(self) -> LineProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False
