"""Live-demo latency: time from frame capture to the displayed (annotated) result, over a long run.

A video replayed at its own frame rate stands in for a camera. The model is slower than the frame interval
on this CPU, which is exactly when capture policy matters: with latest-frame capture (the demo's) latency
stays flat and frames are dropped; with a queue of every frame (the naive reader) latency grows without bound.

    python benchmarks/bench_live_latency.py --seconds 60 --model yolov5n
"""

from __future__ import annotations

import argparse
import statistics
import time

from _common import SHARED, add_figures_option, print_table, setup_env

setup_env()

from apps.webcam_demo.capture import LiveCapture  # noqa: E402
from apps.webcam_demo.engine import DemoEngine  # noqa: E402


def run(source: str, engine: DemoEngine, seconds: float, keep_latest: bool, fps: float) -> dict[str, float]:
    capture = LiveCapture(source, loop=True, fps=fps, keep_latest=keep_latest)
    latencies: list[tuple[float, float]] = []
    start = time.monotonic()
    for item in capture:
        engine.process(item.frame.image, item.captured_at)
        now = time.monotonic()
        latencies.append((now - start, (now - item.captured_at) * 1e3))
        if now - start >= seconds:
            break
    capture.close()
    values = [v for _, v in latencies]
    fifth = max(len(values) // 5, 1)
    return {"frames": len(values), "dropped": capture.dropped, "first_ms": statistics.median(values[:fifth]),
            "last_ms": statistics.median(values[-fifth:]), "p90_ms": statistics.quantiles(values, n=10)[-1]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--source", default=str(SHARED / "data/tracking/demo/vtest.avi"))
    parser.add_argument("--model", default="yolov5n")
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--fps", type=float, default=30.0, help="camera rate to emulate (default: 30)")
    add_figures_option(parser, "live-latency")
    args = parser.parse_args()
    engine = DemoEngine("detect", args.model, args.device)
    rows = []
    for keep_latest in (True, False):
        name = "latest frame (visionkit demo)" if keep_latest else "queue every frame (naive)"
        r = run(args.source, engine, args.seconds, keep_latest, fps=args.fps)
        rows.append((name, r))
        print(f"{name}: {r['frames']} frames shown, {r['dropped']} dropped; latency median first 20% "
              f"{r['first_ms']:.0f} ms, last 20% {r['last_ms']:.0f} ms, p90 {r['p90_ms']:.0f} ms", flush=True)
    columns = ("capture", "frames shown", "dropped", "latency first 20% (ms)", "latency last 20% (ms)", "p90 (ms)")
    cells = [(name, r["frames"], r["dropped"], f"{r['first_ms']:.0f}", f"{r['last_ms']:.0f}", f"{r['p90_ms']:.0f}")
             for name, r in rows]
    print_table(args, columns, cells, numeric=True)


if __name__ == "__main__":
    main()
