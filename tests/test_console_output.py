"""What a run writes when its output is not a terminal: progress as plain lines (a CI log, nohup), a bar with
carriage returns only on a real terminal, and a reader that goes away early (``| head``) ends the run quietly."""

from __future__ import annotations

import fcntl
import io
import os
import pty
import struct
import subprocess
import termios
from pathlib import Path

import pytest
from clip_helpers import make_clip
from fault_harness import CONSOLE_SCRIPT

from visionkit.io.progress import LineProgress, is_progress_line


class Clock:
    """A clock the test moves by hand: when a line is due must not depend on how loaded the machine is."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _lines(total: int | None, interval: float, ticks: list[float]) -> list[str]:
    """Feed one update per entry of ``ticks`` (seconds since the start) and return what was printed."""
    clock, out = Clock(), io.StringIO()
    progress = LineProgress(total, "detect", "frame", stream=out, interval=interval, clock=clock)
    for t in ticks:
        clock.now = 100.0 + t
        progress.update(1)
    progress.close()
    return out.getvalue().splitlines(keepends=True)


def test_a_short_run_prints_no_progress_at_all() -> None:
    assert _lines(100, 10.0, [i * 0.09 for i in range(1, 101)]) == []  # 100 frames in 9 s


def test_a_long_run_prints_a_line_per_tenth_and_every_interval() -> None:
    lines = _lines(100, 10.0, [i * 0.5 for i in range(1, 101)])  # 100 frames in 50 s, 2 frame/s
    assert all(line.endswith("\n") and "\r" not in line for line in lines)
    assert [line.split(" (")[0] for line in lines] == [f"detect: {n}/100 frame(s)" for n in range(20, 101, 10)]
    assert lines[0] == "detect: 20/100 frame(s) (20%), 2.0 frame/s, ~40 s left\n"
    assert all(is_progress_line(line.rstrip("\n")) for line in lines)

    slow = _lines(1000, 10.0, [i * 1.0 for i in range(1, 61)])  # 60 frames in 60 s: no tenth reached, time rules
    assert [line.split(" (")[0] for line in slow] == [f"detect: {n}/1000 frame(s)" for n in (10, 20, 30, 40, 50, 60)]


def test_a_stream_of_unknown_length_reports_every_interval() -> None:
    lines = _lines(None, 10.0, [i * 1.0 for i in range(1, 31)])
    assert lines == ["detect: 10 frame(s), 1.0 frame/s\n", "detect: 20 frame(s), 1.0 frame/s\n",
                     "detect: 30 frame(s), 1.0 frame/s\n"]
    assert all(is_progress_line(line.rstrip("\n")) for line in lines)
    assert not is_progress_line("visionkit: error: clip.avi: not a video")


@pytest.fixture(scope="module")
def clip(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_clip(shared_data / "tracking/demo/vtest.avi", tmp_path_factory.mktemp("clip") / "walk.avi", 10)


def _env(**extra: str) -> dict[str, str]:
    return {**os.environ, "COLUMNS": "200", **extra}


def test_progress_off_a_terminal_is_plain_lines(clip: Path, shared_weights: Path) -> None:
    """stderr a pipe, as in CI: with VISIONKIT_PROGRESS_SECONDS=0 one plain line per frame, no carriage return."""
    run = subprocess.run([str(CONSOLE_SCRIPT), "detect", str(clip), "--model", "ssd_mobilenet_v1_coco"],
                         capture_output=True, text=True, timeout=120, env=_env(VISIONKIT_PROGRESS_SECONDS="0"))
    assert run.returncode == 0, run.stderr
    assert "\r" not in run.stderr
    progress = [line for line in run.stderr.splitlines() if is_progress_line(line)]
    assert [line.split(" (")[0] for line in progress] == [f"detect: {n}/10 frame(s)" for n in range(1, 11)]
    assert progress[-1].startswith("detect: 10/10 frame(s) (100%), ") and progress[-1].endswith(", ~0 s left")



def test_on_a_terminal_the_bar_is_drawn(clip: Path, shared_weights: Path) -> None:
    """stderr a real pseudo-terminal: tqdm's bar, redrawn with carriage returns, as before."""
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 50, 200, 0, 0))  # 200 columns, as a terminal has
    try:
        run = subprocess.run([str(CONSOLE_SCRIPT), "detect", str(clip), "--model", "ssd_mobilenet_v1_coco"],
                             stdout=subprocess.DEVNULL, stderr=follower, stdin=subprocess.DEVNULL, timeout=120,
                             env=_env())
        os.close(follower)
        follower = -1
        drawn = b""
        while True:
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # EIO: the terminal's other end is closed and everything was read
                break
            if not chunk:
                break
            drawn += chunk
    finally:
        os.close(leader)
        if follower >= 0:
            os.close(follower)
    assert run.returncode == 0, drawn
    assert b"\r" in drawn and b"10/10" in drawn


def test_a_closed_pipe_ends_quietly_with_141() -> None:
    """Nobody reads stdout at all (the reader closed its end first): no BrokenPipeError, no traceback, 128+SIGPIPE."""
    proc = subprocess.Popen([str(CONSOLE_SCRIPT), "models", "--json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            stdin=subprocess.DEVNULL)
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()
    err = proc.stderr.read()
    proc.stderr.close()
    assert proc.wait(timeout=60) == 141 and err == b""


def test_models_json_into_head_ends_quietly(shared_weights: Path) -> None:
    """`visionkit models --json | head -1` in a real shell pipeline: head's one line, and nothing on stderr."""
    shell = subprocess.run(["bash", "-c", f"'{CONSOLE_SCRIPT}' models --json | head -1; echo \"${{PIPESTATUS[0]}}\""],
                           capture_output=True, text=True, timeout=60)
    first, status = shell.stdout.splitlines()
    assert first == "[" and status in ("0", "141") and shell.stderr == ""


def test_per_image_lines_into_a_closed_pipe_end_quietly(shared_data: Path, shared_weights: Path) -> None:
    """A task run printing one line per image to a pipe nobody reads stops at the first line, quietly."""
    images = shared_data / "coco_val2017" / "images"
    proc = subprocess.Popen([str(CONSOLE_SCRIPT), "classify", str(images), "--model", "mobilenet_v2_quant"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()
    err = proc.stderr.read().decode()
    proc.stderr.close()
    assert proc.wait(timeout=120) == 141, err
    assert "Traceback" not in err and "BrokenPipe" not in err and "internal error" not in err, err
