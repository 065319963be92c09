"""End-to-end video tracking throughput: decode -> detect -> track -> draw -> encode, visionkit vs ultralytics.

Both run the same YOLOv8n checkpoint on the same clip (the first N frames of vtest.avi, 480x360), ByteTrack with
ultralytics' shipped settings, the same detection settings (imgsz 640, conf, IoU 0.7, max 300 boxes), and write
an annotated video:

  ultralytics       ``YOLO(pt).track(clip, save=True, stream=True)`` (boxes + ids drawn, MJPG .avi on Linux):
                    the reference, as its users run it
  visionkit cli     ``visionkit track clip --model pt --runtime R --workers W --save DIR``: decode in a thread,
                    W frames in inference at once (each in its own thread), tracking in frame order in the main
                    thread, drawing (with id trails) and encoding in a writer thread
  visionkit api     ``TrackingPredictor(pt, runtime=R, workers=W).stream(clip)`` + ``AnnotatedSink`` in the
                    caller's loop (draws and encodes in the main thread)
  ultralytics onnx  (``--onnx-reference``) ``YOLO(export).track(...)`` on the very ONNX file visionkit runs with
                    ``--runtime onnx``: separates what ONNX Runtime brings from what the pipeline brings

``--runtime onnx`` (the default here) is the fast CPU path a user gets with that flag: the .pt is exported once by
ultralytics' own exporter (cached) and run on ONNX Runtime, with ultralytics' letterbox and NMS as before;
``--runtime torch`` times the same pipeline on PyTorch.

Official YOLOv8 weights are not available offline, so the checkpoint is a seeded random ``YOLO("yolov8n.yaml")``
saved with ``Model.save``. A random network's activations vanish with depth (its class scores are all ~1e-5),
so before saving its BatchNorm statistics are re-estimated on 8 frames of the clip and the class biases raised
by ``--boost`` (tests/random_models.py): the boxes are still meaningless, but there are a few dozen per frame
and they follow the image, so the tracker has tracks to keep. Throughput is what is measured; the boxes are not
people.

Each run is a fresh process. ultralytics sets torch to min(8, cores - 1) threads on every CPU predictor setup
(leaving a core for decoding and encoding) and leaves ONNX Runtime at its default (one thread per physical
core). visionkit with ``--workers`` W > 1 (2 by default here) gives each inference cores / W threads, torch and
ONNX Runtime alike; with ``--workers 1`` its runs get ultralytics' torch thread count (``--threads -1``: torch's
default, all cores) and ONNX Runtime's default.

    python benchmarks/bench_track.py --frames 150 --onnx-reference
    python benchmarks/bench_track.py --runtime torch
    python benchmarks/bench_track.py --workers 1     # one frame at a time: what the runtime alone brings
    python benchmarks/bench_track.py --accuracy      # also: HOTA/MOTA/IDF1 table for the README (yolov5n)
    python benchmarks/bench_track.py --encoders-only # what writing the annotated video costs, per writer

``--encoders`` times the two video writers on the same decoded frames of vtest.avi, as the CLI's writer thread
runs them: OpenCV's ``mp4v`` (what visionkit wrote before) and PyAV's H.264 in fragmented MP4
(``visionkit.io.video.VideoWriter``, what it writes now: plays in browsers, survives SIGKILL). Wall time is what
the writer thread spends per frame; CPU time also counts the encoder's own threads, i.e. what it takes from
inference on a small CPU.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

OMP_NUM_THREADS = os.environ.get("OMP_NUM_THREADS")  # importing ultralytics sets it to 1 when unset

from _common import SHARED, add_figures_option, print_table, setup_env  # noqa: E402

setup_env()

import cv2  # noqa: E402
import numpy as np  # noqa: E402

VIDEO = SHARED / "data" / "tracking" / "demo" / "vtest.avi"
TRACKING = SHARED / "data" / "tracking"
# README's tracking table: one part per --runtime/--workers run (benchmarks/results/tracking.RUNTIME-wN.json)
TRACK_COLUMNS = ("pipeline", "runtime", "workers", "median FPS", "best FPS", "tracked boxes/frame", "ids",
                 "ultralytics `YOLO(pt).track(save=True)` FPS, same run", "ratio")
PIPELINES = {"visionkit cli": "`visionkit track clip --model pt --save out/`",
             "visionkit api": "Python API: `stream()` + `AnnotatedSink` in the caller's loop",
             "ultralytics onnx": "ultralytics `YOLO(export.onnx).track(save=True)` on visionkit's export"}
SEQUENCES = ("PETS09-S2L1", "MOT17-02-FRCNN", "MOT17-05-FRCNN", "MOT17-10-FRCNN", "MOT17-13-FRCNN")


# -- inputs ------------------------------------------------------------------------------------------------
def clip_and_model(frames: int, folder: Path, seed: int, boost: float) -> tuple[Path, Path]:
    """The first ``frames`` frames of vtest.avi as an MJPG AVI (cheap to decode, every frame a key frame), and a
    seeded random YOLOv8n made image-dependent on 8 of them, built as the parity tests build theirs."""
    from clip_helpers import make_clip
    from random_models import build_yolo

    clip = make_clip(VIDEO, folder / "vtest_clip.avi", frames)
    cap = cv2.VideoCapture(str(clip))
    calib = [image for i in range(40) if (image := cap.read()[1]) is not None and i % 5 == 0]
    cap.release()
    return clip, build_yolo("yolov8n.yaml", folder / "yolov8n_random.pt", calib, bias_shift=boost, seed=seed)


# -- runs --------------------------------------------------------------------------------------------------
def count_frames(path: Path) -> int:
    cap = cv2.VideoCapture(str(path))
    n = 0
    while cap.grab():
        n += 1
    cap.release()
    return n


def split_runtime(runtime: str) -> tuple[str, str | None]:
    """``--runtime openvino:bf16`` -> ("openvino", "bf16"); a bare runtime keeps its default precision."""
    engine, _, precision = runtime.partition(":")
    return engine, precision or None


def run_visionkit_api(model: Path, clip: Path, out: Path, conf: float, runtime: str, workers: int) -> dict:
    from visionkit.composites.track import TrackingPredictor
    from visionkit.io.sinks import AnnotatedSink

    engine, precision = split_runtime(runtime)
    tracking = TrackingPredictor(str(model), device="cpu", conf=conf, runtime=engine, precision=precision,
                                 workers=workers).warmup()
    frames = boxes = 0
    ids: set[int] = set()
    start = time.perf_counter()
    with AnnotatedSink(out) as sink:
        for frame, tracked in tracking.stream(clip):
            sink.write(frame, tracked)
            frames += 1
            boxes += len(tracked)
            ids.update(tracked.track_ids.tolist())
    elapsed = time.perf_counter() - start
    written = next(out.glob("*.mp4"))
    return {"frames": frames, "seconds": elapsed, "boxes": boxes, "ids": len(ids), "video": written,
            "video_frames": count_frames(written)}


def run_visionkit_cli(model: Path, clip: Path, out: Path, conf: float, runtime: str, workers: int) -> dict:
    import onnxruntime  # noqa: F401  imported before the clock starts, as the ultralytics runs do (~3 s on 2 cores)
    import torchvision  # noqa: F401
    import ultralytics  # noqa: F401

    from visionkit.cli import main

    engine, precision = split_runtime(runtime)
    chosen = ["--runtime", engine] + (["--precision", precision] if precision else [])
    start = time.perf_counter()
    with contextlib.redirect_stderr(io.StringIO()) as said:
        code = main(["track", str(clip), "--model", str(model), "--device", "cpu", "--conf", str(conf), *chosen,
                     "--workers", str(workers), "--save", str(out), "--quiet"])
    wall = time.perf_counter() - start  # also loading and warming up the model (the export is cached)
    if code != 0:
        raise SystemExit(f"visionkit track failed with exit code {code}")
    written = next(out.glob("*.mp4"))
    frames = count_frames(written)
    # The CLI's closing line times the loop from after the model is loaded and warmed up to the last frame
    # written, as the ultralytics runs are timed (after their warm-up predict): that is the figure compared.
    fps = re.search(r"([\d.]+) FPS overall", said.getvalue())
    if fps is None:
        raise SystemExit(f"visionkit track printed no summary line:\n{said.getvalue()[-2000:]}")
    return {"frames": frames, "seconds": frames / float(fps[1]), "wall_seconds": wall, "video": written,
            "video_frames": frames}


def run_ultralytics(model: Path, clip: Path, out: Path, conf: float, runtime: str, workers: int) -> dict:
    """``model`` is the .pt, or with runtime onnx the ONNX export of it (``YOLO(onnx)`` runs it on ONNX Runtime)."""
    from ultralytics import YOLO

    yolo = YOLO(str(model), task="detect")
    yolo.predict(np.zeros((360, 480, 3), np.uint8), device="cpu", verbose=False)  # warm-up, as visionkit's
    frames = boxes = 0
    ids: set[int] = set()
    start = time.perf_counter()
    for result in yolo.track(source=str(clip), save=True, stream=True, conf=conf, iou=0.7, imgsz=640,
                             tracker="bytetrack.yaml", device="cpu", verbose=False, project=str(out), name="run",
                             exist_ok=True):
        frames += 1
        if result.boxes is not None and result.boxes.is_track:
            boxes += len(result.boxes)
            ids.update(result.boxes.id.int().tolist())
    elapsed = time.perf_counter() - start
    written = next(p for p in (out / "run").iterdir() if p.suffix in (".avi", ".mp4"))
    return {"frames": frames, "seconds": elapsed, "boxes": boxes, "ids": len(ids), "video": written,
            "video_frames": count_frames(written)}


# name -> run function ("ultralytics onnx" is given the ONNX export instead of the .pt)
RUNNERS = {"ultralytics": run_ultralytics, "visionkit cli": run_visionkit_cli, "visionkit api": run_visionkit_api,
           "ultralytics onnx": run_ultralytics}


def ultralytics_threads() -> int:
    """What ultralytics' ``select_device("cpu")`` sets ``torch.set_num_threads`` to on every predictor setup."""
    from ultralytics.utils import NUM_THREADS

    return NUM_THREADS


