"""A model file never runs code unless the user says they trust it.

The malicious files here are real pickles whose loading runs ``touch MARKER`` (through ``os.system``, ``eval``,
``subprocess`` or an allow-listed model class's constructor): the marker must never appear unless the file is
trusted, and then it must (which proves the opt-in really is the full unpickler). Real ultralytics checkpoints
(YOLOv8/11/26, every task, fresh and in the older shapes: namespaces, numpy scalars, ``Detect.forward`` pickled
through ``getattr``) load to the very model ultralytics' own loader returns.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from fault_harness import malicious_checkpoint

import visionkit
from visionkit.catalog import ModelEntry
from visionkit.errors import WeightsError
from visionkit.tasks.checkpoints import load_ultralytics_checkpoint, read_checkpoint, trusting
from visionkit.weights import resolve_verified


@pytest.fixture
def marker(tmp_path: Path) -> Path:
    return tmp_path / "MARKER"


@pytest.mark.parametrize(("how", "names"), [
    ("os.system", "needs the global 'posix.system'"),
    ("eval", "needs the global 'builtins.eval'"),
    ("subprocess", "needs the global 'commands.call'"),  # protocol 2 stores Python 2's name for subprocess
    ("model constructor", "calls 'ultralytics.nn.tasks.DetectionModel' while loading"),
])
def test_malicious_checkpoint_is_refused_before_it_runs(tmp_path: Path, marker: Path, how: str, names: str) -> None:
    evil = malicious_checkpoint(tmp_path / "evil.pt", marker, how)
    detector = visionkit.load("detect", evil, device="cpu")
    with pytest.raises(WeightsError) as e:
        detector.warmup()
    message = str(e.value)
    assert names in message and "--trust-weights" in message and str(evil) in message
    assert "\n" not in message
    assert not marker.exists()


def test_plain_pickle_is_refused_naming_its_global(tmp_path: Path, marker: Path) -> None:
    evil = malicious_checkpoint(tmp_path / "evil.pt", marker, "plain pickle")  # protocol 5: STACK_GLOBAL
    with pytest.raises(WeightsError, match="needs the global 'posix.system'"):
        read_checkpoint(evil)
    assert not marker.exists()


def test_getattr_is_only_a_module_method_lookup(tmp_path: Path) -> None:
    """Old checkpoints pickle ``Detect.forward`` through ``builtins.getattr``; nothing else may go through it."""
    from ultralytics.nn.tasks import DetectionModel

    evil = tmp_path / "evil.pt"
    torch.save({"model": {"detect": DetectionModel.load}}, evil)  # pickled as getattr(DetectionModel, "load")
    with pytest.raises(WeightsError, match="refusing to load: it asks for BaseModel.load"):
        read_checkpoint(evil)


@pytest.mark.parametrize("api", ["load", "export_onnx", "runtime onnx", "track", "classify"])
def test_every_entry_point_is_safe(tmp_path: Path, marker: Path, api: str) -> None:
    evil = malicious_checkpoint(tmp_path / "evil.pt", marker)
    with pytest.raises(WeightsError, match="posix.system"):
        if api == "export_onnx":
            visionkit.export_onnx(evil)
        elif api == "runtime onnx":
            visionkit.load("detect", evil, runtime="onnx", device="cpu").warmup()
        elif api == "track":
            visionkit.load("track", evil, device="cpu").warmup()
        else:
            visionkit.load("detect" if api == "load" else api, evil, device="cpu").warmup()
    assert not marker.exists()


@pytest.mark.parametrize("api", ["load", "export_onnx", "track"])
def test_trust_weights_is_the_full_unpickler(tmp_path: Path, marker: Path, api: str) -> None:
    evil = malicious_checkpoint(tmp_path / "evil.pt", marker)
    with pytest.raises(WeightsError):  # the payload ran, and what it left is no model
        if api == "export_onnx":
            visionkit.export_onnx(evil, trust_weights=True)
        else:
            visionkit.load(api if api == "track" else "detect", evil, device="cpu", trust_weights=True).warmup()
    assert marker.exists()


def test_catalog_verified_file_is_trusted(tmp_path: Path, marker: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The catalog vouches for a file whose full sha256 it pins; a hash prefix or no hash vouches for nothing."""
    folder = tmp_path / "weights"
    folder.mkdir()
    evil = malicious_checkpoint(folder / "m.pt", marker)
    digest = hashlib.sha256(evil.read_bytes()).hexdigest()
    monkeypatch.setenv("VISIONKIT_WEIGHTS", str(folder))
    entry = ModelEntry(name="m", task="detect", backend="ultralytics", file="m.pt", sha256=digest)
    assert resolve_verified(entry) == (evil, True)
    assert resolve_verified(ModelEntry(name="m", task="detect", backend="ultralytics", file="m.pt")) == (evil, False)
    assert resolve_verified(entry, evil) == (evil, False)  # an explicit path is not hash-checked
    with pytest.raises(WeightsError, match="posix.system"):
        load_ultralytics_checkpoint(evil, "cpu")
    with trusting(evil), pytest.raises(TypeError):  # ultralytics' own loader: the payload runs, then no model is found
        load_ultralytics_checkpoint(evil, "cpu")
    assert marker.exists()


