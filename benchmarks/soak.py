"""Soak run: N frames through detect -> track -> annotated video + JSONL, watching memory, file descriptors and
threads, to show that a long video (or a camera left running) does not leak.

The pipeline is the one ``visionkit track VIDEO --save DIR --json FILE`` runs, through the public API the same
way: ``TrackingPredictor.stream`` (decode thread, inference workers as the CLI picks them for a video, tracking in
frame order), drawing with id trails and encoding in a writer thread (``BackgroundWorker``), an ``AnnotatedSink``
and a ``JsonlSink``. The source is the demo clip (vtest.avi, 795 frames) played lap after lap, the run stopping at
frame N: each lap opens the file afresh, as a multi-file run does, and frame numbers go on across laps, so the
output is one video and one JSONL of N frames.

Every ``--every`` frames it prints the resident memory (VmRSS), the open file descriptors (``/proc/self/fd``) and
the thread count (Python's ``threading.active_count()`` and the kernel's, ``/proc/self/status`` Threads: ONNX
Runtime's and OpenCV's own threads too). At the end it compares the last sample with the one taken after
``--warmup`` frames (the model, the tracker's and the encoder's buffers and the allocator's pools are in place by
then) against the targets: RSS growth under ``--max-rss-growth`` MB, fds and threads within ``--tolerance``; after
the run the pipeline's Python threads must be gone. Exit code 1 when a target is missed.

    python benchmarks/soak.py                      # 10 000 frames, ssd_mobilenet_v1_coco
    python benchmarks/soak.py --frames 1000 --json  # the JSON report on stdout (progress lines on stderr)
    python benchmarks/soak.py --model yolov5n --out /tmp/soak   # keep the video and JSONL
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TextIO

from _common import SHARED, setup_env

setup_env()

from visionkit.io.sources import Frame, Source, VideoSource  # noqa: E402

DEMO_VIDEO = SHARED / "data" / "tracking" / "demo" / "vtest.avi"


@dataclass
class Sample:
    """The process's footprint after ``frames`` frames."""

    frames: int
    rss_mb: float
    fds: int
    threads: int  # threading.active_count(): Python threads
    os_threads: int  # /proc/self/status Threads: every thread of the process, native pools included

    def line(self) -> str:
        return (f"{self.frames:>6} frames  RSS {self.rss_mb:7.1f} MB  fds {self.fds:3d}  threads {self.threads:2d} "
                f"(OS {self.os_threads:2d})")


def sample(frames: int) -> Sample:
    status = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines() if ":" in line)
    return Sample(frames, int(status["VmRSS"].split()[0]) / 1024, len(os.listdir("/proc/self/fd")),
                  threading.active_count(), int(status["Threads"]))