def worker(argv: list[str]) -> None:
    """One timed run in a fresh process (ultralytics changes torch's thread count for the whole process)."""
    import json

    import torch

    name, model, clip, out, conf, threads, runtime, workers = argv
    if int(threads) > 0:
        torch.set_num_threads(int(threads))
    r = RUNNERS[name](Path(model), Path(clip), Path(out), float(conf), runtime, int(workers))
    r["torch_threads"] = torch.get_num_threads()
    r["video"] = str(r["video"])
    print("RESULT " + json.dumps(r))


def timed_run(name: str, model: Path, clip: Path, out: Path, conf: float, threads: int, runtime: str = "",
              workers: int = 1) -> dict:
    import json
    import subprocess

    env = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}  # as this script was started
    if OMP_NUM_THREADS is not None:
        env["OMP_NUM_THREADS"] = OMP_NUM_THREADS
    proc = subprocess.run([sys.executable, __file__, "--worker", name, str(model), str(clip), str(out), str(conf),
                           str(threads), runtime, str(workers)], capture_output=True, text=True, env=env)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    if proc.returncode != 0 or not lines:
        raise SystemExit(f"{name} run failed (exit {proc.returncode}):\n{proc.stderr[-3000:]}")
    r = json.loads(lines[-1][len("RESULT "):])
    r["video"] = Path(r["video"])
    return r


