"""Make the sample inputs for users without a webcam or a video: a short synthetic clip and a few stills, the same
pixels on every machine (seeded motion, OpenCV drawing only, no third-party media).

    python samples/make_clip.py                       # samples/generated/shapes.mp4 + generated/stills/*.png
    visionkit demo --source samples/generated/shapes.mp4 --headless --save out/
    visionkit batch detect samples/batch_manifest.txt --out results/
    python samples/make_clip.py --photos bus.jpg zidane.jpg   # photos you have, moving over the scene:
    visionkit track samples/generated/shapes.mp4 --save       # ... gives a detector people to find and track

Each frame shows coloured discs, squares and triangles bouncing over a gradient with a frame counter; with
``--photos`` each photo (scaled to a third of the frame height at most) is one more moving tile. Motion is seeded
and bounces off the walls, so frame i depends only on (seed, i, size, photos). The clip is H.264 MP4 through visionkit's
own writer (``visionkit.io.video.VideoWriter``); stills are lossless PNGs of frames 0, 15, 30... See
samples/README.md for every sample and its licence.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator, Sequence
from pathlib import Path

import cv2
import numpy as np

HERE = Path(__file__).resolve().parent
OUT = HERE / "generated"
SHAPES = ("disc", "square", "triangle")
COLOURS = ((56, 56, 255), (31, 112, 255), (10, 249, 72), (255, 194, 0), (255, 56, 132), (236, 24, 0))


def render(frames: int = 90, size: tuple[int, int] = (640, 360), seed: int = 0, shapes: int = 6,
           photos: Sequence[np.ndarray] = ()) -> Iterator[np.ndarray]:
    """``frames`` BGR frames of ``size`` (w, h): ``shapes`` bouncing shapes and the ``photos`` as moving tiles."""
    w, h = size
    rng = np.random.default_rng(seed)
    scales = [min(h / 3 / p.shape[0], w / 2 / p.shape[1]) for p in photos]  # a third of the height, half the width
    tiles = [cv2.resize(p, (max(1, round(p.shape[1] * f)), max(1, round(p.shape[0] * f))))
             for p, f in zip(photos, scales)]
    extents = [(max(8, h // 10),) * 2] * shapes + [(t.shape[1], t.shape[0]) for t in tiles]
    position = rng.uniform(0, 1, (len(extents), 2)) * [[w - e[0], h - e[1]] for e in extents]
    velocity = rng.uniform(-1, 1, (len(extents), 2)) * [w / 60, h / 60]
    background = np.dstack([np.linspace(40, 90, w)[None].repeat(h, 0), np.linspace(60, 30, h)[:, None].repeat(w, 1),
                            np.full((h, w), 50.0)]).astype(np.uint8)
    for i in range(frames):
        image = background.copy()
        for k, ((x, y), (ew, eh)) in enumerate(zip(position.astype(int), extents)):
            if k >= shapes:
                image[y:y + eh, x:x + ew] = tiles[k - shapes]
                continue
            _shape(image, SHAPES[k % len(SHAPES)], (x, y, ew), COLOURS[k % len(COLOURS)])
        cv2.putText(image, f"frame {i}", (8, h - 10), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 1, cv2.LINE_AA)
        yield image
        position += velocity
        limit = np.array([[w - e[0], h - e[1]] for e in extents], float)
        bounced = (position < 0) | (position > limit)
        velocity[bounced] *= -1
        position = np.clip(position, 0, limit)


def _shape(image: np.ndarray, kind: str, box: tuple[int, int, int], colour: tuple[int, int, int]) -> None:
    x, y, s = box
    if kind == "disc":
        cv2.circle(image, (x + s // 2, y + s // 2), s // 2, colour, -1, cv2.LINE_AA)
    elif kind == "square":
        cv2.rectangle(image, (x, y), (x + s - 1, y + s - 1), colour, -1)
    else:
        points = np.array([[x + s // 2, y], [x, y + s - 1], [x + s - 1, y + s - 1]], np.int32)
        cv2.fillPoly(image, [points], colour, cv2.LINE_AA)


def make_samples(out: Path = OUT, frames: int = 90, size: tuple[int, int] = (640, 360), fps: float = 30.0,
                 seed: int = 0, photos: Sequence[Path] = (), still_every: int = 15) -> list[Path]:
    """Write ``out/shapes.mp4`` and ``out/stills/frame_NNN.png`` (every ``still_every`` frames); returns the paths."""
    from visionkit.io.video import VideoWriter

    images = []
    for path in photos:
        image = cv2.imread(str(path))
        if image is None:
            raise SystemExit(f"make_clip: cannot read the photo {path}")
        images.append(image)
    (out / "stills").mkdir(parents=True, exist_ok=True)
    clip = out / "shapes.mp4"
    written = [clip]
    with VideoWriter(clip, fps, size) as video:
        for i, frame in enumerate(render(frames, size, seed, photos=images)):
            video.write(frame)
            if still_every and i % still_every == 0:
                written.append(out / "stills" / f"frame_{i:03d}.png")
                cv2.imwrite(str(written[-1]), frame)
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=OUT, help=f"folder to write (default: {OUT})")
    parser.add_argument("--frames", type=int, default=90, help="clip length in frames (default: 90, 3 s)")
    parser.add_argument("--size", default="640x360", help="WIDTHxHEIGHT (default: 640x360)")
    parser.add_argument("--fps", type=float, default=30.0)
    parser.add_argument("--seed", type=int, default=0, help="motion seed (default: 0)")
    parser.add_argument("--photos", type=Path, nargs="*", default=[], help="photos to move over the scene as tiles")
    args = parser.parse_args()
    try:
        w, h = (int(v) for v in args.size.lower().split("x"))
    except ValueError:
        raise SystemExit(f"make_clip: --size must be WIDTHxHEIGHT, got {args.size}") from None
    for path in make_samples(args.out, args.frames, (w, h), args.fps, args.seed, args.photos):
        print(path)


if __name__ == "__main__":
    main()
