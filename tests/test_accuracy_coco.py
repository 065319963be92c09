"""COCO box mAP of the real models on shared/data's 40 COCO val2017 images, against the reference pipelines.

The bar is the figure each reference library's own pipeline gets on the same images (pycocotools bbox):

* yolov5n: the YOLOv5 code's letterbox (640 square), ``non_max_suppression`` (conf 0.001, IoU 0.6, max 300,
  best class per box) and ``scale_boxes``: mAP50-95 0.345, mAP50 0.524.
* ssd_mobilenet_v1_coco: the TFLite interpreter (plain resize to 300x300, in-graph NMS, top 10):
  mAP 0.229, AP50 0.374.

visionkit must land within 0.005 of both figures, with the catalog's ``eval`` settings and nothing tuned here.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from visionkit import Predictor, catalog
from visionkit.cli import main
from visionkit.eval.coco import evaluate_detector

# (mAP50-95, mAP50) measured by the reference pipelines; also recorded in the catalog as metrics["reference"].
REFERENCE = {"yolov5n": (0.345, 0.524), "ssd_mobilenet_v1_coco": (0.229, 0.374)}
TOLERANCE = 0.005


@pytest.fixture(scope="module")
def coco(shared_data: Path, shared_weights: Path) -> tuple[Path, Path]:
    root = shared_data / "coco_val2017"
    images, annotations = root / "images", root / "annotations" / "instances_val2017.json"
    for model in REFERENCE:
        weights = shared_weights / catalog.get_entry(model).file
        assert weights.is_file(), f"{weights} missing from the shared weights"
    assert annotations.is_file() and len(list(images.glob("*.jpg"))) == 40
    return images, annotations


@pytest.mark.parametrize("model", sorted(REFERENCE))
def test_reference_figures_match_catalog(model: str) -> None:
    reference = catalog.get_entry(model).metrics["reference"]
    assert (reference["box_map"] / 100, reference["box_map50"] / 100) == pytest.approx(REFERENCE[model], abs=1e-9)


@pytest.mark.parametrize("model", sorted(REFERENCE))
def test_map_matches_reference_pipeline(model: str, coco: tuple[Path, Path]) -> None:
    ref_map, ref_map50 = REFERENCE[model]
    score = evaluate_detector(Predictor("detect", model, evaluate=True, device="cpu"), *coco)
    assert score.images == 40
    assert score.map == pytest.approx(ref_map, abs=TOLERANCE), f"{model} mAP50-95 {score.map:.4f} vs {ref_map}"
    assert score.map50 == pytest.approx(ref_map50, abs=TOLERANCE), f"{model} mAP50 {score.map50:.4f} vs {ref_map50}"


def test_cli_eval_detect_writes_json(coco: tuple[Path, Path], tmp_path: Path,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    images, annotations = coco
    out = tmp_path / "scores.json"
    code = main(["eval", "detect", "--model", "ssd_mobilenet_v1_coco", "--images", str(images),
                 "--annotations", str(annotations), "--device", "cpu", "--json", str(out)])
    assert code == 0
    data = json.loads(out.read_text())
    assert set(data) >= {"model", "map", "map50", "map75", "images", "detections"}
    assert data["model"] == "ssd_mobilenet_v1_coco"
    assert data["images"] == 40
    assert 0 < data["detections"] <= 40 * 10  # the in-graph NMS keeps at most 10 boxes per image
    ref_map, ref_map50 = REFERENCE["ssd_mobilenet_v1_coco"]
    assert data["map"] == pytest.approx(ref_map, abs=TOLERANCE)
    assert data["map50"] == pytest.approx(ref_map50, abs=TOLERANCE)
    assert f"mAP50-95 {data['map']:.3f}" in capsys.readouterr().out


def test_batched_eval_nms_keeps_every_image(coco: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    """ultralytics' NMS gives up on the rest of a batch after a time limit, leaving those images empty; a slow
    machine must not silently cost a batched evaluation its boxes. A clock that jumps 100 s per reading
    stands in for the slow machine."""
    import types

    import ultralytics.utils.nms as nms

    images = sorted(coco[0].glob("*.jpg"))[:4]
    single = Predictor("detect", "yolov5n", evaluate=True, device="cpu").predict(images)
    ticks = iter(range(0, 10**9, 100))
    monkeypatch.setattr(nms, "time", types.SimpleNamespace(time=lambda: float(next(ticks))))
    batched = Predictor("detect", "yolov5n", evaluate=True, device="cpu", batch_size=4).predict(images)
    assert [len(r) for r in batched] == [len(r) for r in single]
    assert all(len(r) > 0 for r in batched)
    for a, b in zip(batched, single):
        np.testing.assert_allclose(a.xyxy, b.xyxy, atol=1e-3)
