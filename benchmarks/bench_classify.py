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

from pathlib import Path

from _common import (
    Case,
    direct_cases_parser,
    onnx_session,
    random_torchvision,
    run_direct_cases,
    seeded_yolo,
    setup_env,
)

setup_env()

import cv2  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from visionkit import Predictor, catalog, weights  # noqa: E402


def ultralytics_case(image: np.ndarray, folder: Path) -> Case:
    from ultralytics import YOLO

    path = folder / "random-yolov8n-cls.pt"
    seeded_yolo("yolov8n-cls.yaml").save(path)
    ckpt = torch.load(path, weights_only=False)
    ckpt["train_args"] = {"task": "classify", "imgsz": 224}  # as the official checkpoints
    torch.save(ckpt, path)
    direct = YOLO(str(path))
    ours = Predictor("classify", path, device="cpu")
    return ("ultralytics yolov8n-cls", "ultralytics predict", lambda: direct.predict(image, verbose=False),
            lambda: ours(image))


def torchvision_case(image: np.ndarray, folder: Path) -> Case:
    path = folder / "mobilenet_v3_large.pth"
    net, transforms = random_torchvision("mobilenet_v3_large", path)
    ours = Predictor("classify", "mobilenet_v3_large", weights=path, device="cpu")

    def direct() -> object:
        with torch.inference_mode():
            rgb = torch.from_numpy(np.ascontiguousarray(image[..., ::-1].transpose(2, 0, 1)))  # as io.read_image
            return net(transforms(rgb)[None]).softmax(1).topk(5)

    return "torchvision mobilenet_v3_large", "torchvision + its transforms", direct, lambda: ours(image)


def onnx_case(image: np.ndarray, folder: Path) -> Case:
    from PIL import Image

    session = onnx_session(weights.resolve(catalog.get_entry("mobilenet_v2_quant")))
    name = session.get_inputs()[0].name
    ours = Predictor("classify", "mobilenet_v2_quant", device="cpu")

    def direct() -> object:  # the reference pre/post-processing, written out by hand
        rgb = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
        h, w = rgb.shape[:2]
        top, left = int(h * 0.0625), int(w * 0.0625)
        x = np.asarray(Image.fromarray(rgb[top:h - top, left:w - left]).resize((224, 224), Image.BICUBIC))
        probs = session.run(None, {name: x[None]})[0][0, 1:].astype(np.float32) / 256
        return np.argsort(-probs)[:5]

    return "onnxruntime mobilenet_v2_quant", "onnxruntime by hand", direct, lambda: ours(image)


def main() -> None:
    args = direct_cases_parser(__doc__, "image to classify (default: ultralytics' bus.jpg, 810x1080)",
                               "1-classify").parse_args()
    run_direct_cases((ultralytics_case, torchvision_case, onnx_case), args)


if __name__ == "__main__":
    main()