def throughput(args: argparse.Namespace) -> None:
    import visionkit

    threads = args.threads if args.threads != 0 else ultralytics_threads()
    with tempfile.TemporaryDirectory(prefix="bench-track-") as tmp:
        tmp_path = Path(tmp)
        os.environ["VISIONKIT_CACHE"] = str(tmp_path / "cache")  # the export is built here once, before timing
        clip, pt = clip_and_model(args.frames, tmp_path, args.seed, args.boost)
        onnx = visionkit.export_onnx(pt, trust_weights=True)
        what = "torch's default" if threads < 0 else str(threads)
        print(f"clip: {count_frames(clip)} frames of {VIDEO.name} (480x360); model: seeded random YOLOv8n "
              f"(seed {args.seed}, boost {args.boost}); conf {args.conf}; CPU; {os.cpu_count()} cores; visionkit "
              f"--runtime {args.runtime} --workers {args.workers}; torch threads for visionkit: {what} (ultralytics "
              f"always sets "
              f"{ultralytics_threads()}); each run in a fresh process", flush=True)
        runners = ["ultralytics", "visionkit cli", "visionkit api"] + \
            (["ultralytics onnx"] if args.onnx_reference else [])
        runs: dict[str, list[dict]] = {name: [] for name in runners}
        for repeat in range(args.repeats):  # interleaved, so a busy spell on a shared machine hits all of them
            for name in runners:
                out = tmp_path / f"{name.replace(' ', '_')}_{repeat}"
                out.mkdir()
                if name.startswith("visionkit"):
                    r = timed_run(name, pt, clip, out, args.conf, threads, args.runtime, args.workers)
                else:
                    r = timed_run(name, onnx if name.endswith("onnx") else pt, clip, out, args.conf, 0)
                r["fps"] = r["frames"] / r["seconds"]
                extra = f", {r['boxes'] / max(r['frames'], 1):.1f} tracked boxes/frame, {r['ids']} ids" \
                    if "boxes" in r else ""
                print(f"  [{repeat + 1}/{args.repeats}] {name}: {r['frames']} frames in {r['seconds']:.2f} s = "
                      f"{r['fps']:.2f} FPS{extra}; torch threads {r['torch_threads']}; wrote {r['video'].name} "
                      f"({r['video_frames']} frames)", flush=True)
                runs[name].append(r)
        median = {name: statistics.median(r["fps"] for r in rs) for name, rs in runs.items()}
        best = {name: max(r["fps"] for r in rs) for name, rs in runs.items()}
        rows = []
        for name, rs in runs.items():
            if name == "ultralytics":  # the reference: its FPS is a column of every row
                continue
            r = rs[0]
            per = f"{r['boxes'] / max(r['frames'], 1):.1f}" if "boxes" in r else "-"
            runtime = args.runtime if name.startswith("visionkit") else "onnx" if name.endswith("onnx") else "torch"
            rows.append([PIPELINES[name], runtime, str(args.workers) if name.startswith("visionkit") else "-",
                         f"{median[name]:.2f}", f"{best[name]:.2f}", per, str(r.get("ids", "-")),
                         f"{median['ultralytics']:.2f}", f"**{median[name] / median['ultralytics']:.2f}**"])
        print_table(args, TRACK_COLUMNS, rows, section="tracking", part=f"{args.runtime.replace(':', '-')}"
                    f"-w{args.workers}")


