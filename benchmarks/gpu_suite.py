"""The GPU suite's figures (run by benchmarks/gpu_suite.sh, which picks or makes the Python environment).

  parity      the same seeded random-weight yolov8n (tests/random_models.py) on CPU and on CUDA (fp32, and fp16
              for the record): boxes matched one to one by class and IoU, the largest coordinate difference
  throughput  ``visionkit bench`` (visionkit.bench.run_bench) of yolov8n (random weights) and resnet18 (random
              weights) on PyTorch and ONNX Runtime (CUDA / TensorRT execution providers, whichever the installed
              build has) at fp32 and fp16, batch 1 and 32, next to ultralytics' / torchvision's own paths
  overlap     ``visionkit track`` on the demo video: frames/s with decoding in a background thread (prefetch 4) and
              without (prefetch 0), against decode-only and model-only time per frame

``--cpu-check`` runs the same steps on the CPU with tiny sizes (imgsz 64, batch 1 and 2, a few frames), parity
then comparing PyTorch with ONNX Runtime, so the suite is known to work before a GPU machine is found. Every step's
figures (or its one-line error) go into OUT/gpu_suite.json, and a markdown summary into OUT/summary.md.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import Any

import _common as common

common.setup_env()

import cv2  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from visionkit.bench import render_markdown, run_bench  # noqa: E402


@dataclass(frozen=True)
class Sizes:
    device: str
    imgsz: int
    batches: tuple[int, ...]
    runs: int
    precisions: tuple[str, ...]
    frames: int | None  # demo video frames (None: all)


GPU = Sizes("cuda", 640, (1, 32), 20, ("fp32", "fp16"), None)
CPU_CHECK = Sizes("cpu", 64, (1, 2), 2, ("fp32",), 12)


def match_boxes(a: Any, b: Any, min_iou: float = 0.9) -> dict[str, float]:
    """Greedy one-to-one matching of two ``Detections`` by class and IoU: counts, the matched share of the larger
    set and the largest coordinate difference (pixels) of the matched pairs."""
    import torchvision

    used: set[int] = set()
    worst = 0.0
    matched = 0
    if len(a) and len(b):
        iou = torchvision.ops.box_iou(torch.as_tensor(a.xyxy, dtype=torch.float32),
                                      torch.as_tensor(b.xyxy, dtype=torch.float32)).numpy()
        for i in np.argsort(-np.asarray(a.scores)):
            candidates = [j for j in np.argsort(-iou[i]) if j not in used and iou[i, j] >= min_iou
                          and a.class_ids[i] == b.class_ids[j]]
            if candidates:
                j = candidates[0]
                used.add(j)
                matched += 1
                worst = max(worst, float(np.abs(np.asarray(a.xyxy[i]) - np.asarray(b.xyxy[j])).max()))
    most = max(len(a), len(b))
    return {"boxes_a": len(a), "boxes_b": len(b), "matched_share": round(matched / most, 4) if most else 1.0,
            "max_abs_px": round(worst, 4)}


def parity(sizes: Sizes, pt: Path, images: list[np.ndarray]) -> dict[str, Any]:
    """CPU fp32 against CUDA fp32 (asserted within tolerance) and CUDA fp16 (recorded); on --cpu-check, PyTorch
    against ONNX Runtime on the CPU."""
    import visionkit

    base = visionkit.Predictor("detect", str(pt), device="cpu", precision="fp32", imgsz=sizes.imgsz)
    others = {"cuda fp32": dict(device="cuda", precision="fp32"), "cuda fp16": dict(device="cuda", precision="fp16")} \
        if sizes.device == "cuda" else {"cpu onnx fp32": dict(device="cpu", runtime="onnx", precision="fp32")}
    out: dict[str, Any] = {}
    for name, kwargs in others.items():
        other = visionkit.Predictor("detect", str(pt), imgsz=sizes.imgsz, **kwargs)
        pairs = [match_boxes(base(im), other(im)) for im in images]
        worst = max(p["max_abs_px"] for p in pairs)
        share = min(p["matched_share"] for p in pairs)
        checked = "fp16" not in name
        out[name] = {"images": pairs, "max_abs_px": worst, "min_matched_share": share, "asserted": checked,
                     "ok": (share >= 0.98 and worst <= 1.0) if checked else None}
    return out


def throughput(sizes: Sizes, pt: Path, resnet: Path) -> dict[str, Any]:
    """``run_bench`` of yolov8n and resnet18 on PyTorch and ONNX Runtime at the suite's precisions and batches."""
    import onnxruntime as ort

    common_args = dict(runtimes=("torch", "onnx"), precisions=sizes.precisions, imgsz=sizes.imgsz,
                       batches=sizes.batches, runs=sizes.runs, device=sizes.device)
    reports = {"yolov8n": run_bench(str(pt), task="detect", **common_args),
               "resnet18": run_bench("resnet18", task="classify", weights=str(resnet),
                                     **{**common_args, "imgsz": max(sizes.imgsz, 64)})}
    providers = ort.get_available_providers()
    return {"onnxruntime_providers": providers,
            "tensorrt": "TensorrtExecutionProvider" in providers or "not in this onnxruntime build",
            "reports": {k: r.to_dict() for k, r in reports.items()},
            "markdown": {k: render_markdown(r) for k, r in reports.items()}}


