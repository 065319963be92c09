"""Where results go. Sinks are context managers: whatever they wrote stays valid if the run stops early
(videos are finalised, JSONL is flushed per line, JSON documents are written atomically on close).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from ..errors import SinkError
from ..results import Detections, Result
from .sources import Frame
from .video import VideoWriter


def _ensure_dir(path: Path) -> Path:
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise SinkError(f"cannot create output directory {path}: {e.strerror}") from None
    if not os.access(path, os.W_OK):
        raise SinkError(f"output directory {path} is not writable")
    return path


def _open_for_writing(path: Path) -> Any:
    _ensure_dir(path.parent)
    try:
        return open(path, "w", encoding="utf-8")
    except OSError as e:
        raise SinkError(f"cannot write {path}: {e.strerror}") from None


class Sink:
    def write(self, frame: Frame, result: Result, annotated: np.ndarray | None = None) -> None:
        raise NotImplementedError

    def close(self) -> None:
        """Finish outputs; safe to call twice."""

    def __enter__(self) -> Sink:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class AnnotatedSink(Sink):
    """Annotated stills as ``DIR/<name>`` and annotated videos as ``DIR/<stem>.mp4`` (one writer per video).

    Videos are H.264 in fragmented MP4 (``visionkit.io.video``): they play in a browser, and a run that is
    killed leaves them playable up to the last keyframe.
    """

    needs_annotation = True

    def __init__(self, directory: str | Path):
        self.directory = _ensure_dir(Path(directory))
        self._writers: dict[str, VideoWriter] = {}
        self._taken: set[Path] = set()
        self.written: list[Path] = []

    def write(self, frame: Frame, result: Result, annotated: np.ndarray | None = None) -> None:
        image = annotated if annotated is not None else result.plot(frame.image)
        if frame.is_video:
            self._video_writer(frame, image).write(image)
            return
        target = self.directory / Path(frame.name).name
        if target.suffix.lower() not in (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"):
            target = target.with_suffix(".jpg")
        target = self._unique(target)
        ok, buf = cv2.imencode(target.suffix, image)
        try:
            if not ok:
                raise OSError(0, "encoding failed")
            buf.tofile(target)
        except OSError as e:
            raise SinkError(f"cannot write {target}: {e.strerror}") from None
        self.written.append(target)

    def _unique(self, target: Path) -> Path:
        """Same-named inputs (e.g. from two folders of a glob) get ``_1``, ``_2``... instead of overwriting."""
        stem, n = target.stem, 0
        while target in self._taken:
            n += 1
            target = target.with_name(f"{stem}_{n}{target.suffix}")
        self._taken.add(target)
        return target

    def _video_writer(self, frame: Frame, image: np.ndarray) -> VideoWriter:
        writer = self._writers.get(frame.source)
        if writer is None:
            # "camera 0" (a live camera) -> camera0.mp4; any file or URL, even one named camera*.avi -> its stem
            camera = frame.source.startswith("camera ") and frame.source[7:].isdigit()
            stem = frame.source.replace(" ", "") if camera else Path(frame.source).stem
            target = self._unique(self.directory / f"{stem or 'stream'}.mp4")
            h, w = image.shape[:2]
            writer = VideoWriter(target, frame.fps or 30.0, (w, h))
            self._writers[frame.source] = writer
            self.written.append(target)
        return writer

    def close(self) -> None:
        writers, self._writers = list(self._writers.values()), {}
        with contextlib.ExitStack() as stack:  # every video is finished even if one of them fails
            for writer in writers:
                stack.callback(writer.close)


class _LineSink(Sink):
    """A text file written line by line and flushed per frame: complete up to the last processed frame."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._file = _open_for_writing(self.path)

    def _write(self, text: str) -> None:
        self._file.write(text)
        self._file.flush()

    def close(self) -> None:
        if not self._file.closed:
            self._file.close()


