"""The ``visionkit`` command. It only calls the public API: load a predictor, stream a source, feed sinks.

Exit codes: 0 all inputs processed; 1 a runtime failure (an input, the weights or an output could not be
used; in a multi-input run the other inputs were still processed); 2 a bad command line (unknown option,
model or value); 130 interrupted by Ctrl-C (SIGINT), 143 stopped by SIGTERM, 129 by SIGHUP (a closed terminal):
the videos written so far are finalised, the other outputs flushed and the summary printed, after one
``visionkit: interrupted by SIGNAL`` line. Only the command installs signal handlers (``main`` here, and the entry
point in ``__main__`` before this module loads); the library leaves the process's own.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .errors import ModelNotFoundError, OptionError, SinkError, VisionkitError, one_line
from .interrupts import Interrupted, deferred_stop, hold_stop_signals, report_interrupted, stop_requested, stop_signals
from .io.progress import progress_bar
from .tasks.base import COUNT, FRACTION, OPTION_TYPES, OptionType

log = logging.getLogger("visionkit")

# Modules of optional features (extras), and how to install each. grad-cam and torchattacks install without their
# dependencies: grad-cam requires opencv-python-headless, which replaces OpenCV's windows (--show, the demo), and
# torchattacks pins requests 2.25, which downgrades supervision; visionkit needs neither.
_NO_DEPS = "pip install --no-deps 'grad-cam>=1.5' 'ttach>=0.0.3' 'torchattacks>=3.5'"
OPTIONAL_PACKAGES = {
    "pytorch_grad_cam": _NO_DEPS, "ttach": _NO_DEPS, "torchattacks": _NO_DEPS,
    "captum": "pip install 'visionkit[explain]'", "onnx2torch": "pip install 'visionkit[explain]'",
    "sklearn": "pip install 'visionkit[train]'", "matplotlib": "pip install 'visionkit[train]'",
    "supervision": "pip install 'visionkit[supervision]'", "ai_edge_litert": "pip install 'visionkit[tflite]'",
    "ray": "pip install 'visionkit[ray]'", "openvino": "pip install 'visionkit[openvino]'",
    "nncf": "pip install 'visionkit[openvino]'",
}
EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2  # interrupted: 128 + the signal (visionkit.interrupts)
EXIT_CLOSED_PIPE = 141  # 128 + SIGPIPE, what a shell reports for `yes | head` (io/console.py silence_closed_pipe)

SOURCE_HELP = "image, folder, quoted glob, video, camera index or stream URL (default: {}); see the list below"
VIDEO_TASKS = ("track", "action")  # no SOURCE: a clip (io/samples.py), since a still image has no motion
SAMPLES = {"image": "the built-in sample photo bus.jpg",
           "video": "a built-in 3 s clip panning across the sample photo bus.jpg, made once in the cache"}
RUNS_DIR = Path("runs")  # `--save` without DIR: runs/<task>/predict, predict2... as ultralytics numbers them


def _sources_epilog() -> str:
    from .io.sources import __doc__ as sources_doc  # imported here: OpenCV loads only once a command runs

    return "SOURCE can be:\n" + "\n".join(
        line for line in sources_doc.split("Accepted specs (also the CLI's SOURCE help):")[1].splitlines()
        if line.strip() and "Python API" not in line)


def _default_sample(task: str) -> str:
    from .io.samples import sample_clip, sample_image

    return str(sample_clip() if task in VIDEO_TASKS else sample_image())


def _typed(option: OptionType, parse: Callable[[str], Any]) -> Callable[[str], Any]:
    """An argparse type: the text parsed by ``parse``, then checked by the API's own declared type of the option
    (``visionkit.tasks.base.OPTION_TYPES``), so the CLI and the API refuse the same values in the same words."""

    def convert(text: str) -> Any:
        try:
            return option.check("", parse(text))
        except ValueError:  # not parsed, or OptionError (a ValueError): out of type or range
            raise argparse.ArgumentTypeError(f"must be {option.describe()}, got {text}") from None

    return convert


_fraction = _typed(FRACTION, float)
_positive_int = _typed(COUNT, int)
_class_ids = _typed(OPTION_TYPES["classes"],
                    lambda text: [int(c) if c.strip().lstrip("-").isdecimal() else c for c in text.split(",")])


def _attempts(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 (off) or a positive number of attempts, got {text}")
    return value


# The runtime names the CLI offers (visionkit.runtimes.RUNTIMES, listed here so `--help` imports nothing heavy).
RUNTIME_CHOICES = ("torch", "onnx", "openvino", "tflite", "opencv", "auto")
PRECISION_CHOICES = ("fp32", "fp16", "bf16", "int8")


def _add_runtime_options(g: Any) -> None:
    g.add_argument("--runtime", choices=RUNTIME_CHOICES,
                   help="the engine that runs the model: onnx / openvino run a PyTorch model (e.g. a YOLO .pt) "
                        "through its ONNX export, made once and cached (faster on a CPU); auto: the fastest "
                        "installed one, measured once (default: the model file's own runtime)")
    g.add_argument("--precision", choices=PRECISION_CHOICES,
                   help="number format: fp32 (the CPU default, also forced on OpenVINO), fp16 (CUDA), bf16 (CPUs "
                        "with BF16, CUDA), int8 (a quantized model only; see `visionkit export --precision int8`)")


def _add_model_file_arguments(p: argparse.ArgumentParser, files: str) -> None:
    """MODEL, --task and --weights of the commands that take one model of any task (export, bench)."""
    p.add_argument("model", metavar="MODEL", help=f"catalog name or model file {files}")
    p.add_argument("--task", default="detect", help="the model's task (default: detect)")
    p.add_argument("--weights", help="weights file for a catalog architecture")


def _add_model_options(p: argparse.ArgumentParser, task: str, streams: bool = True) -> None:
    """Model choice and placement; ``streams``: the command runs frames through ``stream()`` (--workers)."""
    g = p.add_argument_group("model")
    g.add_argument("--model", "-m", help=f"catalog name (see `visionkit models --task {task}`) or a model file "
                                         "(.pt, .onnx); default: the task's default model")
    g.add_argument("--weights", help="weights file for a catalog architecture (e.g. a torchvision .pth)")
    g.add_argument("--device", default="auto", help="auto (CUDA with fp16 when available, else CPU), cpu, cuda, "
                                                    "cuda:N (default: auto)")
    _add_runtime_options(g)
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
    _add_classes_option(g)


def _add_classes_option(g: Any) -> None:
    g.add_argument("--classes", type=_class_ids, metavar="IDS|NAMES",
                   help="keep only these classes, comma-separated ids or names of the model's (e.g. person,car or "
                        "0,2 for COCO YOLO)")


def _add_predict_options(p: argparse.ArgumentParser, task: str) -> None:
    """What ultralytics' predict mode offers under the same names: saving labels and crops into the run folder,
    reading every N-th video frame, drawing style. For every task command but action."""
    g = p.add_argument_group("run folder and drawing (as in `yolo predict`; files go into --save DIR, else a new "
                             "runs/TASK/predict folder)")
    g.add_argument("--save-txt", action="store_true", dest="save_txt",
                   help="write YOLO label files: labels/NAME.txt per image, labels/NAME_FRAME.txt per video frame "
                        "(class, normalised box or mask outline, keypoints; classify: score and class per line)")
    g.add_argument("--save-conf", action="store_true", dest="save_conf",
                   help="with --save-txt: add each object's score to its line")
    if task != "classify":
        g.add_argument("--save-crop", action="store_true", dest="save_crop",
                       help="save every detected object as crops/CLASS/NAME.jpg (the box plus a small margin)")
    g.add_argument("--vid-stride", type=_positive_int, default=1, dest="vid_stride", metavar="N",
                   help="videos and streams: run on every N-th frame; frame numbers and timestamps of the outputs "
                        "stay the source's (default: 1)")
    g.add_argument("--line-width", type=_positive_int, dest="line_width", metavar="PX",
                   help="box and skeleton line width in pixels; labels scale with it (default: from the image size)")
    g.add_argument("--hide-labels", action="store_true", dest="hide_labels",
                   help="draw no labels (boxes only; no legend on segmentation maps)")
    g.add_argument("--hide-conf", action="store_true", dest="hide_conf", help="draw labels without scores")


def _add_detector_option(g: Any) -> None:
    g.add_argument("--detector", metavar="NAME|FILE|none",
                   help="single-person pose models (MoveNet, BlazePose) run on this detector's person boxes; none = on "
                        "the whole image, one person (default: the best detector whose weights are here, e.g. yolov5n)")


def _add_pose_options(p: argparse.ArgumentParser) -> None:
    _add_detect_options(p)
    _add_detector_option(p.add_argument_group("pose"))


def _add_plots_option(p: argparse.ArgumentParser, what: str) -> None:
    p.add_argument("--plots", metavar="DIR", help=f"save {what} as PNG files in DIR (needs matplotlib)")


def _add_output_options(p: argparse.ArgumentParser, coco: bool = False, mot: bool = False) -> None:
    g = p.add_argument_group("output (never written over an input; an existing file is replaced only with "
                             "--exist-ok)")
    g.add_argument("--save", metavar="DIR", nargs="?", const=True,
                   help="write annotated images (same names; name_1.jpg... where the name is taken) and videos "
                        "(.mp4) into DIR; without DIR into a new folder runs/TASK/predict, predict2...")
    g.add_argument("--json", metavar="FILE", help="write one JSON line per image/frame to FILE (JSONL)")
    for kind, name in (("csv", "CSV"), ("parquet", "Parquet")):
        g.add_argument(f"--{kind}", metavar="FILE", help=f"write one {name} row per object to FILE (source, "
                       "frame_index, timestamp, box, score, class, track_id, keypoints)")
    if coco:
        g.add_argument("--coco", metavar="FILE", help="write COCO results JSON (boxes; masks, keypoints) to FILE and "
                       "its image ids and categories to FILE_STEM.images.json")
    if mot:
        g.add_argument("--mot", metavar="DIR|FILE.txt",
                       help="write MOTChallenge results (frame,id,x,y,w,h,conf,...): one DIR/NAME.txt per video or "
                            "image sequence, or FILE.txt when the run has a single sequence")
    _add_exist_ok(g)
    g.add_argument("--show", action="store_true", help="show annotated frames in a window (q or Esc quits)")
    g.add_argument("--quiet", "-q", action="store_true", help="no per-image lines and no progress bar")


def _add_exist_ok(g: Any) -> None:
    """--exist-ok on a parser or an argument group."""
    g.add_argument("--exist-ok", action="store_true", dest="exist_ok",
                   help="replace output files that already exist (never an input of the run)")


def _add_json_report(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", metavar="FILE", help="also write the scores as JSON to FILE")
    _add_exist_ok(p)


def _add_track_options(p: argparse.ArgumentParser) -> None:
    _add_detect_options(p)
    g = p.add_argument_group("tracking")
    g.add_argument("--tracker", default="bytetrack", metavar="bytetrack|botsort|FILE.yaml",
                   help="ultralytics tracker with its shipped settings, or a tracker YAML in ultralytics' format "
                        "(e.g. a copy of its bytetrack.yaml with other thresholds; tracker_type picks the tracker) "
                        "(default: bytetrack)")
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
    g.add_argument("--heatmap", metavar="PNG_OR_DIR",
                   help="heat map of where tracks stay (track-centre occupancy), drawn on saved/shown frames and "
                        "written as a PNG over the last frame; a folder: DIR/<stream>.png per video or stream")
    g = p.add_argument_group("several sources")
    g.add_argument("--batch-streams", action="store_true", dest="batch_streams",
                   help="several sources: one forward pass per step with a frame of every stream (batch = the "
                        "number of streams unless --batch is given; for a GPU) instead of one pass per frame, two "
                        "at once on a multi-core CPU (the default)")
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
    _add_classes_option(g)


def _add_action_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("action recognition")
    g.add_argument("--window", type=_positive_int, help="frames per clip (default: the model's clip length)")
    g.add_argument("--stride", type=_positive_int, help="frames between the starts of two clips (default: window/2)")
    g.add_argument("--topk", type=_positive_int, dest="top_k", help="how many actions to report (default: 5)")


TASK_OPTIONS = {"detect": _add_detect_options, "track": _add_track_task_options, "classify": _add_classify_options,
                "pose": _add_pose_options, "segment": _add_segment_options, "action": _add_action_options}
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
               "130 interrupted (Ctrl-C), 143 SIGTERM, 129 SIGHUP, 141 output pipe closed early (| head). Weights "
               "are looked up in $VISIONKIT_WEIGHTS, then ~/.cache/visionkit, then downloaded from the official URL.")
    parser.add_argument("--version", action="version", version=f"visionkit {_version()}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks for errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    epilog = _sources_epilog()
    for task, add_options in TASK_OPTIONS.items():
        p = sub.add_parser(task, help=TASK_HELP[task], description=TASK_HELP[task] + ".", epilog=epilog,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
        if task == "track":  # several sources: one model, one tracker per stream (MultiStream)
            p.add_argument("source", nargs="*", metavar="SOURCE", help=SOURCE_HELP.format(SAMPLES["video"]) +
                           "; several: tracked as separate streams through one model, one tracker each (--save "
                           "DIR: DIR/<stream>.mp4, --mot and --heatmap: a folder of <stream>.txt/.png, --json: "
                           "records with a stream field)")
        else:
            p.add_argument("source", nargs="?", metavar="SOURCE",
                           help=SOURCE_HELP.format(SAMPLES["video" if task in VIDEO_TASKS else "image"]))
        _add_model_options(p, task)
        add_options(p)
        _add_output_options(p, coco=task in ("detect", "pose", "segment"), mot=task == "track")
        if task != "action":
            _add_predict_options(p, task)
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
    p.add_argument("--info", metavar="NAME|FILE", help="summary of one model: layer table, parameters, GFLOPs at "
                                                       "--imgsz, input and output shapes, file size and sha256")
    p.add_argument("--imgsz", type=_positive_int, help="with --info: input side in pixels (default: the model's)")
    p.set_defaults(handler=_run_models)

    _add_train_parser(sub)
    _add_batch_parser(sub)

    p = sub.add_parser("export", help="export a model for another runtime: ONNX, OpenVINO IR, int8 with a guard",
                       description="Export a model (catalog name or model file) with its family's own exporter: "
                                   "dynamic input size, no NMS in the graph, class names in the metadata; ONNX is "
                                   "cached, so `--runtime onnx` reuses it. --precision int8 quantizes it (NNCF for "
                                   "OpenVINO, ONNX Runtime's static QDQ for ONNX) on --data images and hands it over "
                                   "only if its score on --val is within --max-drop points of fp32's (exit 1 "
                                   "otherwise, nothing written); the figures go into FILE.card.json.")
    _add_model_file_arguments(p, "(.pt)")
    p.add_argument("--format", choices=("onnx", "openvino"), default="onnx", help="onnx (default) or openvino (IR)")
    p.add_argument("--precision", choices=("fp32", "fp16", "int8"), help="fp32 (default), fp16 (OpenVINO IR "
                                                                         "weights) or int8 (needs --data and --val)")
    p.add_argument("--data", metavar="CALIB_DIR", help="int8: a folder of calibration images (up to 300 are used)")
    p.add_argument("--val", metavar="DATA", help="int8: validation data for the guard, as `visionkit eval` reads it "
                                                 "(detect: images/ + annotations/*.json; classify: labels.csv)")
    p.add_argument("--max-drop", type=float, default=1.0, metavar="POINTS",
                   help="int8: the most the score may fall below fp32's, in points (mAP50-95 or top-1; default 1.0)")
    p.add_argument("--output", "-o", metavar="FILE", help="write the export to FILE (its suffix the format's: .onnx or "
                   ".xml), or into a folder under its default name (default: visionkit's cache)")
    _add_trust_option(p)
    _add_exist_ok(p)
    p.set_defaults(handler=_run_export)

    p = sub.add_parser("bench", help="latency, throughput, memory and accuracy per runtime x precision, "
                       "next to the reference library", description="Time MODEL end to end (preprocess, inference, "
                       "postprocess; warm; the same images) on every runtime x precision that runs it here, and the "
                       "reference library's own path on the same model (ultralytics predict, torchvision forward, "
                       "onnxruntime direct) in alternating rounds; ratios visionkit/reference. Combinations that "
                       "cannot run here are skipped with a one-line note.")
    _add_model_file_arguments(p, "(.pt, .onnx, .xml)")
    p.add_argument("--runtime", default="all", help=f"all (default) or a list of {','.join(RUNTIME_CHOICES[:-1])}")
    p.add_argument("--precision", default="fp32", help="all or a list of fp32,fp16,bf16,int8 (default: fp32)")
    p.add_argument("--imgsz", type=_positive_int, help="input side in pixels (default: the model's)")
    p.add_argument("--batch", default="1", help="batch sizes for throughput, e.g. 1,8,32 (default: 1)")
    p.add_argument("--data", metavar="DIR", help="eval set for accuracy (detect: images/ + annotations/*.json; "
                   "classify: images/ + labels.csv); its first images are also the timed ones")
    p.add_argument("--runs", type=_positive_int, default=10, help="timed rounds per side (default: 10)")
    p.add_argument("--device", default="cpu", help="cpu (default), cuda or cuda:N")
    p.add_argument("--json", metavar="FILE", help="write the report as JSON")
    p.set_defaults(handler=_run_bench)

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
    _add_json_report(e)
    _add_plots_option(e, "precision-recall curves (pr_curve.png) and a confusion matrix (confusion_matrix.png)")
    e.set_defaults(handler=_run_eval_detect, task="detect")
    c = esub.add_parser("classify", help="top-1 / top-5 accuracy on a folder of images and a labels CSV",
                        description="Top-1 and top-5 accuracy. The labels CSV has a header with `file` and "
                                    "`class_index` columns (ImageNet-1k indices for ImageNet models).")
    c.add_argument("--images", required=True, help="folder with the labelled images")
    c.add_argument("--labels", required=True, help="CSV with file,class_index columns")
    _add_model_options(c, "classify", streams=False)
    c.add_argument("--imgsz", type=_positive_int, help="inference size in pixels (default: the model's)")
    _add_json_report(c)
    _add_plots_option(c, "a confusion matrix of the classes involved (confusion_matrix.png)")
    c.set_defaults(handler=_run_eval_classify, task="classify")
    k = esub.add_parser("pose", help="keypoint OKS-AP (pycocotools) and PCK on COCO person keypoints",
                        description="Keypoint OKS mAP with pycocotools. A single-person model (MoveNet) runs on the "
                                    "person boxes of --detector (top-down) and also reports PCK@0.1/0.2 on "
                                    "ground-truth boxes (normalised by the box's longer side).")
    k.add_argument("--images", required=True, help="folder with the annotated images")
    k.add_argument("--annotations", required=True, help="COCO person keypoints JSON")
    _add_detector_option(k)
    _add_model_options(k, "pose", streams=False)
    _add_detect_options(k)
    _add_json_report(k)
    _add_plots_option(k, "the OKS precision-recall curve (pr_curve.png)")
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
    _add_json_report(g)
    _add_plots_option(g, "the pixel confusion matrix (confusion_matrix.png)")
    g.set_defaults(handler=_run_eval_segment, task="segment")
    t = esub.add_parser("track", help="HOTA, MOTA, IDF1 (TrackEval) on MOTChallenge-format sequences",
                        description="Track each MOTChallenge sequence folder (img1/, gt/gt.txt, seqinfo.ini) and "
                                    "score it with TrackEval: HOTA, MOTA, IDF1. Only frames present in img1/ "
                                    "are scored.")
    t.add_argument("--gt", nargs="+", required=True, metavar="SEQ_DIR", help="sequence folder(s)")
    _add_model_options(t, "detect")
    _add_track_options(t)
    _add_json_report(t)
    t.set_defaults(handler=_run_eval_track, task="track")

    _add_explain_parsers(sub)
    return parser


EXPLAIN_TASKS = ("classify", "detect", "pose", "segment")


def _add_explain_parsers(sub: Any) -> None:
    """`explain` and `attack`: the limits of CNNs made visible (needs the explain extra)."""
    x = sub.add_parser("explain", help="heat maps of why a model predicted what it did (Grad-CAM, occlusion, ...)",
                       description="One heat map per prediction (the top class, each box, or each class of a "
                                   "segmentation mask), saved as an overlay "
                                   "PNG and, with --json, as 8-bit arrays. Gradient methods (gradcam, gradcam++, "
                                   "scorecam, saliency) need a PyTorch model or an ONNX model onnx2torch converts "
                                   "(yolov5n); occlusion, rise and eigencam also run on any ONNX model.")
    x.add_argument("task", choices=EXPLAIN_TASKS, metavar="TASK",
                   help="classify, detect, pose or segment")
    x.add_argument("source", metavar="SOURCE", help="an image file")
    x.add_argument("--method", choices=("gradcam", "gradcam++", "hirescam", "layercam", "eigencam", "scorecam",
                                        "saliency", "occlusion", "rise"),
                   help="explanation method (default: gradcam for classify, hirescam for detect: Grad-CAM's "
                        "pooled gradients light up every object of a box's class)")
    x.add_argument("--target", help="class name or id to explain, or a box x1,y1,x2,y2 (detect); default: the top "
                                    "class / every box")
    x.add_argument("--layer", action="append", dest="layers", metavar="NAME",
                   help="CAM layer by module name (ONNX EigenCAM: tensor name); repeatable; default: the last "
                        "feature maps before the head")
    x.add_argument("--max-targets", type=_positive_int, default=10, dest="max_targets",
                   help="explain at most N boxes (default: 10)")
    _add_model_options(x, "TASK", streams=False)
    x.add_argument("--conf", type=_fraction, help="detect, pose: minimum score of an explained box")
    _add_detector_option(x)
    x.add_argument("--save", metavar="DIR", default="explain", help="folder for the overlay PNGs (default: explain)")
    x.add_argument("--json", metavar="FILE", help="also write the explanation (maps as 8-bit arrays) to FILE")
    x.set_defaults(handler=_run_explain)

    a = sub.add_parser("attack", help="how easily is a model fooled: FGSM/PGD score vs eps, curve and triptychs",
                       description="Adversarial perturbations on the 0..255 image the user sees, scored by the "
                                   "model's own pipeline: top-1 (classify: DATA has labels.csv and images/), COCO "
                                   "mAP50-95 (detect: DATA has images/ and annotations/instances*.json; a PGD "
                                   "vanishing attack on the detection scores), OKS mAP (pose: annotations/"
                                   "person_keypoints*.json; a PGD moving the keypoints) or mIoU (segment: CamVid "
                                   "images/ and labels/; a PGD on the per-pixel logits). --targeted CLASS aims "
                                   "classify, detect (objects relabelled) and segment (pixels) attacks at a class "
                                   "and adds how often they reached it. Prints a table, writes report.json, "
                                   "curve.png and triptychs (original | amplified perturbation | adversarial).")
    a.add_argument("task", choices=EXPLAIN_TASKS, metavar="TASK", help="classify, detect, pose or segment")
    a.add_argument("data", metavar="DATA", help="labelled folder (see above)")
    a.add_argument("--method", default="fgsm", choices=("fgsm", "pgd"), help="attack (default: fgsm)")
    a.add_argument("--eps", default="1/255,2/255,4/255,8/255",
                   help="L-inf sizes on the 0..1 image, comma-separated; 0 is always added (default: "
                        "1/255,2/255,4/255,8/255)")
    a.add_argument("--steps", type=_positive_int, default=10, help="PGD iterations (default: 10)")
    a.add_argument("--targeted", metavar="CLASS",
                   help="aim at this class (name or id of the model's classes): classify, detect (the clean "
                        "detections relabelled as it) or segment (every pixel pushed to it); the table adds how "
                        "often it was reached")
    a.add_argument("--transforms", default="",
                   help="robustness view (a diagnostic, not a defence): input transforms in front of the model, "
                        "comma-separated, e.g. jpeg:75,blur:3,resize:0.5")
    a.add_argument("--limit", type=_positive_int, help="attack only the first N images")
    a.add_argument("--triptychs", type=int, default=3, metavar="N", help="triptychs to save (default: 3)")
    _add_model_options(a, "TASK", streams=False)
    _add_detector_option(a)
    a.add_argument("--save", metavar="DIR", default="attack", help="folder for report.json, curve.png, triptychs "
                                                                   "(default: attack)")
    a.add_argument("--json", metavar="FILE", help="also write the report (report.json's content) to FILE")
    a.set_defaults(handler=_run_attack)


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
    source = getattr(args, "source", None)
    if getattr(args, "gt", None) or isinstance(source, list):  # a list: several streams (MultiStream)
        return None
    if source is None or is_live(source):
        return 1
    is_glob = any(c in source for c in "*?[")
    return 1 if is_single_image(source) and not is_glob else None


def _composite_options(args: argparse.Namespace) -> dict[str, Any]:
    """The command-line settings of a task's composite (``visionkit.composites.COMPOSITES``) beyond the model's."""
    if args.task == "track":
        return {"tracker": args.tracker,
                "tracker_params": {"track_buffer": args.track_buffer} if args.track_buffer else {}}
    if args.task == "pose":
        return {"detector": args.detector}
    return {}


def _load(args: argparse.Namespace, evaluate: bool = False) -> Any:
    from . import Predictor
    from .composites import composite_for

    common = dict(weights=args.weights, device=args.device, runtime=args.runtime, precision=args.precision,
                  batch_size=args.batch,
                  workers=_workers(args), trust_weights=args.trust_weights, **_predictor_options(args))
    factory = composite_for(args.task)
    if factory is not None and not (evaluate and args.task == "pose"):  # eval pose pairs the models itself
        return factory(args.model, **common, **_composite_options(args))
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
    from .io.sources import open_source
    from .io.threads import BackgroundWorker
    from .results import Detections

    predictor = _load(args)
    stream_options = _tracker_state(args, predictor)
    counting = _Counting.from_args(args)  # a bad --line or --zone is found before any output is opened
    if args.source is None:
        args.source = _default_sample(args.task)
        if not args.quiet:
            print(f"no SOURCE given: running on the built-in sample {args.source}", file=sys.stderr)
    errors: list[str] = []

    def on_error(e: VisionkitError) -> None:
        errors.append(str(e))
        tqdm.write(f"visionkit: error: {e}", file=sys.stderr)

    source = open_source(args.source, on_error=on_error, reconnect=args.reconnect,
                         vid_stride=getattr(args, "vid_stride", 1))
    predictor.warmup()  # load weights before opening outputs: a bad model must not leave empty files behind
    guard = _output_guard(args, source.files())
    sinks = _open_sinks(args, predictor, guard)

    def drop(sink: Any, error: SinkError) -> None:
        """A sink that cannot write (disk full, permissions) is reported, closed and dropped; the others go on."""
        sinks.remove(sink)
        _close_quietly(sink)
        on_error(error)

    window = _Window() if args.show else None
    if counting is not None:
        counting.open(guard)
    style = _draw_style(args)
    trails = TraceAnnotator(args.trails, style["line_width"]) if getattr(args, "trails", 0) > 0 else None
    trails_source = None

    total = len(source)  # 0: unknown (a live stream); a bar on a terminal, plain lines elsewhere (io/progress.py)
    bar = progress_bar(total, args.task, "frame", disable=args.quiet or total == 1)
    draw = bool(window or args.save)

    def emit(frame: Any, result: Any) -> Any:
        annotated = result.plot(frame.image, **style) if draw else None
        if trails is not None and annotated is not None:
            nonlocal trails_source
            if frame.is_video and frame.source != trails_source:
                trails.reset()
            trails_source = frame.source
            trails.annotate(annotated, result)
        if counting is not None:
            counting(frame, result, annotated)
        for sink in list(sinks):
            try:
                sink.write(frame, result, annotated)
            except SinkError as e:
                drop(sink, e)
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
            for sink in list(sinks):
                try:
                    sink.close()
                except SinkError as e:
                    sinks.remove(sink)
                    on_error(e)
            if window:
                window.close()
            if getattr(args, "save_state", None):
                stream_options["tracker"].save_state(args.save_state)
            if counting is not None:
                counting.close()
    stop = stop or stop_requested()
    elapsed = time.perf_counter() - start
    code = report_interrupted(stop) if stop is not None else EXIT_FAILED if errors or frames == 0 else EXIT_OK
    _summary(args, frames, objects, speed_sum, elapsed, errors, sinks)
    if counting is not None and not args.quiet:
        print(counting.summary(), file=sys.stderr)
    return code


def _output_guard(args: argparse.Namespace, inputs: Any) -> Any:
    """The one ``OutputGuard`` of a run: no output over an input (``inputs``, listed lazily), an existing file
    replaced only with --exist-ok."""
    from .io.sinks import OutputGuard

    return OutputGuard(inputs, exist_ok=args.exist_ok)


def _save_dir(args: argparse.Namespace) -> Any:
    """--save DIR, or (--save alone, or only --save-txt / --save-crop) a new numbered run folder
    ``runs/TASK/predict``, ``predict2``..."""
    from .io.sinks import new_run_dir

    return new_run_dir(RUNS_DIR / args.task) if args.save in (True, None) else args.save


def _draw_style(args: argparse.Namespace) -> dict[str, Any]:
    """--line-width, --hide-labels, --hide-conf as ``visionkit.draw.annotate``'s style options."""
    return {"line_width": getattr(args, "line_width", None), "labels": not getattr(args, "hide_labels", False),
            "conf": not getattr(args, "hide_conf", False)}


