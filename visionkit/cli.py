"""The ``visionkit`` command. It only calls the public API: load a predictor, stream a source, feed sinks.

Exit codes: 0 all inputs processed; 1 a runtime failure (an input, the weights or an output could not be
used; in a multi-input run the other inputs were still processed); 2 a bad command line (unknown option,
model or value); 130 interrupted by Ctrl-C (SIGINT), 143 stopped by SIGTERM, 129 by SIGHUP (a closed terminal):
the videos written so far are finalised, the other outputs flushed and the summary printed, after one
``visionkit: interrupted by SIGNAL`` line. Only this module installs signal handlers (``main``).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

from .errors import ModelNotFoundError, OptionError, VisionkitError
from .interrupts import Interrupted, hold_stop_signals, stop_requested, stop_signals
from .io.sources import __doc__ as SOURCES_DOC

log = logging.getLogger("visionkit")

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2  # interrupted: 128 + the signal (visionkit.interrupts)

SOURCE_HELP = ("image, folder, quoted glob, video, camera index or stream URL (default: the built-in sample "
               "bus.jpg); see the list below")
SOURCES_EPILOG = "SOURCE can be:\n" + "\n".join(
    line for line in SOURCES_DOC.split("Accepted specs (also the CLI's SOURCE help):")[1].splitlines()
    if line.strip() and "Python API" not in line)


def _default_sample() -> str:
    from ultralytics.utils import ASSETS  # ultralytics ships bus.jpg and zidane.jpg inside its package

    return str(ASSETS / "bus.jpg")


def _fraction(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, got {text}")
    return value


def _positive_int(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def _attempts(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 (off) or a positive number of attempts, got {text}")
    return value


def _add_model_options(p: argparse.ArgumentParser, task: str, streams: bool = True) -> None:
    """Model choice and placement; ``streams``: the command runs frames through ``stream()`` (--workers)."""
    g = p.add_argument_group("model")
    g.add_argument("--model", "-m", help=f"catalog name (see `visionkit models --task {task}`) or a model file "
                                         "(.pt, .onnx); default: the task's default model")
    g.add_argument("--weights", help="weights file for a catalog architecture (e.g. a torchvision .pth)")
    g.add_argument("--device", default="auto", help="auto (CUDA with fp16 when available, else CPU), cpu, cuda, "
                                                    "cuda:N (default: auto)")
    g.add_argument("--runtime", choices=("torch", "onnx"),
                   help="onnx: run a PyTorch model (e.g. a YOLO .pt) on ONNX Runtime, exported once and cached; "
                        "faster on a CPU (default: the model's own runtime)")
    g.add_argument("--batch", type=_positive_int, default=1, help="frames per forward pass (default: 1)")
    _add_trust_option(g)
    if streams:
        g.add_argument("--workers", type=_positive_int, metavar="N",
                       help="frames in inference at once, each in its own thread with cores/N CPU threads (default: "
                            "2 for videos and folders on a multi-core CPU when the model allows it, else 1)")
        g.add_argument("--reconnect", type=_attempts, metavar="N",
                       help="reopen a camera or stream that drops up to N times, waiting 0.5 s doubling to 8 s; "
                            "0 = off (default: 5)")


def _add_trust_option(g: Any) -> None:
    g.add_argument("--trust-weights", action="store_true", dest="trust_weights",
                   help="load a .pt file even if it needs more than a model checkpoint does: unpickling it can run "
                        "any code it holds, so only for files you trust (catalog files with a matching sha256 are)")


def _add_detect_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("detection")
    g.add_argument("--conf", type=_fraction, help="minimum score to keep a box (default: the model's, e.g. 0.25)")
    g.add_argument("--iou", type=_fraction, help="NMS IoU threshold (default: the model's, e.g. 0.7 for YOLO)")
    g.add_argument("--imgsz", type=_positive_int, help="inference size in pixels (default: the model's)")
    g.add_argument("--max-det", type=_positive_int, dest="max_det", help="maximum boxes per image")
    g.add_argument("--classes", type=lambda s: [int(c) for c in s.split(",")],
                   help="keep only these class ids, comma-separated (e.g. 0,2 = person, car for COCO YOLO)")


def _add_output_options(p: argparse.ArgumentParser, coco: bool = False, mot: bool = False) -> None:
    g = p.add_argument_group("output")
    g.add_argument("--save", metavar="DIR", help="write annotated images (same names) and videos (.mp4) into DIR")
    g.add_argument("--json", metavar="FILE", help="write one JSON line per image/frame to FILE (JSONL)")
    if coco:
        g.add_argument("--coco", metavar="FILE", help="write COCO detection results JSON to FILE")
    if mot:
        g.add_argument("--mot", metavar="FILE", help="write MOTChallenge results (frame,id,x,y,w,h,conf,...) to FILE")
    g.add_argument("--show", action="store_true", help="show annotated frames in a window (q or Esc quits)")
    g.add_argument("--quiet", "-q", action="store_true", help="no per-image lines and no progress bar")


def _add_track_options(p: argparse.ArgumentParser) -> None:
    _add_detect_options(p)
    g = p.add_argument_group("tracking")
    g.add_argument("--tracker", choices=("bytetrack", "botsort"), default="bytetrack",
                   help="ultralytics tracker with its shipped settings (default: bytetrack)")
    g.add_argument("--track-buffer", type=_positive_int, dest="track_buffer",
                   help="frames a lost track is kept before its id is dropped (default: 30)")
    g.add_argument("--trails", type=int, default=30, metavar="N",
                   help="draw each track's last N centre points on saved/shown frames; 0 = off (default: 30)")


def _add_track_task_options(p: argparse.ArgumentParser) -> None:
    """`visionkit track` (not `eval track`): lines and zones, the tracker state across runs."""
    _add_track_options(p)
    g = p.add_argument_group("lines and zones (tracked objects only)")
    g.add_argument("--line", action="append", default=[], metavar="X1,Y1,X2,Y2[:NAME]",
                   help="count in/out crossings per class of this line segment (pixels, or fractions of the frame "
                        "when all values are in 0..1); 'in' = to the right of the direction X1,Y1 -> X2,Y2; "
                        "repeatable")
    g.add_argument("--zone", action="append", default=[], metavar="X1,Y1,X2,Y2,X3,Y3,...[:NAME]",
                   help="polygon: occupancy per class and each track's dwell time; repeatable")
    g.add_argument("--events", metavar="FILE",
                   help="write crossed/entered/left events (track id, class, frame, timestamp) to FILE as JSONL, "
                        "as they happen")
    g = p.add_argument_group("tracker state")
    g.add_argument("--resume-state", metavar="FILE", dest="resume_state",
                   help="continue the tracks (and ids) of a run that wrote FILE with --save-state")
    g.add_argument("--save-state", metavar="FILE", dest="save_state",
                   help="write the tracker state to FILE when the run ends or is interrupted (JSON, for "
                        "--resume-state)")


def _add_classify_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("classification")
    g.add_argument("--topk", type=_positive_int, dest="top_k", help="how many classes to report (default: 5)")
    g.add_argument("--imgsz", type=_positive_int, help="inference size in pixels (default: the model's)")


def _add_segment_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("segmentation")
    g.add_argument("--imgsz", type=_positive_int, help="inference size in pixels (default: the model's)")
    g.add_argument("--conf", type=_fraction, help="instance models: minimum score to keep a mask")
    g.add_argument("--iou", type=_fraction, help="instance models: NMS IoU threshold")


def _add_action_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("action recognition")
    g.add_argument("--window", type=_positive_int, help="frames per clip (default: the model's clip length)")
    g.add_argument("--stride", type=_positive_int, help="frames between the starts of two clips (default: window/2)")
    g.add_argument("--topk", type=_positive_int, dest="top_k", help="how many actions to report (default: 5)")


TASK_OPTIONS = {"detect": _add_detect_options, "track": _add_track_task_options, "classify": _add_classify_options,
                "pose": _add_detect_options, "segment": _add_segment_options, "action": _add_action_options}
TASK_HELP = {"detect": "detect objects (YOLO, SSD) in images, folders, videos, cameras and streams",
             "track": "track objects across video frames with persistent ids (BYTETrack, BoT-SORT)",
             "classify": "classify whole images (ImageNet classifiers, YOLO-cls): top-k classes",
             "pose": "estimate human pose keypoints (YOLO-pose, MoveNet, Keypoint R-CNN)",
             "segment": "label every pixel (DeepLabV3, LR-ASPP, FCN) or segment instances (YOLO-seg)",
             "action": "recognise actions in videos over a sliding clip window (S3D, R3D-18, MViT)"}


class _Parser(argparse.ArgumentParser):
    """argparse with the CLI's one-line error format (usage stays one ``--help`` away)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(EXIT_USAGE, f"visionkit: error: {message} (see `{self.prog} --help`)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="visionkit", description="Computer-vision applications behind one predictor interface.",
        epilog="exit codes: 0 ok, 1 runtime failure (other inputs still processed), 2 bad command line, "
               "130 interrupted (Ctrl-C), 143 SIGTERM, 129 SIGHUP. Weights are looked up in $VISIONKIT_WEIGHTS, "
               "then ~/.cache/visionkit, then downloaded from the official URL.")
    parser.add_argument("--version", action="version", version=f"visionkit {_version()}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks for errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for task, add_options in TASK_OPTIONS.items():
        p = sub.add_parser(task, help=TASK_HELP[task], description=TASK_HELP[task] + ".", epilog=SOURCES_EPILOG,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
        if task == "track":  # several sources: one model, one tracker per stream (MultiStream)
            p.add_argument("source", nargs="*", metavar="SOURCE", help=SOURCE_HELP + "; several: tracked as "
                           "separate streams batched through one model (--save DIR: DIR/<stream>.mp4, --mot: a "
                           "folder of <stream>.txt, --json: records with a stream field)")
        else:
            p.add_argument("source", nargs="?", metavar="SOURCE", help=SOURCE_HELP)
        _add_model_options(p, task)
        add_options(p)
        _add_output_options(p, coco=task == "detect", mot=task == "track")
        p.set_defaults(handler=_run_track if task == "track" else _run_task, task=task)

    p = sub.add_parser("demo", help="live demo: camera -> any task -> window, browser page or files",
                       description="Live demo on a camera (or a looping video/image standing in for one): "
                                   "switch task and model while it runs; the stats overlay shows FPS, inference "
                                   "time and end-to-end latency. Capture keeps only the newest frame, so the "
                                   "view never falls behind.")
    _demo_module().add_arguments(p)
    p.set_defaults(handler=lambda a: _demo_module().run(a))

    p = sub.add_parser("models", help="list the model catalog", description="List the model catalog and "
                       "whether each model's weights are available here.")
    p.add_argument("--task", help="only this task")
    p.add_argument("--json", action="store_true", help="print the catalog entries as JSON")
    p.set_defaults(handler=_run_models)

    p = sub.add_parser("export", help="export a PyTorch model to ONNX (what --runtime onnx runs)",
                       description="Export a model (catalog name or ultralytics .pt) to ONNX with its family's own "
                                   "exporter: dynamic input size, no NMS in the graph, class names in the metadata. "
                                   "The export is cached, so `--runtime onnx` reuses it.")
    p.add_argument("model", metavar="MODEL", help="catalog name or model file (.pt)")
    p.add_argument("--task", default="detect", help="the model's task (default: detect)")
    p.add_argument("--weights", help="weights file for a catalog architecture")
    p.add_argument("--output", "-o", metavar="FILE", help="also copy the ONNX file to FILE")
    _add_trust_option(p)
    p.set_defaults(handler=_run_export)

    p = sub.add_parser("eval", help="score a model on a labelled dataset",
                       description="Score a model with the field's reference metrics.")
    esub = p.add_subparsers(dest="eval_task", metavar="TASK")
    esub.required = True
    e = esub.add_parser("detect", help="COCO box mAP (pycocotools) on COCO-format annotations",
                        description="COCO box mAP@[.5:.95] and mAP@.5 with pycocotools, using the model's "
                                    "evaluation settings (e.g. conf 0.001) unless overridden.")
    e.add_argument("--images", required=True, help="folder with the annotated images")
    e.add_argument("--annotations", required=True, help="COCO instances JSON (e.g. instances_val2017.json)")
    _add_model_options(e, "detect", streams=False)
    _add_detect_options(e)
    e.add_argument("--json", metavar="FILE", help="also write the scores as JSON to FILE")
    e.set_defaults(handler=_run_eval_detect, task="detect")
    c = esub.add_parser("classify", help="top-1 / top-5 accuracy on a folder of images and a labels CSV",
                        description="Top-1 and top-5 accuracy. The labels CSV has a header with `file` and "
                                    "`class_index` columns (ImageNet-1k indices for ImageNet models).")
    c.add_argument("--images", required=True, help="folder with the labelled images")
    c.add_argument("--labels", required=True, help="CSV with file,class_index columns")
    _add_model_options(c, "classify", streams=False)
    c.add_argument("--imgsz", type=_positive_int, help="inference size in pixels (default: the model's)")
    c.add_argument("--json", metavar="FILE", help="also write the scores as JSON to FILE")
    c.set_defaults(handler=_run_eval_classify, task="classify")
    k = esub.add_parser("pose", help="keypoint OKS-AP (pycocotools) and PCK on COCO person keypoints",
                        description="Keypoint OKS mAP with pycocotools. A single-person model (MoveNet) runs on the "
                                    "person boxes of --detector (top-down) and also reports PCK@0.1/0.2 on "
                                    "ground-truth boxes (normalised by the box's longer side).")
    k.add_argument("--images", required=True, help="folder with the annotated images")
    k.add_argument("--annotations", required=True, help="COCO person keypoints JSON")
    k.add_argument("--detector", default="yolov5n", help="person detector for single-person models "
                                                         "(default: yolov5n)")
    _add_model_options(k, "pose", streams=False)
    _add_detect_options(k)
    k.add_argument("--json", metavar="FILE", help="also write the scores as JSON to FILE")
    k.set_defaults(handler=_run_eval_pose, task="pose")
    g = esub.add_parser("segment", help="mIoU of a VOC-class model on COCO (VOC classes) or CamVid",
                        description="Semantic segmentation mIoU from a confusion matrix (ignore index 255). COCO "
                                    "annotations are turned into the 21 VOC classes as torchvision's segmentation "
                                    "references do; CamVid scores the classes that map (car+bus -> Car, person -> "
                                    "Pedestrian and Bicyclist).")
    data = g.add_mutually_exclusive_group(required=True)
    data.add_argument("--annotations", help="COCO instances JSON (with --images)")
    data.add_argument("--camvid", metavar="DIR", help="CamVid folder with images/ and labels/")
    g.add_argument("--images", help="folder with the COCO images")
    _add_model_options(g, "segment", streams=False)
    g.add_argument("--imgsz", type=_positive_int, help="inference size in pixels (default: the model's)")
    g.add_argument("--json", metavar="FILE", help="also write the scores as JSON to FILE")
    g.set_defaults(handler=_run_eval_segment, task="segment")
    t = esub.add_parser("track", help="HOTA, MOTA, IDF1 (TrackEval) on MOTChallenge-format sequences",
                        description="Track each MOTChallenge sequence folder (img1/, gt/gt.txt, seqinfo.ini) and "
                                    "score it with TrackEval: HOTA, MOTA, IDF1. Only frames present in img1/ "
                                    "are scored.")
    t.add_argument("--gt", nargs="+", required=True, metavar="SEQ_DIR", help="sequence folder(s)")
    _add_model_options(t, "detect")
    _add_track_options(t)
    t.add_argument("--json", metavar="FILE", help="also write the scores as JSON to FILE")
    t.set_defaults(handler=_run_eval_track, task="track")
    return parser


def _demo_module() -> Any:
    from visionkit_apps import webcam_demo  # the apps/ folder, installed as visionkit_apps

    return webcam_demo


def _version() -> str:
    from . import __version__

    return __version__


def _predictor_options(args: argparse.Namespace) -> dict[str, Any]:
    names = ("conf", "iou", "imgsz", "max_det", "classes", "top_k", "window", "stride")
    return {k: getattr(args, k) for k in names if getattr(args, k, None) is not None}


def _workers(args: argparse.Namespace) -> int | None:
    """The --workers given; else None (the predictor's choice: 2 on a multi-core CPU when the model allows it)
    for videos, folders, globs and `eval track`'s sequences; else 1: one image, a camera or a stream, where the
    latency of each frame matters most, and the eval commands that score image by image."""
    from .io.sources import is_live
    from .predictor import is_single_image

    if getattr(args, "workers", None) is not None:
        return args.workers
    if getattr(args, "gt", None):
        return None
    source = getattr(args, "source", None)
    if source is None or is_live(source):
        return 1
    is_glob = any(c in source for c in "*?[")
    return 1 if is_single_image(source) and not is_glob else None


def _load(args: argparse.Namespace, evaluate: bool = False) -> Any:
    from . import Predictor

    common = dict(weights=args.weights, device=args.device, runtime=args.runtime, batch_size=args.batch,
                  workers=_workers(args), trust_weights=args.trust_weights, **_predictor_options(args))
    if args.task == "track":
        from .tasks.track import TrackingPredictor

        params = {"track_buffer": args.track_buffer} if args.track_buffer else {}
        return TrackingPredictor(args.model, tracker=args.tracker, tracker_params=params, **common)
    if args.task == "action":
        from .tasks.action import ActionPredictor

        return ActionPredictor(args.model, **common)
    return Predictor(args.task, args.model, evaluate=evaluate, **common)


def _describe(result: Any) -> str:
    """A short human summary of any result for the per-image line."""
    from .results import Classification, Detections, SemanticMask

    if isinstance(result, Detections):
        counts = Counter(str(n) for n in result.class_names)
        return ", ".join(f"{c} {n}" for n, c in counts.most_common()) or "nothing found"
    if isinstance(result, Classification):
        return ", ".join(f"{n} {s:.2f}" for n, s in zip(result.class_names[:3], result.scores[:3]))
    if isinstance(result, SemanticMask):
        return ", ".join(f"{n} {share:.0%}" for n, share in list(result.pixel_share().items())[:4])
    return result.kind


def _run_task(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from .draw import TraceAnnotator
    from .io.sinks import AnnotatedSink, CocoResultsSink, JsonlSink, MotSink
    from .io.sources import open_source
    from .io.threads import BackgroundWorker
    from .results import Detections

    predictor = _load(args)
    stream_options = _tracker_state(args, predictor)
    counting = _Counting.from_args(args)  # a bad --line or --zone is found before any output is opened
    if args.source is None:
        args.source = _default_sample()
        if not args.quiet:
            print(f"no SOURCE given: running on the built-in sample {args.source}", file=sys.stderr)
    errors: list[str] = []

    def on_error(e: VisionkitError) -> None:
        errors.append(str(e))
        tqdm.write(f"visionkit: error: {e}", file=sys.stderr)

    source = open_source(args.source, on_error=on_error, reconnect=args.reconnect)
    predictor.warmup()  # load weights before opening outputs: a bad model must not leave empty files behind
    sinks = []
    if args.save:
        sinks.append(AnnotatedSink(args.save))
    if args.json:
        sinks.append(JsonlSink(args.json, task=args.task, model=predictor.entry.name))
    if getattr(args, "coco", None):
        sinks.append(CocoResultsSink(args.coco))
    if getattr(args, "mot", None):
        sinks.append(MotSink(args.mot))
    window = _Window() if args.show else None
    if counting is not None:
        counting.open()
    trails = TraceAnnotator(args.trails) if getattr(args, "trails", 0) > 0 else None
    trails_source = None

    total = len(source)
    bar = tqdm(total=total or None, unit="frame", disable=True if args.quiet or total <= 1 else None,  # None: TTY only
               dynamic_ncols=True,
               file=sys.stderr, desc=args.task)
    draw = bool(window or args.save)

    def emit(frame: Any, result: Any) -> Any:
        annotated = result.plot(frame.image) if draw else None
        if trails is not None and annotated is not None:
            nonlocal trails_source
            if frame.is_video and frame.source != trails_source:
                trails.reset()
            trails_source = frame.source
            trails.annotate(annotated, result)
        if counting is not None:
            counting(frame, result, annotated)
        for sink in sinks:
            sink.write(frame, result, annotated)
        return annotated

    # Drawing and encoding run in a writer thread, overlapping the next frame's inference; a window must be
    # driven from the main thread, so --show draws here.
    writer = None if window else BackgroundWorker(emit, name="writer")
    frames = objects = 0
    speed_sum = [0.0, 0.0, 0.0]
    start = time.perf_counter()
    stop: KeyboardInterrupt | None = None
    try:  # Ctrl-C, SIGTERM and SIGHUP (visionkit.interrupts) end the loop; the outputs are finished below
        for frame, result in predictor.stream(source, on_error=on_error, **stream_options):
            if writer is not None:  # handed over before it is counted: the summary counts what was written
                writer.submit(frame, result)
                quit_window = False
            else:
                quit_window = not window.show(emit(frame, result))
            frames += 1
            objects += len(result) if isinstance(result, Detections) else 0
            speed_sum = [a + b for a, b in zip(speed_sum, (result.speed.preprocess, result.speed.inference,
                                                           result.speed.postprocess))]
            if quit_window:
                break
            if not frame.is_video and not args.quiet:
                tqdm.write(f"{frame.name}: {frame.image.shape[1]}x{frame.image.shape[0]} {_describe(result)} "
                           f"({result.speed.total:.1f} ms)")
            bar.update(1)
    except KeyboardInterrupt as e:
        stop = e
    finally:
        hold_stop_signals()  # a signal from here on must not cut a video short: it is reported below
        bar.close()
        try:
            if writer is not None:
                writer.close()
        finally:
            for sink in sinks:
                sink.close()
            if window:
                window.close()
            if getattr(args, "save_state", None):
                stream_options["tracker"].save_state(args.save_state)
            if counting is not None:
                counting.close()
    stop = stop or stop_requested()
    elapsed = time.perf_counter() - start
    code = _interrupted(stop) if stop is not None else EXIT_FAILED if errors or frames == 0 else EXIT_OK
    _summary(args, frames, objects, speed_sum, elapsed, errors, sinks)
    if counting is not None and not args.quiet:
        print(counting.summary(), file=sys.stderr)
    return code


class _Counting:
    """--line / --zone / --events for one run: an ``Analytics`` per source (each video or stream counts on its
    own), its events written as they happen, its counts drawn on the annotated frame."""

    def __init__(self, lines: list[Any], zones: list[Any], events: str | None):
        from .draw import ZoneAnnotator

        self.lines, self.zones, self.events_path = lines, zones, events
        self.events: Any = None
        self.drawer = ZoneAnnotator()
        self.per_source: dict[str, Any] = {}

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> _Counting | None:
        from .zones import parse_shape

        lines = [parse_shape(t, "line", i) for i, t in enumerate(getattr(args, "line", []), 1)]
        zones = [parse_shape(t, "zone", i) for i, t in enumerate(getattr(args, "zone", []), 1)]
        if getattr(args, "events", None) and not (lines or zones):
            raise OptionError("--events needs at least one --line or --zone")
        return cls(lines, zones, args.events) if lines or zones else None

    def open(self) -> None:
        from .io.sinks import RecordSink

        if self.events_path:
            self.events = RecordSink(self.events_path)

    def __call__(self, frame: Any, result: Any, annotated: Any) -> None:
        from .zones import Analytics

        analytics = self.per_source.get(frame.source)
        if analytics is None:
            analytics = self.per_source[frame.source] = Analytics(self.lines, self.zones)
        events = analytics.update(result, frame.index, frame.timestamp, frame.image.shape[:2])
        if self.events is not None:
            self.events.write_records(frame, events)
        if annotated is not None:
            self.drawer.annotate(annotated, analytics.counters)

    def summary(self) -> str:
        return "; ".join(f"{Path(source).name}: " + ", ".join(c.summary() for c in a.counters)
                         for source, a in self.per_source.items())

    def close(self) -> None:
        if self.events is not None:
            self.events.close()


def _run_track(args: argparse.Namespace) -> int:
    """One source (or none: the sample) as every task runs it; several through ``MultiStream``."""
    sources = args.source
    if len(sources) > 1:
        return _run_multistream(args, sources)
    args.source = sources[0] if sources else None
    return _run_task(args)


def _run_multistream(args: argparse.Namespace, sources: list[str]) -> int:
    from dataclasses import replace

    from .io.sinks import AnnotatedSink, MotSink, RecordSink
    from .multistream import MultiStream

    if args.resume_state or args.save_state:
        raise OptionError("--resume-state and --save-state take one source (a tracker state is one stream's)")
    if args.show:
        raise OptionError("--show takes one source; use --save DIR for several")
    args.source = None  # no --workers guess from a source: the streams share one batched forward pass
    if args.batch == 1:  # the default: one forward pass per step for all the streams
        args.batch = len(sources)
    predictor = _load(args)
    counting = _Counting.from_args(args)
    errors: list[str] = []

    def on_error(name: str, e: VisionkitError) -> None:
        errors.append(str(e))
        print(f"visionkit: error: {e}", file=sys.stderr)

    predictor.warmup()  # load weights before opening sources and outputs: a bad model leaves nothing behind
    streams = MultiStream(sources, predictor, on_error=on_error, reconnect=args.reconnect)
    video = records = None
    mots: dict[str, MotSink] = {}
    frames = objects = 0
    start = time.perf_counter()
    stop: KeyboardInterrupt | None = None
    try:
        video = AnnotatedSink(args.save) if args.save else None
        records = RecordSink(args.json, task=args.task, model=predictor.entry.name) if args.json else None
        if args.mot:
            Path(args.mot).mkdir(parents=True, exist_ok=True)
        if counting is not None:
            counting.open()
        for item in streams:
            frame = replace(item.frame, source=item.stream)  # outputs are named by stream
            result = item.result
            annotated = result.plot(frame.image) if video is not None else None
            if counting is not None:
                counting(frame, result, annotated)
            if video is not None:
                video.write(frame, result, annotated)
            if records is not None:
                record = {"stream": item.stream, "frame": frame.index, **result.to_dict()}
                if frame.timestamp is not None:
                    record["timestamp"] = round(frame.timestamp, 4)
                records.write_records(item.frame, [record])
            if args.mot:
                if item.stream not in mots:
                    mots[item.stream] = MotSink(Path(args.mot) / f"{item.stream}.txt")
                mots[item.stream].write(frame, result)
            frames += 1
            objects += len(result)
    except KeyboardInterrupt as e:
        stop = e
    finally:
        hold_stop_signals()
        streams.close()
        for sink in [video, records, counting, *mots.values()]:
            if sink is not None:
                sink.close()
    stop = stop or stop_requested()
    elapsed = time.perf_counter() - start
    outputs = [p for p in (args.save, args.json, args.mot, args.events) if p]
    print(f"track: {len(sources)} stream(s), {frames} frame(s), {objects} object(s), {len(errors)} error(s); "
          f"{frames / elapsed if elapsed > 0 else 0:.1f} FPS overall" + (f"; saved to {', '.join(outputs)}"
                                                                         if outputs else ""), file=sys.stderr)
    if counting is not None and not args.quiet:
        print(counting.summary(), file=sys.stderr)
    return _interrupted(stop) if stop is not None else EXIT_FAILED if errors or frames == 0 else EXIT_OK


def _tracker_state(args: argparse.Namespace, predictor: Any) -> dict[str, Any]:
    """``stream()`` options for --resume-state / --save-state: the tracker to go on with, loaded now (a bad state
    file is a bad command line, found before any output is opened)."""
    if not (getattr(args, "resume_state", None) or getattr(args, "save_state", None)):
        return {}
    tracker = predictor.new_tracker()
    if args.resume_state:
        tracker.load_state(args.resume_state)
    return {"tracker": tracker}


def _summary(args: argparse.Namespace, frames: int, objects: int, speed_sum: list[float], elapsed: float,
             errors: list[str], sinks: list[Any]) -> None:
    per = [s / frames for s in speed_sum] if frames else [0.0, 0.0, 0.0]
    outputs = [str(Path(args.save))] if args.save else []
    outputs += [p for p in (args.json, getattr(args, "coco", None), getattr(args, "mot", None)) if p]
    found = f"{objects} object(s), " if args.task in ("detect", "track", "pose") or objects else ""
    line = (f"{args.task}: {frames} frame(s), {found}{len(errors)} error(s); "
            f"{per[0]:.1f} ms pre, {per[1]:.1f} ms inference, {per[2]:.1f} ms post per frame; "
            f"{frames / elapsed if elapsed > 0 else 0:.1f} FPS overall")
    if outputs:
        line += "; saved to " + ", ".join(outputs)
    print(line, file=sys.stderr)


class _Window:
    """An OpenCV window; errors out clearly where there is no display."""

    NAME = "visionkit"

    def __init__(self) -> None:
        if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
            raise OptionError("--show needs a display (DISPLAY is not set); use --save instead")
        import cv2

        self.cv2 = cv2

    def show(self, image: Any) -> bool:
        try:
            self.cv2.imshow(self.NAME, image)
            key = self.cv2.waitKey(1) & 0xFF
        except self.cv2.error as e:
            raise OptionError(f"cannot open a window: {str(e).strip().splitlines()[-1]}") from None
        return key not in (ord("q"), 27)

    def close(self) -> None:
        self.cv2.destroyAllWindows()


def _run_export(args: argparse.Namespace) -> int:
    from . import export_onnx

    path = export_onnx(args.model, args.task, args.weights, trust_weights=args.trust_weights)
    if args.output:
        from .io.sinks import copy_file

        path = copy_file(path, args.output)
    print(path)
    return EXIT_OK


def _run_models(args: argparse.Namespace) -> int:
    from . import weights
    from .catalog import list_models

    entries = list_models(args.task)
    if args.task and not entries:
        raise ModelNotFoundError(f"no models for task {args.task!r}")
    if args.json:
        print(json.dumps([e.to_dict() for e in entries], indent=2))
        return EXIT_OK
    rows = [("NAME", "TASK", "BACKEND", "INPUT", "WEIGHTS", "PUBLISHED METRIC")]
    for e in entries:
        rows.append((e.name + (" *" if e.default else ""), e.task, e.backend, str(e.input_size or "-"),
                     weights.availability(e), _metric(e)))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip())
    print("\n* = the task's default model. WEIGHTS: local = found in $VISIONKIT_WEIGHTS or the cache; "
          "download = fetched from the official URL on first use.")
    return EXIT_OK


def _metric(entry: Any) -> str:
    for dataset, values in entry.metrics.items():
        if dataset == "reference":
            continue
        key, value = next(iter(values.items()))
        return f"{dataset} {key} {value}"
    return "-"


def _scored(args: argparse.Namespace, evaluate: Any, *data: Any) -> tuple[Any, Any]:
    """Load the model with its evaluation settings and score it with ``evaluate(predictor, *data, progress)``."""
    from tqdm import tqdm

    predictor = _load(args, evaluate=True)
    predictor.warmup()
    with tqdm(desc="eval", unit="image", file=sys.stderr, dynamic_ncols=True, disable=None) as bar:
        return predictor, evaluate(predictor, *data, progress=bar.update)


def _run_eval_detect(args: argparse.Namespace) -> int:
    from .eval.coco import evaluate_detector

    predictor, score = _scored(args, evaluate_detector, args.images, args.annotations)
    return _report(args, predictor, score, f"mAP50-95 {score.map:.3f}  mAP50 {score.map50:.3f}  mAP75 "
                                           f"{score.map75:.3f}  ({score.images} images, {score.detections} detections)")


def _run_eval_classify(args: argparse.Namespace) -> int:
    from .eval.classify import evaluate_classifier

    predictor, score = _scored(args, evaluate_classifier, args.images, args.labels)
    return _report(args, predictor, score, f"top-1 {score.top1_rate:.3f} ({score.top1}/{score.images})  "
                                           f"top-5 {score.top5_rate:.3f} ({score.top5}/{score.images})")


def _run_eval_pose(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from . import Predictor
    from .eval.keypoints import evaluate_keypoints, evaluate_pck
    from .pipeline import PersonPose

    pose = _load(args, evaluate=True)
    report: dict[str, Any] = {"model": pose.entry.name}
    scorer: Any = pose
    if hasattr(pose.backend, "predict_in_boxes"):  # single-person model: top-down on detected people
        # COCO scores at most 20 people per image, so more boxes change nothing but the run time.
        persons = Predictor("detect", args.detector, classes=[0], evaluate=True, max_det=20, device=args.device,
                            trust_weights=args.trust_weights)
        scorer = PersonPose(persons, pose)
        report["detector"] = persons.entry.name
        pck = evaluate_pck(pose, args.images, args.annotations)
        report["pck"] = pck.to_dict()
        print(f"{pose.entry.name} on ground-truth boxes: " + "  ".join(
            f"PCK@{a} {v:.3f}" for a, v in pck.pck.items()) + f"  ({pck.persons} persons)")
    with tqdm(desc="eval", unit="image", file=sys.stderr, dynamic_ncols=True, disable=None) as bar:
        score = evaluate_keypoints(scorer, args.images, args.annotations, progress=bar.update)
    report.update(score.to_dict())
    print(f"{pose.entry.name}: OKS mAP {score.map:.3f}  mAP50 {score.map50:.3f}  mAP75 {score.map75:.3f}  "
          f"({score.images} images)")
    _write_json(args.json, report)
    return EXIT_OK


def _run_eval_segment(args: argparse.Namespace) -> int:
    from .eval.segmentation import evaluate_camvid, evaluate_coco_voc

    if args.annotations and not args.images:
        raise OptionError("--annotations needs --images (the folder of the annotated COCO images)")
    if args.camvid:
        predictor, score = _scored(args, evaluate_camvid, args.camvid)
    else:
        predictor, score = _scored(args, evaluate_coco_voc, args.images, args.annotations)
    per_class = "  ".join(f"{name} {iou:.3f}" for name, iou in score.iou.items())
    return _report(args, predictor, score, f"mIoU {score.miou:.3f}  pixel acc {score.pixel_acc:.3f}  "
                                           f"({score.images} images)\n  per class IoU: {per_class}")


def _report(args: argparse.Namespace, predictor: Any, score: Any, line: str) -> int:
    """The score line on stdout, and with --json the model name and every score in a JSON file."""
    print(f"{predictor.entry.name}: {line}")
    _write_json(args.json, {"model": predictor.entry.name, **score.to_dict()})
    return EXIT_OK


def _write_json(path: str | None, data: dict[str, Any]) -> None:
    if path:
        from .io.sinks import write_json

        write_json(path, data)


def _run_eval_track(args: argparse.Namespace) -> int:
    from .eval.mot import evaluate_tracker

    tracking = _load(args)
    tracking.warmup()
    rows = []
    for seq in args.gt:
        score = evaluate_tracker(tracking, seq)
        rows.append({"sequence": Path(seq).name, **score.to_dict()})
        print(f"{Path(seq).name}: HOTA {score.hota:.3f}  MOTA {score.mota:.3f}  IDF1 {score.idf1:.3f}  "
              f"({score.frames} frames, {score.id_switches} id switches)")
    _write_json(args.json, {"model": tracking.entry.name, "tracker": args.tracker, "sequences": rows})
    return EXIT_OK


def _interrupted(stop: KeyboardInterrupt) -> int:
    """Print the one ``visionkit: interrupted`` line, naming the signal; return 128 + its number."""
    if not isinstance(stop, Interrupted):  # Ctrl-C where no handler could be installed (not the main thread)
        stop = Interrupted()
    print(f"visionkit: interrupted by {stop.signal_name}", file=sys.stderr)
    return stop.exit_code


def main(argv: list[str] | None = None) -> int:
    with stop_signals():  # only the command sets signal handlers; the library leaves the process's alone
        return _main(argv)


def _main(argv: list[str] | None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if argv is None and not args.debug:  # a console run (not main([...]) from Python): native libraries' lines off
        from .io.console import divert_native_stderr

        divert_native_stderr()
    logging.basicConfig(format="visionkit: %(levelname)s: %(message)s", level=logging.WARNING)
    try:
        return args.handler(args)
    except (ModelNotFoundError, OptionError) as e:
        if args.debug:
            raise
        print(f"visionkit: error: {e}", file=sys.stderr)
        return EXIT_USAGE
    except VisionkitError as e:
        if args.debug:
            raise
        print(f"visionkit: error: {e}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt as e:
        return _interrupted(e)
    except Exception as e:  # a bug: still one line, with the way to see more
        if args.debug:
            raise
        print(f"visionkit: internal error: {type(e).__name__}: {e} (run with --debug for the traceback)",
              file=sys.stderr)
        return EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
