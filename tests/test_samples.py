"""samples/ (issue #15 item 14): the synthetic clip is deterministic and readable by every source reader, the
committed batch manifest names exactly what make_clip.py writes, and a batch run over it works."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from fault_harness import run_cli

from visionkit.batch.manifest import list_inputs
from visionkit.io.sources import open_source

SAMPLES = Path(__file__).resolve().parents[1] / "samples"


def _make_clip():
    spec = importlib.util.spec_from_file_location("make_clip", SAMPLES / "make_clip.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


make_clip = _make_clip()


def test_render_is_deterministic(assets: Path) -> None:
    import cv2

    photo = cv2.imread(str(assets / "zidane.jpg"))
    first = list(make_clip.render(12, (160, 90), seed=3, photos=[photo]))
    again = list(make_clip.render(12, (160, 90), seed=3, photos=[photo]))
    other = list(make_clip.render(12, (160, 90), seed=4, photos=[photo]))
    assert all(np.array_equal(a, b) for a, b in zip(first, again))
    assert not all(np.array_equal(a, b) for a, b in zip(first, other))
    assert all(f.shape == (90, 160, 3) and f.dtype == np.uint8 for f in first)
    assert not np.array_equal(first[0], first[-1])  # things move


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The samples as the README makes them (small frames: the same files, named as the manifest says)."""
    root = tmp_path_factory.mktemp("samples")
    shutil.copy(SAMPLES / "batch_manifest.txt", root)
    subprocess.run([sys.executable, str(SAMPLES / "make_clip.py"), "--out", str(root / "generated"), "--size",
                    "160x96"], check=True, capture_output=True)
    return root


def test_the_manifest_names_what_the_script_writes(generated: Path) -> None:
    listed = list_inputs(str(generated / "batch_manifest.txt"))
    written = sorted(str(p) for p in (generated / "generated").rglob("*") if p.is_file())
    assert sorted(listed) == written and len(listed) == 7
    clip = generated / "generated/shapes.mp4"
    frames = list(open_source(clip))
    assert len(frames) == 90 and frames[0].image.shape[:2] == (96, 160)


def test_batch_over_the_sample_manifest(generated: Path, tmp_path: Path, shared_weights: Path) -> None:
    from visionkit.batch import read_results

    outcome = run_cli("batch", "detect", generated / "batch_manifest.txt", "--out", tmp_path / "results", "--model",
                      "ssd_mobilenet_v1_coco", "--format", "jsonl", env={"VISIONKIT_WEIGHTS": str(shared_weights)})
    assert outcome.code == 0, outcome.stderr
    results = read_results(tmp_path / "results")
    assert len(results) == 90 + 6  # every frame of the clip and the six stills