def _folder_openers(args: argparse.Namespace, guard: Any) -> list[Callable[[], Any]]:
    """Openers of the run folder's sinks (annotated media, labels/, crops/), which share one folder made on first
    use; put last, so that a refused file among the other outputs leaves no empty run folder behind."""
    from .io.labels import CropSink, LabelSink
    from .io.sinks import AnnotatedSink

    if getattr(args, "save_conf", False) and not args.save_txt:
        raise OptionError("--save-conf adds scores to the label files of --save-txt; give --save-txt too")
    folder: list[Path] = []

    def run_dir() -> Path:
        if not folder:
            folder.append(Path(_save_dir(args)))
        return folder[0]

    openers: list[Callable[[], Any]] = []
    if args.save:
        openers.append(lambda: AnnotatedSink(run_dir(), guard))
    if getattr(args, "save_txt", False):
        openers.append(lambda: LabelSink(run_dir() / "labels", guard, save_conf=args.save_conf))
    if getattr(args, "save_crop", False):
        openers.append(lambda: CropSink(run_dir() / "crops", guard))
    return openers


def _open_sinks(args: argparse.Namespace, predictor: Any, guard: Any) -> list[Any]:
    """The outputs asked for, all under ``guard``. If one cannot be opened, those opened before it are closed."""
    from .heatmap import HeatmapSink
    from .io.coco_sink import CocoResultsSink
    from .io.sinks import JsonlSink, MotSink

    model = predictor.entry.name
    openers = [*_table_sinks(args, model, guard)]
    if args.json:
        openers.append(lambda: JsonlSink(args.json, guard, task=args.task, model=model))
    if getattr(args, "coco", None):
        openers.append(lambda: CocoResultsSink(args.coco, guard, class_names=predictor.class_names))
    if getattr(args, "mot", None):
        openers.append(lambda: MotSink(args.mot, guard))
    if getattr(args, "heatmap", None):  # before --save: it draws on the frames that sink writes
        openers.append(lambda: HeatmapSink(args.heatmap, guard))
    openers += _folder_openers(args, guard)
    sinks: list[Any] = []
    try:
        for open_sink in openers:
            sinks.append(open_sink())
    except BaseException:
        for sink in sinks:
            _close_quietly(sink)
        raise
    return sinks


