"""Test set-up: real weights and data come from ../shared (or $VISIONKIT_SHARED).

A test that needs them uses the ``shared_weights`` / ``shared_data`` fixtures: when they are missing it
fails under CI (``CI=true``) and skips elsewhere, so CI can never pass by silently skipping.
"""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pytest

# A shell starts a background job (`pytest ... &` in a script) with SIGINT ignored, and the commands the tests start
# would inherit that, so every Ctrl-C test would fail for a reason that is not visionkit's: restore the default.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("VISIONKIT_SHARED", ROOT.parent / "shared")).resolve()

# Offline by construction: ultralytics must not reach for the network, visionkit must not download.
os.environ.setdefault("YOLO_OFFLINE", "1")
os.environ.setdefault("YOLO_AUTOINSTALL", "False")
os.environ.setdefault("YOLO_VERBOSE", "False")
os.environ["VISIONKIT_OFFLINE"] = "1"
os.environ.setdefault("VISIONKIT_WEIGHTS", str(SHARED / "weights"))


def _require(path: Path, what: str) -> Path:
    if path.exists():
        return path
    message = f"{what} not found at {path} (set VISIONKIT_SHARED to the shared/ folder)"
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Never read or write the user's weights cache from tests."""
    monkeypatch.setenv("VISIONKIT_CACHE", str(tmp_path_factory.getbasetemp() / "vk-cache"))


@pytest.fixture(scope="session")
def shared_weights() -> Path:
    return _require(SHARED / "weights", "shared weights")


@pytest.fixture(scope="session")
def shared_data() -> Path:
    return _require(SHARED / "data", "shared data")


@pytest.fixture(scope="session")
def assets() -> Path:
    """ultralytics' bundled sample photos (bus.jpg 810x1080, zidane.jpg 1280x720)."""
    from ultralytics.utils import ASSETS

    return Path(ASSETS)


@pytest.fixture
def coco_subset(shared_data: Path, tmp_path: Path) -> Path:
    """The first 8 shared COCO images and their annotations, in the COCO folder layout `train detect` converts."""
    coco = shared_data / "coco_val2017"
    instances = json.loads((coco / "annotations" / "instances_val2017.json").read_text())
    images = sorted(instances["images"], key=lambda image: image["file_name"])[:8]
    kept = {image["id"] for image in images}
    subset = tmp_path / "coco8"
    (subset / "images").mkdir(parents=True)
    (subset / "annotations").mkdir()
    for image in images:
        (subset / "images" / image["file_name"]).symlink_to(coco / "images" / image["file_name"])
    (subset / "annotations" / "instances_val2017.json").write_text(json.dumps(
        {**instances, "images": images, "annotations": [a for a in instances["annotations"] if a["image_id"] in kept]}))
    return subset
