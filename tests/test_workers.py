"""Several frames in inference at once (``workers``): results in frame order, equal to one at a time."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pytest
from clip_helpers import make_clip

import visionkit
from visionkit.cli import main
from visionkit.device import cpu_cores
from visionkit.errors import OptionError
from visionkit.io.threads import ordered_map

MODEL = "ssd_mobilenet_v1_coco"


def test_ordered_map_runs_side_by_side_and_keeps_order() -> None:
    both_running = threading.Barrier(2, timeout=5)  # passes only when two calls run at the same time

    def work(i: int) -> int:
        if i < 2:
            both_running.wait()
        time.sleep(0.01 * (i % 3))  # later items may finish first
        return i * i

    assert list(ordered_map(work, range(10), workers=2)) == [(i, i * i) for i in range(10)]


def test_ordered_map_bounds_work_in_flight_and_stops_early() -> None:
    started: list[int] = []

    def work(i: int) -> int:
        started.append(i)
        return i

    results = ordered_map(work, iter(range(1000)), workers=2)
    assert next(results) == (0, 0)
    results.close()
    assert len(started) <= 4  # not the whole input read ahead


def test_ordered_map_raises_the_workers_error_in_order() -> None:
    def work(i: int) -> int:
        if i == 3:
            raise ValueError("bad item 3")
        return i

    got = []
    with pytest.raises(ValueError, match="bad item 3"):
        for _, r in ordered_map(work, range(10), workers=2):
            got.append(r)
    assert got == [0, 1, 2]


@pytest.fixture(scope="module")
def clip(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_clip(shared_data / "tracking/demo/vtest.avi", tmp_path_factory.mktemp("clip") / "clip.avi", 20)


def test_stream_with_two_workers_equals_one(clip: Path, shared_weights: Path) -> None:
    one = list(visionkit.load("detect", MODEL, device="cpu").stream(clip))
    two_predictor = visionkit.load("detect", MODEL, device="cpu", workers=2)
    two = list(two_predictor.stream(clip))
    assert two_predictor.backend.device.threads == max(cpu_cores() // 2, 1)
    assert [f.index for f, _ in two] == [r.frame_index for _, r in two] == list(range(20))
    assert sum(len(r) for _, r in one) >= 20
    for (_, a), (_, b) in zip(one, two, strict=True):
        assert len(a) == len(b)
        np.testing.assert_allclose(a.xyxy, b.xyxy, atol=1e-3)
        np.testing.assert_array_equal(a.class_ids, b.class_ids)


def test_tracking_with_two_workers_equals_one(clip: Path, shared_weights: Path, tmp_path: Path) -> None:
    rows = {}
    for workers in (1, 2):
        mot = tmp_path / f"w{workers}.txt"
        assert main(["track", str(clip), "--model", MODEL, "--classes", "1", "--workers", str(workers),
                     "--mot", str(mot), "--quiet"]) == 0
        rows[workers] = np.loadtxt(mot, delimiter=",", ndmin=2)
    assert len(rows[1]) >= 20
    assert rows[1].shape == rows[2].shape
    np.testing.assert_array_equal(rows[1][:, :2], rows[2][:, :2])  # frames and ids
    np.testing.assert_allclose(rows[1][:, 2:7], rows[2][:, 2:7], atol=0.01)


def test_workers_need_a_backend_that_runs_inputs_side_by_side(shared_weights: Path) -> None:
    with pytest.raises(OptionError, match="runs one input at a time: workers must be 1"):
        visionkit.load("detect", "yunet_face", workers=2)
    with pytest.raises(OptionError, match="workers must be an integer between 1 and 256, got 0"):
        visionkit.load("detect", MODEL, workers=0)


def test_ordered_map_finishes_the_work_in_flight_before_a_source_error() -> None:
    """A source that fails mid-way (a truncated video without on_error): every item it gave still comes out."""
    def items():
        yield from range(5)
        raise ValueError("source failed after 5 items")

    got = []
    with pytest.raises(ValueError, match="after 5 items"):
        for item, result in ordered_map(lambda i: i * 10, items(), workers=2):
            got.append((item, result))
    assert got == [(i, i * 10) for i in range(5)]
