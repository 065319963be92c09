"""Many streams, one machine: N copies of the demo video tracked four ways, total FPS and time per step.

  multistream, pass per frame   ``visionkit.MultiStream([clip] * N, TrackingPredictor(pt))`` in one process: one
                                tracker per stream, each frame its own forward pass, two passes at once on
                                single-threaded workers (the predictor's ``workers``), overlapping the trackers
                                (``visionkit track A B ...``)
  multistream, --batch-streams  the same with ``batch_size=N``: one batched forward pass per step for all N streams
                                (``visionkit track A B ... --batch-streams``; what a GPU wants)
  processes                     N ``visionkit track clip --model pt`` processes at once (each loads the model; each
                                with its default workers; FPS from each one's summary line, which starts after its
                                warm-up, summed)
  ultralytics threads           ultralytics' recipe for several streams: one thread per stream, each with its own
                                ``YOLO(pt)`` and ``model.track(source, stream=True, persist=True)``

Model: the seeded random-weight YOLOv8n that bench_track.py uses (official YOLOv8 weights are not available
offline), PyTorch (or ``--runtime onnx``: ONNX Runtime for the visionkit cases) on the CPU, imgsz 640, conf 0.1,
ByteTrack. No drawing or encoding: detection + tracking only. Every case runs in fresh processes (the model is
built first, in this one). The machine is shared, so the cases alternate: every round runs each case once per
stream count, in reverse order every other round, and each ratio is taken within a round, then the median over
the rounds is reported (with the lowest and highest).

Total FPS = frames of all streams / wall time of the loop (after warm-up); ms per step = the median time between
one stream's consecutive results (for multistream, between consecutive steps). "One at a time" is one
``visionkit track`` process alone (the N=1 processes row): N streams one after the other get its FPS.

    python benchmarks/bench_multistream.py --frames 40 --rounds 3     # writes benchmarks/results/multistream.json
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from _common import markdown_table, setup_env

setup_env()

JSON_PATH = Path(__file__).resolve().parent / "results" / "multistream.json"
CASES = {"per-frame": "multistream, pass per frame", "batched": "multistream, --batch-streams",
         "processes": "N visionkit track processes", "ultralytics": "ultralytics, one thread per stream"}


def in_fresh_process(case: str, pt: Path, clip: Path, n: int, conf: float, runtime: str) -> tuple[float, float]:
    """Run ``case`` in a fresh process, as the N processes are: this one (which built the random model through
    ultralytics' training code) runs PyTorch inference 3-4x slower than a fresh one on this machine."""
    out = subprocess.run([sys.executable, __file__, "--worker", case, str(pt), str(clip), str(n), str(conf),
                          runtime], capture_output=True, text=True, check=True).stdout.split()
    return float(out[0]), float(out[1])


def multistream_worker(pt: Path, clip: Path, n: int, conf: float, runtime: str, batched: bool) -> tuple[float, float]:
    from visionkit import MultiStream
    from visionkit.composites.track import TrackingPredictor

    tracking = TrackingPredictor(str(pt), device="cpu", runtime=runtime, conf=conf, batch_size=n if batched else 1,
                                 workers=None).warmup()
    frames, steps = 0, []
    start = last = time.perf_counter()
    for step in MultiStream([clip] * n, tracking).steps():
        now = time.perf_counter()
        steps.append(now - last)
        frames += len(step)
        last = time.perf_counter()
    return frames / (time.perf_counter() - start), statistics.median(steps) * 1e3


def run_processes(pt: Path, clip: Path, n: int, conf: float, runtime: str, tmp: Path) -> tuple[float, float]:
    cli = Path(sys.executable).with_name("visionkit")
    procs = [subprocess.Popen([str(cli), "track", str(clip), "--model", str(pt), "--runtime", runtime, "--device",
                               "cpu", "--conf", str(conf), "--quiet", "--exist-ok", "--mot", str(tmp / f"{i}.txt")],
                              stderr=subprocess.PIPE, text=True) for i in range(n)]
    fps = []
    for p in procs:
        err = p.communicate()[1]
        found = re.search(r"([\d.]+) FPS overall", err)
        if p.returncode != 0 or not found:
            raise SystemExit(f"visionkit track failed: {err.strip()}")
        fps.append(float(found.group(1)))
    return sum(fps), statistics.median(1e3 / f for f in fps)


def ultralytics_threads_worker(pt: Path, clip: Path, n: int, conf: float, runtime: str) -> tuple[float, float]:
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


def measure(args: argparse.Namespace, pt: Path, clip: Path, tmp: Path) -> dict[int, dict[str, list[tuple]]]:
    """``{n: {case: [(fps, ms per step) per round]}}``, the cases alternating within each round."""
    cases = [c for c in CASES if c != "ultralytics" or not args.no_ultralytics]
    counts = [int(s) for s in args.streams.split(",")]
    runs: dict[int, dict[str, list[tuple]]] = {n: {c: [] for c in cases} for n in counts}
    for r in range(args.rounds):
        for n in counts:
            for case in cases if r % 2 == 0 else cases[::-1]:
                if case == "processes":
                    got = run_processes(pt, clip, n, args.conf, args.runtime, tmp)
                else:
                    got = in_fresh_process(case, pt, clip, n, args.conf, args.runtime)
                runs[n][case].append(got)
                print(f"round {r + 1} N={n} {CASES[case]}: {got[0]:.1f} FPS total, {got[1]:.0f} ms per step",
                      file=sys.stderr)
    return runs


def figures(runs: dict[int, dict[str, list[tuple]]]) -> list[dict]:
    """One row per stream count and case: median FPS and ms per step over the rounds, and for the multistream
    cases the per-round ratios of total FPS to the other pipelines' and to one stream at a time (one
    ``visionkit track`` process alone, the N=1 processes row of the same round): median, lowest, highest."""
    rows = []
    alone = runs.get(1, {}).get("processes")
    for n, by_case in runs.items():
        for case, got in by_case.items():
            row = {"streams": n, "case": case, "pipeline": CASES[case],
                   "fps": round(statistics.median(g[0] for g in got), 2), "fps_runs": [round(g[0], 2) for g in got],
                   "ms_per_step": round(statistics.median(g[1] for g in got), 1),
                   "ms_runs": [round(g[1], 1) for g in got]}
            if case in ("per-frame", "batched"):
                others = {f"ratio_vs_{o}": by_case[o] for o in ("processes", "ultralytics", "per-frame")
                          if o in by_case and o != case}
                if alone is not None:
                    others["ratio_vs_one_at_a_time"] = alone
                for key, reference in others.items():
                    ratios = [a[0] / b[0] for a, b in zip(got, reference)]
                    row[key] = {"median": round(statistics.median(ratios), 3), "min": round(min(ratios), 3),
                                "max": round(max(ratios), 3)}
            rows.append(row)
    return rows


def table(rows: list[dict]) -> str:
    def ratio(row: dict, other: str) -> str:
        r = row.get(f"ratio_vs_{other}")
        return f"{r['median']:.2f} ({r['min']:.2f}-{r['max']:.2f})" if r else ""

    return markdown_table(("streams", "pipeline", "total FPS", "ms per step", "vs N processes", "vs ultralytics",
                           "vs one at a time"),
                          [(r["streams"], r["pipeline"], f"{r['fps']:.1f}", f"{r['ms_per_step']:.0f}",
                            ratio(r, "processes"), ratio(r, "ultralytics"), ratio(r, "one_at_a_time"))
                           for r in rows])


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        case, pt, clip, n, conf, runtime = sys.argv[2:8]
        worker_args = (Path(pt), Path(clip), int(n), float(conf), runtime)
        if case == "ultralytics":
            print(*ultralytics_threads_worker(*worker_args))
        else:
            print(*multistream_worker(*worker_args, batched=case == "batched"))
        return
    from bench_track import clip_and_model

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=40, help="frames of vtest.avi per stream (default: 40)")
    parser.add_argument("--streams", default="1,2,4", help="stream counts (default: 1,2,4)")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds (default: 3)")
    parser.add_argument("--conf", type=float, default=0.1)
    parser.add_argument("--runtime", choices=("torch", "onnx"), default="torch",
                        help="visionkit's runtime (ultralytics runs the .pt on PyTorch either way)")
    parser.add_argument("--no-ultralytics", action="store_true", help="skip the one-thread-per-stream recipe")
    parser.add_argument("--json", type=Path, default=JSON_PATH, help=f"figures file (default: {JSON_PATH})")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        clip, pt = clip_and_model(args.frames, tmp, seed=0, boost=4.5)
        setting = (f"{args.frames} frames of vtest.avi per stream; random YOLOv8n, "
                   f"{'PyTorch' if args.runtime == 'torch' else 'ONNX Runtime'}, CPU, {os.cpu_count()} cores")
        print(setting, file=sys.stderr)
        load_before = os.getloadavg()[0]
        runs = measure(args, pt, clip, tmp)
    rows = figures(runs)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({
        "benchmark": "multistream", "setting": setting, "runtime": args.runtime, "frames": args.frames,
        "rounds": args.rounds, "load_average": [round(load_before, 1), round(os.getloadavg()[0], 1)],
        "rows": rows, "markdown": table(rows)}, indent=2) + "\n")
    print(table(rows))
    print(f"figures written to {args.json}", file=sys.stderr)


if __name__ == "__main__":
    main()
