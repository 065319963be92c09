"""Multi-object tracking accuracy with TrackEval (HOTA, CLEAR MOT, Identity), on MOTChallenge sequences.

A sequence folder is the MOTChallenge layout: ``img1/000001.jpg…``, ``gt/gt.txt`` (and usually ``seqinfo.ini``).
Only the frames present in ``img1/`` are scored: a sequence shipped with part of its images (e.g. the first 300
of 795) is scored on those frames, with the gt rows beyond them dropped, whatever ``seqinfo.ini`` says.

Both gt layouts are read:
  MOT15  ``frame,id,x,y,w,h,flag,x_world,y_world,z_world`` (10 columns): rows with flag 0 are ignored and there
         are no classes (TrackEval's ``BENCHMARK='MOT15'``: no class preprocessing).
  MOT16/17/20  ``frame,id,x,y,w,h,consider,class,visibility`` (9 columns): TrackEval's standard preprocessing,
         i.e. pedestrians (class 1) with consider=1 are scored, and tracker boxes matched to distractors (person
         on vehicle, static person, distractor, reflection) are removed instead of counted as false positives.
"""

from __future__ import annotations

import contextlib
import io
import re
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import SourceError
from ..io.images import IMAGE_SUFFIXES

SEQ = "seq"  # the sequence's name inside the scratch folder TrackEval reads (real names may hold any character)
TRACKER = "visionkit"


@dataclass
class TrackScore:
    hota: float  # HOTA averaged over the localisation thresholds 0.05..0.95, as TrackEval reports it
    mota: float
    idf1: float
    id_switches: int
    frames: int  # frames scored (the images present in img1/)

    def to_dict(self) -> dict[str, Any]:
        return {"hota": round(self.hota, 4), "mota": round(self.mota, 4), "idf1": round(self.idf1, 4),
                "id_switches": self.id_switches, "frames": self.frames}


@dataclass
class _Sequence:
    path: Path
    images: list[Path]
    gt: Path


