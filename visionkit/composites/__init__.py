"""Composites: predictors built one floor above the ``Predictor``, on its public surface only.

    tracking   detector -> ByteTrack/BoT-SORT per stream             (``track.TrackingPredictor``)
    action     frames -> sliding window -> clip classifier            (``action.ActionPredictor``)
    pose       detector -> single-person pose model per person box   (``person_pose.PersonPose``)
    streams    many sources through one predictor, state per stream  (``multistream.MultiStream``; API only)

Each follows ``Composite``, the Predictor's own surface (``task``, ``entry``, ``class_names``, ``warmup``, calling it
on an image, ``stream`` over a source), so sinks, the CLI, batch engines and ``MultiStream`` take any of them where
they take a Predictor. ``COMPOSITES`` is the one table ``visionkit.load`` and the CLI dispatch a task through: a
task without an entry is a plain ``Predictor``.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator
from typing import Any, Protocol, runtime_checkable

from ..catalog import ModelEntry
from ..io.sources import ErrorHandler, Frame
from ..results import Result

# task -> "module:factory": the factory takes (model, device=..., **options) like ``Predictor``.
COMPOSITES: dict[str, str] = {
    "track": "visionkit.composites.track:TrackingPredictor",
    "action": "visionkit.composites.action:ActionPredictor",
    "pose": "visionkit.composites.person_pose:pose_predictor",
}


@runtime_checkable
class Composite(Protocol):
    """What every predictor offers, a composite included."""

    task: str

    @property
    def entry(self) -> ModelEntry: ...

    @property
    def class_names(self) -> list[str]: ...

    def warmup(self) -> Any: ...

    def __call__(self, image: Any) -> Any: ...

    def stream(self, source: Any, on_error: ErrorHandler | None = None,
               prefetch: int = 4) -> Iterator[tuple[Frame, Result]]: ...


def composite_for(task: str) -> Callable[..., Any] | None:
    """The factory ``load`` uses for ``task``, or None when the task is a plain Predictor."""
    target = COMPOSITES.get(task) if isinstance(task, str) else None
    if target is None:
        return None
    module, _, name = target.partition(":")
    factory: Callable[..., Any] = getattr(importlib.import_module(module), name)
    return factory
