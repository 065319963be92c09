"""`visionkit bench`: a real run on a tiny random-weight YOLO on two runtimes next to ultralytics' own paths (the JSON's
fields, the ratios, both tables), a precision the runtime does not run skipped with a note, bad arguments refused in
one line before any model is built, and benchmarks/gpu_suite.sh's CPU dry run.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import pytest
from fault_harness import Fault, check_fault, run_cli
from random_models import build_yolo

from visionkit.bench import parse_batches, parse_list, render_markdown, render_table, run_bench
from visionkit.errors import OptionError

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def tiny_yolo(tmp_path_factory: pytest.TempPathFactory, assets: Path) -> Path:
    folder = tmp_path_factory.mktemp("bench")
    return build_yolo("yolov8n.yaml", folder / "yolov8n-random.pt", [cv2.imread(str(assets / "bus.jpg"))])


def test_bench_in_process_fields_ratio_skip_and_tables(tiny_yolo: Path) -> None:
    """Fast: one runtime, one round, through the API."""
    report = run_bench(str(tiny_yolo), runtimes=["torch"], precisions=["fp32", "int8"], imgsz=64, runs=1)
    ours, ref = report.results
    assert (ours.side, ref.side, ref.label) == ("visionkit", "reference", "ultralytics YOLO(pt).predict")
    assert ours.ratio_latency == pytest.approx(ours.latency_ms["p50"] / ref.latency_ms["p50"], rel=0.01)
    assert set(ours.throughput) == set(ours.ratio_throughput) == {"1"}
    assert len(report.skipped) == 1 and report.skipped[0].startswith("torch int8: precision int8: the model is not")
    assert "skipped torch int8" in render_table(report)
    assert render_markdown(report.to_dict()) == render_markdown(report)


@pytest.mark.slow
def test_bench_two_runtimes_json_ratios_and_tables(tiny_yolo: Path, tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    outcome = run_cli("bench", tiny_yolo, "--runtime", "torch,onnx", "--precision", "fp32,int8", "--imgsz", "64",
                      "--runs", "2", "--batch", "1,2", "--json", out, timeout=600)
    assert outcome.code == 0, outcome.stderr
    report = json.loads(out.read_text())
    assert report["family"] == "ultralytics" and report["batches"] == [1, 2] and report["runs"] == 2
    assert report["images"] == ["bus.jpg", "zidane.jpg"] and report["conditions"]["cpu_cores"] >= 1
    rows = {(r["side"], r["runtime"], r["precision"]): r for r in report["results"]}
    assert set(rows) == {("visionkit", "torch", "fp32"), ("visionkit", "onnx", "fp32"),
                         ("reference", "torch", "fp32"), ("reference", "onnx", "fp32")}
    for row in rows.values():
        assert 0 < row["latency_ms"]["p50"] <= row["latency_ms"]["p90"]
        assert set(row["throughput"]) == {"1", "2"} and all(v > 0 for v in row["throughput"].values())
        assert row["peak_rss_mb"] >= 0
    ours = rows[("visionkit", "onnx", "fp32")]
    assert ours["reference"] == "ultralytics YOLO(onnx).predict"
    ref = rows[("reference", "onnx", "fp32")]
    assert ours["ratio_latency"] == pytest.approx(ours["latency_ms"]["p50"] / ref["latency_ms"]["p50"], rel=0.01)
    assert set(ours["ratio_throughput"]) == {"1", "2"} and ours["ratio_vs_base"] > 0
    # int8 on a float model: one note per runtime, no row
    assert sorted(n.split(":")[0] for n in report["skipped"]) == ["onnx int8", "torch int8"]
    assert all("not quantized" in n for n in report["skipped"])
    # the terminal table names every side; the README table is rendered from the JSON alone
    assert "ultralytics YOLO(pt).predict" in outcome.stdout and "skipped onnx int8" in outcome.stdout
    markdown = render_markdown(report)
    assert markdown.count("\n| ") == 1 + len(rows)  # header row + one row per side (after the rule)
    assert "| visionkit | onnx | fp32 |" in markdown and "- skipped torch int8" in markdown


def test_list_and_batch_parsing() -> None:
    assert parse_list("all", ("torch", "onnx"), "--runtime") == ["torch", "onnx"]
    assert parse_list("onnx, torch,onnx", ("torch", "onnx"), "--runtime") == ["onnx", "torch"]
    assert parse_batches("32,1,8,1") == [1, 8, 32]
    with pytest.raises(OptionError, match="--precision 'fp64'"):
        parse_list("fp64", ("fp32",), "--precision")


BAD = [
    ("unknown-runtime", ["--runtime", "torch,tensorrt"], 2, "--runtime 'torch,tensorrt': expected all or"),
    ("unknown-precision", ["--precision", "fp64"], 2, "--precision 'fp64': expected all or"),
    ("batch-zero", ["--batch", "1,0"], 2, "--batch '1,0': expected comma-separated batch sizes"),
    ("batch-not-a-number", ["--batch", "eight"], 2, "--batch 'eight'"),
    ("runs-zero", ["--runs", "0"], 2, "argument --runs: must be a positive integer"),
    ("no-runtime-runs-it", ["--runtime", "tflite,opencv"], 2, "no runtime x precision asked for runs"),
    ("data-without-images", ["--data", "{tmp}"], 1, "no images/ folder in it"),
]


@pytest.mark.parametrize(("argv", "code", "says"), [c[1:] for c in BAD], ids=[c[0] for c in BAD])
def test_bench_refuses_bad_arguments(argv: list[str], code: int, says: str, tiny_yolo: Path, tmp_path: Path) -> None:
    check_fault(Fault(id="", argv=["bench", tiny_yolo, *(a.format(tmp=tmp_path) for a in argv)], code=code,
                      says=says, inputs=[tiny_yolo]))


def test_bench_unknown_model_is_one_line() -> None:
    check_fault(Fault(id="", argv=["bench", "no_such_model"], code=2, says="no_such_model"))


@pytest.mark.slow
def test_gpu_suite_cpu_check(tmp_path: Path) -> None:
    """The whole suite in its CPU dry mode: every step runs and writes its figures."""
    env = {**os.environ, "PYTHON": sys.executable}
    proc = subprocess.run([str(ROOT / "benchmarks" / "gpu_suite.sh"), "--cpu-check", "--out", str(tmp_path)],
                          env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    figures = json.loads((tmp_path / "gpu_suite.json").read_text())
    assert figures["mode"] == "cpu-check"
    assert figures["parity"]["cpu onnx fp32"]["ok"] is True
    assert set(figures["throughput"]["reports"]) == {"yolov8n", "resnet18"}
    assert figures["overlap"]["frames"] == 12 and figures["overlap"]["prefetch4"]["fps"] > 0
    assert (tmp_path / "summary.md").read_text().startswith("# GPU suite (cpu-check)")


def test_gpu_suite_refuses_without_cuda(tmp_path: Path) -> None:
    """Fast and unmarked: without a GPU (and without --cpu-check) the suite says so and exits 2 after picking its
    Python, so the launcher's environment logic runs on every test run."""
    import torch

    if torch.cuda.is_available():
        pytest.skip("a CUDA device is present: the refusal is not reachable")
    env = {**os.environ, "PYTHON": sys.executable}
    proc = subprocess.run([str(ROOT / "benchmarks" / "gpu_suite.sh"), "--out", str(tmp_path)], env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2, proc.stderr
    assert "no CUDA device visible to torch" in proc.stderr and f"python {sys.executable}" in proc.stderr