def overlap(sizes: Sizes, pt: Path, video: Path) -> dict[str, Any]:
    """Frames/s of ``visionkit track`` with decoding overlapped (prefetch 4) and not (prefetch 0), and what decoding
    alone and the model alone cost per frame."""
    from visionkit.tasks.track import TrackingPredictor

    capture = cv2.VideoCapture(str(video))
    start, decoded = time.perf_counter(), 0
    while (sizes.frames is None or decoded < sizes.frames) and capture.read()[0]:
        decoded += 1
    decode_ms = (time.perf_counter() - start) * 1e3 / max(decoded, 1)
    capture.release()
    tracking = TrackingPredictor(str(pt), device=sizes.device, imgsz=sizes.imgsz).warmup()
    out: dict[str, Any] = {"video": video.name, "frames": decoded, "decode_ms_per_frame": round(decode_ms, 2)}
    for prefetch in (0, 4):
        model_ms, frames = 0.0, 0
        start = time.perf_counter()
        for _, result in islice(tracking.stream(str(video), prefetch=prefetch), sizes.frames):
            model_ms += result.speed.preprocess + result.speed.inference + result.speed.postprocess
            frames += 1
        wall = (time.perf_counter() - start) * 1e3 / max(frames, 1)
        out[f"prefetch{prefetch}"] = {"fps": round(1e3 / wall, 2), "wall_ms_per_frame": round(wall, 2),
                                      "model_ms_per_frame": round(model_ms / max(frames, 1), 2)}
    saved = out["prefetch0"]["wall_ms_per_frame"] - out["prefetch4"]["wall_ms_per_frame"]
    out["decode_hidden_share"] = round(saved / decode_ms, 3) if decode_ms > 0 else None
    return out


def step(figures: dict[str, Any], name: str, fn: Callable[[], Any]) -> None:
    """Run one step; its figures, or its error in one line (traceback on stderr), go under ``name``."""
    start = time.perf_counter()
    print(f"gpu_suite: {name}...", file=sys.stderr, flush=True)
    try:
        figures[name] = fn()
    except Exception as e:
        traceback.print_exc()
        figures[name] = {"error": f"{type(e).__name__}: {str(e).strip().splitlines()[0] if str(e).strip() else ''}"}
    figures.setdefault("seconds", {})[name] = round(time.perf_counter() - start, 1)


def summary(figures: dict[str, Any]) -> str:
    lines = [f"# GPU suite ({figures['mode']})", "", f"device: {figures['device_name']}, torch {torch.__version__}", ""]
    for name, result in figures["parity"].items() if "error" not in figures["parity"] else []:
        lines.append(f"- parity cpu vs {name}: max |dxyxy| {result['max_abs_px']} px, matched share "
                     f"{result['min_matched_share']}" + (f", ok {result['ok']}" if result["asserted"] else ""))
    if "error" in figures["parity"]:
        lines.append(f"- parity: {figures['parity']['error']}")
    tp = figures["throughput"]
    if "error" in tp:
        lines.append(f"- throughput: {tp['error']}")
    else:
        lines += [f"- TensorRT: {tp['tensorrt']}", ""] + [md + "\n" for md in tp["markdown"].values()]
    ov = figures["overlap"]
    lines.append(f"- overlap: {ov}" if "error" in ov else
                 f"- track {ov['video']} ({ov['frames']} frames): {ov['prefetch4']['fps']} fps with background "
                 f"decoding, {ov['prefetch0']['fps']} without; decode {ov['decode_ms_per_frame']} ms/frame, model "
                 f"{ov['prefetch4']['model_ms_per_frame']} ms/frame, decode hidden {ov['decode_hidden_share']}")
    lines.append(f"- seconds per step: {figures['seconds']}")
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cpu-check", action="store_true", help="the same steps on the CPU with tiny sizes")
    parser.add_argument("--out", type=Path, default=common.ROOT / "benchmarks" / "results" / "gpu",
                        help="folder for gpu_suite.json and summary.md")
    args = parser.parse_args()
    sizes = CPU_CHECK if args.cpu_check else GPU
    if sizes.device == "cuda" and not torch.cuda.is_available():
        print("gpu_suite: no CUDA device visible to torch (use --cpu-check to try the suite on the CPU)",
              file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    pt = common.build_random_yolo("yolov8n.yaml", args.out / "yolov8n-random.pt")
    resnet = args.out / "resnet18-random.pth"
    common.random_torchvision("resnet18", resnet)
    from ultralytics.utils import ASSETS

    images = [cv2.imread(str(ASSETS / name)) for name in ("bus.jpg", "zidane.jpg")]
    video = common.SHARED / "data" / "tracking" / "demo" / "vtest.avi"
    figures: dict[str, Any] = {"mode": "cpu-check" if args.cpu_check else "gpu", "host": platform.node(),
                               "device_name": torch.cuda.get_device_name(0) if sizes.device == "cuda" else "cpu",
                               "sizes": sizes.__dict__}
    step(figures, "parity", lambda: parity(sizes, pt, images))
    step(figures, "throughput", lambda: throughput(sizes, pt, resnet))
    step(figures, "overlap", lambda: overlap(sizes, pt, video))
    (args.out / "gpu_suite.json").write_text(json.dumps(figures, indent=2, default=str))
    (args.out / "summary.md").write_text(summary(figures))
    print(summary(figures))
    failed = [k for k in ("parity", "throughput", "overlap") if "error" in figures[k]]
    bad_parity = [k for k, v in figures["parity"].items() if isinstance(v, dict) and v.get("ok") is False]
    if failed or bad_parity:
        print(f"gpu_suite: failed steps {failed}, parity out of tolerance {bad_parity}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
