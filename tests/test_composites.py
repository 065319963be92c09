"""The composites table: every task ``load()`` builds through ``COMPOSITES`` gives a predictor on the
Predictor's own surface (``Composite``), so sinks, the CLI and MultiStream take it where they take a Predictor."""

from __future__ import annotations

from pathlib import Path

import cv2
import pytest

import visionkit
from visionkit.composites import COMPOSITES, Composite, composite_for


@pytest.mark.needs_shared
@pytest.mark.parametrize("task, model", [("track", "yolov5n"), ("pose", "movenet_lightning"), ("detect", "yolov5n")])
def test_load_gives_the_predictor_surface_through_the_table(task: str, model: str, shared_weights: Path,
                                                            assets: Path) -> None:
    predictor = visionkit.load(task, model, device="cpu")
    assert isinstance(predictor, Composite) and predictor.task == task and predictor.entry.name == model
    assert (composite_for(task) is not None) == (task in COMPOSITES)
    frames = list(predictor.stream(str(assets / "bus.jpg")))
    assert len(frames) == 1 and len(predictor(cv2.imread(str(assets / "bus.jpg")))) > 0


def test_a_task_outside_the_table_is_a_plain_predictor() -> None:
    assert composite_for("detect") is None and composite_for(["track"]) is None  # type: ignore[arg-type]
