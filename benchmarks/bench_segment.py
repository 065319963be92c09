"""Segmentation latency: visionkit against the reference library's own pipeline, one image at a time.

  torchvision   lraspp_mobilenet_v3_large (seeded random weights): ``model(weights.transforms()(image))["out"]``
                and its argmax, as torchvision documents it, at the model's 520-pixel scale; a second reference
                adds what visionkit returns on top (logits upsampled to the source, argmax, softmax maximum)
  onnx-deeplab  onnxruntime on ../shared deeplabv3_mnv2_257.onnx with the same preprocessing written out by hand
                (plain resize to 257, (x-127.5)/127.5), logits upsampled to the source, argmax and softmax maximum
  ultralytics   YOLO(pt).predict(image) on a random yolov8n-seg checkpoint (masks at the letterboxed input size, its
                default); a second reference adds the scaling of the masks to the source that visionkit returns

Random weights come from _common.py (BatchNorm calibrated, class bias raised, so NMS and mask decoding see
a realistic number of boxes). Both sides get the same decoded BGR array; runs alternate A B B A ...

    python benchmarks/bench_segment.py --runs 20
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
import torch.nn.functional as F  # noqa: E402

import visionkit  # noqa: E402


def _to_source(logits: torch.Tensor, hw: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """(1, C, h, w) logits -> class map and confidence at the source size, in one whole-image pass."""
    up = F.interpolate(logits.float(), hw, mode="bilinear")[0]
    return up.argmax(0).numpy(), up.softmax(0).amax(0).numpy()


def torchvision_cases(image: np.ndarray, folder: Path, device: str) -> list[common.Case]:
    arch = "lraspp_mobilenet_v3_large"
    path = folder / f"{arch}-random.pth"
    model, transforms = common.random_torchvision(arch, path, weights_backbone=None, num_classes=21)
    model = model.to(device)
    ours = visionkit.load("segment", arch, weights=path, device=device)
    rgb = torch.from_numpy(np.ascontiguousarray(image[..., ::-1])).permute(2, 0, 1)

    def logits() -> torch.Tensor:
        with torch.inference_mode():
            return model(transforms(rgb.to(device))[None])["out"].cpu()

    def at_source() -> object:
        with torch.inference_mode():
            return _to_source(logits(), image.shape[:2])

    def run() -> object:
        return ours(image)

    return [(f"torchvision {arch} ({device})", "torchvision argmax@520", lambda: logits().argmax(1), run),
            (f"torchvision {arch} ({device}), reference at source", "torchvision +upsample", at_source, run)]


def onnx_case(image: np.ndarray) -> list[common.Case]:
    path = common.SHARED / "weights" / "deeplabv3_mnv2_257.onnx"
    if not path.is_file():
        print(f"skipping onnx-deeplab: {path} not found")
        return []
    session = common.onnx_session(path, quiet=True)
    name = session.get_inputs()[0].name
    ours = visionkit.load("segment", "deeplabv3_mnv2_257", device="cpu")

    def direct() -> object:
        rgb = cv2.cvtColor(cv2.resize(image, (257, 257), interpolation=cv2.INTER_LINEAR), cv2.COLOR_BGR2RGB)
        out = session.run(None, {name: ((rgb.astype(np.float32) - 127.5) / 127.5)[None]})[0]
        with torch.inference_mode():
            return _to_source(torch.from_numpy(out).permute(0, 3, 1, 2), image.shape[:2])

    agree = (direct()[0] == ours(image).class_map).mean()
    print(f"deeplabv3_mnv2_257.onnx: class maps agree on {agree:.4%} of pixels")
    return [("onnx-deeplab deeplabv3_mnv2_257 (cpu)", "onnxruntime by hand", direct, lambda: ours(image))]


def ultralytics_cases(image: np.ndarray, folder: Path, device: str) -> list[common.Case]:
    from ultralytics import YOLO
    from ultralytics.utils.ops import scale_masks

    pt = common.build_random_yolo("yolov8n-seg.yaml", folder / "yolov8n-seg-random.pt")
    reference = YOLO(str(pt))
    ours = visionkit.load("segment", str(pt), device=device)

    def predict() -> object:
        return reference.predict(image, device=device, verbose=False)

    def with_masks_at_source() -> object:
        r = predict()[0]
        return None if r.masks is None else scale_masks(r.masks.data[None].float(), image.shape[:2])[0] > 0.5

    r, d = predict()[0], ours(image)
    print(f"yolov8n-seg (random): {len(r.boxes)} boxes from ultralytics, {len(d)} from visionkit")
    return [(f"ultralytics yolov8n-seg ({device})", "ultralytics predict", predict, lambda: ours(image)),
            (f"ultralytics yolov8n-seg ({device}), masks at source", "ultralytics +scale_masks",
             with_masks_at_source, lambda: ours(image))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    common.add_pair_options(parser, runs=20, warmup=3, device_help="torchvision/ultralytics: ", part="3-segment")
    args = parser.parse_args()

    image = common.read_image(args.image)
    common.describe_pair_run(args, image)
    rows: list[list[str]] = []
    with tempfile.TemporaryDirectory() as tmp:
        cases = [*torchvision_cases(image, Path(tmp), args.device), *onnx_case(image),
                 *ultralytics_cases(image, Path(tmp), args.device)]
        for name, ref_name, ref, ours in cases:
            t_ref, t_ours = common.time_pair(ref, ours, args.runs, args.warmup)
            rows.append(common.report(name, ref_name, t_ref, t_ours))
    common.print_table(args, common.PAIR_COLUMNS, rows)


if __name__ == "__main__":
    main()
