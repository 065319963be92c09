"""int8 accuracy and speed of a YOLO ONNX export on OpenVINO (NNCF) and ONNX Runtime (QDQ), against fp32 and bf16.

Accuracy: the shared COCO images (../shared/data/coco_val2017, 40) sorted by file name and split alternately into
halves A (even positions) and B (odd). Two-fold: each variant is calibrated on A and scored on B, then calibrated on
B and scored on A; both folds' detections are scored together (mAP50-95 with pycocotools, visionkit's eval settings:
conf 0.001, iou 0.7, multi-label), so no figure comes from an image its quantizer saw. Every model gets the same
inputs and the same decode: the onnx-yolo backend's letterbox (``preprocess``) and NMS (``postprocess``); only the
forward changes. Each int8 variant is one setting of ``visionkit.quantize``; ``--variants`` picks some.

Speed: bare forward at the export's input size on one letterboxed image, every model once per round, rounds
alternating in order (A B C, C B A, ...), medians over ``--runs`` rounds, ratios to ONNX Runtime fp32 and to
OpenVINO fp32 in the same process.

    python benchmarks/bench_int8.py                       # yolov5n, every variant, JSON in benchmarks/results/
    python benchmarks/bench_int8.py --variants ov-tail-mixed ort-tail --runs 50
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import _common as common

common.setup_env()

import cv2  # noqa: E402
import numpy as np  # noqa: E402

import visionkit  # noqa: E402
from visionkit import quantize  # noqa: E402
from visionkit.eval.coco import coco_category_id, load_coco, run_cocoeval  # noqa: E402
from visionkit.tasks.detect import YOLO_EVAL_OPTIONS  # noqa: E402

COCO = common.SHARED / "data" / "coco_val2017"
Forward = Callable[[np.ndarray], np.ndarray]

# name -> (runtime, keyword arguments of visionkit.quantize's function for it)
VARIANTS: dict[str, tuple[str, dict[str, Any]]] = {
    "ov-naive": ("openvino", {"keep_float": "none"}),
    "ov-naive-mixed": ("openvino", {"keep_float": "none", "preset": "mixed"}),
    "ov-decode-mixed": ("openvino", {"keep_float": "decode", "preset": "mixed"}),
    "ov-head": ("openvino", {}),  # visionkit.quantize's defaults: head in float, performance preset
    "ov-head-mixed": ("openvino", {"preset": "mixed"}),
    "ov-head-mixed-fullbc": ("openvino", {"preset": "mixed", "fast_bias_correction": False}),
    "ort-naive": ("onnxruntime", {"keep_float": "none", "per_channel": False}),
    "ort-naive-perchannel": ("onnxruntime", {"keep_float": "none"}),
    "ort-decode": ("onnxruntime", {"keep_float": "decode"}),
    "ort-head-pertensor": ("onnxruntime", {"per_channel": False}),
    "ort-head": ("onnxruntime", {}),  # visionkit.quantize's defaults
    "ort-head-entropy": ("onnxruntime", {"method": "entropy"}),
}


def coco_folds() -> tuple[list[list[dict[str, Any]]], Any]:
    """The two halves of the shared COCO images (sorted by file name, even and odd positions) and their
    pycocotools index. Each half is calibrated on and the other scored, so no score uses a calibration image."""
    gt = load_coco(COCO / "annotations" / "instances_val2017.json")
    infos = sorted(gt.loadImgs(gt.getImgIds()), key=lambda i: i["file_name"])
    items = [{"id": i["id"], "file": i["file_name"], "image": cv2.imread(str(COCO / "images" / i["file_name"]))}
             for i in infos]
    return [items[0::2], items[1::2]], gt


def detections(forward: Forward, backend: Any, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """COCO result rows of ``forward`` on ``items`` with the backend's own preprocessing and NMS."""
    rows = []
    for item in items:
        batch = backend.preprocess([item["image"]])
        det = backend.postprocess(forward(batch), batch, [item["image"]])[0]
        for (x1, y1, x2, y2), s, name in zip(det.xyxy.tolist(), det.scores.tolist(), det.class_names):
            rows.append({"image_id": item["id"], "category_id": coco_category_id(str(name)),
                         "bbox": [x1, y1, x2 - x1, y2 - y1], "score": s})
    return rows


def map50_95(gt: Any, rows: list[dict[str, Any]], items: list[dict[str, Any]]) -> float:
    ids = {i["id"] for i in items}
    ev = run_cocoeval(gt, [r for r in rows if r["image_id"] in ids], sorted(ids), "bbox")
    return 0.0 if ev is None else round(float(ev.stats[0]), 4)


def ort_forward(path: Path, threads: int) -> Forward:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    options.intra_op_num_threads = threads
    session = ort.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    return lambda x: session.run(None, {name: x})[0]


def ov_forward(path: Path, precision: str, threads: int) -> Forward:
    """An OpenVINO CPU model with the inference precision forced (its default on a bf16-capable CPU is bf16)."""
    import openvino as ov

    hints = {"INFERENCE_PRECISION_HINT": precision, "PERFORMANCE_HINT": "LATENCY",
             "INFERENCE_NUM_THREADS": threads}
    compiled = ov.Core().compile_model(str(path), "CPU", hints)
    request = compiled.create_infer_request()
    return lambda x: request.infer({0: x})[0].copy()