# -- accuracy table (not a benchmark: numbers for the README) ----------------------------------------------
def gt_as_detections(seq: Path, kind: str, results: Path) -> None:
    """Feed the tracker the scored gt boxes (MOT15 flag 1; MOT17 consider 1, pedestrian) with score 1 and the
    frame image (BoT-SORT's motion compensation uses it), and write MOT results."""
    from visionkit.composites.track import Tracker
    from visionkit.results import Detections

    images = sorted((seq / "img1").iterdir())
    gt = np.loadtxt(seq / "gt" / "gt.txt", delimiter=",", ndmin=2)
    keep = (gt[:, 6] == 1) & (gt[:, 0] <= len(images))
    if gt.shape[1] == 9:
        keep &= gt[:, 7] == 1
    gt = gt[keep]
    tracker = Tracker(kind)
    with open(results, "w") as f:
        for frame, path in enumerate(images, 1):
            image = cv2.imread(str(path))
            rows = gt[gt[:, 0] == frame]
            n = len(rows)
            xyxy = np.column_stack([rows[:, 2], rows[:, 3], rows[:, 2] + rows[:, 4], rows[:, 3] + rows[:, 5]])
            d = Detections(xyxy=xyxy.reshape(-1, 4), scores=np.ones(n), class_ids=np.zeros(n, np.int64),
                           class_names=np.array(["person"] * n, object), image_shape=image.shape[:2])
            t = tracker.update(d, image)
            for (x1, y1, x2, y2), tid, s in zip(t.xyxy.tolist(), t.track_ids.tolist(), t.scores.tolist()):
                f.write(f"{frame},{tid},{x1:.2f},{y1:.2f},{x2 - x1:.2f},{y2 - y1:.2f},{s:.4f},-1,-1,-1\n")


def accuracy(args: argparse.Namespace) -> None:
    import json

    from visionkit.cli import main
    from visionkit.eval.mot import evaluate_mot_files

    seqs = [TRACKING / s for s in SEQUENCES]
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-track-acc-") as tmp:
        for kind in ("bytetrack", "botsort"):
            report = Path(tmp) / f"{kind}.json"
            start = time.perf_counter()
            code = main(["eval", "track", "--gt", *map(str, seqs), "--model", "yolov5n", "--classes", "0",
                         "--tracker", kind, "--device", "cpu", "--json", str(report)])
            if code != 0:
                raise SystemExit(f"visionkit eval track failed with exit code {code}")
            print(f"  ({kind} with yolov5n: {time.perf_counter() - start:.0f} s)", flush=True)
            for s in json.loads(report.read_text())["sequences"]:
                rows.append((s["sequence"], kind, "yolov5n", s))
            for seq in seqs:
                results = Path(tmp) / f"{seq.name}-{kind}-gt.txt"
                gt_as_detections(seq, kind, results)
                rows.append((seq.name, kind, "ground truth", evaluate_mot_files(seq, results).to_dict()))
    order = {name: i for i, name in enumerate(SEQUENCES)}
    table = []
    for seq, kind, dets, s in sorted(rows, key=lambda r: (order[r[0]], r[2] != "yolov5n", r[1] != "bytetrack")):
        table.append([seq, str(s["frames"]), "ByteTrack" if kind == "bytetrack" else "BoT-SORT",
                      "yolov5n, persons" if dets == "yolov5n" else "ground truth (isolates the tracker)",
                      f"{s['hota']:.3f}", f"{s['mota']:.3f}", f"{s['idf1']:.3f}", str(s["id_switches"])])
    print_table(args, ("sequence", "frames", "tracker", "detections", "HOTA", "MOTA", "IDF1", "ID switches"), table,
                section="tracking-accuracy")