def _sequence(sequence_dir: str | Path) -> _Sequence:
    """Check the MOTChallenge layout; raise one clear line when it is not one."""
    path = Path(sequence_dir)
    if not path.is_dir():
        raise SourceError(f"{path}: no such sequence folder")
    img1, gt = path / "img1", path / "gt" / "gt.txt"
    missing = [p.relative_to(path).as_posix() for p in (img1, gt) if not (p.is_dir() if p is img1 else p.is_file())]
    if missing:
        raise SourceError(f"{path}: not a MOTChallenge sequence folder (missing {' and '.join(missing)}; "
                          "expected img1/000001.jpg… and gt/gt.txt)")
    images = sorted(p for p in img1.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not images:
        raise SourceError(f"{img1}: no images")
    stems = [p.stem for p in images]
    if all(s.isdecimal() for s in stems) and [int(s) for s in stems] != list(range(1, len(images) + 1)):
        raise SourceError(f"{img1}: images must be frames 1..{len(images)} without gaps (image n = MOT frame n), "
                          f"found {stems[0]}..{stems[-1]}")
    return _Sequence(path, images, gt)


def _read_rows(path: Path, what: str) -> list[list[float]]:
    """Numeric rows of a MOTChallenge text file (comma- or space-separated); blank lines are skipped."""
    rows = []
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as e:
        raise SourceError(f"cannot read {path}: {e.strerror}") from None
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = [float(v) for v in re.split(r"[,\s]+", line.strip()) if v]
        except ValueError:
            raise SourceError(f"{path}, line {number}: not a MOTChallenge {what} row: {line.strip()[:80]!r}") from None
        if len(row) < 6:
            raise SourceError(f"{path}, line {number}: {len(row)} column(s), a MOTChallenge {what} row needs at least "
                              "6 (frame,id,x,y,w,h)")
        rows.append(row)
    return rows


def _fmt(v: float) -> str:
    return str(int(v)) if float(v).is_integer() else f"{v:.6g}"


def _write_gt(rows: list[list[float]], frames: int, source: Path, target: Path) -> str:
    """Write the gt rows (read from ``source``) of frames 1..frames in a layout TrackEval reads; return the
    TrackEval benchmark name."""
    columns = {len(r) for r in rows}
    if len(columns) > 1:
        raise SourceError(f"{source}: gt rows have different column counts ({sorted(columns)})")
    ncols = columns.pop() if columns else 10
    if ncols not in (7, 9, 10):
        raise SourceError(f"{source}: gt has {ncols} columns; expected MOT15 (10: …,flag,x,y,z world) or "
                          "MOT16/17/20 (9: …,consider,class,visibility)")
    mot15 = ncols != 9
    lines = []
    for r in rows:
        if not 1 <= r[0] <= frames:
            continue
        if mot15:  # frame,id,box,flag; no classes, every kept row is a pedestrian, full visibility
            r = [*r[:7], 1, 1]
        lines.append(",".join(_fmt(v) for v in r[:9]))
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text("\n".join(lines) + ("\n" if lines else ""), encoding="utf-8")
    return "MOT15" if mot15 else "MOT17"


def _write_results(rows: list[list[float]], frames: int, source: Path, target: Path) -> None:
    lines = []
    for r in rows:
        if not 1 <= r[0] <= frames or not float(r[0]).is_integer():
            raise SourceError(f"{source}: frame {_fmt(r[0])} is outside the sequence's frames 1..{frames}")
        if r[1] < 0 or not float(r[1]).is_integer():
            raise SourceError(f"{source}: track id {_fmt(r[1])} in frame {int(r[0])} is not a non-negative integer")
        conf = r[6] if len(r) > 6 else 1.0
        lines.append(f"{int(r[0])},{_fmt(r[1])},{r[2]:.3f},{r[3]:.3f},{r[4]:.3f},{r[5]:.3f},{conf:.5f},-1,-1,-1")
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text("\n".join(lines) + ("\n" if lines else ""), encoding="utf-8")


def evaluate_mot_files(sequence_dir: str | Path, results_txt: str | Path) -> TrackScore:
    """Score a MOTChallenge results file (``frame,id,x,y,w,h,conf,…``) against ``sequence_dir/gt/gt.txt``."""
    import trackeval

    seq = _sequence(sequence_dir)
    results_txt = Path(results_txt)
    if not results_txt.is_file():
        raise SourceError(f"{results_txt}: no such results file")
    frames = len(seq.images)
    gt_rows = _read_rows(seq.gt, "gt")
    result_rows = _read_rows(results_txt, "results")

    with tempfile.TemporaryDirectory(prefix="visionkit-mot-") as tmp:
        root = Path(tmp)
        benchmark = _write_gt(gt_rows, frames, seq.gt, root / "gt" / SEQ / "gt" / "gt.txt")
        (root / "gt" / SEQ / "seqinfo.ini").write_text(
            f"[Sequence]\nname={SEQ}\nimDir=img1\nseqLength={frames}\n", encoding="utf-8")
        (root / "seqmap.txt").write_text(f"name\n{SEQ}\n", encoding="utf-8")
        _write_results(result_rows, frames, results_txt, root / "trackers" / TRACKER / "data" / f"{SEQ}.txt")

        eval_config = {"USE_PARALLEL": False, "BREAK_ON_ERROR": True, "RETURN_ON_ERROR": False,
                       "LOG_ON_ERROR": None, "PRINT_RESULTS": False, "PRINT_ONLY_COMBINED": False,
                       "PRINT_CONFIG": False, "TIME_PROGRESS": False, "DISPLAY_LESS_PROGRESS": True,
                       "OUTPUT_SUMMARY": False, "OUTPUT_EMPTY_CLASSES": False, "OUTPUT_DETAILED": False,
                       "PLOT_CURVES": False}
        dataset_config = {"GT_FOLDER": str(root / "gt"), "TRACKERS_FOLDER": str(root / "trackers"),
                          "OUTPUT_FOLDER": str(root / "out"), "TRACKERS_TO_EVAL": [TRACKER],
                          "CLASSES_TO_EVAL": ["pedestrian"], "BENCHMARK": benchmark, "SPLIT_TO_EVAL": "train",
                          "PRINT_CONFIG": False, "DO_PREPROC": True, "TRACKER_SUB_FOLDER": "data",
                          "SEQMAP_FILE": str(root / "seqmap.txt"), "SKIP_SPLIT_FOL": True}
        metric_config = {"PRINT_CONFIG": False, "THRESHOLD": 0.5}
        quiet = io.StringIO()
        try:
            with contextlib.redirect_stdout(quiet), contextlib.redirect_stderr(quiet):
                evaluator = trackeval.Evaluator(eval_config)
                dataset = trackeval.datasets.MotChallenge2DBox(dataset_config)
                metrics = [trackeval.metrics.HOTA(), trackeval.metrics.CLEAR(metric_config),
                           trackeval.metrics.Identity(metric_config)]
                output, _ = evaluator.evaluate([dataset], metrics)
        except trackeval.utils.TrackEvalException as e:
            message = str(e).replace(f"seq: {SEQ},", f"seq: {seq.path.name},").strip().splitlines()[0]
            raise SourceError(f"{results_txt}: TrackEval cannot score it against {seq.gt}: {message}") from None

    res = output["MotChallenge2DBox"][TRACKER][SEQ]["pedestrian"]
    return TrackScore(hota=float(np.mean(res["HOTA"]["HOTA"])), mota=float(res["CLEAR"]["MOTA"]),
                      idf1=float(res["Identity"]["IDF1"]), id_switches=int(res["CLEAR"]["IDSW"]), frames=frames)


def evaluate_tracker(tracking: Any, sequence_dir: str | Path,
                     progress: Callable[[int], None] | None = None) -> TrackScore:
    """Track ``sequence_dir/img1`` with a ``TrackingPredictor`` (one fresh tracker state) and score it.

    Image *i* of ``img1/`` in sorted order is MOT frame *i*. MOTChallenge scores pedestrians only, so when the
    detector has a ``person`` class only person tracks are written; tracking itself sees every class the detector
    keeps (restrict the detector, e.g. ``classes=[0]`` for COCO YOLO, to keep other objects out of association).
    ``progress`` is called with 1 after each frame (e.g. a tqdm bar's ``update``).
    """
    from ..io.sinks import MotSink

    seq = _sequence(sequence_dir)
    with tempfile.TemporaryDirectory(prefix="visionkit-track-") as tmp:
        results = Path(tmp) / f"{seq.path.name or 'sequence'}.txt"
        with MotSink(results) as sink:
            for frame, detections in tracking.stream(seq.path / "img1"):
                if len(detections) and "person" in tracking.class_names:
                    detections = detections[detections.class_names == "person"]
                sink.write(frame, detections)
                if progress is not None:
                    progress(1)
        return evaluate_mot_files(seq.path, results)
