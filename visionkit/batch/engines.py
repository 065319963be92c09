"""The two engines behind ``visionkit batch``: ``local`` (this process, nothing extra installed) and ``ray``
(Ray Data ``map_batches`` over an actor pool). Both run the same ``BlockRunner`` on the same inputs, so their
results are equal record for record; only where blocks run differs.

The ``BlockRunner`` is a plain callable class over a batch ``{"path": [...]}``: it holds a Predictor, which pickles
without its model, so each actor (or a Spark ``predict_batch_udf`` worker) builds the model once, on first use.
Images are decoded inside the workers with visionkit's own reader (BGR, EXIF-rotated, one-line reasons for bad
files; local paths or object-store URIs alike, see ``storage.py``), not ``ray.data.read_images``: a corrupt file
there fails the whole dataset instead of one errors row, arrays come RGB, and separate read tasks compete with the
actors for CPU (two actors on a 2-CPU cluster starve them). Videos run one per block, frames streamed inside the
worker, so tracker state never spans shards.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import EngineError, OptionError, VisionkitError
from ..predictor import Predictor, load
from .manifest import is_video, list_inputs, local_video, read_input_image
from .schema import FORMATS, block_name, error_row, result_rows
from .storage import locate
from .writer import claim_folder, committed_inputs, sweep_uncommitted, write_block

if TYPE_CHECKING:
    from ..composites.track import TrackingPredictor

log = logging.getLogger("visionkit")
TASKS = ("detect", "track", "classify")
ENGINES = ("local", "ray")


class BlockRunner:
    """Runs, writes and commits one block; returns its counts (one row), which is all that travels back."""

    def __init__(self, predictor: Predictor | TrackingPredictor, out: str, fmt: str = "parquet"):
        self.predictor, self.out, self.fmt = predictor, locate(out), fmt
        self.model = predictor.entry.name

    def __call__(self, batch: dict[str, Any]) -> dict[str, list[int]]:
        sources = [str(p) for p in batch["path"]]
        rows: dict[str, list[dict[str, Any]]] = {"frames": [], "objects": [], "errors": []}
        images, image_sources = [], []
        for source in sources:
            if is_video(source):
                self._video(source, rows)
                continue
            if self.predictor.task == "track":  # a tracked sequence must not depend on how inputs fall into blocks
                rows["errors"].append(error_row(source, f"{source}: batch track runs on videos; use detect for "
                                                        "images", self.predictor.task, self.model))
                continue
            try:
                images.append(read_input_image(source))
                image_sources.append(source)
            except VisionkitError as e:
                rows["errors"].append(error_row(source, str(e), self.predictor.task, self.model))
        for source, result in zip(image_sources, self.predictor.predict(images) if images else []):
            result.frame_index = 0
            self._add(rows, result, source, None)
        write_block(self.out, self.predictor.task, self.model, block_name(sources), rows, sources, self.fmt)
        return {"inputs": [len(sources)], "frames": [len(rows["frames"])], "objects": [len(rows["objects"])],
                "errors": [len(rows["errors"])]}

    def _video(self, source: str, rows: dict[str, list[dict[str, Any]]]) -> None:
        """All frames of one video, or one error row and none of its frames (a video is committed whole)."""
        frames: dict[str, list[dict[str, Any]]] = {"frames": [], "objects": []}
        try:
            with local_video(source) as path:
                try:
                    for frame, result in self.predictor.stream(path):
                        self._add(frames, result, source, frame.timestamp)
                except VisionkitError as e:  # its reason names the input, not a temporary copy
                    raise type(e)(str(e).replace(path, source)) from None
        except VisionkitError as e:
            rows["errors"].append(error_row(source, str(e), self.predictor.task, self.model))
            return
        rows["frames"] += frames["frames"]
        rows["objects"] += frames["objects"]

    def _add(self, rows: dict[str, list[dict[str, Any]]], result: Any, source: str, timestamp: float | None) -> None:
        frame, objects = result_rows(result, source, timestamp, self.predictor.task, self.model)
        rows["frames"].append(frame)
        rows["objects"] += objects


@dataclass
class BatchSummary:
    """What a run did: inputs found, skipped (committed by an earlier run), processed; frames, objects, errors."""

    inputs: int
    skipped: int
    frames: int
    objects: int
    errors: int
    seconds: float
    engine: str
    out: str

    def line(self) -> str:
        rate = self.frames / self.seconds if self.seconds > 0 else 0.0
        return (f"batch ({self.engine}): {self.inputs} inputs ({self.skipped} already committed), {self.frames} "
                f"images/frames, {self.objects} objects, {self.errors} errors, {rate:.1f} images/s -> {self.out}")


def run_batch(task: str, inputs: str, out: str | Path, model: str | None = None, *, engine: str = "local",
              fmt: str = "parquet", batch_size: int = 8, concurrency: int = 1, address: str | None = None,
              num_cpus_per_worker: float = 1.0, num_gpus_per_worker: float = 0.0, device: str = "auto",
              runner_class: type[BlockRunner] | None = None) -> BatchSummary:
    """Run ``task`` over every input of ``inputs`` (folder, glob, manifest) into ``out``, skipping inputs an
    earlier run committed there. ``inputs`` and ``out`` are local paths or URIs of any filesystem pyarrow opens
    (``s3://bucket/results``). ``engine="ray"`` connects to ``address`` (None/"auto": a running cluster or a new
    local one; "ray://HOST:PORT": a remote cluster, whose workers must reach ``inputs`` and ``out``: object-store
    URIs, or paths of a shared filesystem).
    ``runner_class``: a ``BlockRunner`` subclass that does more per block (the workers must be able to import it)."""
    if task not in TASKS:
        raise OptionError(f"batch runs {', '.join(TASKS)}, not {task!r}")
    if engine not in ENGINES:
        raise OptionError(f"--engine must be one of {', '.join(ENGINES)}, not {engine!r}")
    if fmt not in FORMATS:
        raise OptionError(f"--format must be one of {', '.join(FORMATS)}, not {fmt!r}")
    if engine == "local" and address:
        raise OptionError("--address names a Ray cluster: it needs --engine ray")
    where = locate(str(out))
    found = list_inputs(inputs)
    predictor = load(task, model, device=device, batch_size=batch_size)  # validated here, built in each worker
    runner = (runner_class or BlockRunner)(predictor, where.portable, fmt)
    claim_folder(where, fmt)
    if swept := sweep_uncommitted(where, task, runner.model):
        log.info("deleted %d table file(s) of blocks a previous run did not commit", swept)
    done = committed_inputs(where, task, runner.model)
    todo = [p for p in found if p not in done]
    images, videos = [p for p in todo if not is_video(p)], [p for p in todo if is_video(p)]
    start = time.perf_counter()
    if engine == "local":
        counts = [runner({"path": block}) for size, paths in ((batch_size, images), (1, videos))
                  for block in _chunks(paths, size)]
    else:
        counts = _run_ray(runner, images, videos, batch_size, concurrency, address, num_cpus_per_worker,
                          num_gpus_per_worker)
    seconds = time.perf_counter() - start
    total = {k: sum(sum(c[k]) for c in counts) for k in ("frames", "objects", "errors")}
    return BatchSummary(inputs=len(found), skipped=len(found) - len(todo), seconds=seconds, engine=engine,
                        out=where.uri, **total)


def _chunks(paths: list[str], size: int) -> list[list[str]]:
    return [paths[i:i + size] for i in range(0, len(paths), size)]


def _run_ray(runner: BlockRunner, images: list[str], videos: list[str], batch_size: int, concurrency: int,
             address: str | None, num_cpus: float, num_gpus: float) -> list[dict[str, list[int]]]:
    import ray

    if not ray.is_initialized():
        try:
            ray.init(address=address, include_dashboard=False, log_to_driver=False)
        except ConnectionError as e:
            raise EngineError(f"cannot reach the Ray cluster at {address}: {str(e).splitlines()[0]}") from None
    cpus, gpus = ray.cluster_resources().get("CPU", 0), ray.cluster_resources().get("GPU", 0)
    if concurrency * num_cpus > cpus or concurrency * num_gpus > gpus:
        log.warning("%d actors x %g CPU / %g GPU exceed the cluster's %g CPU / %g GPU: the run waits until the "
                    "cluster grows (lower --concurrency or the per-worker reservations)", concurrency, num_cpus,
                    num_gpus, cpus, gpus)
    counts: list[dict[str, list[int]]] = []
    for size, paths in ((batch_size, images), (1, videos)):
        if not paths:
            continue
        dataset = ray.data.from_items([{"path": p} for p in paths], override_num_blocks=max(1, len(paths) // size))
        # num_cpus is reserved per actor, so the pool takes what it declares and leaves the rest to Ray Data's own
        # tasks (an actor pool claiming every CPU starves them: read_images' hang with two actors on 2 CPUs).
        done = dataset.map_batches(type(runner), fn_constructor_kwargs={"predictor": runner.predictor,
                                                                       "out": runner.out.portable, "fmt": runner.fmt},
                                   batch_size=size, compute=ray.data.ActorPoolStrategy(size=concurrency),
                                   num_cpus=num_cpus, num_gpus=num_gpus, zero_copy_batch=True, batch_format="numpy")
        try:
            rows = done.take_all()
        except ray.exceptions.RayTaskError as e:  # a VisionkitError in a worker (e.g. weights) is the user's line
            if isinstance(e.cause, VisionkitError):
                raise e.cause from None
            raise
        counts.extend({k: [int(v)] for k, v in row.items()} for row in rows)
    return counts
