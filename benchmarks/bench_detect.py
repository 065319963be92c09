"""Detection latency: visionkit against the reference library's own pipeline, one image at a time.

  ultralytics  YOLO(pt).predict(image)  vs  visionkit's ultralytics backend, same seeded random checkpoint
  onnx-yolo    (optional, --onnx) onnxruntime session with the MANIFEST decode written out by hand (letterbox,
               session.run, obj x cls, class-aware NMS, undo letterbox)  vs  visionkit on ../shared yolov5n.onnx

The random model is the one of tests/test_parity_detect.py: BatchNorm statistics calibrated on bus.jpg and
zidane.jpg and the class bias raised, so NMS sees a realistic number of boxes (a freshly initialised head
scores everything ~1e-5 and would make NMS free). Both sides get the same decoded BGR array, so file decoding
is not timed. Runs alternate A B B A ... so load from other processes and CPU clock changes hit both alike.

    python benchmarks/bench_detect.py --runs 50 --onnx
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("VISIONKIT_WEIGHTS", str(ROOT.parent / "shared" / "weights"))
os.environ.setdefault("YOLO_OFFLINE", "1")
os.environ.setdefault("YOLO_AUTOINSTALL", "False")
os.environ.setdefault("YOLO_VERBOSE", "False")

import cv2  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

import visionkit  # noqa: E402

BIAS_SHIFT = 6.0


def build_random_yolo(yaml: str, path: Path) -> Path:
    """Seeded random ultralytics checkpoint with image-dependent scores (see tests/test_parity_detect.py)."""
    from ultralytics import YOLO
    from ultralytics.data.augment import LetterBox
    from ultralytics.utils import ASSETS

    from visionkit.catalog import load_class_names

    torch.manual_seed(0)
    yolo = YOLO(yaml)
    net = yolo.model
    box = LetterBox(640, auto=False)
    calib = [box(image=cv2.imread(str(ASSETS / n))) for n in ("bus.jpg", "zidane.jpg")]
    x = torch.from_numpy(np.ascontiguousarray(np.stack(calib)[..., ::-1].transpose(0, 3, 1, 2))).float() / 255
    for bn in (m for m in net.modules() if isinstance(m, torch.nn.BatchNorm2d)):
        bn.reset_running_stats()
        bn.momentum = None
    net.train()
    with torch.no_grad():
        net(x)
    net.eval()
    for seq in net.model[-1].cv3:
        seq[-1].bias.data += BIAS_SHIFT
    net.names = dict(enumerate(load_class_names("coco80")))
    yolo.save(path)
    return path


def time_pair(ref: Callable[[], object], ours: Callable[[], object], runs: int, warmup: int
              ) -> tuple[list[float], list[float]]:
    for _ in range(warmup):
        ref()
        ours()
    t_ref: list[float] = []
    t_ours: list[float] = []
    for i in range(runs):
        pair = ((ref, t_ref), (ours, t_ours)) if i % 2 == 0 else ((ours, t_ours), (ref, t_ref))
        for fn, out in pair:
            t0 = time.perf_counter()
            fn()
            out.append((time.perf_counter() - t0) * 1e3)
    return t_ref, t_ours


def p90(values: list[float]) -> float:
    return float(np.percentile(values, 90))


def report(name: str, ref_name: str, t_ref: list[float], t_ours: list[float], rows: list[str]) -> None:
    m_ref, m_ours = statistics.median(t_ref), statistics.median(t_ours)
    print(f"{name}\n  {ref_name:<28} median {m_ref:8.1f} ms   p90 {p90(t_ref):8.1f} ms"
          f"\n  {'visionkit':<28} median {m_ours:8.1f} ms   p90 {p90(t_ours):8.1f} ms"
          f"\n  ratio visionkit/{ref_name.split()[0]}: {m_ours / m_ref:.3f} (median), "
          f"{p90(t_ours) / p90(t_ref):.3f} (p90)", flush=True)
    rows.append(f"| {name} | {m_ref:.1f} | {p90(t_ref):.1f} | {m_ours:.1f} | {p90(t_ours):.1f} | "
                f"{m_ours / m_ref:.2f} |")


def ultralytics_case(args: argparse.Namespace, image: np.ndarray, folder: Path, rows: list[str]) -> None:
    from ultralytics import YOLO

    pt = build_random_yolo(args.model_yaml, folder / args.model_yaml.replace(".yaml", "-random.pt"))
    reference = YOLO(str(pt))
    ours = visionkit.load("detect", str(pt), device=args.device)

    def ref_call() -> object:
        return reference.predict(image, device=args.device, verbose=False)

    r, d = ref_call()[0], ours(image)
    same = len(r.boxes) == len(d) and np.allclose(r.boxes.xyxy.cpu().numpy(), d.xyxy, atol=1e-3)
    print(f"{args.model_yaml}: {len(r.boxes)} boxes from ultralytics, {len(d)} from visionkit"
          f" ({'identical' if same else 'DIFFERENT'})")
    t_ref, t_ours = time_pair(ref_call, lambda: ours(image), args.runs, args.warmup)
    report(f"ultralytics {Path(args.model_yaml).stem} ({args.device})", "ultralytics predict", t_ref, t_ours, rows)
    if args.profile:
        import cProfile
        import pstats

        for label, fn in (("ultralytics", ref_call), ("visionkit", lambda: ours(image))):
            prof = cProfile.Profile()
            prof.enable()
            for _ in range(10):
                fn()
            prof.disable()
            print(f"--- cProfile {label}, 10 calls, top 15 by cumulative time")
            pstats.Stats(prof).sort_stats("cumulative").print_stats(15)


def onnx_case(args: argparse.Namespace, image: np.ndarray, rows: list[str]) -> None:
    import onnxruntime as ort
    import torchvision

    path = ROOT.parent / "shared" / "weights" / "yolov5n.onnx"
    if not path.is_file():
        print(f"skipping onnx-yolo: {path} not found")
        return
    conf, iou = 0.25, 0.45
    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = ort.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    ours = visionkit.load("detect", str(path), device="cpu", conf=conf, iou=iou)

    def direct() -> tuple[np.ndarray, np.ndarray, np.ndarray]:  # MANIFEST decode, by hand
        h, w = image.shape[:2]
        r = min(640 / h, 640 / w)
        nw, nh = round(w * r), round(h * r)
        px, py = (640 - nw) / 2, (640 - nh) / 2
        top, left = round(py - 0.1), round(px - 0.1)
        boxed = cv2.copyMakeBorder(cv2.resize(image, (nw, nh), interpolation=cv2.INTER_LINEAR), top,
                                   640 - nh - top, left, 640 - nw - left, cv2.BORDER_CONSTANT, value=(114, 114, 114))
        x = np.ascontiguousarray(boxed[..., ::-1].transpose(2, 0, 1)[None], dtype=np.float32) / np.float32(255)
        out = session.run(None, {name: x})[0][0]
        scores = out[:, 5:] * out[:, 4:5]
        cls = scores.argmax(1)
        best = scores[np.arange(len(scores)), cls]
        keep = best > conf
        xywh, best, cls = out[keep, :4], best[keep], cls[keep]
        xyxy = np.concatenate([xywh[:, :2] - xywh[:, 2:] / 2, xywh[:, :2] + xywh[:, 2:] / 2], 1)
        kept = torchvision.ops.batched_nms(torch.from_numpy(xyxy), torch.from_numpy(best), torch.from_numpy(cls),
                                           iou).numpy()[:300]
        xyxy = (xyxy[kept] - [left, top, left, top]) / r
        xyxy = np.clip(xyxy, 0, [w, h, w, h])
        return xyxy, best[kept], cls[kept]

    boxes, _, _ = direct()
    d = ours(image)
    print(f"yolov5n.onnx: {len(boxes)} boxes by hand, {len(d)} from visionkit")
    t_ref, t_ours = time_pair(direct, lambda: ours(image), args.runs, args.warmup)
    report("onnx-yolo yolov5n.onnx (cpu)", "onnxruntime by hand", t_ref, t_ours, rows)


def main() -> None:
    from ultralytics.utils import ASSETS

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model-yaml", default="yolov8n.yaml", help="ultralytics architecture (default yolov8n.yaml)")
    parser.add_argument("--image", default=str(ASSETS / "bus.jpg"), help="image (default: ultralytics' bus.jpg)")
    parser.add_argument("--runs", type=int, default=50, help="timed runs per side (default 50)")
    parser.add_argument("--warmup", type=int, default=5, help="untimed runs per side first (default 5)")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (default cpu)")
    parser.add_argument("--onnx", action="store_true", help="also time onnx-yolo on ../shared/weights/yolov5n.onnx")
    parser.add_argument("--profile", action="store_true", help="cProfile 10 calls of each side afterwards")
    args = parser.parse_args()

    image = cv2.imread(args.image)
    if image is None:
        sys.exit(f"cannot read image {args.image}")
    print(f"image {Path(args.image).name} {image.shape[1]}x{image.shape[0]}, {args.runs} runs after {args.warmup} "
          f"warm-up, torch {torch.__version__} with {torch.get_num_threads()} threads")
    rows = ["| case | reference median ms | reference p90 ms | visionkit median ms | visionkit p90 ms | ratio |",
            "|---|---|---|---|---|---|"]
    with tempfile.TemporaryDirectory() as tmp:
        ultralytics_case(args, image, Path(tmp), rows)
        if args.onnx:
            onnx_case(args, image, rows)
    print("\n" + "\n".join(rows))


if __name__ == "__main__":
    main()
