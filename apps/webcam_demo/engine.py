"""The demo's state: which task and model run, the predictors loaded so far, and live statistics.

Only public API: ``visionkit.load`` for predictors, ``result.plot`` for drawing. Switching task or model is
thread-safe (the web page and keyboard call it while frames are processed); predictors are cached so
switching back is instant.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np

import visionkit

TASKS = ("detect", "track", "pose", "segment", "classify")


def catalog_models(task: str) -> list[visionkit.ModelEntry]:
    """The catalog entries a demo task can run (tracking runs the detectors)."""
    return visionkit.list_models("detect" if task == "track" else task)


def local_models(task: str) -> list[str]:
    """Catalog models of ``task`` whose weights are on this machine (the default model first if so)."""
    from visionkit import weights

    entries = catalog_models(task)
    entries.sort(key=lambda e: not e.default)
    return [e.name for e in entries if weights.availability(e) == "local"]


def pick_model(task: str) -> str | None:
    """The model the demo runs for ``task``: the task default when its weights are here, else one that is.

    None means the catalog default, which will then be downloaded.
    """
    models = local_models(task)
    return models[0] if models else None


@dataclass
class Stats:
    """Rolling live figures: FPS from the last 30 processed frames, the latest inference and latency."""

    frame_times: deque[float] = field(default_factory=lambda: deque(maxlen=30))
    inference_ms: float = 0.0
    latency_ms: float = 0.0
    frames: int = 0

    @property
    def fps(self) -> float:
        if len(self.frame_times) < 2:
            return 0.0
        return (len(self.frame_times) - 1) / max(self.frame_times[-1] - self.frame_times[0], 1e-9)


class DemoEngine:
    def __init__(self, task: str = "detect", model: str | None = None, device: str = "auto",
                 trust_weights: bool = False):
        self.device = device
        self.start_model = model  # what the user chose at start: the one model file the demo may be asked for
        self.trust_weights = trust_weights  # applies to that model only, never to one asked for over the web
        self._lock = threading.Lock()
        self._predictors: dict[tuple[str, str | None], Any] = {}
        self.stats = Stats()
        self.paused = False
        self.task, self.model = task, model
        self.set_task(task, model)

    def _predictor(self, task: str, model: str | None) -> Any:
        key = (task, model)
        if key not in self._predictors:
            trusted = self.trust_weights and model is not None and model == self.start_model
            predictor = visionkit.load(task, model, device=self.device, trust_weights=trusted)
            predictor.warmup()
            self._predictors[key] = predictor
        return self._predictors[key]

    def set_task(self, task: str, model: str | None = None) -> None:
        """Switch task (and model: None = the best one available here); loads it before switching."""
        if task not in TASKS:
            raise visionkit.OptionError(f"unknown demo task {task!r}: expected one of {', '.join(TASKS)}")
        model = model or pick_model(task)
        predictor = self._predictor(task, model)
        with self._lock:
            if task == "track" and hasattr(predictor, "reset"):
                predictor.reset()  # a fresh tracking session each time tracking is switched on
            self.task, self.model, self._current = task, predictor.entry.name, predictor

    def accepts_model(self, task: str, model: str) -> bool:
        """A model the demo may be switched to: a catalog name of ``task``, or exactly the model it started with.

        Remote controls (the web page) go through this, so they can never make the demo open an arbitrary file.
        """
        return model == self.start_model or any(e.name == model for e in catalog_models(task))

    def next_model(self) -> None:
        models = local_models(self.task)
        if len(models) > 1:
            self.set_task(self.task, models[(models.index(self.model) + 1) % len(models)]
                          if self.model in models else models[0])

    def process(self, image: np.ndarray, captured_at: float) -> tuple[np.ndarray, visionkit.Result]:
        """Run the current task on one frame; return the annotated frame (with the stats overlay) and result."""
        with self._lock:
            predictor = self._current
        result = predictor(image)
        annotated = result.plot(image)
        now = time.monotonic()
        self.stats.frame_times.append(now)
        self.stats.inference_ms = result.speed.total
        self.stats.latency_ms = (now - captured_at) * 1e3
        self.stats.frames += 1
        self._overlay(annotated)
        return annotated, result

    def snapshot(self) -> dict[str, Any]:
        return {"task": self.task, "model": self.model, "paused": self.paused, "fps": round(self.stats.fps, 2),
                "inference_ms": round(self.stats.inference_ms, 2), "latency_ms": round(self.stats.latency_ms, 2),
                "frames": self.stats.frames, "tasks": list(TASKS), "models": local_models(self.task)}

    def _overlay(self, image: np.ndarray) -> None:
        text = (f"{self.task}:{self.model}  {self.stats.fps:4.1f} FPS  infer {self.stats.inference_ms:5.1f} ms  "
                f"latency {self.stats.latency_ms:5.1f} ms")
        scale = max(image.shape[1] / 1400, 0.4)
        (w, h), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
        y0 = image.shape[0] - h - base - 8
        image[y0:, : w + 12] = (image[y0:, : w + 12] * 0.35).astype(image.dtype)
        cv2.putText(image, text, (6, image.shape[0] - base - 4), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), 1,
                    cv2.LINE_AA)
