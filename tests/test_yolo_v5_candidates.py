"""The YOLOv5-layout codec drops candidates whose objectness is at or below ``conf`` before NMS (a speed-up):
the boxes must be exactly those of NMS on every candidate, for one image and for a batch of different images,
at the interactive and at the eval threshold."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

import visionkit
from visionkit.tasks.yolo import yolo_nms


def all_candidates(raw: np.ndarray) -> torch.Tensor:
    """Every candidate in ultralytics' layout, as the codec did before it filtered."""
    pred = torch.as_tensor(raw)
    return torch.cat([pred[..., :4], pred[..., 5:] * pred[..., 4:5]], -1).transpose(1, 2)


@pytest.mark.parametrize("conf", [0.25, 0.001])
def test_filtered_candidates_give_the_same_boxes(shared_weights: Path, assets: Path, conf: float) -> None:
    predictor = visionkit.load("detect", str(shared_weights / "yolov5n.onnx"), conf=conf, multi_label=conf < 0.01)
    codec = predictor.backend
    images = [cv2.imread(str(assets / name)) for name in ("bus.jpg", "zidane.jpg")]
    # the export takes one image per call: stack two calls' outputs into the batch the codec would see
    raw = [np.concatenate([codec.session.run([codec.preprocess([image])])[0] for image in images])]
    assert raw[0].shape[1] == 25200  # the v5 layout [B, N, 5 + nc]
    filtered = codec.predictions(raw)
    assert filtered.shape[2] < raw[0].shape[1]  # something was dropped
    ours = yolo_nms(filtered, codec.options)
    reference = yolo_nms(all_candidates(raw[0]), codec.options)
    assert [len(p) for p in ours] == [len(p) for p in reference]
    assert all(len(p) for p in ours)
    for got, want in zip(ours, reference):
        torch.testing.assert_close(got, want, rtol=0, atol=0)


def test_six_candidates_are_not_read_as_an_end_to_end_output(shared_weights: Path, assets: Path) -> None:
    """ultralytics' NMS takes any prediction whose last axis is 6 for an end-to-end [B, N, 6] output: the filter
    must never leave exactly six candidates (it did on COCO image 22192 at conf 0.5: boxes with class 346)."""
    predictor = visionkit.load("detect", str(shared_weights / "yolov5n.onnx"))
    codec = predictor.backend
    raw = codec.session.run([codec.preprocess([cv2.imread(str(assets / "bus.jpg"))])])
    objectness = np.sort(raw[0][0, :, 4])
    codec.options = {**codec.options, "conf": float(objectness[-7])}  # exactly six candidates above it
    filtered = codec.predictions(raw)
    assert filtered.shape[2] != 6
    ours, reference = yolo_nms(filtered, codec.options)[0], yolo_nms(all_candidates(raw[0]), codec.options)[0]
    torch.testing.assert_close(ours, reference, rtol=0, atol=0)
    assert len(ours) and int(ours[:, 5].max()) < 80