def _table_sinks(args: argparse.Namespace, model: str, guard: Any) -> list[Callable[[], Any]]:
    """Openers of the --csv / --parquet tables (one row per object)."""
    from .io.table_sinks import CsvSink, ParquetSink

    return [lambda path=path, cls=cls: cls(path, guard, task=args.task, model=model)
            for path, cls in ((args.csv, CsvSink), (args.parquet, ParquetSink)) if path]


def _close_quietly(sink: Any) -> None:
    """Close a sink on the way out of an error: that error is the one to report, not a second one."""
    with contextlib.suppress(SinkError):
        sink.close()


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

    def open(self, guard: Any) -> None:
        from .io.sinks import RecordSink

        if self.events_path:
            self.events = RecordSink(self.events_path, guard)

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
    if args.batch_streams:
        raise OptionError("--batch-streams batches several sources: give two or more")
    args.source = sources[0] if sources else None
    return _run_task(args)


def _run_multistream(args: argparse.Namespace, sources: list[str]) -> int:
    from dataclasses import replace

    from .composites.multistream import MultiStream
    from .heatmap import HeatmapSink
    from .io.images import IMAGE_SUFFIXES
    from .io.sinks import MotSink, RecordSink
    from .io.sources import is_live

    if args.resume_state or args.save_state:
        raise OptionError("--resume-state and --save-state take one source (a tracker state is one stream's)")
    if args.show:
        raise OptionError("--show takes one source; use --save DIR for several")
    if args.heatmap and Path(args.heatmap).suffix.lower() in IMAGE_SUFFIXES:
        raise OptionError("--heatmap with several streams takes a folder (DIR/<stream>.png), not one image file")
    if args.batch_streams and args.batch == 1:  # one forward pass per step for all the streams
        args.batch = len(sources)
    predictor = _load(args)
    counting = _Counting.from_args(args)
    errors: list[str] = []

    def on_error(name: str, e: VisionkitError) -> None:
        errors.append(str(e))
        print(f"visionkit: error: {e}", file=sys.stderr)

    predictor.warmup()  # load weights before opening sources and outputs: a bad model leaves nothing behind
    guard = _output_guard(args, [Path(s).expanduser() for s in sources if not is_live(s)])
    sinks: list[Any] = []
    records = None
    frames = objects = 0
    start = time.perf_counter()
    stop: KeyboardInterrupt | None = None
    streams = MultiStream(sources, predictor, on_error=on_error, reconnect=args.reconnect, vid_stride=args.vid_stride)
    style = _draw_style(args)
    try:
        for open_sink in _folder_openers(args, guard):  # one by one: those opened are closed if one fails
            sinks.append(open_sink())
        records = RecordSink(args.json, guard, task=args.task, model=predictor.entry.name) if args.json else None
        if args.mot:  # a folder: <stream>.txt per stream
            sinks.append(MotSink(args.mot, guard))
        sinks += [open_table() for open_table in _table_sinks(args, predictor.entry.name, guard)]
        if args.heatmap:  # first: it draws on the frames the annotated sink writes
            sinks.insert(0, HeatmapSink(args.heatmap, guard))
        if counting is not None:
            counting.open(guard)
        for item in streams:
            frame = replace(item.frame, source=item.stream, is_video=True)  # outputs by stream: <stream>.mp4
            result = item.result
            annotated = result.plot(frame.image, **style) if args.save else None
            if counting is not None:
                counting(frame, result, annotated)
            for sink in sinks:
                sink.write(frame, result, annotated)
            if records is not None:
                record = {"stream": item.stream, **result.to_dict(), "frame_index": frame.index}
                if frame.timestamp is not None:
                    record["timestamp"] = round(frame.timestamp, 4)
                records.write_records(item.frame, [record])
            frames += 1
            objects += len(result)
    except KeyboardInterrupt as e:
        stop = e
    finally:
        hold_stop_signals()
        streams.close()
        for sink in [*sinks, records, counting]:
            if sink is not None:
                sink.close()
    stop = stop or stop_requested()
    elapsed = time.perf_counter() - start
    outputs = [str(p) for p in ([sink.location for sink in sinks] + [args.json, args.events]) if p]
    print(f"track: {len(sources)} stream(s), {frames} frame(s), {objects} object(s), {len(errors)} error(s); "
          f"{frames / elapsed if elapsed > 0 else 0:.1f} FPS overall" + (f"; saved to {', '.join(outputs)}"
                                                                         if outputs else ""), file=sys.stderr)
    if counting is not None and not args.quiet:
        print(counting.summary(), file=sys.stderr)
    return report_interrupted(stop) if stop is not None else EXIT_FAILED if errors or frames == 0 else EXIT_OK


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
    """The closing line; ``sinks``: the outputs still written at the end (not those dropped after an error)."""
    per = [s / frames for s in speed_sum] if frames else [0.0, 0.0, 0.0]
    outputs = [str(sink.location) for sink in sinks]
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