# -- video writers -----------------------------------------------------------------------------------------
def encoders(args: argparse.Namespace) -> None:
    """ms per frame (wall and CPU) and file size of each annotated-video writer on the first frames of vtest.avi."""
    from visionkit.io.video import FALLBACK_FOURCC, VideoWriter

    cap = cv2.VideoCapture(str(VIDEO))
    fps = cap.get(cv2.CAP_PROP_FPS)
    frames = [image for _ in range(args.frames) if (image := cap.read()[1]) is not None]
    cap.release()
    h, w = frames[0].shape[:2]

    def opencv_mp4v(path: Path) -> None:
        writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*FALLBACK_FOURCC), fps, (w, h))
        for image in frames:
            writer.write(image)
        writer.release()

    def pyav_h264(path: Path) -> None:
        with VideoWriter(path, fps, (w, h)) as video:
            for image in frames:
                video.write(image)

    writers = {"OpenCV mp4v (.mp4, not fragmented)": opencv_mp4v, "PyAV libx264 veryfast, fragmented MP4": pyav_h264}
    timings: dict[str, list[tuple[float, float]]] = {name: [] for name in writers}
    sizes: dict[str, int] = {}
    with tempfile.TemporaryDirectory(prefix="bench-encoders-") as tmp:
        for repeat in range(args.repeats):  # interleaved, as the throughput runs
            for name, write in writers.items():
                path = Path(tmp) / f"{repeat}_{len(sizes)}.mp4"
                wall, cpu = time.perf_counter(), time.process_time()
                write(path)
                timings[name].append(((time.perf_counter() - wall) * 1000 / len(frames),
                                      (time.process_time() - cpu) * 1000 / len(frames)))
                sizes[name] = path.stat().st_size
                path.unlink()
    print(f"\nvideo writers: {len(frames)} frames of {VIDEO.name} ({w}x{h}, {fps:g} fps), {args.repeats} runs, "
          f"{os.cpu_count()} cores")
    print_table(args, ("writer", "median ms/frame (wall)", "median CPU ms/frame", "file size"),
                [[name, f"{statistics.median(r[0] for r in rows):.2f}", f"{statistics.median(r[1] for r in rows):.2f}",
                  f"{sizes[name] / 1e6:.2f} MB"] for name, rows in timings.items()], numeric=True, section="encoders")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=150, help="frames of vtest.avi to run on (default: 150)")
    parser.add_argument("--conf", type=float, default=0.1,
                        help="detection threshold for both (default: 0.1, ultralytics' own default for track)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--boost", type=float, default=4.5,
                        help="added to the random model's class-score biases so it reports boxes (default: 4.5)")
    parser.add_argument("--repeats", type=int, default=3,
                        help="interleaved runs of each pipeline; median and best are reported (default: 3)")
    parser.add_argument("--threads", type=int, default=0,
                        help="torch threads for the visionkit runs: 0 = what ultralytics sets for its own runs "
                             "(min(8, cores - 1)), -1 = torch's default (all cores) (default: 0)")
    parser.add_argument("--runtime", choices=("onnx", "torch", "openvino", "openvino:bf16"), default="onnx",
                        help="visionkit's --runtime for the .pt (default: onnx, the fast CPU path)")
    parser.add_argument("--workers", type=int, default=2,
                        help="visionkit's --workers: frames in inference at once (default: 2)")
    parser.add_argument("--onnx-reference", action="store_true",
                        help="also time ultralytics' own track() on the same ONNX export")
    parser.add_argument("--accuracy", action="store_true",
                        help="also print HOTA/MOTA/IDF1 per sequence (yolov5n and gt-as-detections)")
    parser.add_argument("--accuracy-only", action="store_true", help="only the accuracy table")
    parser.add_argument("--encoders", action="store_true",
                        help="also time the annotated-video writers (OpenCV mp4v vs PyAV H.264) per frame")
    parser.add_argument("--encoders-only", action="store_true", help="only the video writers' timing")
    add_figures_option(parser, "tracking")
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        worker(sys.argv[2:])
        return
    args = parser.parse_args()
    if not (args.accuracy_only or args.encoders_only):
        throughput(args)
    if args.encoders or args.encoders_only:
        encoders(args)
    if args.accuracy or args.accuracy_only:
        accuracy(args)


if __name__ == "__main__":
    main()
