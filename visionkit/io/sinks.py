"""Where results go. Sinks are context managers: whatever they wrote stays valid if the run stops early
(videos are finalised, JSONL is flushed per line, JSON documents are written atomically on close).

Every file a sink creates is first claimed from the run's ``OutputGuard``: an output never replaces one of the
run's inputs, nor (without ``exist_ok``) a file that was there before, and no two outputs share a path.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from collections import Counter
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from ..errors import OutputConflictError, SinkError
from ..results import Detections, Result
from .images import VIDEO_SUFFIXES
from .sources import Frame
from .video import VideoWriter


def ensure_dir(path: Path, for_file: Path | None = None) -> Path:
    """``path`` as an existing, writable folder; the error names ``for_file`` too when it is for one file."""
    what = f" for {for_file}" if for_file is not None else ""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise SinkError(f"cannot create output directory {path}{what}: {e.strerror}") from None
    if not os.access(path, os.W_OK):
        raise SinkError(f"cannot write {for_file}: output directory {path} is not writable" if for_file is not None
                        else f"output directory {path} is not writable")
    return path


class OutputGuard:
    """What a run's outputs may replace, checked by every sink before it creates a file.

    An output never replaces one of ``inputs`` (files or folders: whatever the run reads), compared by device
    and inode, so a symlink or hard link to an input counts as the input. An existing file is replaced only with
    ``exist_ok`` (the CLI's ``--exist-ok``; the API default, like ``open(path, "w")``). Two outputs of one run
    never share a path. ``inputs`` may be a lazy iterable (``Source.files()``): it is listed only when an output
    path already exists, or when a sink asks for ``inputs``.
    """

    def __init__(self, inputs: Iterable[str | Path] = (), exist_ok: bool = True):
        self.exist_ok = exist_ok
        self._pending: Iterable[str | Path] | None = inputs
        self._inputs: list[Path] = []
        self._inodes: set[tuple[int, int]] = set()
        self._claimed: set[Path] = set()

    @property
    def inputs(self) -> list[Path]:
        """The input paths as given (folders not expanded)."""
        if self._pending is not None:
            self._inputs = [Path(p) for p in self._pending]
            self._pending = None
            files = (f for path in self._inputs for f in (path.rglob("*") if path.is_dir() else [path]))
            self._inodes = {inode for inode in map(_inode, files) if inode is not None}
        return self._inputs

    def is_input(self, path: Path) -> bool:
        inode = _inode(path)
        return inode is not None and bool(self.inputs) and inode in self._inodes

    def is_taken(self, path: Path) -> bool:
        """Claimed by this run already, or (without ``exist_ok``) there before it: a name to avoid."""
        return path.resolve() in self._claimed or (not self.exist_ok and os.path.lexists(path))

    def _refuse_input(self, path: Path) -> None:
        if self.is_input(path):
            raise OutputConflictError(f"{path} is an input of this run: refusing to write an output over it")

    def claim(self, path: str | Path) -> Path:
        """``path``, reserved for one output; an ``OutputConflictError`` when the rules above forbid it."""
        path = Path(path)
        self._refuse_input(path)
        if path.resolve() in self._claimed:
            raise OutputConflictError(f"{path} is already an output of this run")
        if not self.exist_ok and path.is_file():  # a device (/dev/null) or a pipe is written to, not replaced
            raise OutputConflictError(f"{path} already exists (--exist-ok replaces it)")
        self._claimed.add(path.resolve())
        return path

    def unique(self, path: Path) -> Path:
        """Claim ``path``, or ``stem_1``, ``stem_2``... beside it when this run or an earlier one took the name
        (same-named inputs from two folders, a rerun into the same folder); refused when it is an input."""
        self._refuse_input(path)  # the output is aimed at the inputs: say so rather than write a name_1 beside them
        candidate, n = path, 0
        while self.is_taken(candidate):
            n += 1
            candidate = path.with_name(f"{path.stem}_{n}{path.suffix}")
        return self.claim(candidate)


def _inode(path: Path) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:  # absent or unreadable: not a file this run reads
        return None
    return st.st_dev, st.st_ino


def new_run_dir(parent: str | Path, name: str = "predict") -> Path:
    """A fresh folder ``parent/name``, else ``name2``, ``name3``... (ultralytics' ``runs/detect/predict2``
    numbering), created here so two runs started together never share one."""
    parent = ensure_dir(Path(parent))
    for n in range(1, 10_000):
        path = parent / (name if n == 1 else f"{name}{n}")
        try:
            path.mkdir()
            return path
        except FileExistsError:
            continue
        except OSError as e:
            raise SinkError(f"cannot create output directory {path}: {e.strerror}") from None
    raise SinkError(f"{parent}: no free run folder name {name}2..{name}9999")


def sequence_key(frame: Frame) -> str:
    """The sequence a frame belongs to: its video, camera or stream; all the stills of a run form one."""
    return frame.source if frame.is_video else ""


def count_sequences(files: Iterable[Path]) -> int:
    """How many sequences a run over ``files`` has: one per video, plus one for all its stills."""
    kinds = Counter(p.suffix.lower() in VIDEO_SUFFIXES for p in files)
    return kinds[True] + (1 if kinds[False] else 0)


def output_stem(source: str) -> str:
    """The file stem outputs of ``source`` are named after: "camera 0" (a live camera) -> camera0; any file or
    URL, even one named camera*.avi -> its stem."""
    camera = source.startswith("camera ") and source[7:].isdigit()
    return (source.replace(" ", "") if camera else Path(source).stem) or "stream"


def _open_for_writing(path: Path) -> Any:
    try:
        return open(path, "w", encoding="utf-8")
    except OSError as e:
        raise SinkError(f"cannot write {path}: {e.strerror}") from None


class Sink:
    location: Path  # the file or folder it writes, for the run's summary

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

    def __init__(self, directory: str | Path, guard: OutputGuard | None = None):
        self.directory = self.location = ensure_dir(Path(directory))
        self.guard = guard or OutputGuard()
        self._writers: dict[str, VideoWriter] = {}
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
        write_image(target, image)
        self.written.append(target)

    def _unique(self, target: Path) -> Path:
        """Same-named inputs (e.g. from two folders of a glob) get ``_1``, ``_2``... instead of overwriting; so do
        files already in the folder, unless the guard's ``exist_ok`` lets them be replaced."""
        return self.guard.unique(target)

    def _video_writer(self, frame: Frame, image: np.ndarray) -> VideoWriter:
        writer = self._writers.get(frame.source)
        if writer is None:
            target = self._unique(self.directory / f"{output_stem(frame.source)}.mp4")
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


class LineSink(Sink):
    """A text file written line by line and flushed per frame: complete up to the last processed frame."""

    def __init__(self, path: str | Path, guard: OutputGuard | None = None, unique: bool = False):
        """``unique``: take ``stem_1``... when the name is taken (see ``OutputGuard.unique``) instead of refusing."""
        self.guard = guard or OutputGuard()
        path = Path(path)
        ensure_dir(path.parent, for_file=path)
        self.path = self.location = self.guard.unique(path) if unique else self.guard.claim(path)
        self._file = _open_for_writing(self.path)

    def _write(self, text: str) -> None:
        try:
            self._file.write(text)
            self._file.flush()
        except OSError as e:  # disk full, device gone, quota: the one line the user needs
            raise SinkError(f"cannot write {self.path}: {e.strerror}") from None

    def close(self) -> None:
        if not self._file.closed:
            try:
                self._file.close()
            except OSError as e:
                raise SinkError(f"cannot write {self.path}: {e.strerror}") from None


class JsonlSink(LineSink):
    """One JSON object per frame (each names its source and frame, so one file holds any number of inputs)."""

    def __init__(self, path: str | Path, guard: OutputGuard | None = None, **context: Any):
        super().__init__(path, guard)
        self.context = context

    def write(self, frame: Frame, result: Result, annotated: np.ndarray | None = None) -> None:
        record = {"source": frame.source, **self.context, **result.to_dict(), "frame_index": frame.index}
        if frame.timestamp is not None:
            record["timestamp"] = round(frame.timestamp, 4)
        self._write(json.dumps(record) + "\n")


class MotSink(Sink):
    """MOTChallenge results, one line per tracked box: ``frame,id,x,y,w,h,conf,-1,-1,-1`` (frame 1-based).

    A MOT file holds one sequence (frame numbers restart with each video), so ``path`` is either a ``.txt`` file
    for a run over one sequence, or a folder that gets ``<stem>.txt`` per sequence (each video, camera or stream;
    the stills of a folder or glob together, named after their folder). A ``.txt`` path for a run that the guard
    knows to read several sequences is refused up front; a second sequence arriving anyway is a ``SinkError``.
    """

    def __init__(self, path: str | Path, guard: OutputGuard | None = None):
        self.path = self.location = Path(path)
        self.guard = guard or OutputGuard()
        self._files: dict[str, LineSink] = {}  # sequence key -> its file
        self._single: LineSink | None = None  # the .txt file, opened up front so a bad path fails before the run
        if self.path.suffix.lower() != ".txt":  # a folder: one file per sequence, opened as each one starts
            ensure_dir(self.path)
            return
        sequences = count_sequences(self.guard.inputs)
        if sequences > 1:
            raise OutputConflictError(f"{self.path}: a MOT results file holds one sequence, but this run reads "
                                      f"{sequences}; give a folder to get one <name>.txt per sequence")
        self._single = LineSink(self.path, self.guard)

    def _file_for(self, frame: Frame) -> LineSink:
        key = sequence_key(frame)
        sink = self._files.get(key)
        if sink is not None:
            return sink
        if self._single is not None:
            if self._files:
                raise SinkError(f"{self.path}: a MOT results file holds one sequence, but {frame.source} starts "
                                "another; give a folder to get one <name>.txt per sequence")
            sink = self._single
        else:
            stem = output_stem(frame.source) if key else (Path(frame.source).parent.name or "images")
            sink = LineSink(self.path / f"{stem}.txt", self.guard, unique=True)
        self._files[key] = sink
        return sink

    def write(self, frame: Frame, result: Result, annotated: np.ndarray | None = None) -> None:
        if not isinstance(result, Detections) or result.track_ids is None:
            raise SinkError("MOT output needs tracked detections (use the track task)")
        self._file_for(frame)._write("".join(
            f"{frame.index + 1},{tid},{x1:.2f},{y1:.2f},{x2 - x1:.2f},{y2 - y1:.2f},{score:.4f},-1,-1,-1\n"
            for (x1, y1, x2, y2), tid, score in zip(result.xyxy.tolist(), result.track_ids.tolist(),
                                                    result.scores.tolist())))

    def close(self) -> None:
        """Close every file, then raise the first error any of them had."""
        files = [self._single] if self._single is not None else list(self._files.values())
        errors = []
        for sink in files:
            try:
                sink.close()
            except SinkError as e:
                errors.append(e)
        if errors:
            raise errors[0]


class RecordSink(LineSink):
    """JSON objects one a line, flushed as written: events (``visionkit.zones``: crossed, entered, left) as they
    happen, or per-frame records that carry their own fields (a multi-stream run's ``stream``)."""

    def __init__(self, path: str | Path, guard: OutputGuard | None = None, **context: Any):
        super().__init__(path, guard)
        self.context = context

    def write_records(self, frame: Frame, records: list[dict[str, Any]]) -> None:
        if records:
            self._write("".join(json.dumps({"source": frame.source, **self.context, **r}) + "\n" for r in records))

    def write(self, frame: Frame, result: Result, annotated: np.ndarray | None = None) -> None:
        """Nothing per frame: records come through ``write_records``."""


def _write_atomically(path: str | Path, write: Callable[[Path], object]) -> Path:
    """``write`` a temp file beside ``path``, then rename it into place: a reader never sees half a file."""
    path = Path(path)
    ensure_dir(path.parent)
    tmp = path.with_name(path.name + ".tmp")
    try:
        write(tmp)
        tmp.replace(path)
    except OSError as e:
        raise SinkError(f"cannot write {path}: {e.strerror}") from None
    finally:
        tmp.unlink(missing_ok=True)
    return path


def write_text(path: str | Path, text: str) -> None:
    """Write a small text file atomically, as a SinkError on failure."""
    _write_atomically(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def write_json(path: str | Path, data: Any) -> None:
    """Write a JSON document atomically, as a SinkError on failure."""
    _write_atomically(path, lambda tmp: tmp.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8"))


def write_image(path: str | Path, image: np.ndarray, params: tuple[int, ...] = ()) -> Path:
    """Write an image (BGR; its format from the suffix) atomically, as a SinkError on failure; ``params``:
    OpenCV's ``imwrite`` flags (e.g. JPEG quality)."""
    path = Path(path)
    ok, buf = cv2.imencode(path.suffix or ".png", image, list(params))
    if not ok:
        raise SinkError(f"cannot write {path}: OpenCV cannot encode {path.suffix or 'an image'}")
    return _write_atomically(path, buf.tofile)


def copy_file(source: Path, path: str | Path) -> Path:
    """Copy ``source`` to ``path`` atomically, as a SinkError on failure."""
    return _write_atomically(path, lambda tmp: shutil.copyfile(source, tmp))
