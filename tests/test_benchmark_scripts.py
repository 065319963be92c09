"""Every benchmark script starts: ``python benchmarks/X.py --help`` exits 0 with its usage. The scripts run by hand
(or on a GPU machine), not in the suite, so a broken import in one went unnoticed before; this catches it cheaply."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
SCRIPTS = sorted(p.name for p in BENCHMARKS.glob("*.py") if p.name != "_common.py")  # _common: imported, not run


def test_every_script_is_covered() -> None:
    assert {"accuracy.py", "accuracy_photos.py", "readme_figures.py", "train_digits.py"} <= set(SCRIPTS)


@pytest.mark.parametrize("script", SCRIPTS)
def test_help_prints_usage(script: str) -> None:
    done = subprocess.run([sys.executable, str(BENCHMARKS / script), "--help"], capture_output=True, text=True,
                          env={**os.environ, "YOLO_OFFLINE": "1"}, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("usage:") and f"{script}" in done.stdout.splitlines()[0], done.stdout[:300]
