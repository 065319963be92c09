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
import tempfile
from pathlib import Path

import _common as common

common.setup_env()

import cv2  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

import visionkit  # noqa: E402


def ultralytics_case(args: argparse.Namespace, image: np.ndarray, folder: Path, rows: list[list[str]]) -> None:
    from ultralytics import YOLO

    pt = common.build_random_yolo(args.model_yaml, folder / args.model_yaml.replace(".yaml", "-random.pt"))
    reference = YOLO(str(pt))
    ours = visionkit.load("detect", str(pt), device=args.device)

    def ref_call() -> object:
        return reference.predict(image, device=args.device, verbose=False)

    r, d = ref_call()[0], ours(image)
    same = len(r.boxes) == len(d) and np.allclose(r.boxes.xyxy.cpu().numpy(), d.xyxy, atol=1e-3)
    print(f"{args.model_yaml}: {len(r.boxes)} boxes from ultralytics, {len(d)} from visionkit"
          f" ({'identical' if same else 'DIFFERENT'})")
    t_ref, t_ours = common.time_pair(ref_call, lambda: ours(image), args.runs, args.warmup)
    name = f"ultralytics {Path(args.model_yaml).stem} ({args.device})"
    rows.append(common.report(name, "ultralytics predict", t_ref, t_ours))
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


def onnx_case(args: argparse.Namespace, image: np.ndarray, rows: list[list[str]]) -> None:
    import torchvision

    path = common.SHARED / "weights" / "yolov5n.onnx"
    if not path.is_file():
        print(f"skipping onnx-yolo: {path} not found")
        return
    conf, iou = 0.25, 0.45
    session = common.onnx_session(path, quiet=True)
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
    t_ref, t_ours = common.time_pair(direct, lambda: ours(image), args.runs, args.warmup)
    rows.append(common.report("onnx-yolo yolov5n.onnx (cpu)", "onnxruntime by hand", t_ref, t_ours))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model-yaml", default="yolov8n.yaml", help="ultralytics architecture (default yolov8n.yaml)")
    common.add_pair_options(parser, runs=50, warmup=5, device_help="", part="0-detect")
    parser.add_argument("--onnx", action="store_true", help="also time onnx-yolo on ../shared/weights/yolov5n.onnx")
    parser.add_argument("--profile", action="store_true", help="cProfile 10 calls of each side afterwards")
    args = parser.parse_args()

    image = common.read_image(args.image)
    common.describe_pair_run(args, image)
    rows: list[list[str]] = []
    with tempfile.TemporaryDirectory() as tmp:
        ultralytics_case(args, image, Path(tmp), rows)
        if args.onnx:
            onnx_case(args, image, rows)
    common.print_table(args, common.PAIR_COLUMNS, rows)


if __name__ == "__main__":
    main()