def quantized(onnx: Path, name: str, calibration: list[np.ndarray], folder: Path,
              subset: int) -> tuple[Path, float]:
    """The int8 model of variant ``name`` and the seconds its calibration took."""
    runtime, kwargs = VARIANTS[name]
    t0 = time.perf_counter()
    if runtime == "openvino":
        path = quantize.quantize_openvino(onnx, calibration, folder / f"{name}.xml", subset_size=subset, **kwargs)
    else:
        path = quantize.quantize_onnxruntime(onnx, calibration, folder / f"{name}.onnx", subset_size=subset,
                                             **kwargs)
    return path, time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=str(common.SHARED / "weights" / "yolov5n.onnx"), help="YOLO ONNX export")
    parser.add_argument("--variants", nargs="*", choices=list(VARIANTS), default=list(VARIANTS))
    parser.add_argument("--subset", type=int, default=300, help="calibration inputs at most (default: a half, 20)")
    parser.add_argument("--runs", type=int, default=30, help="timed rounds (default 30)")
    parser.add_argument("--threads", type=int, default=2, help="intra-op threads of every runtime (default 2)")
    parser.add_argument("--json", default=str(common.ROOT / "benchmarks" / "results" / "int8.json"))
    args = parser.parse_args()

    onnx = Path(args.model)
    backend = visionkit.load("detect", str(onnx), device="cpu", **YOLO_EVAL_OPTIONS).backend
    folds, gt = coco_folds()
    inputs = [[backend.preprocess([i["image"]]) for i in half] for half in folds]
    print(f"{onnx.name}: {sum(map(len, folds))} COCO images in two halves (sorted by name, even/odd); each int8 "
          f"model is calibrated on one half and scored on the other", flush=True)
    models: dict[str, Forward] = {"ort-fp32": ort_forward(onnx, args.threads),
                                  "ov-fp32": ov_forward(onnx, "f32", args.threads),
                                  "ov-bf16": ov_forward(onnx, "bf16", args.threads)}
    figures: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, forward in list(models.items()):
            rows = [detections(forward, backend, half) for half in folds]
            figures[name] = {"map50_95": map50_95(gt, rows[0] + rows[1], folds[0] + folds[1]),
                             "folds": [map50_95(gt, rows[1], folds[1]), map50_95(gt, rows[0], folds[0])]}
            print(f"  {name:<24} mAP50-95 {figures[name]['map50_95']:.4f} folds {figures[name]['folds']}", flush=True)
        for name in args.variants:
            runtime = VARIANTS[name][0]
            rows, fold_maps, seconds = [], [], []
            for k, (calib, scored) in enumerate(((0, 1), (1, 0))):
                path, took = quantized(onnx, name, inputs[calib], Path(tmp) / str(k), args.subset)
                forward = (ov_forward(path, "f32", args.threads) if runtime == "openvino"
                           else ort_forward(path, args.threads))
                models.setdefault(name, forward)  # fold 0's model is the one timed
                rows += detections(forward, backend, folds[scored])
                fold_maps.append(map50_95(gt, rows, folds[scored]))
                seconds.append(round(took, 1))
            figures[name] = {"runtime": runtime, "settings": VARIANTS[name][1], "calibration_s": seconds,
                             "map50_95": map50_95(gt, rows, folds[0] + folds[1]), "folds": fold_maps}
            print(f"  {name:<24} mAP50-95 {figures[name]['map50_95']:.4f} folds {fold_maps}", flush=True)

        x = inputs[0][0]
        times = common.time_alternating({k: (lambda f=f: f(x)) for k, f in models.items()}, args.runs, warmup=3)
    base = figures["ort-fp32"]["map50_95"]
    for name, ms in times.items():
        med = statistics.median(ms)
        figures[name].update(median_ms=round(med, 2), p90_ms=round(common.p90(ms), 2),
                             drop_points=round((base - figures[name]["map50_95"]) * 100, 2))
    for f in figures.values():
        f["vs_ort_fp32"] = round(f["median_ms"] / figures["ort-fp32"]["median_ms"], 3)
        f["vs_ov_fp32"] = round(f["median_ms"] / figures["ov-fp32"]["median_ms"], 3)
    print(common.markdown_table(
        ("model", "mAP50-95", "drop pt", "median ms", "p90 ms", "x ORT fp32", "x OV fp32"),
        ([k, f["map50_95"], f["drop_points"], f["median_ms"], f["p90_ms"], f["vs_ort_fp32"], f["vs_ov_fp32"]]
         for k, f in figures.items()), numeric=True))
    out = Path(args.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({
        "model": onnx.name,
        "split": {"rule": "COCO images sorted by file name; folds[0]: calibrated on half A, scored on half B; "
                          "folds[1]: the reverse; map50_95: both folds' detections scored together",
                  "half_a": [i["file"] for i in folds[0]], "half_b": [i["file"] for i in folds[1]]},
        "threads": args.threads, "runs": args.runs, "cpu": platform.processor() or platform.machine(),
        "versions": quantize.package_versions(), "results": figures}, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
