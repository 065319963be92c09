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
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import cv2

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


def run_cli(*argv: str | Path, cwd: Path | None = None, env: dict[str, str] | None = None,
            timeout: float = 300, preexec: Callable[[], None] | None = None) -> Outcome:
    """``visionkit argv...`` as a user runs it: the installed console script in a fresh process, no TTY."""
    full_env = {**os.environ, "COLUMNS": "200", **(env or {})}
    proc = subprocess.run([str(CONSOLE_SCRIPT), *map(str, argv)], cwd=cwd, env=full_env, capture_output=True,
                          text=True, timeout=timeout, stdin=subprocess.DEVNULL, preexec_fn=preexec)
    return Outcome(proc.returncode, proc.stdout, proc.stderr)


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
    """visionkit's own closing or status lines (summary, 'no SOURCE given', warnings it writes itself)."""
    return line.startswith("visionkit: warning") or (": " in line and " frame(s)" in line) or \
        line.startswith("no SOURCE given")


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
    preexec: Callable[[], None] | None = None  # run in the child before exec, e.g. ``limit_file_size(n)``


def limit_file_size(max_bytes: int) -> Callable[[], None]:
    """A ``preexec`` that makes every write past ``max_bytes`` fail with EFBIG ("File too large"), like a full disk,
    even for root (whom permission bits never stop). Python ignores SIGXFSZ, so the write returns the error."""
    import resource

    return lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (max_bytes, max_bytes))


def check_fault(fault: Fault, cwd: Path | None = None) -> Outcome:
    before = snapshot(fault.inputs)
    outcome = run_cli(*fault.argv, cwd=cwd, env=fault.env, preexec=fault.preexec)
    assert_one_line(outcome, fault.code, fault.says)
    assert_unchanged(before)
    if fault.outputs_valid is not None:
        fault.outputs_valid()
    return outcome
