"""The fault matrix's common checks: run the real console script on a bad input, then assert what a user must
see and find afterwards - the documented exit code, exactly one stderr line and no traceback, outputs that are
still valid (every video decodes frame by frame, every JSONL line parses, MOT files load in TrackEval, COCO
results load in pycocotools) and inputs byte-identical to before.

Each area's matrix (``tests/test_fault_matrix_<area>.py``) is a parametrised table of ``Fault`` cases run
through ``check_fault``.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import cv2

from visionkit.io.progress import is_progress_line

CONSOLE_SCRIPT = Path(sys.executable).with_name("visionkit")


@dataclass
class Outcome:
    code: int
    stdout: str
    stderr: str

    @property
    def stderr_lines(self) -> list[str]:
        """Non-empty stderr lines, without progress-bar redraws (tqdm writes ``\\r``)."""
        return [line for line in self.stderr.replace("\r", "\n").splitlines() if line.strip()]


@dataclass
class Stop:
    """Send ``signum`` to a run once ``ready(printed)`` holds (``printed``: its stdout so far; or look at its output
    files), as a service manager, a closed terminal or the OOM killer would."""

    signum: int
    ready: Callable[[str], bool]


def run_cli(*argv: str | Path, cwd: Path | None = None, env: dict[str, str] | None = None,
            timeout: float = 300, preexec: Callable[[], None] | None = None, stop: Stop | None = None) -> Outcome:
    """``visionkit argv...`` as a user runs it: the installed console script in a fresh process, no TTY; with
    ``stop``, signalled mid-run (the run must still be going when ``stop.ready`` first holds)."""
    full_env = {**os.environ, "COLUMNS": "200", "PYTHONUNBUFFERED": "1", **(env or {})}
    with tempfile.TemporaryDirectory() as tmp:  # output to files, read while it runs: no pipe to drain
        out, err = Path(tmp, "stdout"), Path(tmp, "stderr")
        with out.open("w") as out_file, err.open("w") as err_file:
            proc = subprocess.Popen([str(CONSOLE_SCRIPT), *map(str, argv)], cwd=cwd, env=full_env, stdout=out_file,
                                    stderr=err_file, stdin=subprocess.DEVNULL, preexec_fn=preexec)
        try:
            if stop is not None:
                deadline = time.monotonic() + timeout
                while not stop.ready(out.read_text()) and proc.poll() is None and time.monotonic() < deadline:
                    time.sleep(0.05)
                assert proc.poll() is None, "the run ended before it could be stopped"
                proc.send_signal(stop.signum)
            proc.wait(timeout=timeout)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        return Outcome(proc.returncode, out.read_text(), err.read_text())


def interrupt_at_line(*argv: str | Path, prefix: str, timeout: float = 300) -> Outcome:
    """Run ``visionkit argv...`` and send it SIGINT as soon as a stderr line starts with ``prefix`` (e.g. the per-epoch
    summary line of a training run off a TTY); the outcome holds the stderr that came after that line."""
    import signal

    proc = subprocess.Popen([str(CONSOLE_SCRIPT), *map(str, argv)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, stdin=subprocess.DEVNULL)
    assert proc.stderr is not None
    for line in proc.stderr:
        if line.startswith(prefix):
            proc.send_signal(signal.SIGINT)
            break
    out, rest = proc.communicate(timeout=timeout)
    return Outcome(proc.returncode, out, rest)


def snapshot(paths: Iterable[Path]) -> dict[Path, str]:
    """sha256 of every file under ``paths`` (files or folders), to prove inputs were not modified."""
    digests: dict[Path, str] = {}
    for path in paths:
        for f in sorted(path.rglob("*")) if path.is_dir() else [path]:
            if f.is_file():
                digests[f] = hashlib.sha256(f.read_bytes()).hexdigest()
    return digests


def assert_unchanged(before: dict[Path, str]) -> None:
    after = snapshot(before)
    changed = sorted(str(p) for p in before if after.get(p) != before[p])
    assert not changed, f"inputs modified: {changed}"


def assert_one_line(outcome: Outcome, code: int, contains: str = "") -> str:
    """The exit code, exactly one stderr line (a summary line may follow it) and no traceback; returns the line."""
    assert outcome.code == code, f"exit {outcome.code}, expected {code}; stderr:\n{outcome.stderr}"
    assert "Traceback" not in outcome.stderr and "Traceback" not in outcome.stdout, outcome.stderr
    errors = [line for line in outcome.stderr_lines if line.startswith(("visionkit: error", "visionkit: interrupted",
                                                                         "visionkit: internal error"))]
    assert len(errors) == 1, f"expected one error line, got {len(errors)}:\n{outcome.stderr}"
    assert "internal error" not in errors[0], errors[0]
    others = [line for line in outcome.stderr_lines if line not in errors and not _is_summary(line)]
    assert not others, f"stray stderr lines (library logs?): {others}"
    assert contains in errors[0], f"{contains!r} not in {errors[0]!r}"
    return errors[0]


def _is_summary(line: str) -> bool:
    """visionkit's own closing or status lines (summary, 'no SOURCE given', warnings it writes itself, which its
    logging prints as ``visionkit: WARNING: ...``, the demo's ``visionkit demo: ...`` status lines, the progress
    lines of a run longer than ``VISIONKIT_PROGRESS_SECONDS`` off a terminal)."""
    return line.lower().startswith("visionkit: warning") or line.startswith(("visionkit demo: ", "no SOURCE given")) \
        or (": " in line and " frame(s)" in line) or is_progress_line(line)


def assert_video_valid(path: Path, min_frames: int = 1) -> int:
    """Every frame of ``path`` decodes; returns the count (at least ``min_frames``)."""
    cap = cv2.VideoCapture(str(path))
    assert cap.isOpened(), f"{path} does not open"
    frames = 0
    while True:
        ok, image = cap.read()
        if not ok:
            break
        assert image is not None and image.size, f"{path}: empty frame {frames}"
        frames += 1
    cap.release()
    assert frames >= min_frames, f"{path}: {frames} frames decode, expected at least {min_frames}"
    return frames


def assert_jsonl_valid(path: Path) -> list[dict]:
    records = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError as e:
            raise AssertionError(f"{path}:{n} is not JSON: {e}") from None
    return records


def assert_mot_valid(path: Path) -> int:
    """A MOTChallenge results file (``frame,id,x,y,w,h,conf,...``, numeric, frame 1-based) with no (frame, id) pair
    twice: what TrackEval needs of one sequence. Returns the row count."""
    import numpy as np

    text = path.read_text()
    if not text.strip():
        return 0
    rows = np.loadtxt(path, delimiter=",", ndmin=2)
    assert rows.shape[1] >= 7, f"{path}: MOT rows need at least 7 columns, got {rows.shape[1]}"
    assert (rows[:, 0] >= 1).all(), f"{path}: frame numbers are 1-based"
    pairs = {(int(f), int(i)) for f, i in rows[:, :2]}
    assert len(pairs) == len(rows), f"{path}: {len(rows) - len(pairs)} duplicate frame/id pairs"
    return len(rows)


def assert_coco_valid(path: Path, annotations: Path) -> int:
    """COCO results that pycocotools loads against ``annotations``; returns the detection count."""
    from pycocotools.coco import COCO

    rows = json.loads(path.read_text())
    if rows:
        COCO(str(annotations)).loadRes(str(path))
    return len(rows)


@dataclass
class Fault:
    """One row of a fault matrix: the command, what it must exit with and say, and what must hold after."""

    id: str
    argv: list[str | Path]
    code: int
    says: str = ""
    inputs: list[Path] = field(default_factory=list)
    outputs_valid: Callable[[], None] | None = None
    env: dict[str, str] | None = None
    stop: Stop | None = None  # signal the run mid-way
    preexec: Callable[[], None] | None = None  # run in the child before exec, e.g. ``limit_file_size(n)``


def limit_file_size(max_bytes: int) -> Callable[[], None]:
    """A ``preexec`` that makes every write past ``max_bytes`` fail with EFBIG ("File too large"), like a full disk,
    even for root (whom permission bits never stop). Python ignores SIGXFSZ, so the write returns the error."""
    import resource

    return lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (max_bytes, max_bytes))


def check_fault(fault: Fault, cwd: Path | None = None) -> Outcome:
    before = snapshot(fault.inputs)
    outcome = run_cli(*fault.argv, cwd=cwd, env=fault.env, preexec=fault.preexec, stop=fault.stop)
    assert_one_line(outcome, fault.code, fault.says)
    assert_unchanged(before)
    if fault.outputs_valid is not None:
        fault.outputs_valid()
    return outcome


class _Call:
    """Unpickles as ``func(*args)``: what a malicious checkpoint does."""

    def __init__(self, func: Callable[..., object], *args: object):
        self.func, self.args = func, args

    def __reduce__(self) -> tuple[Callable[..., object], tuple[object, ...]]:
        return self.func, self.args


def malicious_checkpoint(path: Path, marker: Path, how: str = "os.system") -> Path:
    """A checkpoint-shaped file (``torch.save({"model": ...})``) whose unpickling creates ``marker``: through
    ``os.system``, ``eval``, ``subprocess``, an allow-listed model class's constructor (``DetectionModel(cfg)``
    evaluates the cfg's ``activation``), or as a plain ``pickle`` (protocol 5) file."""
    import pickle

    import torch

    if how == "model constructor":
        from ultralytics.nn.tasks import DetectionModel

        cfg = {"nc": 1, "activation": f"__import__('os').system('touch {marker}')",
               "backbone": [[-1, 1, "Conv", [16, 3, 2]]], "head": [[-1, 1, "Detect", ["nc"]]]}
        payload = _Call(DetectionModel, cfg)
    else:
        touch = _Call(os.system, f"touch {marker}")
        payload = {"os.system": touch, "plain pickle": touch,
                   "eval": _Call(eval, f"open({str(marker)!r}, 'w').close()"),
                   "subprocess": _Call(subprocess.call, ["touch", str(marker)])}[how]
    if how == "plain pickle":
        path.write_bytes(pickle.dumps({"model": payload}))
    else:
        torch.save({"model": payload}, path)
    return path

