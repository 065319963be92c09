"""Classification latency: visionkit against calling each library directly, one image at a time.

For each backend the same decoded image (BGR array in memory, so file decoding is not timed) goes through
  ultralytics    YOLO(pt).predict(image)  vs  visionkit on the same random-weight yolov8n-cls checkpoint
  torchvision    model(weights.transforms()(tensor)).softmax().topk(5)  vs  visionkit, random mobilenet_v3_large
  onnxruntime    central crop + PIL resize + session.run + top 5  vs  visionkit, the real MobileNet V2 quant
Runs alternate between the two sides so that load from other processes hits both alike; the table gives the
median milliseconds per image and the ratio visionkit / direct (below 1 = visionkit faster).

    python benchmarks/bench_classify.py --runs 50
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
os.environ.setdefault("YOLO_VERBOSE", "False")

import cv2  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from visionkit import Predictor, catalog, weights  # noqa: E402

Case = tuple[str, Callable[[], object], Callable[[], object]]  # name, direct call, visionkit call


def ultralytics_case(image: np.ndarray, folder: Path) -> Case:
    from ultralytics import YOLO

    torch.manual_seed(0)
    path = folder / "random-yolov8n-cls.pt"
    YOLO("yolov8n-cls.yaml").save(path)
    ckpt = torch.load(path, weights_only=False)
    ckpt["train_args"] = {"task": "classify", "imgsz": 224}  # as the official checkpoints
    torch.save(ckpt, path)
    direct = YOLO(str(path))
    ours = Predictor("classify", path, device="cpu")
    return "ultralytics yolov8n-cls", lambda: direct.predict(image, verbose=False), lambda: ours(image)


def torchvision_case(image: np.ndarray, folder: Path) -> Case:
    import torchvision

    entry = catalog.get_entry("mobilenet_v3_large")
    torch.manual_seed(0)
    net = torchvision.models.get_model("mobilenet_v3_large", weights=None).eval()
    path = folder / "mobilenet_v3_large.pth"
    torch.save(net.state_dict(), path)
    transforms = torchvision.models.get_weight(entry.extra["weights_enum"]).transforms()
    ours = Predictor("classify", "mobilenet_v3_large", weights=path, device="cpu")

    def direct() -> object:
        with torch.inference_mode():
            rgb = torch.from_numpy(np.ascontiguousarray(image[..., ::-1].transpose(2, 0, 1)))  # as io.read_image
            return net(transforms(rgb)[None]).softmax(1).topk(5)

    return "torchvision mobilenet_v3_large", direct, lambda: ours(image)


def onnx_case(image: np.ndarray, folder: Path) -> Case:
    import onnxruntime as ort
    from PIL import Image

    entry = catalog.get_entry("mobilenet_v2_quant")
    session = ort.InferenceSession(str(weights.resolve(entry)), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    ours = Predictor("classify", "mobilenet_v2_quant", device="cpu")

    def direct() -> object:  # the reference pre/post-processing, written out by hand
        rgb = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
        h, w = rgb.shape[:2]
        top, left = int(h * 0.0625), int(w * 0.0625)
        x = np.asarray(Image.fromarray(rgb[top:h - top, left:w - left]).resize((224, 224), Image.BICUBIC))
        probs = session.run(None, {name: x[None]})[0][0, 1:].astype(np.float32) / 256
        return np.argsort(-probs)[:5]

    return "onnxruntime mobilenet_v2_quant", direct, lambda: ours(image)


def median_ms(direct: Callable[[], object], ours: Callable[[], object], runs: int) -> tuple[float, float]:
    for fn in (direct, ours):  # warm-up: lazy model build, first-call allocations
        fn()
        fn()
    times: dict[str, list[float]] = {"direct": [], "ours": []}
    for _ in range(runs):
        for key, fn in (("direct", direct), ("ours", ours)):
            t0 = time.perf_counter()
            fn()
            times[key].append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times["direct"]), statistics.median(times["ours"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--image", help="image to classify (default: ultralytics' bus.jpg, 810x1080)")
    parser.add_argument("--runs", type=int, default=30, help="timed runs per side (default: 30)")
    args = parser.parse_args()
    from ultralytics.utils import ASSETS

    image = cv2.imread(args.image or str(ASSETS / "bus.jpg"))
    if image is None:
        sys.exit(f"cannot read image {args.image}")
    print(f"image {image.shape[1]}x{image.shape[0]}, {args.runs} runs, torch threads {torch.get_num_threads()}")
    print(f"{'backend':<34}{'direct ms':>10}{'visionkit ms':>14}{'ratio':>8}")
    with tempfile.TemporaryDirectory() as tmp:
        for make in (ultralytics_case, torchvision_case, onnx_case):
            name, direct, ours = make(image, Path(tmp))
            ref_ms, our_ms = median_ms(direct, ours, args.runs)
            print(f"{name:<34}{ref_ms:>10.1f}{our_ms:>14.1f}{our_ms / ref_ms:>8.2f}", flush=True)


if __name__ == "__main__":
    main()