def _add_batch_parser(sub: Any) -> None:
    p = sub.add_parser("batch", help="run a task over a whole collection, here or on a Ray cluster, into Parquet",
                       description="Run detect, track or classify over every image and video of INPUT (a folder, a "
                                   "quoted glob, or a manifest: .txt one path a line, .csv/.parquet with a 'path' "
                                   "column) into DIR: frames/, objects/ and errors/ tables, Hive-partitioned by "
                                   "task=/model=, committed block by block (schema: visionkit/batch/schema.py; "
                                   "read back with "
                                   "visionkit.read_results(DIR)). A rerun skips inputs already committed.",
                       epilog="exit codes: 0 ok, 1 some inputs failed (see DIR/errors; the others were processed), "
                              "2 bad command line, 130 interrupted (a rerun continues).")
    p.add_argument("batch_task", metavar="TASK", choices=("detect", "track", "classify"), help="detect, track or "
                                                                                              "classify")
    p.add_argument("input", metavar="INPUT", help="folder, quoted glob or manifest (.txt, .csv, .parquet), local or "
                                                  "a URI pyarrow opens (s3://, gs://)")
    p.add_argument("--out", required=True, metavar="DIR", help="results folder, local or a URI such as "
                                                               "s3://bucket/results (reused by a rerun to resume)")
    p.add_argument("--model", "-m", help="catalog name or model file (default: the task's default model)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N in each worker (default: auto)")
    p.add_argument("--engine", choices=("local", "ray"), default="local",
                   help="local: this process (default); ray: Ray Data actors (pip install 'visionkit[ray]')")
    p.add_argument("--address", help="with --engine ray: auto (a running cluster) or ray://HOST:PORT "
                                     "(default: a running cluster, else a new local one)")
    p.add_argument("--format", choices=("parquet", "jsonl"), default="parquet", help="table files (default: parquet)")
    p.add_argument("--batch-size", type=_positive_int, default=8, dest="batch_size",
                   help="images per block: one forward pass and one committed file set (default: 8)")
    p.add_argument("--concurrency", type=_positive_int, default=1, help="Ray actors, each with its own model "
                                                                        "(default: 1)")
    p.add_argument("--num-cpus-per-worker", type=_non_negative_float, default=1.0, dest="num_cpus_per_worker",
                   help="CPUs each Ray actor reserves (default: 1)")
    p.add_argument("--num-gpus-per-worker", type=_non_negative_float, default=0.0, dest="num_gpus_per_worker",
                   help="GPUs each Ray actor reserves, fractions allowed (default: 0)")
    p.set_defaults(handler=_run_batch)


