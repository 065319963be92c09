"""The README's runtime table: ``visionkit bench`` of two models, repeated, medians kept.

  yolov8n       seeded random weights (tests/random_models.py: BatchNorm calibrated on bus.jpg and zidane.jpg,
                class bias raised, so NMS sees a realistic number of boxes), every runtime, fp32 and bf16, next to
                ultralytics' own PyTorch, ONNX and OpenVINO paths; timed on bus.jpg and zidane.jpg
  yolov5n.onnx  the real shared weights, every runtime that reads ONNX, fp32 and bf16, next to onnxruntime
                direct; timed on the first 8 shared COCO images and scored (mAP50-95) on all 40

Each model is benched ``--repeat`` times (fresh sides each time); every figure in the result is the median over
the repeats. Writes benchmarks/results/runtimes.json, prints the markdown and, with --readme, puts it between
the ``<!-- figures:runtimes -->`` markers of README.md.

    python benchmarks/bench_runtimes.py --repeat 3 --runs 10 --readme
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
from pathlib import Path
from typing import Any

import _common as common

common.setup_env()

from visionkit.bench import render_markdown, run_bench  # noqa: E402

RESULTS = common.ROOT / "benchmarks" / "results" / "runtimes.json"
# The rendered table, which benchmarks/readme_figures.py keeps README's figures:runtimes section in sync with.
FIGURES = common.ROOT / "benchmarks" / "results" / "runtimes.figures.json"
MARKERS = ("<!-- figures:runtimes -->", "<!-- /figures:runtimes -->")


def median_report(reports: list[dict[str, Any]]) -> dict[str, Any]:
    """The first report with every number of every row replaced by its median over ``reports`` (rows matched by
    side, runtime and precision; a row missing from a repeat is kept from the repeats that have it)."""

    def median_of(values: list[Any]) -> Any:
        if all(isinstance(v, dict) for v in values):
            return {k: median_of([v[k] for v in values if k in v]) for k in values[0]}
        if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
            return round(statistics.median(values), 3)
        return values[0]

    out = dict(reports[0])
    rows = []
    for row in reports[0]["results"]:
        key = (row["side"], row["runtime"], row["precision"])
        same = [r for rep in reports for r in rep["results"] if (r["side"], r["runtime"], r["precision"]) == key]
        rows.append({k: median_of([r[k] for r in same]) if k != "accuracy" or row[k] else row[k] for k in row})
    out["results"] = rows
    out["repeats"] = len(reports)
    out["conditions"] = {**reports[0]["conditions"],
                         "load_average": [rep["conditions"]["load_average"][0] for rep in reports]}
    return out


def write_readme(markdown: str) -> None:
    readme = common.ROOT / "README.md"
    text = readme.read_text()
    start, end = text.index(MARKERS[0]) + len(MARKERS[0]), text.index(MARKERS[1])
    readme.write_text(text[:start] + "\n" + markdown + "\n" + text[end:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=3, help="bench runs per model; medians kept (default 3)")
    parser.add_argument("--runs", type=int, default=10, help="alternating rounds per bench run (default 10)")
    parser.add_argument("--batch", default="1,8", help="throughput batch sizes (default 1,8)")
    parser.add_argument("--readme", action="store_true", help="rewrite README.md's figures:runtimes section")
    args = parser.parse_args()
    batches = [int(b) for b in args.batch.split(",")]
    coco = common.SHARED / "data" / "coco_val2017"
    with tempfile.TemporaryDirectory() as tmp:
        yolov8n = common.build_random_yolo("yolov8n.yaml", Path(tmp) / "yolov8n-random.pt")
        cases = {"yolov8n (random weights)": dict(model=str(yolov8n)),
                 "yolov5n.onnx": dict(model=str(common.SHARED / "weights" / "yolov5n.onnx"), data=coco)}
        reports = {}
        for name, kwargs in cases.items():
            repeats = []
            for i in range(args.repeat):
                print(f"{name}: repeat {i + 1}/{args.repeat}", flush=True)
                report = run_bench(**kwargs, runtimes=("torch", "onnx", "openvino", "tflite", "opencv"),
                                   precisions=("fp32", "bf16"), batches=batches, runs=args.runs,
                                   progress=lambda line: print("  " + line, flush=True))
                repeats.append(report.to_dict())
            reports[name] = median_report(repeats)
            reports[name]["model"] = name
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(reports, indent=2) + "\n")
    markdown = "\n\n".join(render_markdown(r) for r in reports.values()).rstrip("\n")
    FIGURES.write_text(json.dumps({"name": "runtimes", "markdown": markdown}, indent=2) + "\n")
    print(markdown)
    if args.readme:
        write_readme(markdown)


if __name__ == "__main__":
    main()
