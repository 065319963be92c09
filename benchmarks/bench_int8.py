"""int8 accuracy and speed of a YOLO ONNX export on OpenVINO (NNCF) and ONNX Runtime (QDQ), against fp32 and bf16.

Accuracy: the shared COCO images (../shared/data/coco_val2017, 40) sorted by file name and split alternately into
halves A (even positions) and B (odd). Two-fold: each variant is calibrated on A and scored on B, then calibrated on
B and scored on A; both folds' detections are scored together (mAP50-95 with pycocotools, visionkit's eval settings:
conf 0.001, iou 0.7, multi-label), so no figure comes from an image its quantizer saw. Every model gets the same
inputs and the same decode: the onnx-yolo backend's letterbox (``preprocess``) and NMS (``postprocess``); only the
forward changes. Each int8 variant is one setting of ``visionkit.quantize``; ``--variants`` picks some.

Speed, two ways, every model once per round, rounds alternating in order (A B C, C B A, ...), medians:

  bare forward  at the export's input size on one letterboxed image, ``--runs`` rounds, ratios to ONNX Runtime fp32
                and to OpenVINO fp32 in the same process
  end to end    what a user runs: ``visionkit.export(..., precision="int8", data=half A, val=half B)`` (the real
                export with its accuracy guard) for OpenVINO and ONNX Runtime, then ``visionkit.load`` of each file
                (and of the fp32 file on ONNX Runtime and OpenVINO, fp32 and bf16), whole pipeline (letterbox,
                forward, NMS at the interactive settings) on the 8 first images of half B, ``--runs`` rounds;
                ratios to visionkit fp32 on ONNX Runtime (the issue's target: int8 >= 1.6x faster)

With ``--figures`` the tables go to README's figures:int8-accuracy and figures:int8-speed sections.

    python benchmarks/bench_int8.py                       # yolov5n, every variant, JSON in benchmarks/results/
    python benchmarks/bench_int8.py --variants ov-head ort-head --runs 50
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
from visionkit.tasks.yolo import YOLO_EVAL_OPTIONS  # noqa: E402

COCO = common.SHARED / "data" / "coco_val2017"
Forward = Callable[[np.ndarray], list[np.ndarray]]  # a batch -> the model's outputs

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
# How the README names each model.
LABELS = {
    "ort-fp32": "fp32 (ONNX Runtime, OpenVINO f32)",
    "ov-fp32": "OpenVINO fp32",
    "ov-bf16": "OpenVINO bf16",
    "ov-naive": "OpenVINO int8, everything NNCF quantizes (`keep_float=\"none\"`)",
    "ov-naive-mixed": "OpenVINO int8, everything NNCF quantizes, mixed preset",
    "ov-decode-mixed": "OpenVINO int8, decoding only in float, mixed preset",
    "ov-head": "OpenVINO int8, `quantize_openvino` defaults (head in float, performance preset)",
    "ov-head-mixed": "OpenVINO int8, head in float, mixed preset",
    "ov-head-mixed-fullbc": "OpenVINO int8, head in float, mixed preset, full bias correction",
    "ort-naive": "ONNX Runtime QDQ int8, everything (per-tensor)",
    "ort-naive-perchannel": "ONNX Runtime QDQ int8, everything (per-channel)",
    "ort-decode": "ONNX Runtime QDQ int8, decoding only in float",
    "ort-head-pertensor": "ONNX Runtime QDQ int8, head in float, per-tensor weights",
    "ort-head": "ONNX Runtime QDQ int8, `quantize_onnxruntime` defaults (head in float, per-channel, MinMax)",
    "ort-head-entropy": "ONNX Runtime QDQ int8, head in float, Entropy calibration",
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
    return lambda x: session.run(None, {name: x})


def ov_forward(path: Path, precision: str, threads: int) -> Forward:
    """An OpenVINO CPU model with the inference precision forced (its default on a bf16-capable CPU is bf16)."""
    import openvino as ov

    hints = {"INFERENCE_PRECISION_HINT": precision, "PERFORMANCE_HINT": "LATENCY",
             "INFERENCE_NUM_THREADS": threads}
    compiled = ov.Core().compile_model(str(path), "CPU", hints)
    request = compiled.create_infer_request()
    return lambda x: [request.infer({0: x})[0].copy()]


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


def coco_folder(gt: Any, items: list[dict[str, Any]], folder: Path) -> Path:
    """``items`` as a dataset ``visionkit eval detect`` reads (images/ + annotations/instances.json), linked."""
    (folder / "images").mkdir(parents=True)
    (folder / "annotations").mkdir()
    for item in items:
        (folder / "images" / item["file"]).symlink_to(COCO / "images" / item["file"])
    ids = {i["id"] for i in items}
    data = {"images": [im for im in gt.dataset["images"] if im["id"] in ids],
            "annotations": [a for a in gt.dataset["annotations"] if a["image_id"] in ids],
            "categories": gt.dataset["categories"]}
    (folder / "annotations" / "instances.json").write_text(json.dumps(data))
    return folder


def end_to_end(onnx: Path, gt: Any, folds: list[list[dict[str, Any]]], folder: Path,
               runs: int) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, Any]]]:
    """visionkit's own int8 exports (guard included: calibrated on half A, scored on half B) and the whole
    pipeline's median ms per image of each file on its runtime against fp32 on ONNX Runtime: (timings, cards)."""
    from visionkit.export import export

    calib = folder / "calibration"
    calib.mkdir(parents=True)
    for item in folds[0]:
        (calib / item["file"]).symlink_to(COCO / "images" / item["file"])
    val = coco_folder(gt, folds[1], folder / "val")
    cards: dict[str, dict[str, Any]] = {}
    files: dict[str, tuple[Path, str, str | None]] = {
        "visionkit ONNX Runtime fp32": (onnx, "onnx", None), "visionkit OpenVINO fp32": (onnx, "openvino", "fp32"),
        "visionkit OpenVINO bf16": (onnx, "openvino", "bf16")}
    for fmt, runtime, label in (("openvino", "openvino", "OpenVINO"), ("onnx", "onnx", "ONNX Runtime")):
        done = export(onnx, format=fmt, precision="int8", data=calib, val=val, max_drop=1.0,
                      output=folder / f"int8-{fmt}")
        cards[label] = {"fp32": round(done.fp32_score, 4), "int8": round(done.int8_score, 4), "file": done.path.name}
        files[f"visionkit {label} int8 (`visionkit export --precision int8`)"] = (done.path, runtime, None)
        print(f"  export {fmt} int8: guard {done.metric} fp32 {done.fp32_score:.4f}, int8 {done.int8_score:.4f}",
              flush=True)
    images = [item["image"] for item in folds[1][:8]]
    predictors = {name: visionkit.load("detect", str(path), device="cpu", runtime=runtime, precision=precision)
                  for name, (path, runtime, precision) in files.items()}
    for predictor in predictors.values():
        predictor.warmup()

    def whole(predictor: Any) -> None:
        for image in images:
            predictor(image)

    times = common.time_alternating({k: (lambda p=p: whole(p)) for k, p in predictors.items()}, runs, warmup=2)
    base = statistics.median(times["visionkit ONNX Runtime fp32"])
    return {k: {"median_ms": round(statistics.median(v) / len(images), 2),
                "p90_ms": round(common.p90(v) / len(images), 2),
                "speedup_vs_ort_fp32": round(base / statistics.median(v), 2)} for k, v in times.items()}, cards


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=str(common.SHARED / "weights" / "yolov5n.onnx"), help="YOLO ONNX export")
    parser.add_argument("--variants", nargs="*", choices=list(VARIANTS), default=list(VARIANTS))
    parser.add_argument("--subset", type=int, default=300, help="calibration inputs at most (default: a half, 20)")
    parser.add_argument("--runs", type=int, default=30, help="timed rounds (default 30)")
    parser.add_argument("--threads", type=int, default=2, help="intra-op threads of every runtime (default 2)")
    parser.add_argument("--json", default=str(common.ROOT / "benchmarks" / "results" / "int8.json"))
    parser.add_argument("--no-end-to-end", action="store_true", help="skip the export + whole-pipeline timing")
    common.add_figures_option(parser, "int8-accuracy")
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
        del models  # the sessions' threads and memory, before the end-to-end runs
        pipelines, cards = ({}, {}) if args.no_end_to_end else end_to_end(onnx, gt, folds, Path(tmp) / "e2e",
                                                                          args.runs)
    base = figures["ort-fp32"]["map50_95"]
    for name, ms in times.items():
        med = statistics.median(ms)
        figures[name].update(median_ms=round(med, 2), p90_ms=round(common.p90(ms), 2),
                             drop_points=round((base - figures[name]["map50_95"]) * 100, 2))
    for f in figures.values():
        f["vs_ort_fp32"] = round(f["median_ms"] / figures["ort-fp32"]["median_ms"], 3)
        f["vs_ov_fp32"] = round(f["median_ms"] / figures["ov-fp32"]["median_ms"], 3)
    shown = [k for k in figures if k != "ov-fp32"]  # the same scores as ort-fp32, one row for both
    common.print_table(args, ("model", "mAP50-95 (40 images)", "fold B / fold A", "drop (points)"), [
        [LABELS[k], f"{figures[k]['map50_95']:.3f}", " / ".join(f"{m:.3f}" for m in figures[k]["folds"]),
         "-" if k == "ort-fp32" else f"{figures[k]['drop_points']:.1f}"] for k in shown])
    rows = [[LABELS[k].replace("fp32 (ONNX Runtime, OpenVINO f32)", "ONNX Runtime fp32"), "bare forward",
             f"{f['median_ms']:.1f}", f"{f['p90_ms']:.1f}", f"{1 / f['vs_ort_fp32']:.2f}"] for k, f in figures.items()]
    rows += [[name, "whole pipeline, per image", f"{p['median_ms']:.1f}", f"{p['p90_ms']:.1f}",
              f"**{p['speedup_vs_ort_fp32']:.2f}**"] for name, p in pipelines.items()]
    common.print_table(args, ("model", "timed", "median ms", "p90 ms", "speed-up over ONNX Runtime fp32"), rows,
                       section="int8-speed")
    out = Path(args.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({
        "model": onnx.name,
        "split": {"rule": "COCO images sorted by file name; folds[0]: calibrated on half A, scored on half B; "
                          "folds[1]: the reverse; map50_95: both folds' detections scored together",
                  "half_a": [i["file"] for i in folds[0]], "half_b": [i["file"] for i in folds[1]]},
        "threads": args.threads, "runs": args.runs, "cpu": platform.processor() or platform.machine(),
        "versions": quantize.package_versions(), "results": figures, "end_to_end": pipelines,
        "export_guard": cards}, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