def _non_negative_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value >= 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a finite number >= 0, got {text}")
    return value


def _run_batch(args: argparse.Namespace) -> int:
    from .batch import run_batch

    summary = run_batch(args.batch_task, args.input, args.out, args.model, engine=args.engine, fmt=args.format,
                        batch_size=args.batch_size, concurrency=args.concurrency, address=args.address,
                        num_cpus_per_worker=args.num_cpus_per_worker, num_gpus_per_worker=args.num_gpus_per_worker,
                        device=args.device)
    if summary.errors:
        print(f"visionkit: error: {summary.errors} input(s) could not be processed, the others were: reasons in "
              f"{summary.out}/errors (visionkit.batch.read_errors)", file=sys.stderr)
    print(summary.line())
    return EXIT_FAILED if summary.errors else EXIT_OK


def _add_train_parser(sub: Any) -> None:
    p = sub.add_parser("train", help="train a model on your data; the run folder is then a visionkit model",
                       description="Train a model. classify: ImageFolder data (DIR/train, DIR/val, optional DIR/test "
                                   "held back; one folder per class) or a labels CSV (file,class_index); "
                                   "architectures lenet5, mlp or any torchvision classifier. The run folder (--out) "
                                   "holds best.pth and last.pth (state dicts), metrics.csv, curves.png, "
                                   "confusion_matrix.png and card.json; use it as --model RUN_DIR.",
                       epilog="Ctrl-C stops after the current batch and saves last.pth; --resume continues exactly "
                              "(same batches, optimizer, scheduler and random state).")
    p.add_argument("train_task", metavar="TASK", choices=("classify", "detect", "pose", "segment"),
                   help="classify (visionkit's loop), or detect, pose, segment (instances) through ultralytics' "
                        "trainer from a YOLO .yaml (random init) or .pt (fine-tune); segment with a torchvision "
                        "architecture (lraspp_mobilenet_v3_large, ...) is semantic, visionkit's loop on images/ + "
                        "labels/ masks")
    p.add_argument("--data", help="dataset folder or labels CSV (with --resume: default the run's)")
    p.add_argument("--model", "-m", help="architecture: lenet5, mlp, resnet18, mobilenet_v3_large, ... (see "
                                         "`visionkit models --task classify`)")
    p.add_argument("--epochs", type=_positive_int, help="passes over the training set (default: 10)")
    p.add_argument("--batch", type=_positive_int, help="images per optimizer step (default: 32)")
    p.add_argument("--imgsz", type=_positive_int, help="input side in pixels (default: the architecture's)")
    p.add_argument("--lr", type=float, help="AdamW learning rate, cosine-annealed to 0 (default: 0.001)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N (default: auto)")
    p.add_argument("--out", metavar="DIR", help="run folder (default: runs/train/TASK-MODEL, numbered if taken)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its last.pth")
    p.add_argument("--patience", type=_positive_int,
                   help="stop after N epochs without a better val top-1 (semantic segment: val mIoU)")
    p.add_argument("--seed", type=int, help="seed of the weights init, batch order and augmentation (default: 0)")
    p.set_defaults(handler=_run_train)


