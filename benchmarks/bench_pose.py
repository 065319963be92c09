"""Pose latency: visionkit against calling each library directly, one image at a time.

For each case the same decoded image (BGR array in memory, so file decoding is not timed) goes through
  ultralytics       YOLO(pt).predict(image)  vs  visionkit on the same random-weight yolov8n-pose checkpoint
  onnxruntime       MoveNet on the whole image: letterbox to 192 (zero pad) + session.run + keypoints back to
                    image pixels, written out by hand  vs  visionkit.load("pose", "movenet_lightning")
  onnxruntime x3    MoveNet in 3 person boxes (1.25x crops, as PersonPose does after its detector): the same by hand
                    vs the backend's ``predict_in_boxes``
Runs alternate between the two sides so that load from other processes hits both alike; the table gives the
median milliseconds per image and the ratio visionkit / direct (below 1 = visionkit faster).

    python benchmarks/bench_pose.py --runs 50
"""

from __future__ import annotations

from pathlib import Path

from _common import Case, direct_cases_parser, onnx_session, run_direct_cases, seeded_yolo, setup_env

setup_env()

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from visionkit import Predictor, catalog, weights  # noqa: E402

# yolov5n's person boxes on bus.jpg (the pipeline's detector output), for the per-box case.
BUS_PEOPLE = np.array([[50.3, 398.8, 206.3, 898.3], [220.1, 407.6, 348.7, 864.4], [680.4, 379.0, 810.0, 872.6]])


def ultralytics_case(image: np.ndarray, folder: Path) -> Case:
    from ultralytics import YOLO

    path = folder / "random-yolov8n-pose.pt"
    seeded_yolo("yolov8n-pose.yaml").save(path)
    direct = YOLO(str(path))
    ours = Predictor("pose", path, device="cpu")
    return ("ultralytics yolov8n-pose", "ultralytics predict", lambda: direct.predict(image, verbose=False),
            lambda: ours(image))


class MoveNetByHand:
    """MoveNet with the reference pre/post-processing written out: a region letterboxed to 192 with zero padding
    (tf.image.resize_with_pad), keypoints mapped back to image pixels."""

    def __init__(self) -> None:
        self.session = onnx_session(weights.resolve(catalog.get_entry("movenet_lightning")))
        self.name = self.session.get_inputs()[0].name

    def __call__(self, image: np.ndarray, x0: int = 0, y0: int = 0, x1: int | None = None,
                 y1: int | None = None) -> np.ndarray:
        crop = image[y0:y1, x0:x1]
        h, w = crop.shape[:2]
        scale = 192 / max(h, w)
        nw, nh = max(round(w * scale), 1), max(round(h * scale), 1)
        x = np.zeros((192, 192, 3), np.uint8)
        top, left = (192 - nh) // 2, (192 - nw) // 2
        x[top:top + nh, left:left + nw] = cv2.cvtColor(cv2.resize(crop, (nw, nh)), cv2.COLOR_BGR2RGB)
        out = self.session.run(None, {self.name: x[None]})[0].reshape(17, 3)
        return np.column_stack([(out[:, 1] * 192 - left) / scale + x0, (out[:, 0] * 192 - top) / scale + y0,
                                out[:, 2]])


def movenet_case(image: np.ndarray, folder: Path) -> Case:
    by_hand = MoveNetByHand()
    ours = Predictor("pose", "movenet_lightning", device="cpu")
    return "onnxruntime movenet (whole image)", "onnxruntime by hand", lambda: by_hand(image), lambda: ours(image)


def movenet_boxes_case(image: np.ndarray, folder: Path) -> Case:
    by_hand = MoveNetByHand()
    ours = Predictor("pose", "movenet_lightning", device="cpu")
    h, w = image.shape[:2]

    def direct() -> object:
        out = []
        for x1, y1, x2, y2 in BUS_PEOPLE:
            cx, cy, hw, hh = (x1 + x2) / 2, (y1 + y2) / 2, (x2 - x1) * 0.625, (y2 - y1) * 0.625
            out.append(by_hand(image, max(int(cx - hw), 0), max(int(cy - hh), 0), min(int(cx + hw), w),
                               min(int(cy + hh), h)))
        return out

    return (f"onnxruntime movenet x{len(BUS_PEOPLE)} boxes", "onnxruntime by hand, per box", direct,
            lambda: ours.backend.predict_in_boxes(image, BUS_PEOPLE))


def main() -> None:
    args = direct_cases_parser(__doc__, "image to run on (default: ultralytics' bus.jpg, 810x1080; the per-box case "
                                        "uses bus.jpg's person boxes)", "2-pose").parse_args()
    run_direct_cases((ultralytics_case, movenet_case, movenet_boxes_case), args)


if __name__ == "__main__":
    main()
