"""The README's accuracy table, re-measured: each row runs ``visionkit eval`` on the shared development split (as a
user would, the console script with ``--json``) and the table is written for ``readme_figures.py``.

    python benchmarks/accuracy.py                 # every row (about 5 minutes on 2 CPU cores)
    python benchmarks/accuracy.py --only pose     # rows whose task is pose
    python benchmarks/readme_figures.py           # then rewrite README.md's <!-- figures:accuracy --> section

The "reference run" and "published" cells are not re-run here: they are the reference pipelines' figures (checked
against visionkit in tests/test_accuracy_coco.py and the parity tests) and the model cards' numbers.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from _common import SHARED, setup_env
from readme_figures import write_figures

COLUMNS = ("model", "task", "data", "visionkit", "reference run", "published")
TASKS = ("detect", "classify", "pose", "segment")  # the table's order
COCO = SHARED / "data/coco_val2017"
COCO_IMAGES = ["--images", str(COCO / "images")]
INSTANCES = ["--annotations", str(COCO / "annotations/instances_val2017.json")]
KEYPOINTS = ["--annotations", str(COCO / "annotations/person_keypoints_val2017.json")]
CAMVID = ["--camvid", str(SHARED / "data/camvid")]
IMAGENET = ["--images", str(SHARED / "data/imagenet_sample/images"), "--labels",
            str(SHARED / "data/imagenet_sample/labels.csv")]


@dataclass
class Row:
    """One eval run and the table rows it fills (``cells``: the report -> the rows' visionkit cells)."""

    task: str
    argv: list[str]
    rows: list[tuple[str, str, str, str]]  # model, data, reference run, published
    cells: Callable[[dict], list[str]]


def _map(r: dict) -> list[str]:
    return [f"**mAP50-95 {r['map']:.3f}, mAP50 {r['map50']:.3f}**"]


def _camvid(r: dict) -> list[str]:
    return [f"**car IoU {r['iou']['car']:.3f}, person {r['iou']['person']:.3f}**"]


ROWS = [
    Row("detect", ["--model", "yolov5n", *COCO_IMAGES, *INSTANCES],
        [("`yolov5n` (ONNX)", "COCO val2017, 40 images", "0.345 / 0.524 (YOLOv5's own pipeline)",
          "28.0 mAP (full val2017)")], _map),
    Row("detect", ["--model", "ssd_mobilenet_v1_coco", *COCO_IMAGES, *INSTANCES],
        [("`ssd_mobilenet_v1_coco` (ONNX)", "same", "0.229 / 0.374 (TFLite interpreter)", "18.0 mAP (full val2017)")],
        _map),
    Row("classify", ["--model", "mobilenet_v2_quant", *IMAGENET],
        [("`mobilenet_v2_quant` (ONNX)", "ImageNet sample, 100 images", "86 / 97 (TFLite interpreter)",
          "70.8 / 89.9 (ImageNet val)")],
        lambda r: [f"**top-1 {r['top1']}/{r['images']}, top-5 {r['top5']}/{r['images']}**"]),
    Row("pose", ["--model", "movenet_lightning", "--detector", "yolov5n", *COCO_IMAGES, *KEYPOINTS],
        [("`movenet_lightning` (ONNX)", "COCO person keypoints, {persons} persons on GT crops",
          "0.780 / 0.869 (onnxruntime)", "-"),
         ("`yolov5n` → `movenet_lightning`", "COCO person keypoints, {images} images", "-", "-")],
        lambda r: [f"**PCK@0.1 {r['pck']['pck@0.1']:.3f}, PCK@0.2 {r['pck']['pck@0.2']:.3f}**",
                   f"**OKS mAP {r['map']:.3f}, mAP50 {r['map50']:.3f}**"]),
    Row("segment", ["--model", "deeplabv3_mnv2_257", *CAMVID],
        [("`deeplabv3_mnv2_257` (ONNX)", "CamVid, 30 images (car, person)", "0.62 / 0.08 (onnxruntime)", "-")],
        _camvid),
    Row("segment", ["--model", "deeplabv3_mnv2_513_quant", *CAMVID],
        [("`deeplabv3_mnv2_513_quant` (ONNX)", "same", "0.71 / 0.06 (onnxruntime)", "-")], _camvid),
    Row("segment", ["--model", "deeplabv3_mnv2_257", *COCO_IMAGES, *INSTANCES],
        [("`deeplabv3_mnv2_257`", "COCO val2017 → VOC classes, 40 images", "-", "-")],
        lambda r: [f"**mIoU {r['miou']:.3f}**"]),
    Row("segment", ["--model", "deeplabv3_mnv2_513_quant", *COCO_IMAGES, *INSTANCES],
        [("`deeplabv3_mnv2_513_quant`", "same", "-", "-")], lambda r: [f"**mIoU {r['miou']:.3f}**"]),
]


def measure(row: Row, tmp: Path) -> list[list[str]]:
    """Run the row's eval through the console script; its table rows."""
    report = tmp / "report.json"
    command = [str(Path(sys.executable).with_name("visionkit")), "eval", row.task, *row.argv, "--json", str(report),
               "--exist-ok"]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command[1:])} failed: {done.stderr.strip().splitlines()[-1:]}")
    result = json.loads(report.read_text())
    facts = {"persons": result.get("pck", {}).get("persons", ""), "images": result.get("images", "")}
    cells = row.cells(result)
    print(f"eval {row.task} {row.argv[1]}: {'; '.join(cells)}", flush=True)
    return [[model, row.task, data.format(**facts), cell, reference, published]
            for (model, data, reference, published), cell in zip(row.rows, cells)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", choices=TASKS, help="re-measure one task's rows only")
    args = parser.parse_args()
    setup_env()
    with tempfile.TemporaryDirectory() as tmp:
        for i, task in enumerate(TASKS):
            if args.only not in (None, task):
                continue
            rows = [cells for row in ROWS if row.task == task for cells in measure(row, Path(tmp))]
            # one part per task, so --only rewrites just its rows; parts are joined in file-name order
            print(write_figures("accuracy", COLUMNS, rows, "python benchmarks/accuracy.py", part=f"{i}-{task}"))

if __name__ == "__main__":
    main()