def _run_train(args: argparse.Namespace) -> int:
    from .training import TrainingInterrupted, train

    try:
        run = train(args.train_task, args.data, args.model, epochs=args.epochs, batch=args.batch, imgsz=args.imgsz,
                    lr=args.lr, device=args.device, out=args.out, resume=args.resume, patience=args.patience,
                    seed=args.seed)
    except TrainingInterrupted as e:
        print(f"visionkit: interrupted: {e}", file=sys.stderr)
        cause = e.__cause__ or e.__context__  # the stop signal the training loop caught: 128 + its number
        return cause.exit_code if isinstance(cause, Interrupted) else Interrupted().exit_code
    m = run.card.metrics
    if "val_miou" in m:
        print(f"{run.card.architecture}: val mIoU {m['val_miou']:.4f} (pixel accuracy {m['val_pixel_acc']:.4f}, "
              f"{m['val_images']} held-back pair(s)), best epoch {m['best_epoch']}; run saved to {run.run_dir} "
              f"(use it as --model {run.run_dir})")
        return EXIT_OK
    if run.card.task != "classify":
        best = run.run_dir / run.card.weights["best"]
        scores = "  ".join(f"{k} {v:.4f}" for k, v in m.items() if k.startswith("metrics/"))
        print(f"{run.card.architecture}: {m.get('epochs_done', 0)} epoch(s), last epoch {scores}; run saved to "
              f"{run.run_dir} (use it as --model {best})")
        return EXIT_OK
    split = m["scored_split"]
    print(f"{run.card.architecture}: {split} top-1 {m[f'{split}_top1']:.4f} ({m[f'{split}_correct']}/"
          f"{m[f'{split}_images']}), best epoch {m['best_epoch']} (val top-1 {m['val_top1']:.4f}); run saved to "
          f"{run.run_dir} (use it as --model {run.run_dir})")
    return EXIT_OK


