"""Many streams, one machine: N copies of the demo video tracked three ways, total FPS and per-stream latency.

  multistream         ``visionkit.MultiStream([clip] * N, TrackingPredictor(pt, batch_size=N))`` in one process:
                      one batched forward pass per step for all N streams, one tracker per stream
  processes           N ``visionkit track clip --model pt --workers 1`` processes at once (each loads the model;
                      FPS from each one's summary line, which starts after its warm-up)
  ultralytics threads ultralytics' recipe for several streams: one thread per stream, each with its own
                      ``YOLO(pt)`` and ``model.track(source, stream=True, persist=True)``

Model: the seeded random-weight YOLOv8n that bench_track.py uses (official YOLOv8 weights are not available
offline), PyTorch on the CPU, imgsz 640, conf 0.1, ByteTrack. No drawing or encoding: detection + tracking only.
Every case runs in fresh processes (the model is built first, in this one).
Total FPS = frames of all streams / wall time of the loop (after warm-up); latency = the median wall time from
the start of a step (a frame of every stream handed in) to its results; for processes and threads, the median
time per frame of one stream.

    python benchmarks/bench_multistream.py --frames 40
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from _common import add_figures_option, print_table, setup_env

setup_env()



def in_fresh_process(case: str, pt: Path, clip: Path, n: int, conf: float) -> tuple[float, float]:
    """Run ``case`` in a fresh process, as the N processes are: this one (which built the random model through
    ultralytics' training code) runs PyTorch inference 3-4x slower than a fresh one on this machine."""
    out = subprocess.run([sys.executable, __file__, "--worker", case, str(pt), str(clip), str(n), str(conf)],
                         capture_output=True, text=True, check=True).stdout.split()
    return float(out[0]), float(out[1])


def multistream_worker(pt: Path, clip: Path, n: int, conf: float) -> tuple[float, float]:
    from visionkit import MultiStream
    from visionkit.composites.track import TrackingPredictor

    tracking = TrackingPredictor(str(pt), device="cpu", runtime="torch", conf=conf, batch_size=n).warmup()
    frames, steps = 0, []
    start = last = time.perf_counter()
    for step in MultiStream([clip] * n, tracking).steps():
        now = time.perf_counter()
        steps.append(now - last)
        frames += len(step)
        last = time.perf_counter()
    return frames / (time.perf_counter() - start), statistics.median(steps) * 1e3


def run_processes(pt: Path, clip: Path, n: int, conf: float, tmp: Path) -> tuple[float, float]:
    cli = Path(sys.executable).with_name("visionkit")
    procs = [subprocess.Popen([str(cli), "track", str(clip), "--model", str(pt), "--runtime", "torch", "--device",
                               "cpu", "--conf", str(conf), "--workers", "1", "--quiet", "--mot", str(tmp / f"{i}.txt")],
                              stderr=subprocess.PIPE, text=True) for i in range(n)]
    fps = []
    for p in procs:
        err = p.communicate()[1]
        found = re.search(r"([\d.]+) FPS overall", err)
        if p.returncode != 0 or not found:
            raise SystemExit(f"visionkit track failed: {err.strip()}")
        fps.append(float(found.group(1)))
    return sum(fps), statistics.median(1e3 / f for f in fps)


def ultralytics_threads_worker(pt: Path, clip: Path, n: int, conf: float) -> tuple[float, float]:
    from ultralytics import YOLO

    models = [YOLO(str(pt)) for _ in range(n)]
    per_frame: list[float] = []
    counts = [0] * n

    def track(i: int) -> None:
        last = time.perf_counter()
        for _ in models[i].track(str(clip), stream=True, persist=True, conf=conf, device="cpu", verbose=False):
            now = time.perf_counter()
            per_frame.append(now - last)
            last = now
            counts[i] += 1

    for m in models:  # warm-up outside the timing, as visionkit's warmup()
        m.predict(str(clip), conf=conf, device="cpu", verbose=False, max_det=1, stream=False, vid_stride=1000)
    threads = [threading.Thread(target=track, args=(i,)) for i in range(n)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sum(counts) / (time.perf_counter() - start), statistics.median(per_frame) * 1e3


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        case, pt, clip, n, conf = sys.argv[2:7]
        worker = multistream_worker if case == "multistream" else ultralytics_threads_worker
        print(*worker(Path(pt), Path(clip), int(n), float(conf)))
        return
    from bench_track import clip_and_model

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=40, help="frames of vtest.avi per stream (default: 40)")
    parser.add_argument("--streams", default="1,2,4", help="stream counts (default: 1,2,4)")
    parser.add_argument("--conf", type=float, default=0.1)
    parser.add_argument("--no-ultralytics", action="store_true", help="skip the one-thread-per-stream recipe")
    add_figures_option(parser, "multistream")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        clip, pt = clip_and_model(args.frames, tmp, seed=0, boost=4.5)
        print(f"{args.frames} frames of vtest.avi per stream; random YOLOv8n, PyTorch, CPU, {os.cpu_count()} cores",
              file=sys.stderr)
        for n in (int(s) for s in args.streams.split(",")):
            cases = [("multistream (one process, batch N)",
                      lambda n=n: in_fresh_process("multistream", pt, clip, n, args.conf)),
                     ("N visionkit track processes", lambda n=n: run_processes(pt, clip, n, args.conf, tmp))]
            if not args.no_ultralytics:
                cases.append(("ultralytics, one thread per stream",
                              lambda n=n: in_fresh_process("ultralytics", pt, clip, n,
                                                           args.conf)))
            for name, run in cases:
                fps, latency = run()
                rows.append((n, name, f"{fps:.1f}", f"{latency:.0f}"))
                print(f"N={n} {name}: {fps:.1f} FPS total, {latency:.0f} ms per step/frame", file=sys.stderr)
    print_table(args, ("streams", "pipeline", "total FPS", "latency ms (median)"), rows)


if __name__ == "__main__":
    main()