class JsonlSink(_LineSink):
    """One JSON object per frame."""

    def __init__(self, path: str | Path, **context: Any):
        super().__init__(path)
        self.context = context

    def write(self, frame: Frame, result: Result, annotated: np.ndarray | None = None) -> None:
        record = {"source": frame.source, "frame": frame.index, **self.context, **result.to_dict()}
        if frame.timestamp is not None:
            record["timestamp"] = round(frame.timestamp, 4)
        self._write(json.dumps(record) + "\n")


class MotSink(_LineSink):
    """MOTChallenge results, one line per tracked box: ``frame,id,x,y,w,h,conf,-1,-1,-1`` (frame 1-based)."""

    def write(self, frame: Frame, result: Result, annotated: np.ndarray | None = None) -> None:
        if not isinstance(result, Detections) or result.track_ids is None:
            raise SinkError("MOT output needs tracked detections (use the track task)")
        self._write("".join(
            f"{frame.index + 1},{tid},{x1:.2f},{y1:.2f},{x2 - x1:.2f},{y2 - y1:.2f},{score:.4f},-1,-1,-1\n"
            for (x1, y1, x2, y2), tid, score in zip(result.xyxy.tolist(), result.track_ids.tolist(),
                                                    result.scores.tolist())))


class RecordSink(_LineSink):
    """JSON objects one a line, flushed as written: events (``visionkit.zones``: crossed, entered, left) as they
    happen, or per-frame records that carry their own fields (a multi-stream run's ``stream``)."""

    def __init__(self, path: str | Path, **context: Any):
        super().__init__(path)
        self.context = context

    def write_records(self, frame: Frame, records: list[dict[str, Any]]) -> None:
        if records:
            self._write("".join(json.dumps({"source": frame.source, **self.context, **r}) + "\n" for r in records))

    def write(self, frame: Frame, result: Result, annotated: np.ndarray | None = None) -> None:
        """Nothing per frame: records come through ``write_records``."""


class CocoResultsSink(Sink):
    """COCO detection results (``[{image_id, category_id, bbox: [x, y, w, h], score}]``), what pycocotools'
    ``loadRes`` and the COCO evaluation server take. ``image_id`` is the file stem when numeric (COCO file
    names are the ids), otherwise the running image number."""

    def __init__(self, path: str | Path):
        from ..eval.coco import coco_category_id

        self.path = Path(path)
        _ensure_dir(self.path.parent)
        self._category_id = coco_category_id
        self._rows: list[dict[str, Any]] = []
        self._images: dict[tuple[str, int], int] = {}

    def write(self, frame: Frame, result: Result, annotated: np.ndarray | None = None) -> None:
        if not isinstance(result, Detections):
            raise SinkError(f"COCO results hold detections, not {result.kind}")
        stem = Path(frame.source).stem
        image_id = self._images.setdefault(
            (frame.source, frame.index), int(stem) if stem.isdigit() and not frame.is_video else len(self._images) + 1
        )
        for box, score, name in zip(result.xyxy, result.scores, result.class_names):
            x1, y1, x2, y2 = (float(v) for v in box)
            self._rows.append({"image_id": image_id, "category_id": self._category_id(str(name)),
                               "bbox": [round(x1, 2), round(y1, 2), round(x2 - x1, 2), round(y2 - y1, 2)],
                               "score": round(float(score), 5)})

    def close(self) -> None:
        write_json(self.path, self._rows)


def _write_atomically(path: str | Path, write: Callable[[Path], object]) -> Path:
    """``write`` a temp file beside ``path``, then rename it into place: a reader never sees half a file."""
    path = Path(path)
    _ensure_dir(path.parent)
    tmp = path.with_name(path.name + ".tmp")
    try:
        write(tmp)
        tmp.replace(path)
    except OSError as e:
        raise SinkError(f"cannot write {path}: {e.strerror}") from None
    finally:
        tmp.unlink(missing_ok=True)
    return path


def write_json(path: str | Path, data: Any) -> None:
    """Write a JSON document atomically, as a SinkError on failure."""
    _write_atomically(path, lambda tmp: tmp.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8"))


def copy_file(source: Path, path: str | Path) -> Path:
    """Copy ``source`` to ``path`` atomically, as a SinkError on failure."""
    return _write_atomically(path, lambda tmp: shutil.copyfile(source, tmp))