def _run_export(args: argparse.Namespace) -> int:
    from .export import export

    _claim_output(args, args.output, args.model, args.weights)
    result = export(args.model, args.task, format=args.format, precision=args.precision, data=args.data,
                    val=args.val, max_drop=args.max_drop, weights=args.weights, trust_weights=args.trust_weights,
                    output=args.output)
    if result.drop_points is not None:
        print(f"int8 {result.metric} {result.int8_score:.3f}, fp32 {result.fp32_score:.3f}: "
              f"{result.drop_points:.1f} points lower (limit {args.max_drop:g}); card: {result.card}", file=sys.stderr)
    print(result.path)
    return EXIT_OK


def _run_bench(args: argparse.Namespace) -> int:
    from .bench import parse_batches, parse_list, render_table, run_bench

    report = run_bench(args.model, task=args.task, weights=args.weights,
                       runtimes=parse_list(args.runtime, RUNTIME_CHOICES[:-1], "--runtime"),
                       precisions=parse_list(args.precision, PRECISION_CHOICES, "--precision"), imgsz=args.imgsz,
                       batches=parse_batches(args.batch), data=args.data, runs=args.runs, device=args.device,
                       progress=lambda line: print(line, file=sys.stderr, flush=True) if sys.stderr.isatty() else None)
    print(render_table(report))  # the skipped combinations are listed under the table
    _write_json(args.json, report.to_dict())
    return EXIT_OK


def _run_models(args: argparse.Namespace) -> int:
    from . import weights
    from .catalog import list_models

    if args.info:
        from .summary import summarize

        print(summarize(args.info, task=args.task, imgsz=args.imgsz).render())
        return EXIT_OK
    entries = list_models("detect" if args.task == "track" else args.task)  # tracking runs the detectors
    if args.task and not entries:
        raise ModelNotFoundError(f"no models for task {args.task!r}")
    trackers = []
    if args.task == "track":
        from .composites.track import tracker_catalog

        trackers = tracker_catalog()
    if args.json:
        print(json.dumps([e.to_dict() for e in entries] + trackers, indent=2))
        return EXIT_OK
    rows = [("NAME", "TASK", "BACKEND", "INPUT", "WEIGHTS", "PUBLISHED METRIC")]
    for e in entries:
        rows.append((e.name + (" *" if e.default else ""), e.task, e.backend, str(e.input_size or "-"),
                     weights.availability(e), _metric(e)))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip())
    if trackers:
        width = max(len(t["name"]) for t in trackers) + 2
        print(f"\n{'TRACKER'.ljust(width)}  WHAT IT IS (`track --tracker NAME`; settings: `--json`)")
        for t in trackers:
            print(f"{(t['name'] + (' *' if t['default'] else '')).ljust(width)}  {t['description']}")
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
    _claim_output(args, args.json, *data)
    predictor = _load(args, evaluate=True)
    _print_settings(predictor, _predictor_options(args))
    predictor.warmup()
    with progress_bar(None, "eval", "image") as bar:
        return predictor, evaluate(predictor, *data, progress=bar.update)


def _print_settings(predictor: Any, given: dict[str, Any]) -> None:
    """One line with the options a model is scored with and where they came from, so a score can be reproduced."""
    entry = predictor.entry
    origin = (f"the catalog's eval settings for {entry.name}" if entry.eval else
              f"the {entry.backend} family's eval defaults" if predictor.backend_class.EVAL_OPTIONS else
              f"{entry.name}'s defaults")
    if given:
        origin += f", overridden: {', '.join(sorted(given))}"
    settings = ", ".join(f"{k} {v}" for k, v in predictor.options.items() if v is not None)
    print(f"{entry.name}: scoring with {settings} ({origin})")


def _run_eval_detect(args: argparse.Namespace) -> int:
    from .eval import plots, report
    from .eval.coco import evaluate_detector

    predictor, score = _scored(args, evaluate_detector, args.images, args.annotations)
    code = _report(args, predictor, score, f"mAP50-95 {score.map:.3f}  mAP50 {score.map50:.3f}  mAP75 "
                                           f"{score.map75:.3f}  ({score.images} images, {score.detections} detections)")
    if score.evaluator is not None:
        print(report.detection_table(report.coco_per_class(score.evaluator)))
        if args.plots:
            title = f"{predictor.entry.name}, {score.images} images"
            plots.pr_curves(score.evaluator, Path(args.plots) / "pr_curve.png", f"{title}: box PR at IoU 0.5")
            matrix, names = report.detection_confusion(score.evaluator, score.rows)
            plots.confusion_matrix(matrix, names, Path(args.plots) / "confusion_matrix.png",
                                   f"{title}: conf 0.25, IoU 0.45")
    return code


def _run_eval_classify(args: argparse.Namespace) -> int:
    from .eval import plots, report
    from .eval.classify import evaluate_classifier

    predictor, score = _scored(args, evaluate_classifier, args.images, args.labels)
    code = _report(args, predictor, score, f"top-1 {score.top1_rate:.3f} ({score.top1}/{score.images})  "
                                           f"top-5 {score.top5_rate:.3f} ({score.top5}/{score.images})")
    print(report.classification_tables(score.pairs, predictor.class_names))
    if args.plots:
        plots.classification_confusion(score.pairs, predictor.class_names, Path(args.plots) / "confusion_matrix.png",
                                       f"{predictor.entry.name}, {score.images} images: top-1")
    return code


def _run_eval_pose(args: argparse.Namespace) -> int:
    from . import Predictor
    from .composites.person_pose import NO_DETECTOR, PersonPose, default_person_detector
    from .eval.keypoints import evaluate_keypoints, evaluate_pck

    _claim_output(args, args.json, args.images, args.annotations)
    pose = _load(args, evaluate=True)
    _print_settings(pose, _predictor_options(args))
    scores: dict[str, Any] = {"model": pose.entry.name}
    scorer: Any = pose
    # A single-person model: top-down on detected people, unless --detector none (the whole image, one pose).
    if pose.runs_in_boxes and args.detector != NO_DETECTOR:
        # COCO scores at most 20 people per image, so more boxes change nothing but the run time.
        people_only = {"classes": [0], "max_det": 20}
        persons = Predictor("detect", args.detector or default_person_detector(), evaluate=True, device=args.device,
                            trust_weights=args.trust_weights, **people_only)
        scorer = PersonPose(persons, pose)
        _print_settings(persons, people_only)
        scores["detector"] = persons.entry.name
        pck = evaluate_pck(pose, args.images, args.annotations)
        scores["pck"] = pck.to_dict()
        print(f"{pose.entry.name} on ground-truth boxes: " + "  ".join(
            f"PCK@{a} {v:.3f}" for a, v in pck.pck.items()) + f"  ({pck.persons} persons)")
    with progress_bar(None, "eval", "image") as bar:
        score = evaluate_keypoints(scorer, args.images, args.annotations, progress=bar.update)
    scores.update(score.to_dict())
    print(f"{pose.entry.name}: OKS mAP {score.map:.3f}  mAP50 {score.map50:.3f}  mAP75 {score.map75:.3f}  "
          f"({score.images} images)")
    if score.evaluator is not None:
        from .eval import plots, report

        print(report.detection_table(report.coco_per_class(score.evaluator)))
        if args.plots:
            plots.pr_curves(score.evaluator, Path(args.plots) / "pr_curve.png",
                            f"{pose.entry.name}, {score.images} images: keypoint PR at OKS 0.5")
    _write_json(args.json, scores)  # (``report`` is the tables module here)
    return EXIT_OK


