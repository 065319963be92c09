"""Fault matrix, video outputs: runs stopped mid-way by SIGTERM (a service manager), SIGHUP (a closed terminal)
and SIGINT (Ctrl-C), through the real console script: detect, track, the demo (headless and serving its page)
and an evaluation.

Every row checks what ``check_fault`` checks (the exit code 128 + signal, exactly one ``visionkit: interrupted by
SIG...`` line, no traceback, untouched inputs), and, where the run writes a video, that it decodes frame by frame
and holds every frame that the summary line and the JSONL report: a stop loses nothing that was processed.
"""

from __future__ import annotations

import re
import signal
import socket
import urllib.request
from pathlib import Path

import pytest
from fault_harness import Fault, Outcome, Stop, assert_jsonl_valid, assert_video_valid, check_fault

MODEL = "ssd_mobilenet_v1_coco"  # the fastest real model (~10 ms/image on a CPU)
STOP_AFTER = 30  # JSONL lines: the run is well under way (3 s of the 10 fps video), far from its 795 frames


def _lines(path: Path) -> int:
    return len(path.read_text().splitlines()) if path.is_file() else 0


def _stop(signum: int, jsonl: Path) -> Stop:
    return Stop(signum, lambda _: _lines(jsonl) >= STOP_AFTER)


def _video_holds_every_line(video: Path, jsonl: Path, extra: int = 0) -> None:
    """The video decodes and has one frame per JSONL line (``extra``: frames allowed beyond them)."""
    lines = len(assert_jsonl_valid(jsonl))
    frames = assert_video_valid(video, min_frames=STOP_AFTER)
    assert lines <= frames <= lines + extra, f"{video}: {frames} frames for {lines} JSONL lines"


def _fault(case: str, tmp: Path, video: Path, data: Path) -> Fault:
    out, jsonl = tmp / "out", tmp / "r.jsonl"
    run = ["-m", MODEL, "--save", out, "--json", jsonl, "-q"]
    if case == "SIGTERM detect":
        return Fault(case, ["detect", video, *run], 143, "interrupted by SIGTERM", [video],
                     lambda: _video_holds_every_line(out / "vtest.mp4", jsonl), stop=_stop(signal.SIGTERM, jsonl))
    if case == "SIGHUP track":
        return Fault(case, ["track", video, *run, "--classes", "0"], 129, "interrupted by SIGHUP", [video],
                     lambda: _video_holds_every_line(out / "vtest.mp4", jsonl), stop=_stop(signal.SIGHUP, jsonl))
    if case == "SIGINT detect":
        return Fault(case, ["detect", video, *run], 130, "interrupted by SIGINT", [video],
                     lambda: _video_holds_every_line(out / "vtest.mp4", jsonl), stop=_stop(signal.SIGINT, jsonl))
    if case == "SIGTERM demo --headless":  # frames go to the video before the JSONL: one may be ahead
        argv = ["demo", "--source", video, "--headless", "--task", "detect", "--model", MODEL, "--save", out,
                "--json", jsonl]
        return Fault(case, argv, 143, "interrupted by SIGTERM", [video],
                     lambda: _video_holds_every_line(out / "vtest.mp4", jsonl, extra=1),
                     stop=_stop(signal.SIGTERM, jsonl))
    if case.endswith("demo --serve"):  # SIGTERM: uvicorn shuts down and re-raises it; SIGHUP: ours alone
        port = _free_port()
        signum = signal.SIGTERM if case.startswith("SIGTERM") else signal.SIGHUP
        argv = ["demo", "--source", video, "--loop", "--serve", "--port", str(port), "--model", MODEL]
        return Fault(case, argv, 128 + signum, f"interrupted by {signal.Signals(signum).name}", [video],
                     stop=Stop(signum, lambda printed: _answers(f"http://127.0.0.1:{port}/stats")))
    if case == "SIGTERM eval track":  # stopped in the second sequence: no half-written report
        report, first = tmp / "scores.json", data / "MOT17-02-FRCNN"
        argv = ["eval", "track", "-m", MODEL, "--classes", "0", "--gt", first, data / "PETS09-S2L1", "--json", report]

        def no_report() -> None:
            assert not report.exists() and not list(tmp.glob("scores.json*"))

        return Fault(case, argv, 143, "interrupted by SIGTERM", [first], no_report,
                     stop=Stop(signal.SIGTERM, lambda printed: "MOT17-02-FRCNN: HOTA" in printed))
    raise AssertionError(case)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1):
            return True
    except OSError:
        return False


CASES = ["SIGTERM detect", "SIGHUP track", "SIGINT detect", "SIGTERM demo --headless", "SIGTERM demo --serve",
         "SIGHUP demo --serve", "SIGTERM eval track"]


def _summary_frames(outcome: Outcome) -> int | None:
    match = re.search(r"^\w+: (\d+) frame\(s\)", outcome.stderr, re.MULTILINE)
    return int(match.group(1)) if match else None


@pytest.mark.parametrize("case", CASES)
def test_video_fault(case: str, tmp_path: Path, shared_data: Path, shared_weights: Path) -> None:
    fault = _fault(case, tmp_path, shared_data / "tracking/demo/vtest.avi", shared_data / "tracking")
    outcome = check_fault(fault)
    if case.endswith(("detect", "track")) and "eval" not in case:
        # the summary still comes, after the interrupted line, and counts exactly the frames saved
        assert _summary_frames(outcome) == _lines(tmp_path / "r.jsonl"), outcome.stderr
        lines = outcome.stderr_lines
        assert lines[0].startswith("visionkit: interrupted by SIG") and "saved to" in lines[-1], lines
