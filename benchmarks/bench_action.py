"""Action recognition latency per window: visionkit against torchvision called directly, on the same real clip.

The reference is what a user would write with torchvision alone: BGR frames -> RGB (T, C, H, W) uint8 ->
``weights_enum.transforms()`` -> ``model`` -> softmax -> top-5. Two measurements on the same frames:

  one window    ``predictor(frames)`` on exactly one window against one reference call: every frame preprocessed,
                one forward pass, on both sides
  streaming     ``predictor.stream(clip)`` over ``--windows`` windows at the default stride (window / 2) against the
                plain loop that transforms each window from its raw frames; visionkit preprocesses each frame once and
                keeps it for the overlapping window, the loop twice

Weights are seeded random (no official weights here); the timing does not depend on their values. The sides
alternate in every round so that load from other processes hits both alike; medians over ``--runs`` rounds.

    python benchmarks/bench_action.py --models r3d_18 r2plus1d_18 --runs 5 --threads 1
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

from _common import (
    PAIR_COLUMNS,
    SHARED,
    add_figures_option,
    print_table,
    random_torchvision,
    report,
    setup_env,
    time_alternating,
)

setup_env()
os.environ["VISIONKIT_OFFLINE"] = "1"

import cv2  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

import visionkit  # noqa: E402

CLIP = SHARED / "data" / "action" / "v_Basketball_g01_c01.avi"


def read_frames(path: Path, n: int) -> list[np.ndarray]:
    cap = cv2.VideoCapture(str(path))
    frames = [image for ok, image in (cap.read() for _ in range(n)) if ok]
    cap.release()
    return frames


def reference_window(model: torch.nn.Module, transforms: torch.nn.Module, frames: list[np.ndarray]) -> np.ndarray:
    clip = torch.from_numpy(np.stack([f[..., ::-1] for f in frames]).copy()).permute(0, 3, 1, 2)  # (T, C, H, W) RGB
    with torch.inference_mode():
        probs = model(transforms(clip)[None]).softmax(1)[0]
    return probs.topk(5).indices.numpy()


def bench(arch: str, runs: int, windows: int, weights_dir: Path) -> tuple[int, int, dict[str, list[float]]]:
    """(window, stride, per-round milliseconds of each side: ref, vk, ref_stream, vk_stream per window)."""
    weights = weights_dir / f"{arch}.pth"
    model, transforms = random_torchvision(arch, weights)

    predictor = visionkit.load("action", arch, weights=weights, device="cpu")
    window, stride = predictor.window, predictor.stride
    clip = read_frames(CLIP, window + (windows - 1) * stride)
    first = clip[:window]
    assert len(clip) == window + (windows - 1) * stride, f"{CLIP} is too short for {windows} windows"
    predictor.warmup()
    (check,) = predictor(first)
    assert check.class_ids.tolist() == reference_window(model, transforms, first).tolist(), "outputs differ"

    def reference_stream() -> None:  # the plain loop: every window transformed from its raw frames
        for start in range(0, len(clip) - window + 1, stride):
            reference_window(model, transforms, clip[start:start + window])

    def visionkit_stream() -> None:
        assert sum(1 for _, p in predictor.stream(clip) if p.speed.inference > 0) == windows

    times = time_alternating({"ref": lambda: reference_window(model, transforms, first), "vk": lambda: predictor(first),
                              "ref_stream": reference_stream, "vk_stream": visionkit_stream}, runs, mirror=False)
    for key in ("ref_stream", "vk_stream"):  # per window
        times[key] = [t / windows for t in times[key]]
    return window, stride, times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=["r3d_18", "r2plus1d_18"])
    parser.add_argument("--runs", type=int, default=5, help="timing rounds, each side alternately (default: 5)")
    parser.add_argument("--windows", type=int, default=4, help="windows per streamed clip (default: 4)")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    add_figures_option(parser, "speed", "4-action")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"CPU, torch {torch.__version__}, {torch.get_num_threads()} threads, clip {CLIP.name}", flush=True)
    rows: list[list[str]] = []
    with tempfile.TemporaryDirectory() as tmp:
        for arch in args.models:
            window, stride, times = bench(arch, args.runs, args.windows, Path(tmp))
            rows.append(report(f"{arch}, one {window}-frame window", "torchvision + its transforms", times["ref"],
                               times["vk"]))
            rows.append(report(f"{arch}, streaming (stride {stride}), per window", "torchvision, window by window",
                               times["ref_stream"], times["vk_stream"]))
    print_table(args, PAIR_COLUMNS, rows)

if __name__ == "__main__":
    main()
