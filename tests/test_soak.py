"""The soak benchmark (benchmarks/soak.py) on 1 000 frames: detect -> track -> annotated video + JSONL must hold
memory, file descriptors and threads flat, and stopping the stream early must leave no thread behind."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from fault_harness import assert_jsonl_valid, assert_video_valid

SOAK = Path(__file__).resolve().parents[1] / "benchmarks" / "soak.py"


def run_soak(*args: str, timeout: float = 600) -> tuple[int, dict]:
    """benchmarks/soak.py in a fresh process (its own RSS, fds and threads, none of pytest's); (exit code, report)."""
    proc = subprocess.run([sys.executable, str(SOAK), "--json", *args], capture_output=True, text=True,
                          timeout=timeout)
    assert proc.stdout.strip(), proc.stderr
    return proc.returncode, json.loads(proc.stdout)


def test_soak_1000_frames_is_flat(shared_weights: Path, shared_data: Path, tmp_path: Path) -> None:
    code, report = run_soak("--frames", "1000", "--every", "250", "--warmup", "100", "--out", str(tmp_path),
                            "--video", str(shared_data / "tracking" / "demo" / "vtest.avi"))
    assert report["warm"]["frames"] == 100 and report["last"]["frames"] == 1000
    assert report["rss_growth_mb"] < 50, report
    assert abs(report["fd_growth"]) <= 2, report
    assert abs(report["thread_growth"]) <= 2 and abs(report["os_thread_growth"]) <= 2, report
    assert report["threads_left"] <= 0, report
    assert code == 0 and report["passed"], report["failures"]
    # The outputs are whole: one annotated video and one JSONL line per frame, numbered on across the laps.
    assert assert_video_valid(tmp_path / "vtest.mp4") == 1000
    records = assert_jsonl_valid(tmp_path / "soak.jsonl")
    assert [r["frame_index"] for r in records] == list(range(1000))
    assert all("track_id" in d for r in records for d in r["detections"])


def test_soak_fails_when_a_target_is_missed(shared_weights: Path, shared_data: Path) -> None:
    """The pass/fail is real: an impossible RSS target makes the script exit 1 and name what was missed."""
    code, report = run_soak("--frames", "150", "--every", "50", "--warmup", "50", "--max-rss-growth", "-1",
                            "--video", str(shared_data / "tracking" / "demo" / "vtest.avi"))
    assert code == 1 and not report["passed"]
    assert any(f.startswith("RSS grew") for f in report["failures"]), report["failures"]