class LoopedVideo(Source):
    """``path`` played lap after lap, enough laps for ``frames`` frames and one more (so a run that stops at
    ``frames`` stops with the decoder still busy); each lap is a fresh ``VideoSource`` (its file opened when the
    lap starts and released when it ends), frame numbers continue across laps."""

    def __init__(self, path: Path, frames: int):
        self.name = str(path)
        self.path = path
        self.lap_frames = len(VideoSource(str(path)))
        self.laps = -(-frames // self.lap_frames) + 1

    def __len__(self) -> int:
        return self.laps * self.lap_frames

    def __iter__(self) -> Iterator[Frame]:
        produced = 0
        for _ in range(self.laps):
            with contextlib.closing(iter(VideoSource(str(self.path)))) as lap:
                for frame in lap:
                    frame.index = produced
                    yield frame
                    produced += 1


@dataclass
class Verdict:
    warm: Sample
    last: Sample
    before: Sample
    after: Sample
    rss_growth_mb: float
    fd_growth: int
    thread_growth: int
    os_thread_growth: int
    threads_left: int  # Python threads still running after the run, beyond those before it
    seconds: float
    passed: bool
    failures: list[str]


def judge(before: Sample, warm: Sample, last: Sample, after: Sample, seconds: float, max_rss_growth: float,
          tolerance: int) -> Verdict:
    """Compare the last in-run sample with the warm-up one, and the threads after the run with those before it."""
    growth = {"rss": last.rss_mb - warm.rss_mb, "fds": last.fds - warm.fds, "threads": last.threads - warm.threads,
              "os_threads": last.os_threads - warm.os_threads}
    left = after.threads - before.threads
    failures = []
    if growth["rss"] >= max_rss_growth:
        failures.append(f"RSS grew {growth['rss']:.1f} MB (target < {max_rss_growth:g} MB)")
    for key in ("fds", "threads", "os_threads"):
        if abs(growth[key]) > tolerance:
            failures.append(f"{key} went from {getattr(warm, key)} to {getattr(last, key)} (target ±{tolerance})")
    if left > 0:
        failures.append(f"{left} Python thread(s) still running after the run")
    return Verdict(warm, last, before, after, round(growth["rss"], 1), growth["fds"], growth["threads"],
                   growth["os_threads"], left, round(seconds, 1), not failures, failures)


def soak(model: str, video: Path, frames: int, every: int, warmup: int, out: Path, device: str,
         log: TextIO) -> tuple[Sample, Sample, Sample, Sample, float]:
    """Run the pipeline; return the samples before the run, after warm-up, at the last frame and after the run."""
    import visionkit
    from visionkit.draw import TraceAnnotator
    from visionkit.io.sinks import AnnotatedSink, JsonlSink
    from visionkit.io.threads import BackgroundWorker

    before = sample(0)
    tracking = visionkit.load("track", model, device=device, workers=None)  # workers=None: the CLI's video default
    tracking.warmup()
    sinks = [AnnotatedSink(out), JsonlSink(out / "soak.jsonl", task="track", model=tracking.entry.name)]
    trails = TraceAnnotator(30)

    def emit(frame: Frame, result: visionkit.Detections) -> None:  # what the CLI's writer thread does per frame
        annotated = trails.annotate(result.plot(frame.image), result)
        for sink in sinks:
            sink.write(frame, result, annotated)

    writer = BackgroundWorker(emit, name="writer")
    warm = last = sample(0)
    start = time.perf_counter()
    # The run stops at frame N with the decode thread and the workers still busy, so the last sample sees the
    # pipeline as full as the warm-up one did, and closing the stream early (as a window's q key or Ctrl-C does)
    # must still leave no thread behind.
    try:
        with contextlib.closing(tracking.stream(LoopedVideo(video, frames))) as results:
            for frame, result in results:
                writer.submit(frame, result)
                done = frame.index + 1
                if done == warmup or done % every == 0 or done == frames:
                    last = sample(done)
                    warm = last if done == warmup else warm
                    print(last.line(), file=log, flush=True)
                if done == frames:
                    break
    finally:
        try:
            writer.close()
        finally:
            for sink in sinks:
                sink.close()
    seconds = time.perf_counter() - start
    del tracking
    return before, warm, last, sample(last.frames), seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=10_000, help="frames to run (default: 10000)")
    parser.add_argument("--every", type=int, default=1000, help="print a sample every N frames (default: 1000)")
    parser.add_argument("--warmup", type=int, default=100,
                        help="frames before the reference sample growth is measured from (default: 100)")
    parser.add_argument("--model", default="ssd_mobilenet_v1_coco",
                        help="detector (default: ssd_mobilenet_v1_coco, the fastest offline one)")
    parser.add_argument("--video", type=Path, default=DEMO_VIDEO, help=f"clip to loop (default: {DEMO_VIDEO})")
    parser.add_argument("--device", default="cpu", help="cpu, cuda, auto (default: cpu)")
    parser.add_argument("--out", type=Path, help="keep the annotated video and JSONL in this folder "
                                                 "(default: a temporary folder, removed)")
    parser.add_argument("--max-rss-growth", type=float, default=50.0, help="RSS growth target in MB (default: 50)")
    parser.add_argument("--tolerance", type=int, default=2, help="allowed change of fds and threads (default: 2)")
    parser.add_argument("--json", action="store_true", help="print the report as JSON on stdout "
                                                            "(the progress lines go to stderr)")
    args = parser.parse_args(argv)
    if not 0 < args.warmup < args.frames:
        parser.error(f"--warmup must be between 1 and --frames - 1, got {args.warmup}")
    log = sys.stderr if args.json else sys.stdout
    print(f"soak: {args.frames} frames of {args.video.name} (looped), {args.model} + bytetrack -> annotated "
          f"video + JSONL, growth measured from frame {args.warmup}", file=log, flush=True)
    with tempfile.TemporaryDirectory(prefix="visionkit-soak-") as tmp:
        out = args.out or Path(tmp)
        samples = soak(args.model, args.video, args.frames, args.every, args.warmup, out, args.device, log)
    verdict = judge(*samples, max_rss_growth=args.max_rss_growth, tolerance=args.tolerance)
    if args.json:
        print(json.dumps({"model": args.model, "frames": args.frames, **asdict(verdict)}, indent=2))
    else:
        print(f"{verdict.last.frames} frames in {verdict.seconds:.0f} s ({verdict.last.frames / verdict.seconds:.1f} "
              f"FPS); growth from frame {verdict.warm.frames}: RSS {verdict.rss_growth_mb:+.1f} MB, fds "
              f"{verdict.fd_growth:+d}, threads {verdict.thread_growth:+d} (OS {verdict.os_thread_growth:+d}); "
              f"Python threads left after the run: {verdict.threads_left}")
        print("PASS" if verdict.passed else "FAIL: " + "; ".join(verdict.failures))
    return 0 if verdict.passed else 1


if __name__ == "__main__":
    sys.exit(main())
