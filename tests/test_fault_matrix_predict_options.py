"""Fault matrix, the predict options of issue #15 item 4 (--save-txt, --save-conf, --save-crop, --vid-stride,
--line-width, --classes by name, --tracker FILE.yaml), through the real console script.

Every row checks what ``check_fault`` checks: the documented exit code, exactly one stderr line naming the value
and why, no traceback, inputs byte-identical (a tracker YAML is read, never changed; a crop is never written over
an input image).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from fault_harness import Fault, check_fault

SSD = "ssd_mobilenet_v1_coco"
YAML_FAULTS = {  # file text -> what the one line says
    "unknown key": ("tracker_type: bytetrack\ntrack_bufer: 60\n", "unknown bytetrack parameter(s) track_bufer; "
                                                                    "did you mean track_buffer?"),
    "wrong type": ("tracker_type: bytetrack\nmatch_thresh: high\n", "match_thresh must be a number between 0 and 1, "
                                                                      "got 'high'"),
    "threshold above 1": ("tracker_type: bytetrack\nnew_track_thresh: 1.5\n", "got 1.5"),
    "fractional buffer": ("tracker_type: bytetrack\ntrack_buffer: 30.5\n", "track_buffer must be a whole number"),
    "other tracker type": ("tracker_type: deepsort\n", "tracker_type 'deepsort' is not a tracker visionkit runs; "
                                                       "set tracker_type to bytetrack or botsort"),
    "no tracker type": ("track_buffer: 60\n", "has no tracker_type"),
    "botsort key in bytetrack": ("tracker_type: bytetrack\ngmc_method: orb\n", "unknown bytetrack parameter(s) "
                                                                                "gmc_method"),
    "reid on": ("tracker_type: botsort\nwith_reid: true\n", "ReID needs an extra appearance model"),
    "a list": ("- tracker_type: bytetrack\n", "tracker settings must be a mapping"),
    "bad syntax": ("tracker_type: [bytetrack\n", "not valid YAML at line 2"),
    "python tag": ("!!python/object/apply:os.system ['touch PWNED']\n", "could not determine a constructor"),
}
CASES = ["vid-stride 0", "line-width 0", "unknown class name", "empty class in list", "class id too large",
         "save-conf alone", "crop over an input", "crops from a class map", "labels folder is a file",
         "tracker yaml missing", *[f"yaml {k}" for k in YAML_FAULTS]]


def _fault(case: str, tmp: Path, image: Path, clip: Path) -> Fault:
    run = ["detect", image, "-m", SSD]
    if case == "vid-stride 0":
        return Fault(case, ["detect", clip, "-m", SSD, "--vid-stride", "0"], 2,
                     "argument --vid-stride: must be a positive integer, got 0", [clip])
    if case == "line-width 0":
        return Fault(case, [*run, "--save", tmp / "out", "--line-width", "0"], 2,
                     "argument --line-width: must be a positive integer, got 0")
    if case == "unknown class name":
        return Fault(case, [*run, "--classes", "chair,persn"], 2,
                     f"classes: {SSD} has no class 'persn'; did you mean person?")
    if case == "empty class in list":
        return Fault(case, [*run, "--classes", "chair,,tv"], 2, "argument --classes: must be a class id or name")
    if case == "class id too large":
        return Fault(case, [*run, "--classes", "person,500"], 2, "classes 500:")
    if case == "save-conf alone":
        return Fault(case, [*run, "--save-conf"], 2, "--save-conf adds scores to the label files of --save-txt")
    if case == "crop over an input":  # the crop of a chair would be named folder/crops/chair/room.jpg: the input
        inside = tmp / "folder/crops/chair/room.jpg"
        inside.parent.mkdir(parents=True)
        shutil.copyfile(image, inside)
        return Fault(case, ["detect", inside, "-m", SSD, "--save-crop", "--save", tmp / "folder"], 2,
                     f"{inside} is an input of this run: refusing to write an output over it", [inside])
    if case == "crops from a class map":
        return Fault(case, ["segment", image, "-m", "deeplabv3_mnv2_257", "--save-crop", "--save", tmp / "seg"], 1,
                     "crops are cut from boxes; a semantic_mask has none", [image])
    if case == "labels folder is a file":
        (tmp / "run").mkdir()
        (tmp / "run/labels").write_text("a file where the label folder goes\n")
        return Fault(case, [*run, "--save-txt", "--save", tmp / "run"], 1,
                     f"cannot create output directory {tmp / 'run/labels'}", [tmp / "run/labels"])
    track = ["track", clip, "-m", SSD, "--tracker"]
    if case == "tracker yaml missing":
        return Fault(case, [*track, tmp / "none.yaml"], 2, f"{tmp / 'none.yaml'}: cannot read the tracker settings")
    text, says = YAML_FAULTS[case.removeprefix("yaml ")]
    settings = tmp / "tracker.yaml"
    settings.write_text(text)
    return Fault(case, [*track, settings, "--mot", tmp / "mot.txt"], 2, says, [settings, clip])


@pytest.mark.parametrize("case", CASES)
def test_predict_option_fault(case: str, shared_weights: Path, shared_data: Path, tmp_path: Path,
                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VISIONKIT_WEIGHTS", str(shared_weights))
    image = tmp_path / "room.jpg"
    shutil.copyfile(shared_data / "coco_val2017/images/000000000139.jpg", image)
    clip = shared_data / "action/v_Basketball_g01_c01.avi"
    outcome = check_fault(_fault(case, tmp_path, image, clip), cwd=tmp_path)
    if case.startswith(("yaml", "tracker")):  # refused before the run: no output, and the YAML built nothing
        assert not (tmp_path / "mot.txt").exists() and not (tmp_path / "PWNED").exists(), outcome.stderr
    if case.startswith("yaml") and case != "yaml reid on":  # the line names the file
        assert f"error: {tmp_path / 'tracker.yaml'}: " in outcome.stderr
