"""`visionkit batch` throughput: the local engine against the Ray engine with 1 and 2 actors, and the two ways of
reading images on Ray (decoded inside the actors with visionkit's reader, or ``ray.data.read_images`` plus the
RGB->BGR swap visionkit's arrays need).

Every run writes a fresh results folder; images/s counts the whole run after the inputs are listed (actor start-up
and model load included, as a user sees it), on one local Ray cluster of ``--cpus`` CPUs started once.

    python benchmarks/bench_batch.py --images 24 --cpus 2
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import _common as common

common.setup_env()

import ray  # noqa: E402

from visionkit.batch import run_batch  # noqa: E402
from visionkit.batch.manifest import list_inputs  # noqa: E402
from visionkit.io.images import read_image  # noqa: E402


def engine_rows(args: argparse.Namespace, manifest: Path, tmp: Path) -> list[list[object]]:
    cases = [("local", "local", 1), ("ray, 1 actor", "ray", 1), ("ray, 2 actors", "ray", 2)]
    rows = []
    for name, engine, actors in cases:
        summary = run_batch("detect", str(manifest), tmp / name.replace(" ", "_"), args.model, engine=engine,
                            batch_size=args.batch_size, concurrency=actors, num_cpus_per_worker=args.cpus / actors / 2)
        rows.append([name, summary.frames, f"{summary.seconds:.2f}", f"{summary.frames / summary.seconds:.1f}"])
    return rows


def _decode(batch: dict) -> dict:
    return {"h": [read_image(p).shape[0] for p in batch["path"]]}


def _swap(batch: dict) -> dict:
    return {"h": [image[..., ::-1].copy().shape[0] for image in batch["image"]]}  # RGB -> BGR


def read_rows(paths: list[str]) -> list[list[object]]:
    """Decode only: paths decoded in map_batches tasks vs read_images (+ the channel swap), each after a warm run."""
    rows = []
    for name, make in (("paths decoded in the workers", lambda: ray.data.from_items([{"path": p} for p in paths])
                        .map_batches(_decode, batch_size=8)),
                       ("ray.data.read_images + RGB->BGR", lambda: ray.data.read_images(paths, mode="RGB")
                        .map_batches(_swap, batch_size=8))):
        make().take_all()  # warm: Ray's task workers start once, for whichever case would come first
        t0 = time.perf_counter()
        n = len(make().take_all())
        seconds = time.perf_counter() - t0
        rows.append([name, n, f"{seconds:.2f}", f"{n / seconds:.1f}"])
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=24, help="COCO val2017 images from ../shared (default: 24)")
    parser.add_argument("--model", default="ssd_mobilenet_v1_coco")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--cpus", type=int, default=2, help="CPUs of the local Ray cluster (default: 2)")
    args = parser.parse_args()
    images = list_inputs(str(common.SHARED / "data" / "coco_val2017" / "images"))[:args.images]
    ray.init(num_cpus=args.cpus, include_dashboard=False, log_to_driver=False)
    columns = ("case", "images", "seconds", "images/s")
    with tempfile.TemporaryDirectory() as tmp:
        manifest = Path(tmp, "inputs.txt")
        manifest.write_text("\n".join(images))
        print(f"detect {args.model}, {len(images)} images, batch {args.batch_size}, Ray on {args.cpus} CPUs\n")
        print(common.markdown_table(columns, engine_rows(args, manifest, Path(tmp))))
        print("\ndecoding only (no model):\n")
        print(common.markdown_table(columns, read_rows(images)))
    ray.shutdown()


if __name__ == "__main__":
    main()
