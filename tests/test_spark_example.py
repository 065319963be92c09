"""examples/spark_predict_batch_udf.py: a visionkit Predictor as Spark's ``predict_batch_udf``. The batch function
it hands Spark is checked here directly (fast, no JVM); the whole example runs on a real local Spark in the slow
test (about 1.5 min on the shared 2-core machine: JVM and Python worker start-up)."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

import visionkit

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "spark_predict_batch_udf.py"
MODEL = "ssd_mobilenet_v1_coco"


def _example():
    spec = importlib.util.spec_from_file_location("spark_predict_batch_udf", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def photos(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("photos")
    for photo in sorted((shared_data / "coco_val2017" / "images").glob("*.jpg"))[:3]:
        shutil.copy(photo, folder / photo.name)
    (folder / "bad.jpg").write_bytes(b"not an image")
    return folder


def _expected(photos: Path) -> dict[str, dict]:
    """What the Predictor itself gives for each photo, in the example's columns."""
    predictor = visionkit.load("detect", MODEL)
    good = sorted(p for p in photos.glob("*.jpg") if p.name != "bad.jpg")
    return {str(p): {"n_objects": len(r), "class_names": list(r.class_names), "scores": r.scores.tolist(),
                     "boxes": r.xyxy.ravel().tolist()} for p, r in zip(good, predictor.predict([str(p) for p in good]))}


def test_the_batch_function_spark_calls_gives_the_predictors_detections(photos: Path, shared_weights: Path) -> None:
    predict = _example().make_predict_fn("detect", MODEL, batch_size=2)()
    paths = np.array(sorted(str(p) for p in photos.glob("*.jpg")))
    rows = predict(paths)
    assert len(rows) == len(paths) == 4
    by_path = dict(zip(paths, rows))
    assert "not a decodable image" in by_path[str(photos / "bad.jpg")]["error"]
    want = _expected(photos)
    assert sum(w["n_objects"] for w in want.values()) > 0
    for path, expected in want.items():
        got = by_path[path]
        assert got["error"] == "" and got["n_objects"] == expected["n_objects"]
        assert list(got["class_names"]) == expected["class_names"]
        np.testing.assert_allclose(got["scores"], expected["scores"], rtol=1e-6)
        np.testing.assert_allclose(got["boxes"], expected["boxes"], atol=1e-3)


@pytest.mark.slow
def test_the_example_runs_on_a_local_spark(photos: Path, shared_weights: Path, tmp_path: Path) -> None:
    pytest.importorskip("pyspark")
    if not shutil.which("java"):
        pytest.skip("Spark needs a Java runtime")
    out = tmp_path / "detections.parquet"
    env = {**os.environ, "VISIONKIT_WEIGHTS": str(shared_weights), "YOLO_OFFLINE": "1"}
    done = subprocess.run([sys.executable, str(EXAMPLE), str(photos), "--out", str(out), "-m", MODEL,
                           "--batch-size", "2"], env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    want = _expected(photos)
    assert f"spark: 4 images, {sum(w['n_objects'] for w in want.values())} objects, 1 errors" in done.stdout
    rows = {r["path"]: r for r in pq.read_table(out).to_pylist()}
    assert "not a decodable image" in rows.pop(str(photos / "bad.jpg"))["error"]
    for path, expected in want.items():
        assert rows[path]["n_objects"] == expected["n_objects"] and rows[path]["class_names"] == expected["class_names"]
        np.testing.assert_allclose(rows[path]["boxes"], expected["boxes"], atol=1e-3)
