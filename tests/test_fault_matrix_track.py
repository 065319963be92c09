"""Fault matrix, `visionkit track`'s tracker state, lines and zones and several sources, through the real console
script: a state file that cannot be used, bad --line/--zone/--events, options that take one source, a missing
source among several, and a run stopped by SIGTERM that still writes its --save-state.

Every row checks what ``check_fault`` checks (the exit code, exactly one stderr line, no traceback, untouched
inputs) and that nothing was written where the command line was refused before the run.
"""

from __future__ import annotations

import json
import signal
from pathlib import Path

import pytest
from fault_harness import Fault, Stop, assert_jsonl_valid, assert_mot_valid, check_fault

from visionkit.composites.track import Tracker

MODEL = "ssd_mobilenet_v1_coco"
PETS_FIRST = "PETS09-S2L1/img1/000001.jpg"
CASES = ["state of another tracker", "state not json", "state missing", "line of 3 numbers", "zone of 2 points",
         "events without line", "resume with two sources", "missing source among several", "heatmap file, two sources",
         "batch-streams, one source", "heatmap folder is a file", "heatmap over the input", "SIGTERM saves state"]


def _fault(case: str, tmp: Path, video: Path) -> Fault:
    state, mot, jsonl = tmp / "state.json", tmp / "r.txt", tmp / "r.jsonl"
    Tracker().save_state(state)
    run = ["track", video, "-m", MODEL, "--mot", mot]
    if case == "state of another tracker":
        return Fault(case, [*run, "--tracker", "botsort", "--resume-state", state], 2,
                     f"{state}: tracker state is from a 'bytetrack' tracker", [state, video])
    if case == "state not json":
        state.write_bytes(b"\x80\x04garbage")
        return Fault(case, [*run, "--resume-state", state], 2, f"{state}: not a visionkit tracker state", [state])
    if case == "state missing":
        return Fault(case, [*run, "--resume-state", tmp / "none.json"], 2,
                     f"{tmp / 'none.json'}: cannot read the tracker state")
    if case == "line of 3 numbers":
        return Fault(case, [*run, "--line", "1,2,3"], 2, "--line '1,2,3': expected 4 numbers", [video])
    if case == "zone of 2 points":
        return Fault(case, [*run, "--zone", "0,0,1,1"], 2, "--zone '0,0,1,1': expected at least 3 points")
    if case == "events without line":
        return Fault(case, [*run, "--events", jsonl], 2, "--events needs at least one --line or --zone")
    if case == "resume with two sources":
        return Fault(case, ["track", video, video, "-m", MODEL, "--mot", tmp / "mot", "--resume-state", state], 2,
                     "--resume-state and --save-state take one source", [state, video])
    if case == "missing source among several":
        return Fault(case, ["track", video, tmp / "none.mp4", "-m", MODEL, "--mot", tmp / "mot"], 1,
                     f"{tmp / 'none.mp4'}", [video])
    if case == "heatmap file, two sources":
        return Fault(case, ["track", video, video, "-m", MODEL, "--mot", tmp / "mot", "--heatmap", tmp / "h.png"], 2,
                     "--heatmap with several streams takes a folder", [video])
    if case == "batch-streams, one source":
        return Fault(case, [*run, "--batch-streams"], 2, "--batch-streams batches several sources", [video])
    if case == "heatmap folder is a file":
        jsonl.write_text("")
        return Fault(case, [*run, "--heatmap", jsonl], 1, f"cannot create output directory {jsonl}", [video, jsonl])
    if case == "heatmap over the input":
        image = tmp / "still.png"
        image.write_bytes((video.parent.parent / PETS_FIRST).read_bytes())
        return Fault(case, ["track", image, "-m", MODEL, "--heatmap", image], 2,
                     f"{image} is an input of this run", [video, image])
    assert case == "SIGTERM saves state"
    stop = Stop(signal.SIGTERM, lambda _: jsonl.is_file() and len(jsonl.read_text().splitlines()) >= 20)

    def saved_after_last_frame() -> None:
        assert_mot_valid(mot)
        frames = len(assert_jsonl_valid(jsonl))
        assert json.loads(state.read_text())["frame_id"] >= frames >= 20  # the tracker ran at least that far

    return Fault(case, [*run, "--classes", "1", "--json", jsonl, "--save-state", state, "-q"], 143,
                 "interrupted by SIGTERM", [video], saved_after_last_frame, stop=stop)


@pytest.mark.parametrize("case", CASES)
def test_fault(shared_data: Path, shared_weights: Path, tmp_path: Path, case: str) -> None:
    fault = _fault(case, tmp_path, shared_data / "tracking" / "demo" / "vtest.avi")
    check_fault(fault)
    if fault.code == 2 or case == "missing source among several":  # refused before the run: no output
        assert not (tmp_path / "r.txt").exists() and not (tmp_path / "mot").exists()
        assert not (tmp_path / "r.jsonl").exists()
