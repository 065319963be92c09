"""Fault matrix of `visionkit batch`: each bad input or option is one stderr line with the right exit code, the
inputs stay byte-identical, and whatever was written is a valid, readable results folder."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from fault_harness import Fault, check_fault

import visionkit
from visionkit.batch import read_errors

MODEL = "ssd_mobilenet_v1_coco"


@pytest.fixture(scope="module")
def inputs(shared_data: Path, shared_weights: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("batch-faults")
    mixed = root / "mixed"
    mixed.mkdir()
    for photo in sorted((shared_data / "coco_val2017" / "images").glob("*.jpg"))[:2]:
        shutil.copy(photo, mixed / photo.name)
    (mixed / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated" * 10)
    (root / "no_path.csv").write_text("file\na.jpg\n")
    (root / "bad.parquet").write_bytes(b"PAR1 not parquet")
    (root / "other_run").mkdir()
    (root / "other_run" / "_batch.json").write_text(json.dumps({"schema_version": 1, "format": "parquet"}))
    (root / "not_results").mkdir()
    (root / "not_results" / "notes.txt").write_text("mine")
    return {"root": root, "mixed": mixed, "no_path": root / "no_path.csv", "bad_parquet": root / "bad.parquet",
            "other_run": root / "other_run", "not_results": root / "not_results"}


def _mixed_outputs_valid(out: Path) -> None:
    assert len(visionkit.read_results(out)) == 2
    assert [Path(e["source"]).name for e in read_errors(out)] == ["broken.jpg"]


# (id, argv after `batch` with {name} from `inputs` and {out} the output folder, exit code, the error line says)
CASES = [
    ("mixed-folder", ["detect", "{mixed}", "--out", "{out}", "-m", MODEL], 1, "1 input(s) could not be processed"),
    ("missing-input", ["detect", "{root}/nothing_here", "--out", "{out}"], 1, "not a folder, a glob or a manifest"),
    ("glob-matches-nothing", ["detect", "{root}/*.png", "--out", "{out}"], 1, "the glob matches no image or video"),
    ("csv-without-path-column", ["detect", "{no_path}", "--out", "{out}"], 1, "needs a 'path' column"),
    ("corrupt-parquet-manifest", ["detect", "{bad_parquet}", "--out", "{out}"], 1, "cannot read the manifest"),
    ("unknown-task", ["segment", "{mixed}", "--out", "{out}"], 2, "invalid choice: 'segment'"),
    ("unknown-engine", ["detect", "{mixed}", "--out", "{out}", "--engine", "spark"], 2, "invalid choice: 'spark'"),
    ("negative-cpus", ["detect", "{mixed}", "--out", "{out}", "--num-cpus-per-worker", "-1"], 2,
     "must be a finite number >= 0, got -1"),
    ("zero-batch-size", ["detect", "{mixed}", "--out", "{out}", "--batch-size", "0"], 2, "must be a positive integer"),
    ("no-out", ["detect", "{mixed}"], 2, "the following arguments are required: --out"),
    ("out-of-another-schema", ["detect", "{mixed}", "--out", "{other_run}", "-m", MODEL], 2,
     "holds parquet results of schema 1; this run writes parquet of schema 2"),
    ("out-of-another-format", ["detect", "{mixed}", "--out", "{other_run}", "-m", MODEL, "--format", "jsonl"], 2,
     "holds parquet results of schema 1; this run writes jsonl of schema 2"),
    ("out-not-a-results-folder", ["detect", "{mixed}", "--out", "{not_results}", "-m", MODEL], 2,
     "not empty and not a batch results folder"),
    ("unknown-filesystem", ["detect", "nosuch://bucket/photos/", "--out", "{out}"], 1,
     "nosuch://bucket/photos/: cannot open this filesystem URI"),
    ("out-is-a-file", ["detect", "{mixed}", "--out", "{no_path}", "-m", MODEL], 2,
     "a file, not a results folder: choose another --out"),
    ("address-without-ray", ["detect", "{mixed}", "--out", "{out}", "--address", "auto"], 2,
     "--address names a Ray cluster: it needs --engine ray"),
]


@pytest.mark.parametrize(("argv", "code", "says"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_batch_fault(inputs: dict[str, Path], tmp_path: Path, argv: list[str], code: int, says: str) -> None:
    out = tmp_path / "out"
    names = {k: str(v) for k, v in inputs.items()} | {"out": str(out)}
    valid = (lambda: _mixed_outputs_valid(out)) if "{mixed}" in argv and code == 1 else None
    check_fault(Fault(id="", argv=["batch", *(a.format(**names) for a in argv)], code=code, says=says,
                      inputs=sorted(p for p in inputs["root"].rglob("*") if p.is_file()), outputs_valid=valid))
