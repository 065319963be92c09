"""visionkit live demo: camera (or a looping video/image standing in for one) -> any task -> the screen.

    visionkit demo                                        # camera 0 in a window
    visionkit demo --source clip.mp4 --loop --serve       # browser view on http://127.0.0.1:8000/
    visionkit demo --serve --host 0.0.0.0 --allow-remote  # the same view, open to the network
    visionkit demo --headless --save out/ --max-frames 300
    python -m apps.webcam_demo --task pose                # the same, from a checkout
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import visionkit
from visionkit.io.sinks import OutputGuard

from .capture import LiveCapture
from .engine import TASKS, DemoEngine
from .guard import check_bind
from .modes import has_display, limited, run_headless, run_window


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--source", default="0", help="camera index, video/image file or stream URL (default: 0)")
    p.add_argument("--task", choices=TASKS, default="detect", help="task to start with (default: detect)")
    p.add_argument("--model", help="catalog model or model file (default: the best one available here); the "
                                   "browser page can switch to catalog models and to this file only")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N (default: auto)")
    p.add_argument("--trust-weights", action="store_true", dest="trust_weights",
                   help="load the --model file even if unpickling it can run code (only for files you trust)")
    p.add_argument("--loop", action="store_true", help="restart a video/image file at its end (a stand-in camera)")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--serve", action="store_true", help="browser view instead of a window")
    mode.add_argument("--headless", action="store_true", help="no display: write --save/--json outputs only")
    p.add_argument("--fallback-headless", action="store_true",
                   help="run headless instead of failing when no display is available")
    p.add_argument("--host", default="127.0.0.1", help="--serve address (default: 127.0.0.1, this machine only)")
    p.add_argument("--allow-remote", action="store_true",
                   help="let --host be a non-loopback address (e.g. 0.0.0.0): the camera is then open to the network")
    p.add_argument("--port", type=int, default=8000, help="--serve port (default: 8000)")
    p.add_argument("--save", metavar="DIR", help="headless: write the annotated video into DIR")
    p.add_argument("--json", metavar="FILE", help="headless: write one JSON line per processed frame")
    p.add_argument("--exist-ok", action="store_true", dest="exist_ok",
                   help="headless: replace --save/--json files that already exist (never the --source file)")
    p.add_argument("--snapshots", default="snapshots", metavar="DIR", help="where snapshots go (default: snapshots/)")
    p.add_argument("--max-frames", type=int, metavar="N", help="stop after N processed frames")
    p.add_argument("--duration", type=float, metavar="S", help="stop after S seconds")


def run(args: argparse.Namespace) -> int:
    """Run the demo; raises visionkit errors (one-line messages) for the caller to report."""

    def log(message: str) -> None:
        print(f"visionkit demo: {message}", file=sys.stderr)

    headless = args.headless
    if not (headless or args.serve) and not has_display():
        if not args.fallback_headless:
            raise visionkit.OptionError("no display available for the window (DISPLAY is not set): use --serve, "
                                        "--headless, or add --fallback-headless")
        log("no display available: running headless")
        headless = True
    if args.serve:  # refuse a bad address or a missing extra before opening the camera and loading a model
        warning = check_bind(args.host, args.allow_remote)
        from .web import serve

        if warning:
            print(f"visionkit: warning: {warning}", file=sys.stderr)
    capture = LiveCapture(args.source, loop=args.loop)
    engine = DemoEngine(args.task, args.model, args.device, args.trust_weights)
    log(f"{capture.name} -> {engine.task}:{engine.model}")
    frames = limited(capture, args.max_frames, args.duration)
    try:
        if args.serve:
            serve(engine, frames, args.host, args.port, Path(args.snapshots), log)
        elif headless:
            inputs = [Path(args.source)] if capture.is_file else []
            run_headless(engine, frames, args.save, args.json, log, OutputGuard(inputs, exist_ok=args.exist_ok))
        else:
            run_window(engine, frames, Path(args.snapshots), log)
    finally:
        capture.close()
    if capture.dropped:
        log(f"{capture.dropped} frames dropped to stay live (inference slower than the source)")
    if not capture.is_file and engine.stats.frames and not (args.max_frames or args.duration):
        log(f"{capture.name} stopped delivering frames")
    return 0


def main(argv: list[str] | None = None) -> int:
    """``python -m apps.webcam_demo``: the same as ``visionkit demo``."""
    from visionkit.cli import main as cli_main

    return cli_main(["demo", *(sys.argv[1:] if argv is None else argv)])