def _run_eval_segment(args: argparse.Namespace) -> int:
    from .eval.segmentation import evaluate_camvid, evaluate_coco_voc

    if args.annotations and not args.images:
        raise OptionError("--annotations needs --images (the folder of the annotated COCO images)")
    if args.camvid:
        predictor, score = _scored(args, evaluate_camvid, args.camvid)
    else:
        predictor, score = _scored(args, evaluate_coco_voc, args.images, args.annotations)
    from .eval import plots, report

    code = _report(args, predictor, score, f"mIoU {score.miou:.3f}  pixel acc {score.pixel_acc:.3f}  "
                                           f"({score.images} images)")
    print(report.segmentation_table(score.confusion, score.class_names, score.iou))
    if args.plots:
        plots.confusion_matrix(score.confusion, list(score.class_names), Path(args.plots) / "confusion_matrix.png",
                               f"{predictor.entry.name}, {score.images} images: pixels")
    return code


def _report(args: argparse.Namespace, predictor: Any, score: Any, line: str) -> int:
    """The score line on stdout, and with --json the model name and every score in a JSON file."""
    print(f"{predictor.entry.name}: {line}")
    _write_json(args.json, {"model": predictor.entry.name, **score.to_dict()})
    return EXIT_OK


def _claim_output(args: argparse.Namespace, output: str | None, *inputs: str | None) -> None:
    """Check an output file before the work that fills it (an evaluation, an export): never over one of
    ``inputs`` (files or folders), an existing file only with --exist-ok; an OutputConflictError if not."""
    if output:
        from .io.sinks import OutputGuard

        OutputGuard([p for p in inputs if p], exist_ok=args.exist_ok).claim(output)


def _write_json(path: str | None, data: dict[str, Any]) -> None:
    if path:
        from .io.sinks import write_json

        write_json(path, data)


def _run_eval_track(args: argparse.Namespace) -> int:
    from .eval.mot import evaluate_tracker

    _claim_output(args, args.json, *args.gt)
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


def _interpret_predictor(args: argparse.Namespace, evaluate: bool = False, **options: Any) -> Any:
    """The predictor explained or attacked; a single-person pose model runs top-down on --detector's people (at
    evaluation settings for an attack, as `visionkit eval pose` scores it)."""
    from . import Predictor
    from .composites.person_pose import NO_DETECTOR, PersonPose, default_person_detector

    common = {"device": args.device, "trust_weights": args.trust_weights}
    model = Predictor(args.task, args.model, weights=args.weights, runtime=args.runtime, precision=args.precision,
                      batch_size=args.batch, evaluate=evaluate, **common,
                      **{k: v for k, v in options.items() if v is not None})
    if args.task != "pose" or not model.runs_in_boxes or args.detector == NO_DETECTOR:
        return model
    people = {"classes": [0], "max_det": 20} if evaluate else {"classes": [0]}
    return PersonPose(Predictor("detect", args.detector or default_person_detector(), evaluate=evaluate, **common,
                                **people), model)


def _run_explain(args: argparse.Namespace) -> int:
    from .interpret.explain import explain, load_image
    from .interpret.report import write_png
    from .io.sinks import write_json

    predictor = _interpret_predictor(args, conf=args.conf if args.task in ("detect", "pose") else None)
    image = load_image(args.source)
    ex = explain(predictor, image, args.method, target=args.target, layers=args.layers, max_targets=args.max_targets)
    out = Path(args.save)
    for i, t in enumerate(ex.targets):
        path = out / f"{Path(args.source).stem}_{ex.method}_{i}_{t.class_name.replace(' ', '_')}.png"
        write_png(path, ex.plot(image, i))
        print(f"{t.describe()}: {path}")
    if not ex.targets:
        print(f"{Path(args.source).name}: nothing to explain (no prediction)")
    if args.json:
        write_json(args.json, ex.to_dict())
    return EXIT_OK


def _run_attack(args: argparse.Namespace) -> int:
    from .interpret.attack import attack_report, parse_eps

    # mAP is scored at the model's evaluation settings (e.g. conf 0.001), as `visionkit eval detect` does.
    predictor = _interpret_predictor(args, evaluate=args.task in ("detect", "pose"))
    transforms = [t for t in args.transforms.split(",") if t.strip()]
    report = attack_report(predictor, args.data, args.method, parse_eps(args.eps), args.steps, args.targeted,
                           transforms, args.save, args.triptychs, args.limit)
    print(f"{report.model}: {report.method} on {report.images} images, {report.metric} clean {report.clean:.3f}")
    print(report.table())
    print(f"report: {Path(args.save) / 'report.json'}, curve: {Path(args.save) / 'curve.png'}")
    if args.json:
        from .io.sinks import write_json

        write_json(args.json, report.to_dict())
    return EXIT_OK


class OneLineFormatter(logging.Formatter):
    """Log records as ``visionkit: WARNING: ...`` lines, one line each whatever path or URL they quote (control
    characters escaped as ``VisionkitError`` messages escape them)."""

    def __init__(self) -> None:
        super().__init__("visionkit: %(levelname)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        return one_line(super().format(record))


def console_log_handler(stream: Any = None) -> logging.Handler:
    """The handler the command logs through: to ``stream`` (stderr by default), one line a record."""
    handler = logging.StreamHandler(stream)
    handler.setFormatter(OneLineFormatter())
    return handler


def main(argv: list[str] | None = None) -> int:
    with stop_signals():  # only the command sets signal handlers; the library leaves the process's alone
        return _main(argv)


def _import_torch() -> None:
    """Import torch with stop signals held back: a Ctrl-C landing inside its C++ start-up aborts the process
    (see ``deferred_stop``); held, it interrupts the run once the import is done, with the usual exit 130."""
    with deferred_stop():
        import torch  # noqa: F401  (imported for its side effect: loaded before anything else needs it)


def _main(argv: list[str] | None) -> int:
    try:
        args = build_parser().parse_args(argv)
    except KeyboardInterrupt as e:  # Ctrl-C while the command's modules (OpenCV, the demo) are still loading
        return report_interrupted(e)
    try:
        if argv is None and not args.debug:  # a console run (not main([...]) from Python): native lines off
            from .io.console import divert_native_stderr

            divert_native_stderr()
        logging.basicConfig(handlers=[console_log_handler()], level=logging.WARNING)
        if args.handler is not _run_models or args.info:  # every other command runs a network
            _import_torch()
        code = args.handler(args)
        sys.stdout.flush()  # a reader gone early (`| head`) is found here, not in the flush at exit
        return code
    except BrokenPipeError:
        from .io.console import silence_closed_pipe

        silence_closed_pipe()
        return EXIT_CLOSED_PIPE
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
        return report_interrupted(e)
    except ModuleNotFoundError as e:
        if args.debug or e.name not in OPTIONAL_PACKAGES:
            raise
        print(f"visionkit: error: this command needs {e.name}, which is not installed: {OPTIONAL_PACKAGES[e.name]}",
              file=sys.stderr)
        return EXIT_FAILED
    except Exception as e:  # a bug: still one line, with the way to see more
        if args.debug:
            raise
        reason = one_line(f"{type(e).__name__}: {e}")
        print(f"visionkit: internal error: {reason} (run with --debug for the traceback)", file=sys.stderr)
        return EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