# ------------------------------------------------------------------------------ real checkpoints still load the same
def _legacy_shaped(path: Path, yaml: str) -> Path:
    """A checkpoint in the shape older ultralytics releases wrote: ``IterableSimpleNamespace`` args on the model,
    numpy scalars among the metrics, a Path in the training args, and a head keeping ``Detect.forward`` (which
    pickle protocol 2 writes as ``builtins.getattr(Detect, 'forward')``)."""
    from ultralytics import YOLO
    from ultralytics.nn.modules.head import Detect
    from ultralytics.utils import IterableSimpleNamespace

    torch.manual_seed(0)
    model = YOLO(yaml).model
    model.args = IterableSimpleNamespace(imgsz=640, task=model.task)
    model.model[-1].detect = Detect.forward
    torch.save({"model": model.half(), "ema": None, "train_args": {"data": "coco.yaml", "project": Path("runs")},
                "train_metrics": {"fitness": np.float64(0.5), "metrics/mAP50(B)": np.float32(0.25)},
                "date": "2023-01-01T00:00:00"}, path)
    return path


def _fresh(path: Path, yaml: str) -> Path:
    from ultralytics import YOLO

    torch.manual_seed(0)
    YOLO(yaml).save(path)
    return path


@pytest.mark.parametrize(("yaml", "shape"), [
    ("yolov8n.yaml", _fresh), ("yolo11n-seg.yaml", _fresh), ("yolo26n-pose.yaml", _fresh),
    ("yolov8n-cls.yaml", _fresh), ("yolo11n-obb.yaml", _fresh), ("yolov8n-seg.yaml", _legacy_shaped),
])
def test_real_checkpoint_loads_as_ultralytics_loads_it(tmp_path: Path, yaml: str, shape: Any) -> None:
    from ultralytics.nn.tasks import load_checkpoint

    pt = shape(tmp_path / yaml.replace(".yaml", ".pt"), yaml)
    reference, _ = load_checkpoint(pt, device="cpu")
    safe = load_ultralytics_checkpoint(pt, "cpu")
    assert type(safe) is type(reference) and safe.task == reference.task and safe.args == reference.args
    assert safe.names == reference.names and torch.equal(safe.stride, reference.stride)
    ours, theirs = safe.state_dict(), reference.state_dict()
    assert ours.keys() == theirs.keys() and all(torch.equal(ours[k], theirs[k]) for k in ours)
    x = torch.rand(1, 3, 64, 64) if "cls" in yaml else torch.rand(1, 3, 128, 128)
    with torch.inference_mode():
        a, b = safe(x), reference(x)
    ours_out, theirs_out = _tensors(a), _tensors(b)
    assert ours_out and len(ours_out) == len(theirs_out)
    assert all(torch.equal(p, q) for p, q in zip(ours_out, theirs_out))


def _tensors(out: Any) -> list[torch.Tensor]:
    if isinstance(out, torch.Tensor):
        return [out]
    items = out.values() if isinstance(out, dict) else out
    return [t for item in items for t in _tensors(item)]


def test_original_yolov5_checkpoint_is_named_not_run(shared_weights: Path) -> None:
    """yolov5n.pt (YOLOv5 repository classes, ``models.yolo``) never loaded through ultralytics; it is refused with
    what it is, without unpickling it."""
    with pytest.raises(WeightsError, match=r"yolov5n.pt: an original YOLOv5 checkpoint .*'models\.yolo\.Model'"):
        visionkit.load("detect", shared_weights / "yolov5n.pt", device="cpu").warmup()


def test_trust_weights_reaches_the_detector_of_tracking_and_action() -> None:
    """``load("track")`` / ``load("action")`` hand ``trust_weights`` to the Predictor that loads the file; by default
    nothing is trusted."""
    assert visionkit.load("track", "yolov8n", trust_weights=True).detector.trust_weights
    assert not visionkit.load("track", "yolov8n").detector.trust_weights
    assert visionkit.load("action", "r3d_18", trust_weights=True).trust_weights


def test_a_second_pickle_cannot_hide_behind_a_harmless_one(tmp_path: Path, marker: Path) -> None:
    """A zip may hold one name twice: torch reads the first data.pkl, Python's zipfile the last. Refused, so the scan
    never looks at another record than the one torch loads."""
    import warnings
    import zipfile

    harmless = tmp_path / "harmless.pt"
    torch.save({"model": None}, harmless)
    evil = malicious_checkpoint(tmp_path / "evil.pt", marker, "model constructor")
    mixed = tmp_path / "mixed.pt"
    with zipfile.ZipFile(evil) as b, zipfile.ZipFile(harmless) as a, zipfile.ZipFile(mixed, "w") as out, \
            warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zipfile warns about the duplicate name, which is the point
        for name in b.namelist():
            out.writestr(name, b.read(name))
        out.writestr("evil/data.pkl", a.read("harmless/data.pkl"))
    assert torch.serialization.get_unsafe_globals_in_checkpoint(str(mixed)) == ["ultralytics.nn.tasks.DetectionModel"]
    with pytest.raises(WeightsError, match="not the layout torch.save"):
        read_checkpoint(mixed)
    assert not marker.exists()
